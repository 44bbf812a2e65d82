#!/bin/sh
# tests/mixed_win.sh: the lockbroker command for Windows (under wine) and
# Python's lockfile on Linux on one lock directory, for the link and mkdir
# methods: only what is meant to work (docs/WINDOWS.md, "Mixed hosts").
# Each side's lock is an artefact on disk that the other sees held and is
# excluded by, and each takes the lock once the other has released it;
# lockbroker.exe reads the host in Python's unique name.  What is not
# meant to work (each side judges the other's pid as one of its own, so a
# stale judgement across the two is meaningless) is documented there and
# never asserted here.
#
#   sh tests/mixed_win.sh BUILDDIR
#
# BUILDDIR is a Windows build (its tools/lockbroker.exe); the lock
# directory is made in it (wine's drive Z: is the Unix root, so "Z:DIR"
# is DIR for both sides).  Runs wine64 ($WINE, default
# /usr/lib/wine/wine64) in $WINEPREFIX, which must exist (.ci/win makes
# it), and Python ($PYTHON, default /usr/bin/python3, which has lockfile).
# Exit status: 0 when every check passed; 1 when one failed (each failure
# named on stderr); 77 when that Python has no lockfile (skipped).
set -u
build=$(cd "${1:?usage: mixed_win.sh BUILDDIR}" && pwd)
wine=${WINE:-/usr/lib/wine/wine64}
python=${PYTHON:-/usr/bin/python3}
lb=$build/tools/lockbroker.exe
: "${WINEPREFIX:?set WINEPREFIX to the wine prefix of the Windows build}"
WINEDEBUG=${WINEDEBUG:--all}
export WINEPREFIX WINEDEBUG
fails=0

if ! "$python" -c 'import lockfile' 2>/dev/null; then
	echo "mixed_win: SKIP: $python has no lockfile module"
	exit 77
fi
[ -f "$lb" ] || { echo "mixed_win: no $lb" >&2; exit 1; }

