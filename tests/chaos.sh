#!/bin/sh
# chaos.sh: the broker dies and comes back while clients hammer one lock.
#
# A private lockbrokerd (its socket, state database, config and log in a
# temporary directory) serves tests/stress runs that mix clients of every
# kind on one path: broker-only (LB_BROKER), AUTO, in-process (LB_LOCAL)
# and, for the methods Python's lockfile shares, a lockfile worker.  While
# a run is going, the daemon is killed with SIGKILL (or stopped with
# SIGTERM) at a random moment - when the shared count has reached a random
# share of its total, so that it always happens mid-run - and started
# again on the same socket and state after a random pause.  The library is
# to reconnect, RECLAIM its holds and send its waiting ACQUIREs again, so
# every run must still be exact: no overlap, no lost increment, no call
# failing (stress counts any error as a failure), nothing left in the
# lock's directory but the count.  At the end the daemon must be alive, stop
# on SIGTERM with status 0, and keep no hold in its state database; its log
# must not say that a hold of the previous run went unreclaimed (every
# holder stays alive and connected, so each must get its hold back).
#
# Beside the stress workers, "victims" take the same lock in a loop with
# the lockbroker command through the broker (`lockbroker lock --broker`,
# holding it for a few milliseconds and touching nothing), and a killer
# sends SIGKILL to a random one of them every 50 to 250 ms: killed while
# waiting, while holding, while the daemon is down.  The broker must hand
# a killed victim's lock on (its connection closes), and the run must stay
# exact; victims never count, so the total is the workers' alone.  (So
# stress runs with --shared: the lock may be a victim's when the workers
# are done; that nothing is left behind is checked once the victims end.)
#
# The grace period is 10 s instead of 30, so that a hold nobody reclaims
# (a bug) costs a run 10 s, not 30; a client reconnects within a second.
#
# At the end the daemon's state database must pass PRAGMA integrity_check
# and record no hold.
#
# Usage: chaos.sh [--minutes N]: without it, each of the runs below once
# (the version make check runs, a minute or two); with it, the runs again
# and again until N minutes have passed (at least once each).
#
# Environment: LB_BUILDDIR (where the programs were built, default .),
# PYTHON3 (with lockfile; default /usr/bin/python3), KEEP=1 keeps the
# temporary directory (daemon.log, each run's stress.out) for a look,
# CHAOS_STRESS_TIMEOUT the seconds a run may take (default 300),
# CHAOS_ONLY=NAME only the run of that name (pidfile-kill, ...): with
# --minutes, that one run again and again, to hunt a rare failure.
# Prints what each run did and when the daemon went, and at the end the
# totals: runs, daemon kills and stops, victims killed, increments; exits 1
# on a failure.  Reports in TAP (tests/lib.sh): one check per run, and one
# for the end.

. "$(dirname "$0")/lib.sh"

minutes=0
case ${1:-} in
--minutes)
	minutes=${2:-}
	case $minutes in
	''|*[!0-9]*)
		echo "chaos.sh: --minutes needs a whole number" >&2
		exit 99
		;;
	esac
	;;
'')	;;
*)	echo "usage: chaos.sh [--minutes N]" >&2
	exit 99
	;;
esac

builddir=${LB_BUILDDIR:-.}
stress=$builddir/tests/stress
daemon=$builddir/daemon/lockbrokerd
cli=$builddir/tools/lockbroker
PYTHON3=${PYTHON3:-/usr/bin/python3}
export PYTHON3
unset LOCKBROKER_SQLITE_DB LOCKBROKER_TRANSPORT
# A test run by a service manager must not talk to it.
unset NOTIFY_SOCKET LISTEN_PID LISTEN_FDS LISTEN_FDNAMES

lb_need "$stress" "$daemon" "$cli"
lb_mktemp chaos
sock=$tmp/daemon/sock
state=$tmp/daemon/state.sqlite
conf=$tmp/daemon/lockbrokerd.conf
log=$tmp/daemon.log
mkdir "$tmp/daemon" || lb_bail "cannot make $tmp/daemon"
printf 'grace = 10\n' >"$conf"
# How long stress gives a run before it kills its workers and fails
# (FAILED (hung)).  A run takes seconds on an idle machine, but ten or
# twenty times as long on one loaded to a load average of 16 or more
# (the in-process workers, which poll, wait longest), so a minute is too
# short there; a run that really hangs fails all the same.
stress_timeout=${CHAOS_STRESS_TIMEOUT:-300}
LOCKBROKER_SOCKET=$sock
export LOCKBROKER_SOCKET

