#!/bin/sh
# stress.sh: runs tests/stress for every method, alone and (where Python's
# lockfile can share the lock) mixed with Python lockfile workers, each run
# in its own fresh directory, and checks that every run leaves nothing but
# the count behind (and the database, for sqlite).
#
# Environment: LB_BUILDDIR (where tests/stress was built, default .),
# PYTHON3 (the interpreter with lockfile, default /usr/bin/python3).

builddir=${LB_BUILDDIR:-.}
stress=$builddir/tests/stress
PYTHON3=${PYTHON3:-/usr/bin/python3}
export PYTHON3
# The sqlite method's database must be the one in each run's directory.
unset LOCKBROKER_SQLITE_DB

if [ ! -x "$stress" ]; then
	echo "stress.sh: $stress is missing: build it with make check" >&2
	exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbstress.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

passed=0
failed=0

# run NAME LEFTOVERS ARGS...: runs stress with ARGS in $tmp/NAME (killing it
# after 60 s, should it hang) and checks that the directory then holds
# exactly LEFTOVERS (sorted, space-separated).
run() {
	name=$1
	want=$2
	shift 2
	dir=$tmp/$name
	mkdir "$dir" || exit 99
	if "$stress" --timeout 60 "$@" "$dir"; then
		got=$(ls -A "$dir" | LC_ALL=C sort | tr '\n' ' ')
		if [ "$got" = "$want " ]; then
			passed=$((passed + 1))
			return
		fi
		echo "stress.sh: $name left behind: $got(wanted: $want)" >&2
	else
		echo "stress.sh: $name: stress $* failed" >&2
	fi
	failed=$((failed + 1))
}

# usage ARGS...: stress must refuse ARGS with exit status 2 and a message.
usage() {
	out=$("$stress" "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 2 ] && [ -n "$out" ]; then
		passed=$((passed + 1))
		return
	fi
	echo "stress.sh: stress $* exited $rc, not 2 with a usage message" >&2
	failed=$((failed + 1))
}

usage
usage "$tmp" "$tmp"
usage --method flock "$tmp"
usage --procs 0 "$tmp"
usage --iters 10x "$tmp"
usage --method pidfile --threads 2 "$tmp"
usage --unthreaded --threads 2 "$tmp"
usage --method sqlite --python-procs 1 "$tmp"
usage "$tmp/missing"
if [ -n "$(ls -A "$tmp")" ]; then
	echo "stress.sh: a refused run left files behind" >&2
	failed=$((failed + 1))
fi

for method in link symlink mkdir; do
	run "$method" count --method "$method" --procs 4 --threads 4 --iters 50
done
# Fewer rounds for sqlite: each acquire and release is a durable write
# transaction (some 30 ms on a disk, more under load).
run sqlite ".lockbroker.sqlite count" --method sqlite --procs 4 --threads 4 \
    --iters 10
run pidfile count --method pidfile --procs 8 --threads 1 --iters 50
run link-unthreaded count --method link --unthreaded --procs 8 --iters 50

# Mixed with Python's lockfile on the same path (not sqlite: lockfile's
# SQLiteLockFile keeps its database private to one process).  The Python
# workers are ready before the C ones start, so both compete throughout.
for method in link symlink mkdir; do
	run "$method-python" count --method "$method" --procs 4 --threads 4 \
	    --iters 30 --python-procs 2 --python-iters 20
done
run pidfile-python count --method pidfile --procs 8 --threads 1 --iters 30 \
    --python-procs 2 --python-iters 20

echo "stress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
