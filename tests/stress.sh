#!/bin/sh
# stress.sh: runs tests/stress for every method, alone and (where Python's
# lockfile can share the lock) mixed with Python lockfile workers, each run
# in its own fresh directory, and checks that every run leaves nothing but
# the count behind (and the database, for sqlite).
#
# Then the same with a private lockbrokerd (socket, state database and log
# in the temporary directory): in each run broker clients (LB_BROKER), AUTO
# clients, in-process clients (LB_LOCAL) and, but for sqlite, Python
# lockfile workers take the same lock at once.  The daemon must still run
# after them, have logged no warning or error, and stop on SIGTERM with
# status 0.  (tests/chaos.sh kills and restarts it during such runs.)
#
# Environment: LB_BUILDDIR (where tests/stress and the daemon were built,
# default .), PYTHON3 (the interpreter with lockfile, default
# /usr/bin/python3).

builddir=${LB_BUILDDIR:-.}
stress=$builddir/tests/stress
daemon=$builddir/daemon/lockbrokerd
PYTHON3=${PYTHON3:-/usr/bin/python3}
export PYTHON3
# The sqlite method's database must be the one in each run's directory.
unset LOCKBROKER_SQLITE_DB LOCKBROKER_TRANSPORT
# A test run by a service manager must not talk to it.
unset NOTIFY_SOCKET LISTEN_PID LISTEN_FDS LISTEN_FDNAMES

for prog in "$stress" "$daemon"; do
	if [ ! -x "$prog" ]; then
		echo "stress.sh: $prog is missing: build it with make check" >&2
		exit 99
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbstress.XXXXXX") || exit 99
dpid=
trap '[ -z "$dpid" ] || kill -KILL "$dpid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
# No daemon for the first runs (AUTO handles then lock in-process).
LOCKBROKER_SOCKET=$tmp/no-daemon-here
export LOCKBROKER_SOCKET

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
usage --unthreaded --threads 2 "$tmp"
usage --method sqlite --python-procs 1 "$tmp"
usage --procs 2 --broker-procs 1 --auto-procs 2 "$tmp"
usage --procs 2 --auto-procs 3 "$tmp"
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
# pidfile: threads of one process are owners too (the library tells them
# apart; the artefact names only the process).
run pidfile count --method pidfile --procs 4 --threads 4 --iters 50
run link-unthreaded count --method link --unthreaded --procs 8 --iters 50

# Mixed with Python's lockfile on the same path (not sqlite: lockfile's
# SQLiteLockFile keeps its database private to one process).  The Python
# workers are ready before the C ones start, so both compete throughout.
for method in link symlink mkdir; do
	run "$method-python" count --method "$method" --procs 4 --threads 4 \
	    --iters 30 --python-procs 2 --python-iters 20
done
run pidfile-python count --method pidfile --procs 4 --threads 4 --iters 30 \
    --python-procs 2 --python-iters 20

# Waits until a daemon answers HELLO on argv[1] (at most argv[3] seconds)
# while process argv[2] lives.  Exit 0: it answered; 1: the process ended;
# 2: no answer in time.
hello_py='
import socket, sys, time
path, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
            sys.exit(1)
    except FileNotFoundError:
        sys.exit(1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(b"HELLO 1 version=1\n")
        line = b""
        while not line.endswith(b"\n"):
            got = s.recv(4096)
            if not got:
                break
            line += got
        if line.startswith(b"OK 1"):
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.01)
sys.exit(2)
'

# Waits until process argv[1] has ended (a zombie, or gone), at most
# argv[2] seconds.  Exit 0: it has; 1: it still runs.
ended_py='
import sys, time
pid, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while True:
    try:
        if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
            sys.exit(0)
    except FileNotFoundError:
        sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.01)
'

# broker_fail MESSAGE: a failure of the broker part; shows the daemon's log.
broker_fail() {
	echo "stress.sh: $*" >&2
	echo "--- the daemon's log:" >&2
	cat "$dlog" >&2
	failed=$((failed + 1))
}

# With a private daemon.  Each run: 3 broker, 1 AUTO and 2 in-process
# processes of 4 threads, and 2 Python workers (pidfile: 8 processes, one
# of them AUTO; sqlite: no Python).
mkdir "$tmp/daemon" || exit 99
dsock=$tmp/daemon/sock
dlog=$tmp/daemon/log
"$daemon" --socket "$dsock" --state "$tmp/daemon/state.sqlite" \
    >"$dlog" 2>&1 &
dpid=$!
"$PYTHON3" -c "$hello_py" "$dsock" "$dpid" 15
case $? in
0)	LOCKBROKER_SOCKET=$dsock
	export LOCKBROKER_SOCKET
	for method in link symlink mkdir; do
		run "$method-broker" count --method "$method" --procs 6 \
		    --broker-procs 3 --auto-procs 1 --threads 4 --iters 30 \
		    --python-procs 2 --python-iters 20
	done
	run pidfile-broker count --method pidfile --procs 8 \
	    --broker-procs 4 --auto-procs 1 --threads 4 --iters 30 \
	    --python-procs 2 --python-iters 20
	run sqlite-broker ".lockbroker.sqlite count" --method sqlite \
	    --procs 4 --broker-procs 2 --auto-procs 1 --threads 4 --iters 10
	if "$PYTHON3" -c "$ended_py" "$dpid" 0; then
		broker_fail "lockbrokerd is not running after the runs"
	else
		kill -TERM "$dpid"
		if "$PYTHON3" -c "$ended_py" "$dpid" 15; then
			wait "$dpid"
			status=$?
		else
			kill -KILL "$dpid"
			wait "$dpid"
			status="killed: still running 15 s after SIGTERM"
		fi
		dpid=
		if [ "$status" != 0 ]; then
			broker_fail "lockbrokerd ended with status $status" \
			    "after SIGTERM, not 0"
		elif grep -q '^<[0-4]>' "$dlog"; then
			broker_fail "lockbrokerd logged a warning or an error"
		else
			passed=$((passed + 1))
		fi
	fi
	;;
1)	broker_fail "lockbrokerd exited at start" ;;
*)	broker_fail "lockbrokerd did not answer HELLO within 15 s" ;;
esac

echo "stress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