dpid=
spid=
vpids=
# Ends what the test started (stress's workers die with it), and removes
# the directory unless KEEP is set.
cleanup() {
	[ -z "$spid" ] || kill -KILL "$spid" 2>/dev/null
	[ -z "$vpids" ] || kill -TERM $vpids 2>/dev/null
	[ -z "$dpid" ] || kill -KILL "$dpid" 2>/dev/null
	wait 2>/dev/null
	if [ -n "${KEEP:-}" ]; then
		echo "chaos.sh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

passed=0
failed=0
daemon_kills=0
daemon_stops=0
victims_killed=0
increments=0

# problem MESSAGE: a failure of the current run (its check fails at its
# end).
problem() {
	diag "FAIL: $*"
	failed=$((failed + 1))
}

# The state database argv[1]: its integrity check, and the number of
# holds it still records ("ok 0" is what a clean stop leaves).
holds_py='
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(db.execute("PRAGMA integrity_check").fetchone()[0],
      db.execute("SELECT count(*) FROM holds").fetchone()[0])
'
# The rows of a sqlite lock database (read only).
rows_py='
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(db.execute("SELECT count(*) FROM locks").fetchone()[0])
'

# victims DIR METHOD N: starts N victim loops on DIR/counter (see the top);
# their pids go to vpids.  Each loop ends when DIR/stop appears.
victims() {
	vpids=
	i=0
	while [ "$i" -lt "$3" ]; do
		(
			while [ ! -e "$1/stop" ]; do
				"$cli" lock --broker --method "$2" -w 5 \
				    "$1/counter" -- sleep 0.00$(random 10) \
				    >/dev/null 2>&1 || sleep 0.05
			done
		) &
		vpids="$vpids $!"
		i=$((i + 1))
	done
}

# killer DIR: every 50 to 250 ms, SIGKILL to a random lockbroker command
# running on DIR/counter, until DIR/stop appears; writes how many it killed
# to DIR.killed.
killer() {
	kdir=$1
	n=0
	while [ ! -e "$kdir/stop" ]; do
		sleep "0.$(printf '%03d' $((50 + $(random 200))))"
		pids=$(pgrep -f "lockbroker lock --broker .* $kdir/counter" 2>/dev/null)
		count=$(echo $pids | wc -w)
		[ "$count" -gt 0 ] || continue
		pick=$(echo $pids | tr ' ' '\n' | sed -n "$(($(random "$count") + 1))p")
		kill -KILL "$pick" 2>/dev/null && n=$((n + 1))
	done
	echo "$n" >"$kdir.killed"
}

# daemon_start: starts lockbrokerd on $sock and $state and waits until it
# answers a HELLO (at most 15 s); sets dpid.  0, or 1 after a failure.
daemon_start() {
	echo "--- chaos.sh: start" >>"$log"
	"$daemon" --socket "$sock" --state "$state" --config "$conf" \
	    --debug >>"$log" 2>&1 &
	dpid=$!
	lb_hello "$sock" "$dpid" 15
	case $? in
	0)	return 0 ;;
	1)	problem "lockbrokerd exited at start (see $log)" ;;
	*)	problem "lockbrokerd did not answer HELLO within 15 s" ;;
	esac
	kill -KILL "$dpid" 2>/dev/null
	wait "$dpid"
	dpid=
	return 1
}

# daemon_stop SIGNAL WANT: sends SIGNAL to the daemon and waits for it to
# end (killing it after 60 s: a bound against a hang, not a speed check;
# under ASan the exit's leak scan on a loaded machine has taken over
# 15 s); its exit status must be WANT.  Clears dpid.
daemon_stop() {
	echo "--- chaos.sh: $1" >>"$log"
	kill "-$1" "$dpid"
	case $1 in
	KILL)	daemon_kills=$((daemon_kills + 1)) ;;
	*)	daemon_stops=$((daemon_stops + 1)) ;;
	esac
	hung=
	if ! lb_ended "$dpid" 60; then
		hung=" (still running 60 s after it: killed)"
		kill -KILL "$dpid"
	fi
	wait "$dpid"
	status=$?
	dpid=
	if [ "$status" -ne "$2" ]; then
		problem "lockbrokerd ended with status $status after SIG$1$hung," \
		    "not $2"
		return 1
	fi
}

# random N: a random whole number from 0 to N - 1.
random() {
	echo $(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % $1 ))
}

# count_of DIR: the count in DIR/count (0 before the run writes it).
count_of() {
	n=0
	[ -f "$1/count" ] && read -r n <"$1/count" 2>/dev/null
	echo "${n:-0}"
}

