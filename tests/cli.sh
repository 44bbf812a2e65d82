#!/bin/sh
# cli.sh: the lockbroker command (tools/lockbroker), end to end, with real
# processes: exit statuses (flock(1)'s conventions), waiting and giving up,
# status, break and break --stale, signals, every on-disk method; sets of
# PATHs (all or none, waiting holding none), the old command lines' meaning
# kept beside them, and the sets refused.
#
# Run by `make check` with LB_BUILDDIR set.  Works in a private temporary
# directory: locks live in $tmp/d, which must be empty after every case (the
# sqlite method's database excepted); the test's own files live in $tmp.
# Reports in TAP (tests/lib.sh); exit 0 when all pass, 1 when any fails,
# 99 when it cannot run.

# shellcheck disable=SC2012,SC2016,SC2317
# (ls on names we made; sh -c scripts expand in the child; functions run
# from traps and check)

set -u
. "$(dirname "$0")/lib.sh"

LB="${LB_BUILDDIR:?LB_BUILDDIR not set}/tools/lockbroker"
lb_need "$LB"

lb_mktemp cli
d="$tmp/d"
mkdir "$d" || lb_bail "cannot make $d"
bg_pids=""
lb_errfile="$tmp/err"

# Kills what we started and still runs, removes the temporary directory.
cleanup() {
	for p in $bg_pids; do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

# The lock directory's contents, sorted, one line.
listing() {
	ls -A "$d" | sort | tr '\n' ' '
}

# check_clean DESC [NAME...]: the lock directory holds exactly NAMEs.
check_clean() {
	desc=$1
	shift
	want=$(for f in "$@"; do echo "$f"; done | sort | tr '\n' ' ')
	got=$(listing)
	if [ "$got" = "$want" ]; then
		ok "$desc: lock directory as expected"
	else
		fail "$desc: lock directory holds '$got', want '$want'"
	fi
}

# What the sqlite method leaves in the directory by design.
leftover() {
	if [ "$1" = sqlite ]; then
		echo .lockbroker.sqlite
	fi
}

# The command a holder runs: wait until file $1 exists (at most ~20 s, and
# not beyond the test's life), then exit with status $2 (default 0).
hold_script='i=0
while [ ! -e "$1" ] && [ -d "${1%/*}" ] && [ $i -lt 400 ]; do
	sleep 0.05
	i=$((i + 1))
done
exit ${2:-0}'

# wait_locked PATH PID [OPTIONS...]: waits (up to ~10 s) until `status`
# shows PATH held by PID.  0 when it does.
wait_locked() {
	wl_path=$1
	wl_pid=$2
	shift 2
	i=0
	while [ $i -lt 200 ]; do
		if "$LB" status "$@" "$wl_path" 2>/dev/null |
		    grep -Eq "^  pid: +$wl_pid\$"; then
			return 0
		fi
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# start_holder PATH [LOCK-OPTIONS...]: runs `lockbroker lock` on PATH in
# the background, holding it until release_holder.  Sets holder (its pid)
# and go (the file that releases it); returns when the lock is visibly held
# by it, or 1 after ~10 s.
holders=0
start_holder() {
	sh_path=$1
	shift
	holders=$((holders + 1))
	go="$tmp/go.$holders"
	"$LB" lock "$@" "$sh_path" -- sh -c "$hold_script" sh "$go" &
	holder=$!
	bg_pids="$bg_pids $holder"
	wait_locked "$sh_path" "$holder" "$@"
}

# release_holder: lets the last started holder's command finish; sets rc to
# the holder's exit status.
release_holder() {
	: >"$go"
	wait "$holder"
	rc=$?
}

# Nanoseconds since the epoch, or empty where date cannot tell.
now_ns() {
	t=$(date +%s%N 2>/dev/null)
	case $t in
	*[!0-9]*|"") echo "" ;;
	*) echo "$t" ;;
	esac
}

f="$d/f"

## --help, --version, bad usage.

