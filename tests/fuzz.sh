#!/bin/sh
# fuzz.sh: every fuzz target's regression cases (fuzz/regress/TARGET) and
# seeds (fuzz/corpus/TARGET; tests/data/protocol too for the protocol),
# replayed through the target built with the normal compiler
# (tests/replay_TARGET, tests/fuzzreplay.c as its main): none may make it
# abort or crash.  No libFuzzer is needed; fuzz/run fuzzes (CI does).
#
# Run by `make check` with LB_BUILDDIR and LB_SRCDIR set.  Reports in TAP
# (tests/lib.sh): one check per target.
set -u
. "$(dirname "$0")/lib.sh"
: "${LB_BUILDDIR:?LB_BUILDDIR not set}" "${LB_SRCDIR:?LB_SRCDIR not set}"

lb_mktemp fuzz
trap 'rm -rf "$tmp"' EXIT
trap 'exit 99' HUP INT TERM
# fuzz_pidfile makes its private directory under TMPDIR.
TMPDIR=$tmp
export TMPDIR

for t in protocol settings names pidfile; do
	prog=$LB_BUILDDIR/tests/replay_$t
	lb_need "$prog"
	set --
	for dir in "$LB_SRCDIR/fuzz/regress/$t" "$LB_SRCDIR/fuzz/corpus/$t"; do
		[ ! -d "$dir" ] || set -- "$@" "$dir"
	done
	[ "$t" != protocol ] || set -- "$@" "$LB_SRCDIR/tests/data/protocol"
	if [ $# -eq 0 ]; then
		fail "$t: no regression case or seed to replay"
		continue
	fi
	"$prog" "$@" >"$tmp/$t.out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && has "$tmp/$t.out" '^replayed [1-9][0-9]* inputs$'
	then
		ok "$t: $(tail -n 1 "$tmp/$t.out") without a failure"
	else
		# The last input named is the one that failed.
		fail "$t: a regression case or seed fails (exit $rc)" \
		    "$tmp/$t.out"
	fi
done
lb_done