# chaos NAME EVENTS -- STRESS_ARGS...: runs stress with STRESS_ARGS in
# $tmp/NAME in the background and meanwhile carries out EVENTS, each
# "KIND@FROM-TO+PAUSE": once the count has reached a random share from
# FROM to TO per cent of the run's total, the daemon is stopped (KIND
# kill: SIGKILL; term: SIGTERM, which must end it with status 0) and,
# PAUSE milliseconds later (a random pause up to PAUSE when it starts
# with ~), started again.  Then checks the run, its directory, and that
# every event happened while the run was still going.
chaos() {
	[ -z "${CHAOS_ONLY:-}" ] || [ "$1" = "$CHAOS_ONLY" ] || return 0
	name=$1.$pass
	events=$2
	shift 3
	dir=$tmp/$name
	method=link
	for a in "$@"; do
		[ "${prev:-}" != --method ] || method=$a
		prev=$a
	done
	out=$tmp/$name.stress.out
	mkdir "$dir" || lb_bail "cannot make $dir"
	total=$(total_of "$@")
	failed_before=$failed
	echo "--- chaos.sh: run $name: $events: stress $*" >>"$log"
	"$stress" --timeout "$stress_timeout" --shared "$@" "$dir" >"$out" \
	    2>&1 &
	spid=$!
	# The victims start once stress has found the lock free and written
	# the count (its check before the run; a victim that took the lock
	# first would fail it with "is locked").
	while [ ! -f "$dir/count" ] && kill -0 "$spid" 2>/dev/null; do
		sleep 0.01
	done
	victims "$dir" "$method" 2
	killer "$dir" &
	kpid=$!
	said="$name:"
	missed=
	for ev in $events; do
		kind=${ev%%@*}
		range=${ev#*@}
		range=${range%+*}
		pause=${ev##*+}
		from=${range%-*}
		to=${range#*-}
		share=$((from + $(random $((to - from + 1)))))
		case $pause in
		~*)	pause=$(random $((${pause#\~} + 1))) ;;
		esac
		at=$((total * share / 100))
		while [ "$(count_of "$dir")" -lt "$at" ] &&
		    kill -0 "$spid" 2>/dev/null; do
			sleep 0.01
		done
		if ! kill -0 "$spid" 2>/dev/null; then
			missed="$kind at $share%"
			said="$said (the run ended before $missed)"
			break
		fi
		now=$(count_of "$dir")
		case $kind in
		kill)	daemon_stop KILL 137 ;;
		term)	daemon_stop TERM 0 ;;
		esac
		said="$said $kind at $now/$total, down ${pause} ms;"
		sleep "$(printf '%d.%03d' $((pause / 1000)) $((pause % 1000)))"
		daemon_start || break
	done
	wait "$spid"
	status=$?
	spid=
	touch "$dir/stop"
	wait $vpids "$kpid"
	vpids=
	rm -f "$dir/stop"
	killed=$(cat "$dir.killed" 2>/dev/null || echo 0)
	victims_killed=$((victims_killed + killed))
	said="$said $killed victims killed;"
	[ "$status" -ne 0 ] || increments=$((increments + total))
	diag "$said"
	sed 's/^/#   /' "$out"
	[ "$status" -eq 0 ] || problem "$name: stress $* failed (status $status)"
	# A run that ended well before the daemon went has tested nothing.
	[ "$status" -ne 0 ] || [ -z "$missed" ] ||
		problem "$name: stress ended before the daemon's $missed of the run"
	got=$(ls -A "$dir" | LC_ALL=C sort | tr '\n' ' ')
	# After a hang stress has SIGKILLed its workers, a holder among them.
	hung_note=
	! grep -q "FAILED (hung)" "$out" ||
		hung_note="; stress SIGKILLed its workers, maybe a holder"
	# The sqlite method's lock database stays, with no row left in it.
	want="count "
	if [ -e "$dir/.lockbroker.sqlite" ]; then
		rows=$("$PYTHON3" -c "$rows_py" "$dir/.lockbroker.sqlite" 2>&1)
		[ "$rows" = 0 ] || problem "$name: the sqlite lock database" \
		    "still holds a lock: $rows"
		want=".lockbroker.sqlite count "
	fi
	[ "$got" = "$want" ] ||
		problem "$name: left behind: $got(wanted: $want$hung_note)"
	if [ -z "$dpid" ] || lb_ended "$dpid" 0; then
		problem "$name: lockbrokerd is not running after the run"
		[ -z "$dpid" ] || wait "$dpid"
		daemon_start
	fi
	if [ "$failed" -eq "$failed_before" ]; then
		passed=$((passed + 1))
		ok "$name: $events: exact, nothing left behind"
	else
		fail "$name: $events"
	fi
}

# total_of STRESS_ARGS...: the count a stress run with these options
# reaches (its defaults: 4 procs, 4 threads, 50 iters, 20 python iters).
total_of() {
	p=4 t=4 i=50 pp=0 pi=20
	while [ $# -gt 0 ]; do
		case $1 in
		--procs) p=$2 ;;
		--threads) t=$2 ;;
		--iters) i=$2 ;;
		--python-procs) pp=$2 ;;
		--python-iters) pi=$2 ;;
		esac
		shift
	done
	echo $((p * t * i + pp * pi))
}