expect_rc 0 "--help" "$LB" --help
check "--help prints the usage on stdout" has "$tmp/out" '^usage: lockbroker lock'
expect_rc 0 "lock --help" "$LB" lock --help
check "lock --help prints the usage" has "$tmp/out" '^usage:'
expect_rc 0 "--version" "$LB" --version
check "--version prints 'lockbroker VERSION'" \
    has "$tmp/out" '^lockbroker [0-9]+\.[0-9]+(\.[0-9]+)?$'

for args in "--bogus" "frobnicate $f" "lock --bogus $f true" "lock $f" \
    "lock -w soon $f true" "lock -w -1 $f true" "lock -E 256 $f true" \
    "lock --method nosuch $f true" "lock --local --broker $f true" \
    "lock -c true $f extra" "lock $f -c" "lock -w" "status" "status $f extra" \
    "break --bogus $f" ""; do
	# shellcheck disable=SC2086 # split on purpose
	expect_rc 64 "bad usage '$args'" "$LB" $args
	check "bad usage '$args': usage on stderr, nothing on stdout" \
	    sh -c "grep -q '^usage:' '$tmp/err' && [ ! -s '$tmp/out' ]"
done
check_clean "bad usage"

## lock: runs the command and passes its exit status on.

expect_rc 0 "lock PATH -- true" "$LB" lock "$f" -- true
expect_rc 3 "lock PATH -- sh -c 'exit 3'" "$LB" lock "$f" -- sh -c 'exit 3'
expect_rc 5 "lock PATH COMMAND (no --)" "$LB" lock "$f" sh -c 'exit 5'
expect_rc 0 "lock passes arguments untouched" \
    "$LB" lock "$f" -- printf '%s|' 'a b' '-c' '--' ''
check "lock passes arguments untouched: output" \
    [ "$(cat "$tmp/out")" = 'a b|-c|--||' ]
expect_rc 0 "the command runs with the lock held" \
    "$LB" lock "$f" -- sh -c '[ -f "$1.lock" ]' sh "$f"
check_clean "lock and exit status"

## -c runs a command string through sh -c (after PATH as in flock, or as
## an option).

expect_rc 4 "lock PATH -c STRING" "$LB" lock "$f" -c 'echo hi; exit 4'
check "lock PATH -c STRING: output" [ "$(cat "$tmp/out")" = hi ]
expect_rc 6 "lock -c STRING PATH" "$LB" lock -c 'exit 6' "$f"
check_clean "-c"

## The command cannot be run: 127 not found, 126 not executable (as shells).

expect_rc 127 "command not found" "$LB" lock "$f" -- "$tmp/no-such-command"
check "command not found: named on stderr" has "$tmp/err" 'no-such-command'
: >"$tmp/not-executable"
expect_rc 126 "command not executable" "$LB" lock "$f" -- "$tmp/not-executable"
check_clean "command cannot run"

## A command killed by signal N: 128+N, as flock(1) exits.

expect_rc 143 "command killed by SIGTERM" \
    "$LB" lock "$f" -- sh -c 'kill -TERM $$'
expect_rc 137 "command killed by SIGKILL" \
    "$LB" lock "$f" -- sh -c 'kill -KILL $$'
check_clean "command killed"

## Held by another: -n, -E, -w give up; a patient waiter gets the lock.

if start_holder "$f"; then
	ok "holder holds $f"
else
	fail "holder did not take $f"
fi
expect_rc 1 "lock -n while held" "$LB" lock -n "$f" -- true
check "lock -n while held: silent (as flock)" \
    sh -c "[ ! -s '$tmp/out' ] && [ ! -s '$tmp/err' ]"