dir=$(mktemp -d "$build/mixed.XXXXXX")
kids=
# Ends what is still running (a holder left by a failure), by its pid.
cleanup() {
	for p in $kids; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

ok() { echo "mixed_win: ok: $*"; }
fail() { echo "mixed_win: FAIL: $*" >&2; fails=$((fails + 1)); }

# Python's side: lockfile's LinkLockFile or MkdirLockFile, unthreaded.
#   look M PATH        prints "IS_LOCKED I_AM_LOCKING" (1 or 0 each)
#   try M PATH         acquire(timeout=0) and release: 0, or 1 when
#                      AlreadyLocked
#   hold M PATH READY  acquire, make READY, release after a line on stdin
cat >"$dir/lf.py" <<'EOF'
import sys
import lockfile
from lockfile.linklockfile import LinkLockFile
from lockfile.mkdirlockfile import MkdirLockFile

what, method, path = sys.argv[1:4]
lock = {"link": LinkLockFile, "mkdir": MkdirLockFile}[method](
    path, threaded=False)
if what == "look":
    print(int(lock.is_locked()), int(lock.i_am_locking()))
elif what == "try":
    try:
        lock.acquire(timeout=0)
    except lockfile.AlreadyLocked:
        sys.exit(1)
    lock.release()
elif what == "hold":
    lock.acquire(timeout=10)
    open(sys.argv[4], "w").close()
    sys.stdin.readline()
    lock.release()
EOF
host=$("$python" -c 'import socket; print(socket.gethostname())')

# win ARG...: lockbroker.exe ARG... under wine, its output (without
# carriage returns) in $dir/win.out; its exit status.
win() {
	"$wine" "$lb" "$@" </dev/null >"$dir/win.raw" 2>&1
	set -- $?
	tr -d '\r' <"$dir/win.raw" >"$dir/win.out"
	return "$1"
}

# win_expect N WHAT ARG...: lockbroker.exe ARG... must exit N: "ok: WHAT",
# else a failure saying what it gave.
win_expect() {
	want=$1 what=$2
	shift 2
	win "$@"
	r=$?
	if [ $r -eq "$want" ]; then
		ok "$what"
	else
		fail "$what: exit $r, not $want: $(cat "$dir/win.out")"
	fi
}

# until_there FILE: waits up to 30 s for FILE; 0 when it is there.
until_there() {
	n=0
	while [ ! -e "$1" ] && [ $n -lt 150 ]; do
		sleep 0.2
		n=$((n + 1))
	done
	[ -e "$1" ]
}

for m in link mkdir; do
	path=$dir/$m
	wpath=Z:$path

	# lockbroker.exe holds the lock while cmd's "set /p" waits for a
	# line on its standard input (a FIFO this script writes).
	mkfifo "$dir/in"
	"$wine" "$lb" lock --local --method "$m" "$wpath" -c "set /p x=" \
	    <"$dir/in" >"$dir/hold.out" 2>&1 &
	kid=$!
	kids="$kids $kid"
	exec 3>"$dir/in"
	if until_there "$path.lock"; then
		look=$("$python" "$dir/lf.py" look "$m" "$path")
		[ "$look" = "1 0" ] && ok "$m: Python sees lockbroker.exe's" \
		    "lock held, not its own" ||
		    fail "$m: Python's is_locked, i_am_locking: $look, not 1 0"
		"$python" "$dir/lf.py" try "$m" "$path"
		[ $? -eq 1 ] && ok "$m: Python's acquire refused" \
		    "(AlreadyLocked) while lockbroker.exe holds it" ||
		    fail "$m: Python's acquire not refused while" \
		    "lockbroker.exe holds the lock"
	else
		fail "$m: lockbroker.exe made no $path.lock: $(cat "$dir/hold.out")"
	fi
	echo go >&3
	exec 3>&-
	wait "$kid"
	r=$?
	[ $r -eq 0 ] || fail "$m: lockbroker.exe lock ended $r:" \
	    "$(tr -d '\r' <"$dir/hold.out")"
	[ ! -e "$path.lock" ] || fail "$m: $path.lock left by lockbroker.exe"
	"$python" "$dir/lf.py" try "$m" "$path" &&
	    ok "$m: Python takes the lock once lockbroker.exe released it" ||
	    fail "$m: Python cannot take the lock lockbroker.exe released"
	rm -f "$dir/in"

	# Python holds the lock until it reads a line.
	mkfifo "$dir/in"
	"$python" "$dir/lf.py" hold "$m" "$path" "$dir/ready" <"$dir/in" &
	kid=$!
	kids="$kids $kid"
	exec 4>"$dir/in"
	if until_there "$dir/ready"; then
		win status --local --method "$m" "$wpath"
		r=$?
		[ $r -eq 0 ] && grep -q "^  host: *$host\$" "$dir/win.out" &&
		    ok "$m: lockbroker.exe status: Python's lock held, its" \
		    "host $host" ||
		    fail "$m: lockbroker.exe status ($r): $(cat "$dir/win.out")"
		win_expect 1 "$m: lockbroker.exe lock -n refused, Python holding it" \
		    lock -n --local --method "$m" "$wpath" -c "exit 5"
	else
		fail "$m: Python did not take the lock"
	fi
	echo go >&4
	exec 4>&-
	wait "$kid" || fail "$m: Python's holder failed"
	rm -f "$dir/in" "$dir/ready"
	win_expect 5 "$m: lockbroker.exe takes it once Python released it" \
	    lock -n --local --method "$m" "$wpath" -c "exit 5"
	[ ! -e "$path.lock" ] || fail "$m: $path.lock left"
done

if [ $fails -ne 0 ]; then
	echo "mixed_win: $fails failed" >&2
	exit 1
fi
echo "mixed_win: passed"