daemon_start || lb_fatal "lockbrokerd starts" "$log"
began=$(date +%s)
pass=0
while :; do
pass=$((pass + 1))

# Two SIGKILLs in one run, with short pauses: broker clients wait for the
# new daemon, AUTO ones too (they fall back in-process only after 1 s).
chaos link-kill2 "kill@15-35+~300 kill@55-75+~300" -- --method link \
    --procs 6 --broker-procs 2 --auto-procs 2 --threads 4 --iters 100 \
    --python-procs 1 --python-iters 40
# A pause longer than the AUTO clients' patience: they release and wait
# in-process meanwhile, and settle with the new daemon when it is back.
chaos symlink-kill-long "kill@20-60+1500" -- --method symlink \
    --procs 6 --broker-procs 2 --auto-procs 2 --threads 4 --iters 80 \
    --python-procs 1 --python-iters 40
# A graceful stop in the middle: waiting ACQUIREs are told ESHUTDOWN and
# must wait for the next daemon; the holds stay on disk for it.  Later a
# SIGKILL (mkdir hands over by adding a marker before removing the old).
chaos mkdir-term-kill "term@15-40+~300 kill@60-80+~300" -- --method mkdir \
    --procs 6 --broker-procs 2 --auto-procs 2 --threads 4 --iters 80 \
    --python-procs 1 --python-iters 40
# pidfile, whose artefact names only the process: threads of a process
# are owners all the same; killed once.
chaos pidfile-kill "kill@20-60+~300" -- --method pidfile \
    --procs 8 --broker-procs 3 --auto-procs 2 --threads 2 --iters 40
# Readers through the broker beside the writers of every transport and
# lockfile's: their shared holds are reclaimed over a SIGKILL (a reader
# and a writer never inside together, seen from either side).
chaos link-readers-kill "kill@20-60+~300" -- --method link \
    --procs 4 --broker-procs 2 --auto-procs 1 --threads 2 --iters 60 \
    --python-procs 1 --python-iters 30 --readers 2
# Readers kept for their process (lockbroker acquire -s: ACQUIRE pid=
# mode=shared) through a SIGKILL: the daemon finds them in its state
# database, with no RECLAIM, and a writer never gets the lock while one
# reads.
chaos link-kept-readers-kill "kill@20-60+~300" -- --method link \
    --procs 4 --broker-procs 2 --auto-procs 1 --threads 2 --iters 60 \
    --python-procs 1 --python-iters 30 --readers 3 --kept-readers
# Writers taking two locks at once (lb_acquire_all) through a SIGKILL:
# neither lock is ever held by two, and a set never waits holding one.
chaos symlink-sets-kill "kill@20-60+~300" -- \
    --method symlink --procs 4 --broker-procs 2 --auto-procs 1 --threads 2 \
    --iters 40 --python-procs 1 --python-iters 20 --sets
# sqlite, whose handoff passes the row in one transaction of the lock
# database before the daemon's commit (noted first, as a handoff): killed
# once.  No Python worker: lockfile's SQLiteLockFile keeps a database per
# process.
chaos sqlite-kill "kill@20-60+~300" -- --method sqlite \
    --procs 4 --broker-procs 2 --auto-procs 1 --threads 2 --iters 30

[ "$minutes" -gt 0 ] && [ "$failed" -eq 0 ] &&
    [ $(($(date +%s) - began)) -lt $((minutes * 60)) ] || break
done

# The end: the daemon stops cleanly, keeping no hold, and never ended a
# hold of a live holder for want of a RECLAIM.
failed_before=$failed
if [ -n "$dpid" ] && daemon_stop TERM 0; then
	left=$("$PYTHON3" -c "$holds_py" "$state" 2>&1)
	[ "$left" = "ok 0" ] ||
		problem "the state database is not clean (integrity, holds):" \
		    "$left"
fi
if grep -q "not reclaimed within the grace period" "$log"; then
	problem "a live holder's hold ended unreclaimed:" \
	    "$(grep "not reclaimed within the grace period" "$log")"
fi

if [ "$failed" -eq "$failed_before" ]; then
	ok "the end: lockbrokerd stops cleanly, keeps no hold, ended no live hold"
else
	fail "the end: lockbrokerd stops cleanly, keeps no hold, ended no live hold"
fi
diag "chaos: $passed runs passed, $failed failures in $(($(date +%s) - began)) s;" \
    "daemon killed $daemon_kills times, stopped $daemon_stops times;" \
    "$victims_killed victims killed; $increments increments, none lost"
if [ "$failed" -ne 0 ]; then
	echo "--- the daemon's log, without the debug lines:" >&2
	grep -v '^<7>' "$log" >&2
fi
lb_done