expect_rc 42 "lock -n -E 42 while held" "$LB" lock -n -E 42 "$f" -- true
expect_rc 1 "lock --nonblock while held" "$LB" lock --nonblock "$f" -- true
t0=$(now_ns)
expect_rc 1 "lock -w 0.3 while held" "$LB" lock -w 0.3 "$f" -- true
t1=$(now_ns)
if [ -n "$t0" ] && [ -n "$t1" ]; then
	ms=$(((t1 - t0) / 1000000))
	check "lock -w 0.3 waited at least 0.3 s (${ms} ms)" [ "$ms" -ge 300 ]
	check "lock -w 0.3 returned within 10 s (${ms} ms)" [ "$ms" -lt 10000 ]
fi
expect_rc 1 "lock -v -w 0 while held" "$LB" lock -v -w 0 "$f" -- true
check "lock -v says why it gave up" has "$tmp/err" 'locked'
check "a held lock: only the holder's lock file and unique file" \
    [ "$(ls -A "$d" | wc -l)" -eq 2 ]

"$LB" lock -w 10 "$f" -- sh -c ': >"$1"' sh "$tmp/waiter-ran" \
    >"$tmp/waiter.out" 2>&1 &
waiter=$!
bg_pids="$bg_pids $waiter"
sleep 0.3
check "the waiter does not run while the lock is held" [ ! -e "$tmp/waiter-ran" ]
release_holder
check "the holder exits 0" [ "$rc" -eq 0 ]
wait "$waiter"
rc=$?
check "lock -w 10: the waiter gets the lock once it is free (exit $rc)" \
    [ "$rc" -eq 0 ]
check "the waiter ran its command" [ -e "$tmp/waiter-ran" ]
check_clean "conflict and waiting"

## -v says when the lock was taken.

expect_rc 0 "lock -v" "$LB" lock -v "$f" -- true
check "lock -v: stderr names the path" has "$tmp/err" "locked .*$f"

## status: exit 0 and who holds it; exit 1 when free.

start_holder "$f" || fail "holder did not take $f"
expect_rc 0 "status while held" "$LB" status "$f"
check "status says locked" has "$tmp/out" ': locked$'
check "status names the holder's pid" has "$tmp/out" "^  pid: +$holder\$"
check "status says the holder is alive" has "$tmp/out" '^  holder: +alive$'
check "status names the host" has "$tmp/out" "^  host: +$(uname -n)\$"
check "status names the user" has "$tmp/out" "^  user: +$(id -u) \\($(id -un)\\)\$"
check "status gives the time in ISO-8601" \
    has "$tmp/out" '^  since: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?[+-][0-9]{2}:[0-9]{2}$'
check "status gives the unique name" has "$tmp/out" "^  unique: +.*\\.$holder"
release_holder
expect_rc 1 "status when free" "$LB" status "$f"
check "status says not locked" has "$tmp/out" 'not locked'
check_clean "status"

## break: removes a held lock; the holder's late release then fails but
## does not touch the next holder's lock.

start_holder "$f" || fail "holder did not take $f"
expect_rc 0 "break a held lock" "$LB" break "$f"
check "break says what it broke" has "$tmp/out" "broke .*pid $holder"
expect_rc 1 "status after break" "$LB" status "$f"
expect_rc 0 "the lock can be taken after break" "$LB" lock -n "$f" -- true
release_holder
check "the broken holder still exits with its command's status" [ "$rc" -eq 0 ]
check_clean "break"
expect_rc 0 "break a free lock" "$LB" break "$f"
check "break of a free lock says so" has "$tmp/out" 'not locked'

## break --stale: refuses a live holder, breaks a dead one.  The holder is
## lockbroker itself, killed with SIGKILL so that its artefact stays.

start_holder "$f" || fail "holder did not take $f"
expect_rc 1 "break --stale refuses a live holder" "$LB" break --stale "$f"
check "break --stale says why" has "$tmp/err" 'not provably dead'
expect_rc 0 "the live holder keeps its lock" "$LB" status "$f"
kill -9 "$holder"
wait "$holder"
expect_rc 0 "status of a dead holder's lock" "$LB" status "$f"
check "status says the holder is dead" has "$tmp/out" '^  holder: +dead$'
expect_rc 1 "a dead holder's lock still excludes" "$LB" lock -n "$f" -- true
expect_rc 0 "break --stale breaks a dead holder's lock" "$LB" break --stale "$f"
check "break --stale says what it broke" has "$tmp/out" "broke .*pid $holder.*dead"
expect_rc 1 "status after break --stale" "$LB" status "$f"
: >"$go"        # the orphaned command ends
check_clean "break --stale"

