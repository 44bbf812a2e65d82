#!/bin/sh
# sanitizer-reports.sh: after `make check` in a build configured with
# --enable-sanitizers, prints every report the sanitizers wrote into
# BUILDDIR/sanitizer (one file per process that found something: asan.PID,
# ubsan.PID, tsan.PID) and exits 1 if there is any, 0 if there is none.
#   tests/sanitizer-reports.sh [BUILDDIR]     (default: .)
# A report counts even when the test that ran the process passed: its
# status may have gone unseen (a daemon stopped in a test's clean-up, a
# child killed at the end).
builddir=${1:-.}
if ! grep -q '^SANITIZER_FLAGS = .*-fsanitize=' "$builddir/Makefile" \
    2>/dev/null; then
	echo "sanitizer-reports.sh: $builddir is not a build configured" \
	    "with --enable-sanitizers" >&2
	exit 2
fi
n=0
for f in "$builddir"/sanitizer/*; do
	[ -f "$f" ] || continue
	# LeakSanitizer's note that it could not stop a thread that was
	# exiting at that moment, and nothing else, is no finding: shown,
	# not counted.
	if ! grep -qv 'Unable to get registers from thread' "$f"; then
		echo "==== $f (a note, not a report)"
		cat "$f"
		continue
	fi
	n=$((n + 1))
	echo "==== $f"
	cat "$f"
done
if [ $n -ne 0 ]; then
	echo "sanitizer-reports.sh: $n process(es) reported errors" \
	    "(above)" >&2
	exit 1
fi
echo "sanitizer-reports.sh: no reports in $builddir/sanitizer"
