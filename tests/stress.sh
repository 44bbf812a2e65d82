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
# /usr/bin/python3).  Reports in TAP (tests/lib.sh): one check per run.

. "$(dirname "$0")/lib.sh"

builddir=${LB_BUILDDIR:-.}
stress=$builddir/tests/stress
daemon=$builddir/daemon/lockbrokerd
PYTHON3=${PYTHON3:-/usr/bin/python3}
export PYTHON3
# The sqlite method's database must be the one in each run's directory.
unset LOCKBROKER_SQLITE_DB LOCKBROKER_TRANSPORT
# A test run by a service manager must not talk to it.
unset NOTIFY_SOCKET LISTEN_PID LISTEN_FDS LISTEN_FDNAMES

lb_need "$stress" "$daemon"
lb_mktemp stress
dpid=
trap '[ -z "$dpid" ] || kill -KILL "$dpid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
# No daemon for the first runs (AUTO handles then lock in-process).
LOCKBROKER_SOCKET=$tmp/no-daemon-here
export LOCKBROKER_SOCKET

# run_stress NAME LEFTOVERS ARGS...: runs stress with ARGS in $tmp/NAME
# (killing it after 60 s, should it hang) and checks that the directory
# then holds exactly LEFTOVERS (sorted, space-separated).
run_stress() {
	name=$1
	want=$2
	shift 2
	dir=$tmp/$name
	mkdir "$dir" || lb_bail "cannot make $dir"
	if "$stress" --timeout 60 "$@" "$dir" >"$dir.out" 2>&1; then
		got=$(ls -A "$dir" | LC_ALL=C sort | tr '\n' ' ')
		if [ "$got" = "$want " ]; then
			ok "$name: stress $*"
			sed 's/^/#   /' "$dir.out"
			return
		fi
		fail "$name left behind: $got(wanted: $want)" "$dir.out"
	else
		fail "$name: stress $* failed" "$dir.out"
	fi
}

# usage ARGS...: stress must refuse ARGS with exit status 2 and a message.
usage() {
	out=$("$stress" "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 2 ] && [ -n "$out" ]; then
		ok "stress $* is refused with a usage message"
	else
		fail "stress $* exited $rc, not 2 with a usage message"
	fi
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
usage --readers -1 "$tmp"
usage --sets x "$tmp"
usage "$tmp/missing"
check "the refused runs left no file behind" test -z "$(ls -A "$tmp")"

for method in link symlink mkdir; do
	run_stress "$method" count --method "$method" --procs 4 --threads 4 --iters 50
done
# Fewer rounds for sqlite: each acquire and release is a durable write
# transaction (some 30 ms on a disk, more under load).
run_stress sqlite ".lockbroker.sqlite count" --method sqlite --procs 4 --threads 4 \
    --iters 10
# pidfile: threads of one process are owners too (the library tells them
# apart; the artefact names only the process).
run_stress pidfile count --method pidfile --procs 4 --threads 4 --iters 50
run_stress link-unthreaded count --method link --unthreaded --procs 8 --iters 50

# Mixed with Python's lockfile on the same path (not sqlite: lockfile's
# SQLiteLockFile keeps its database private to one process).  The Python
# workers are ready before the C ones start, so both compete throughout.
for method in link symlink mkdir; do
	run_stress "$method-python" count --method "$method" --procs 4 --threads 4 \
	    --iters 30 --python-procs 2 --python-iters 20
done
run_stress pidfile-python count --method pidfile --procs 4 --threads 4 --iters 30 \
    --python-procs 2 --python-iters 20

# broker_fail MESSAGE: a failure of the broker part; shows the daemon's log.
broker_fail() {
	fail "$*" "$dlog"
}

# With a private daemon.  Each run: 3 broker, 1 AUTO and 2 in-process
# processes of 4 threads, and 2 Python workers (pidfile: 8 processes, one
# of them AUTO; sqlite: no Python); but for sqlite, 2 more processes of 4
# threads read the lock (shared, through the broker) meanwhile.  One more
# run has its C writers take two locks at once (stress --sets).
mkdir "$tmp/daemon" || lb_bail "cannot make $tmp/daemon"
dsock=$tmp/daemon/sock
dlog=$tmp/daemon/log
"$daemon" --socket "$dsock" --state "$tmp/daemon/state.sqlite" \
    >"$dlog" 2>&1 &
dpid=$!
lb_hello "$dsock" "$dpid" 15
case $? in
0)	LOCKBROKER_SOCKET=$dsock
	export LOCKBROKER_SOCKET
	for method in link symlink mkdir; do
		run_stress "$method-broker" count --method "$method" --procs 6 \
		    --broker-procs 3 --auto-procs 1 --threads 4 --iters 30 \
		    --python-procs 2 --python-iters 20 --readers 2
	done
	run_stress pidfile-broker count --method pidfile --procs 8 \
	    --broker-procs 4 --auto-procs 1 --threads 4 --iters 30 \
	    --python-procs 2 --python-iters 20 --readers 2
	run_stress link-sets-broker count --method link --procs 4 \
	    --broker-procs 2 --auto-procs 1 --threads 2 --iters 30 \
	    --python-procs 1 --python-iters 20 --readers 1 --sets
	run_stress sqlite-broker ".lockbroker.sqlite count" --method sqlite \
	    --procs 4 --broker-procs 2 --auto-procs 1 --threads 4 --iters 10
	if lb_ended "$dpid" 0; then
		broker_fail "lockbrokerd is not running after the runs"
	else
		# A bound against a hang, not a speed check: under ASan the
		# exit's leak scan on a loaded machine has taken over 15 s.
		kill -TERM "$dpid"
		if lb_ended "$dpid" 60; then
			wait "$dpid"
			status=$?
		else
			kill -KILL "$dpid"
			wait "$dpid"
			status="killed: still running 60 s after SIGTERM"
		fi
		dpid=
		if [ "$status" != 0 ]; then
			broker_fail "lockbrokerd ended with status $status" \
			    "after SIGTERM, not 0"
		elif grep -q '^<[0-4]>' "$dlog"; then
			broker_fail "lockbrokerd logged a warning or an error"
		else
			ok "lockbrokerd ran through the broker runs, logged no" \
			    "warning and stopped with status 0"
		fi
	fi
	;;
1)	broker_fail "lockbrokerd exited at start" ;;
*)	broker_fail "lockbrokerd did not answer HELLO within 15 s" ;;
esac

lb_done