start_holder "$f" || fail "holder did not take $f"
kill -9 "$holder"
wait "$holder"
: >"$go"
expect_rc 0 "lock --break-stale takes a dead holder's lock" \
    "$LB" lock -n --break-stale "$f" -- true
check_clean "lock --break-stale"

# --break-stale is kept whatever option comes after it (--method too).
start_holder "$f" --method mkdir || fail "holder did not take $f"
kill -9 "$holder"
wait "$holder"
: >"$go"
expect_rc 0 "lock --break-stale --method mkdir takes a dead holder's lock" \
    "$LB" lock -n --break-stale --method mkdir "$f" -- true
"$LB" break --method mkdir "$f" >/dev/null 2>&1  # should it have failed
check_clean "lock --break-stale --method mkdir"

## Killed between any two steps of its acquire or release (stopped there
## by the preload tests/stopstep.c, then SIGKILLed), an in-process holder
## leaves the lock free, or naming it, so that --break-stale takes it: never
## a lock directory without a marker, nor an empty pid file, which name
## nobody and so stay for good.  A temporary of the mkdir method's that it
## leaves (no lock) is removed by the next lock taken, its process gone.

stopstep="$LB_BUILDDIR/tests/.libs/stopstep.so"
# (Not in a sanitizer's build: its runtime intercepts the libc calls the
# preload interposes, and the holder dies before either is set up.)
[ -z "${LB_SANITIZERS-}" ] || echo "# in-process holders killed after each step: not under a sanitizer"
# kill_when_stopped PID: waits (10 s at most) until process PID (a child
# of this shell) is stopped (the stop-after-a-step preload) or gone, kills
# it and reaps it; sets stopped to the state it had ("T..." when it was
# stopped, empty when it had ended).
kill_when_stopped() {
	i=0
	until case $(ps -o stat= -p "$1" 2>/dev/null) in
	    T*|'') true ;; *) false ;; esac || [ $i -ge 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	stopped=$(ps -o stat= -p "$1" 2>/dev/null)
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

[ -n "${LB_SANITIZERS-}" ] ||
for m in mkdir pidfile; do
	step=1
	while [ -f "$stopstep" ] && [ $step -le 8 ]; do
		LD_PRELOAD=$stopstep LB_TEST_STOP_STEP=$step \
		    LB_TEST_STOP_UNDER="$d" \
		    "$LB" lock --local --method $m "$f" -- true &
		victim=$!
		bg_pids="$bg_pids $victim"
		kill_when_stopped "$victim"
		case $stopped in
		T*)	;;
		*)	break ;;        # it went through every step
		esac
		kdesc="$m, in-process holder killed after step $step"
		expect_rc 0 "$kdesc: the lock is free or breakable" \
		    "$LB" lock -n --local --break-stale --method $m "$f" -- true
		check_clean "$m, killed after step $step"
		step=$((step + 1))
	done
	check "$m: the holder was stopped after some steps" [ $step -gt 2 ]
done

## Killed between any two steps of a break with the link or symlink
## method of a lock directory (lockfile's MkdirLockFile format, another
## program's lock on the same path), the breaker leaves the directory whole
## with its marker, or gone: never a lock directory without a marker.  The
## temporary it may leave goes with the next lock taken.

[ -n "${LB_SANITIZERS-}" ] ||
for m in link symlink; do
	step=1
	while [ -f "$stopstep" ] && [ $step -le 8 ]; do
		mkdir "$f.lock" && : >"$f.lock/elsewhere.4242" ||
		    fail "cannot make the lock directory $f.lock"
		LD_PRELOAD=$stopstep LB_TEST_STOP_STEP=$step \
		    LB_TEST_STOP_UNDER="$d" \
		    "$LB" break --local --method $m "$f" &
		victim=$!
		bg_pids="$bg_pids $victim"
		kill_when_stopped "$victim"
		kdesc="break --method $m of a lock directory, killed after step $step"
		case $stopped in
		T*)	;;
		*)	check "$kdesc: went through, the lock is gone" \
			    [ ! -e "$f.lock" ]
			break ;;
		esac
		if [ -e "$f.lock" ]; then
			check "$kdesc: the lock directory still has its marker" \
			    [ -f "$f.lock/elsewhere.4242" ]
			rm -rf "$f.lock"
		else
			ok "$kdesc: the lock is gone"
		fi
		expect_rc 0 "$kdesc: the lock is free" \
		    "$LB" lock -n --local --method mkdir "$f" -- true
		check_clean "$kdesc"
		step=$((step + 1))
	done
	check "break --method $m: the breaker was stopped after some steps" \
	    [ $step -gt 2 ]
done

## Signals: SIGTERM to lockbroker goes to the command, and the lock is
## released; a waiter killed while waiting leaves nothing behind.

"$LB" lock "$f" -- sh -c 'trap "exit 7" TERM; i=0
	while [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done' &
holder=$!
bg_pids="$bg_pids $holder"
wait_locked "$f" "$holder" || fail "holder did not take $f"
sleep 0.2       # let sh set its trap
kill -TERM "$holder"
wait "$holder"
rc=$?
check "SIGTERM is passed on to the command, whose status counts (exit $rc)" \
    [ "$rc" -eq 7 ]
check_clean "SIGTERM forwarded"

start_holder "$f" || fail "holder did not take $f"
"$LB" lock -w 30 "$f" -- true &
waiter=$!
bg_pids="$bg_pids $waiter"
sleep 0.3
kill -TERM "$waiter"
wait "$waiter"
rc=$?
check "a waiter killed by SIGTERM dies by it (exit $rc)" [ "$rc" -eq 143 ]
check "a killed waiter leaves nothing behind" [ "$(ls -A "$d" | wc -l)" -eq 2 ]
release_holder
check_clean "waiter killed"

## Every method: lock, exclusion, status, break --stale.

for m in link symlink mkdir pidfile sqlite; do
	extra=$(leftover "$m")
	expect_rc 0 "--method $m: lock" "$LB" lock --method "$m" "$f" -- true
	if start_holder "$f" --method "$m"; then
		ok "--method $m: status shows the holder's pid"
	else
		fail "--method $m: status does not show the holder"
	fi
	expect_rc 1 "--method $m: lock -n while held" \
	    "$LB" lock -n --method "$m" "$f" -- true
	release_holder
	check "--method $m: the holder exits 0" [ "$rc" -eq 0 ]
	expect_rc 1 "--method $m: status when free" \
	    "$LB" status --method "$m" "$f"
	# shellcheck disable=SC2086 # $extra: one name, or none
	check_clean "--method $m" $extra

	# status (and a failed lock -n) while lock holds leave it held: the
	# command's own lock is still there after them, and lock releases it
	# without a complaint.
	# shellcheck disable=SC2016 # expanded by the inner sh
	expect_rc 0 "--method $m: status and lock -n while lock holds" \
	    "$LB" lock --method "$m" "$f" -- sh -c '
		"$1" status --method "$2" "$3" >/dev/null || exit 10
		"$1" lock -n --method "$2" "$3" -- true; [ $? -eq 1 ] || exit 11
		"$1" status --method "$2" "$3" >/dev/null || exit 12
		[ -e "$4" ] || [ -L "$4" ] || exit 13' sh "$LB" "$m" "$f" \
	    "$(if [ "$m" = pidfile ]; then echo "$f"; elif [ "$m" = sqlite ]; \
	    then echo "$d/.lockbroker.sqlite"; else echo "$f.lock"; fi)"
	check "--method $m: lock released without a complaint" \
	    [ ! -s "$tmp/err" ]
	# shellcheck disable=SC2086
	check_clean "--method $m, status while held" $extra

	start_holder "$f" --method "$m" || fail "--method $m: no holder"
	kill -9 "$holder"
	wait "$holder"
	: >"$go"
	expect_rc 0 "--method $m: status of a dead holder" \
	    "$LB" status --method "$m" "$f"
	check "--method $m: the holder is dead" has "$tmp/out" '^  holder: +dead$'
	expect_rc 0 "--method $m: break --stale" \
	    "$LB" break --stale --method "$m" "$f"
	expect_rc 1 "--method $m: status after break --stale" \
	    "$LB" status --method "$m" "$f"
	# shellcheck disable=SC2086
	check_clean "--method $m, break --stale" $extra
	rm -f "$d/.lockbroker.sqlite"
done

## A set: lock PATH PATH... -- COMMAND takes every lock at once (all or
## none), runs COMMAND with all held, releases all.  The word after the
## first PATH stays the command when it is a program.

a="$d/a"
b="$d/b"
c="$d/c"
# shellcheck disable=SC2016 # expanded by the inner sh
expect_rc 0 "set: COMMAND runs with every lock of the set held" \
    "$LB" lock "$a" "$b" "$c" -- sh -c 'lb=$1; shift
	for p; do
		[ -f "$p.lock" ] || exit 10
		"$lb" lock -n "$p" -- true; [ $? -eq 1 ] || exit 11
	done' sh "$LB" "$a" "$b" "$c"
check "set: nothing said" [ ! -s "$tmp/err" ]
check_clean "set held while COMMAND runs"
expect_rc 5 "set: COMMAND's status" "$LB" lock "$a" "$b" -- sh -c 'exit 5'
expect_rc 4 "set: PATH PATH -c STRING" "$LB" lock "$a" "$b" -c 'echo hi; exit 4'
check "set: -c STRING's output" [ "$(cat "$tmp/out")" = hi ]
check_clean "set and exit status"

start_holder "$b" || fail "holder did not take $b"
expect_rc 1 "set: lock -n while one of the set is held" \
    "$LB" lock -n "$a" "$b" "$c" -- true
t0=$(now_ns)
expect_rc 7 "set: lock -v -w 0.3 -E 7 while one of the set is held" \
    "$LB" lock -v -w 0.3 -E 7 "$a" "$b" "$c" -- true
t1=$(now_ns)
check "set: the timeout names the PATH waited for" \
    has "$tmp/err" "^lockbroker: $b is locked by another owner; gave up"
if [ -n "$t0" ] && [ -n "$t1" ]; then
	ms=$(((t1 - t0) / 1000000))
	check "set: -w 0.3 waited at least 0.3 s (${ms} ms)" [ "$ms" -ge 300 ]
fi
check "set: after the timeout, none of the set is held but the holder's" \
    sh -c '[ ! -e "$1.lock" ] && [ ! -e "$3.lock" ] && [ -f "$2.lock" ]' \
    sh "$a" "$b" "$c"
expect_rc 0 "set: the others are free after the timeout" \
    "$LB" lock -n "$a" "$c" -- true

"$LB" lock -w 10 "$a" "$b" "$c" -- sh -c ': >"$1"' sh "$tmp/set-ran" \
    >"$tmp/waiter.out" 2>&1 &
waiter=$!
bg_pids="$bg_pids $waiter"
sleep 0.5
check "set: the waiter does not run while one of the set is held" \
    [ ! -e "$tmp/set-ran" ]
expect_rc 0 "set: a waiting set holds none of the others meanwhile" \
    "$LB" lock -n "$a" -- "$LB" lock -n "$c" -- true
release_holder
wait "$waiter"
rc=$?
check "set: the waiter gets all once the holder releases (exit $rc)" \
    [ "$rc" -eq 0 ]
check "set: the waiter ran its command" [ -e "$tmp/set-ran" ]
check_clean "set waits"

# The old meanings stay: a program after the first PATH is the command.
expect_rc 0 "lock PATH echo x -- y: one PATH, echo's words" \
    "$LB" lock "$f" echo x -- y
check "lock PATH echo x -- y prints 'x -- y'" [ "$(cat "$tmp/out")" = 'x -- y' ]
expect_rc 0 "lock PATH printf ... -- ...: printf's words" \
    "$LB" lock "$f" printf '%s|' x -- y
check "lock PATH printf: every word after PATH is printf's" \
    [ "$(cat "$tmp/out")" = 'x|--|y|' ]
expect_rc 127 "lock PATH NOT-A-PROGRAM (no --): still not found" \
    "$LB" lock "$f" no-such-command-lb arg
check "not found: named on stderr" has "$tmp/err" 'no-such-command-lb'
check_clean "old forms"

# A lock named like a program: ./NAME.
# shellcheck disable=SC2016
expect_rc 0 "set: ./NAME is a PATH" sh -c 'cd "$1" && "$2" lock a ./true -- \
    sh -c "[ -f a.lock ] && [ -f true.lock ]"' sh "$d" "$LB"
# shellcheck disable=SC2016
expect_rc 0 "lock PATH true -- false: true is the command" \
    sh -c 'cd "$1" && "$2" lock a true -- false' sh "$d" "$LB"
check "lock PATH true ...: no lock named true" [ ! -e "$d/true.lock" ]
check_clean "./NAME"

# Refused: a PATH of a set starting with '-', a program among the PATHs,
# -s, more than 256 PATHs.
for args in "$a -x -- true" "$a $b -w 3 -- true" "-- -x $a -- true" \
    "$a $b true -- false" "-s $a $b -- true" "$a $b -- " "$a $b -c"; do
	# shellcheck disable=SC2086 # split on purpose
	expect_rc 64 "set: bad usage 'lock $args'" "$LB" lock $args
	check "set: bad usage 'lock $args': usage on stderr, nothing run" \
	    sh -c "grep -q '^usage:' '$tmp/err' && [ ! -s '$tmp/out' ]"
done
expect_rc 64 "set: -x refused" "$LB" lock "$a" -x -- true
check "set: -x: says a PATH never starts with '-'" \
    has "$tmp/err" "'-x': a PATH of a set never starts with '-'"
expect_rc 64 "set: a program among the PATHs" "$LB" lock "$a" "$b" true -- false
check "set: names the program and the ./NAME form" \
    has "$tmp/err" "'true' is a program.*\./true"
expect_rc 64 "set: -s refused" "$LB" lock -s "$a" "$b" -- true
check "set: -s: shared locks are not taken in sets" \
    has "$tmp/err" 'shared locks are not taken in sets'
paths256=$(i=1; while [ $i -le 256 ]; do printf 'p%d ' $i; i=$((i + 1)); done)
# shellcheck disable=SC2016,SC2086
expect_rc 64 "set: 257 PATHs refused" sh -c 'cd "$1" && shift && "$@"' sh \
    "$d" "$LB" lock $paths256 p257 -- true
check "set: 257 PATHs: says at most 256" has "$tmp/err" '257 PATHs given, at most 256'
# shellcheck disable=SC2016,SC2086
expect_rc 0 "set: 256 PATHs taken" sh -c 'cd "$1" && shift && "$@"' sh \
    "$d" "$LB" lock $paths256 -- sh -c '[ -f p1.lock ] && [ -f p256.lock ]'
check_clean "set refused"

## Failures other than a held lock: 69, naming the path and the reason.

expect_rc 69 "lock in a missing directory" "$LB" lock "$d/no/such/f" -- true
check "the message names the path and why" \
    has "$tmp/err" 'no/such.*No such file or directory'
expect_rc 69 "--broker without a broker" "$LB" lock --broker "$f" -- true
check "the message names the path" has "$tmp/err" "$f"
check_clean "failures"

lb_done
