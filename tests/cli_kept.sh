#!/bin/sh
# cli_kept.sh: `lockbroker acquire`, `release` and `list` end to end, with
# real processes, the real daemon (a private one: its own socket and state)
# and Python's lockfile:
#
#  - through the broker: a shell script takes a lock with `acquire` and
#    holds it after the command returns (status names the script's pid;
#    `lock -n` conflicts), `release` frees it; a script that exits without
#    release loses it through the daemon; the hold survives kill -9 of the
#    daemon and its restart; --pid of another user's process (as nobody)
#    and of no process are refused with the reason; `list` (table and
#    --json, parsed by Python) shows the holder and the waiters; a lock
#    held shared (`lock -s`) shows its mode and holders' count in
#    `status`, and each holder with its mode in `list`; a set (`lock
#    PATH PATH... --`) holds each lock granted by the daemon, gives up
#    holding none, and waits in the daemon's queue holding none until it
#    gets all.
#  - in-process (no daemon, or --local): the artefact names the script's
#    pid (Python's lockfile sees the lock held, and the pid in a pid
#    file); it outlives the script until `break --stale`; --broker fails
#    clearly; the daemon, once back, releases what was taken in-process.
#
# Run by `make check` with LB_BUILDDIR set (PYTHON3 for the Python checks).
# Everything lives in a private temporary directory, removed at the end.
# Reports in TAP (tests/lib.sh); exit 0 when all pass, 1 when any fails,
# 99 when it cannot run.

# shellcheck disable=SC2016,SC2317
# (sh -c scripts expand in the child; functions run from traps and check)

set -u
. "$(dirname "$0")/lib.sh"

LB="${LB_BUILDDIR:?LB_BUILDDIR not set}/tools/lockbroker"
DAEMON="$LB_BUILDDIR/daemon/lockbrokerd"
PYTHON3=${PYTHON3:-/usr/bin/python3}
lb_need "$LB" "$DAEMON"

lb_mktemp kept
chmod 0755 "$tmp"       # nobody reaches the socket
d="$tmp/d"
mkdir "$d" || lb_bail "cannot make $d"
sock="$tmp/sock"
nosock="$tmp/no-daemon.sock"
dpid=""
bg_pids=""
lb_errfile="$tmp/err"

# Kills what we started and still runs, removes the temporary directory.
cleanup() {
	for p in $bg_pids $dpid; do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

# held_by PATH PID [OPTIONS...]: `status` says PID holds PATH.
held_by() {
	hb_path=$1
	hb_pid=$2
	shift 2
	"$LB" status "$@" "$hb_path" 2>/dev/null | grep -Eq "^  pid: +$hb_pid\$"
}

# is_free PATH [OPTIONS...]: `status` says PATH is not locked.
is_free() {
	is_path=$1
	shift
	"$LB" status "$@" "$is_path" >/dev/null 2>&1
	[ $? -eq 1 ]
}

# start_daemon: starts the private daemon on $sock and waits until it
# answers.
start_daemon() {
	lb_daemon_start "$sock" "$tmp/state.sqlite" "$tmp/daemon.log" --debug
}

# kill9_daemon: kills the daemon with SIGKILL and reaps it.
kill9_daemon() {
	kill -9 "$dpid"
	wait "$dpid" 2>/dev/null
	dpid=""
}

# The script that holds a lock across commands.  holder.sh LB DIR PATH
# METHOD [ACQUIRE-OPTIONS...]: takes PATH with `acquire` for this shell,
# writes the status into DIR/acquired, then waits for DIR/release (then
# releases, writes the status into DIR/released and waits for DIR/exit)
# or DIR/exit (then exits without releasing).  Waits at most ~30 s.
cat >"$tmp/holder.sh" <<'EOF'
LB=$1 dir=$2 path=$3 method=$4
shift 4
"$LB" acquire --method "$method" "$@" "$path" 2>"$dir/acquire.err"
echo $? >"$dir/acquired.new" && mv "$dir/acquired.new" "$dir/acquired"
i=0
while [ ! -e "$dir/release" ] && [ ! -e "$dir/exit" ] && [ $i -lt 600 ]; do
	sleep 0.05
	i=$((i + 1))
done
if [ -e "$dir/release" ]; then
	"$LB" release --method "$method" "$path" 2>"$dir/release.err"
	echo $? >"$dir/released.new" && mv "$dir/released.new" "$dir/released"
	while [ ! -e "$dir/exit" ] && [ $i -lt 600 ]; do
		sleep 0.05
		i=$((i + 1))
	done
fi
exit 0
EOF

# start_holder PATH METHOD [ACQUIRE-OPTIONS...]: runs holder.sh in the
# background; sets holder (its pid, the lock's holder) and hdir (its
# control directory); returns when its acquire has returned, with that
# status (or 99 when it did not within ~20 s).
holders=0
start_holder() {
	sh_path=$1
	sh_method=$2
	shift 2
	holders=$((holders + 1))
	hdir="$tmp/holder.$holders"
	mkdir "$hdir"
	sh "$tmp/holder.sh" "$LB" "$hdir" "$sh_path" "$sh_method" "$@" &
	holder=$!
	bg_pids="$bg_pids $holder"
	if ! until_true 400 test -e "$hdir/acquired"; then
		return 99
	fi
	return "$(cat "$hdir/acquired")"
}

# holder_release: lets the holder release; sets rc to release's status.
holder_release() {
	: >"$hdir/release"
	if until_true 400 test -e "$hdir/released"; then
		rc=$(cat "$hdir/released")
	else
		rc=99
	fi
}

# holder_exit: lets the holder's script end, and reaps it.
holder_exit() {
	: >"$hdir/exit"
	wait "$holder"
}

# A pid that is no process: a child that has ended.
dead_pid() {
	sh -c 'exit 0' &
	dp=$!
	wait "$dp"
	echo "$dp"
}

# json_check FILE PYTHON-EXPRESSION...: loads FILE as JSON into `doc` and
# asserts each expression (with `locks`: doc["locks"] by path).
json_check() {
	jc_file=$1
	shift
	"$PYTHON3" - "$jc_file" "$@" <<'EOF'
import json, os, sys
with open(sys.argv[1], "rb") as f:
    doc = json.loads(f.read().decode("utf-8"))
locks = {os.fsencode(l["path"]): l for l in doc["locks"]}
for expr in sys.argv[2:]:
    if not eval(expr):
        print("# failed: %s\n# document: %s" % (expr, json.dumps(doc)))
        sys.exit(1)
EOF
}

have_lockfile=0
if "$PYTHON3" -c 'import lockfile' 2>/dev/null; then
	have_lockfile=1
fi

# py_lockfile EXPR PATH: evaluates a Python expression with `lockfile`
# imported and `path`; 0 when it is true.
py_lockfile() {
	"$PYTHON3" -c '
import sys, lockfile
import lockfile.linklockfile, lockfile.mkdirlockfile
import lockfile.pidlockfile, lockfile.symlinklockfile
path = sys.argv[2]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$2"
}

f="$d/f"
me=$(id -u)
myname=$(id -un)
host=$(uname -n)

## Bad command lines.

for args in "acquire" "acquire --pid 0 $f" "acquire --pid -1 $f" \
    "acquire --pid x $f" "acquire --pid '' $f" "acquire --pid 12a $f" \
    "acquire $f extra" "acquire -c true $f" "acquire --local --broker $f" \
    "release" "release -w 1 $f" "release -n $f" "list extra" "list --bogus" \
    "release --pid 99999999999 $f"; do
	# shellcheck disable=SC2086 # split on purpose
	eval "expect_rc 64 \"bad usage '\$args'\" \"\$LB\" $args"
	check "bad usage '$args': usage on stderr, nothing on stdout" \
	    sh -c "grep -q '^usage:' '$tmp/err' && [ ! -s '$tmp/out' ]"
done
expect_rc 0 "acquire --help" "$LB" acquire --help
check "the usage names acquire, release and list" \
    sh -c "grep -q 'acquire' '$tmp/out' && grep -q ' release ' '$tmp/out' &&
    grep -q ' list ' '$tmp/out'"

############################################################################
## Through the broker.

export LOCKBROKER_SOCKET="$sock"
start_daemon

expect_rc 0 "list with no lock" "$LB" list
check "list with no lock: only the heading" \
    sh -c "[ \$(wc -l <'$tmp/out') -eq 1 ] &&
    grep -Eq '^PATH +METHOD +MODE +PID +USER +SINCE +TOKEN +WAITERS +STATE\$' '$tmp/out'"
expect_rc 0 "list --json with no lock" "$LB" list --json
check "list --json with no lock: an empty list" \
    json_check "$tmp/out" 'doc["locks"] == []' \
    'doc["socket"] == os.environ["LOCKBROKER_SOCKET"]' \
    'doc["server"].startswith("lockbrokerd/")'

## acquire in a script: held after the command returns, for the script.

start_holder "$f" link
rc=$?
check "acquire in a script succeeds (exit $rc)" [ "$rc" -eq 0 ]
check "acquire in a script: silent" [ ! -s "$hdir/acquire.err" ]
check "the lock is held after acquire returned, by the script ($holder)" \
    held_by "$f" "$holder"
expect_rc 0 "status" "$LB" status "$f"
check "status: granted by the broker, with a token" \
    sh -c "grep -q '^  broker: *granted by the broker' '$tmp/out' &&
    grep -Eq '^  token: *[0-9]+\$' '$tmp/out'"
check "status: held exclusive, no count of holders" \
    sh -c "grep -Eq '^  mode: +exclusive\$' '$tmp/out' &&
    ! grep -q '^  holders:' '$tmp/out'"
token=$(sed -n 's/^  token: *//p' "$tmp/out")
expect_rc 1 "lock -n conflicts with the kept lock" "$LB" lock -n "$f" -- true
expect_rc 1 "acquire -n by another process conflicts" \
    "$LB" acquire -n "$f"
expect_rc 42 "acquire -n -E 42 conflicts with 42" \
    "$LB" acquire -n -E 42 "$f"
expect_rc 1 "acquire -w 0.3 gives up" "$LB" acquire -w 0.3 "$f"
expect_rc 1 "acquire -v -n says why" "$LB" acquire -v -n "$f"
check "acquire -v -n: 'locked by another owner'" \
    has "$tmp/err" "$f is locked by another owner"
expect_rc 1 "release by another process (the lock is not its own)" \
    "$LB" release "$f"
check "release of another's lock says whose it is not" \
    has "$tmp/err" "cannot release $f: it is not held for pid $$"
check "... and the lock stays" held_by "$f" "$holder"

# list while held, with a waiter.
"$LB" lock -w 30 "$f" -- true &
waiter=$!
bg_pids="$bg_pids $waiter"
waiting() {
	"$LB" list --json >"$tmp/list.json" 2>/dev/null &&
	    json_check "$tmp/list.json" \
	    'locks[os.fsencode(os.environ["f"])]["waiters"] == 1' \
	    >/dev/null
}
export f
check "list --json shows the waiter" until_true 200 waiting
check "list --json: every key, the holder's values" json_check \
    "$tmp/list.json" \
    'len(doc["locks"]) == 1' \
    'sorted(doc) == ["locks", "server", "socket"]' \
    'sorted(doc["locks"][0]) == sorted(["path", "method", "mode",
        "holder_pid", "holder_uid", "holder_user", "holder_tid", "host",
        "since", "since_iso", "token", "waiters", "state", "cluster"])' \
    "locks[b\"$f\"][\"cluster\"] is None" \
    "locks[b\"$f\"][\"method\"] == \"link\"" \
    "locks[b\"$f\"][\"mode\"] == \"exclusive\"" \
    "locks[b\"$f\"][\"holder_pid\"] == $holder" \
    "locks[b\"$f\"][\"holder_uid\"] == $me" \
    "locks[b\"$f\"][\"holder_user\"] == \"$myname\"" \
    "locks[b\"$f\"][\"holder_tid\"] == 0" \
    "locks[b\"$f\"][\"host\"] == \"$host\"" \
    "locks[b\"$f\"][\"token\"] == $token" \
    "locks[b\"$f\"][\"state\"] == \"held\"" \
    "isinstance(locks[b\"$f\"][\"since\"], float) or isinstance(locks[b\"$f\"][\"since\"], int)" \
    "abs(locks[b\"$f\"][\"since\"] - __import__(\"time\").time()) < 3600" \
    "locks[b\"$f\"][\"since_iso\"][:4].isdigit()"
expect_rc 0 "list" "$LB" list
check "list: one line for the lock, with mode, pid, user, token, waiters, state" \
    has "$tmp/out" "^$f +link +exclusive +$holder +$myname +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8} +$token +1 +held\$"

holder_release
check "release in the script succeeds (exit $rc)" [ "$rc" -eq 0 ]
check "release in the script: silent" [ ! -s "$hdir/release.err" ]
wait "$waiter"
rc=$?
check "the waiter got the lock once released (exit $rc)" [ "$rc" -eq 0 ]
check "the lock is free after release (the script still runs)" \
    sh -c "kill -0 $holder || exit 2; '$LB' status '$f' >/dev/null; [ \$? -eq 1 ]"
expect_rc 1 "release of a free lock" "$LB" release "$f"
check "release of a free lock says so" has "$tmp/err" "cannot release $f: it is not locked"
holder_exit
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

## Shared: status shows the mode and the holders' count, list each
## holder with its mode, the one the lock file names first.

g="$d/g"
export g
# reader NAME: `lock -s` on $g in the background, its command waiting
# for $tmp/readers.go; sets reader (the pid of the lock's holder, the
# command's process) once the command runs ($tmp/NAME made).
reader() {
	"$LB" lock -s -w 10 "$g" -- sh -c ': >"$1"; i=0
	    while [ ! -e "$2" ] && [ $i -lt 600 ]; do
		sleep 0.05; i=$((i + 1))
	    done' sh "$tmp/$1" "$tmp/readers.go" &
	reader=$!
	bg_pids="$bg_pids $reader"
	until_true 400 test -e "$tmp/$1" || fail "lock -s ($1) did not run"
}
reader r1
r1=$reader
reader r2
r2=$reader
expect_rc 0 "status of a lock held shared" "$LB" status "$g"
check "status: held shared, by two" \
    sh -c "grep -Eq '^  mode: +shared\$' '$tmp/out' &&
    grep -Eq '^  holders: +2 ' '$tmp/out'"
check "status: the holder shown is the first reader, the lock file's" \
    has "$tmp/out" "^  pid: +$r1\$"
expect_rc 0 "list with a lock held shared" "$LB" list
check "list: one line a reader, each shared, the lock file's first" \
    sh -c "grep -E '^$g ' '$tmp/out' >'$tmp/rows' &&
    [ \$(wc -l <'$tmp/rows') -eq 2 ] &&
    sed -n 1p '$tmp/rows' | grep -Eq '^$g +link +shared +$r1 .* held\$' &&
    sed -n 2p '$tmp/rows' | grep -Eq '^$g +link +shared +$r2 .* held\$'"
expect_rc 0 "list --json with a lock held shared" "$LB" list --json
check "list --json: an object a reader, each with its mode" json_check \
    "$tmp/out" \
    "[(l[\"mode\"], l[\"holder_pid\"]) for l in doc[\"locks\"]
        if l[\"path\"] == os.environ[\"g\"]] == [(\"shared\", $r1),
        (\"shared\", $r2)]"
: >"$tmp/readers.go"
wait "$r1"
rc=$?
wait "$r2"
rc2=$?
check "both readers ran their command and released (exit $rc, $rc2)" \
    [ "$rc.$rc2" = 0.0 ]
check "the lock is free once both readers have gone" is_free "$g"

## Re-entry: acquire twice, one release frees.

expect_rc 0 "acquire twice, then one release frees" sh -c '
	"$1" acquire "$2" && "$1" acquire -n "$2" && "$1" release "$2" &&
	    "$1" status "$2" >/dev/null
	[ $? -eq 1 ]' sh "$LB" "$f"

## A set through the broker (lock PATH PATH... -- COMMAND): each lock
## granted by the daemon while COMMAND runs; held by another, a set gives
## up holding none, naming the lock; a waiting set queues at the daemon
## in each lock's queue (the list shows the others waited for, held by
## nobody), holding none, and gets all once it is released.

sa="$d/sa"
sb="$d/sb"
sc="$d/sc"
expect_rc 0 "set: COMMAND runs with each lock granted by the broker" \
    "$LB" lock --broker "$sa" "$sb" "$sc" -- sh -c 'lb=$1; shift
	for p; do
		"$lb" status "$p" | grep -q "^  broker: *granted by the broker" ||
		    exit 10
	done' sh "$LB" "$sa" "$sb" "$sc"
check "set: all free once COMMAND has ended" \
    sh -c '! "$1" status "$2" && ! "$1" status "$3" && ! "$1" status "$4"' \
    sh "$LB" "$sa" "$sb" "$sc"
start_holder "$sb" link || fail "acquire for a set to wait on"
expect_rc 1 "set: lock -v -w 0.3 while the script keeps one" \
    "$LB" lock --broker -v -w 0.3 "$sa" "$sb" "$sc" -- true
check "set: the timeout names the lock waited for" \
    has "$tmp/err" "$sb is locked by another owner"
check "set: after the timeout the others are free" \
    sh -c '! "$1" status "$2" && ! "$1" status "$3"' sh "$LB" "$sa" "$sc"
"$LB" lock --broker -w 30 "$sa" "$sb" "$sc" -- sh -c ': >"$1"' sh \
    "$tmp/set-ran" &
waiter=$!
bg_pids="$bg_pids $waiter"
set_waiting() {
	"$LB" list --json >"$tmp/list.json" 2>/dev/null &&
	    json_check "$tmp/list.json" \
	    'locks[os.fsencode(os.environ["sb"])]["waiters"] == 1' \
	    'locks[os.fsencode(os.environ["sb"])]["state"] == "held"' \
	    'all(locks[os.fsencode(os.environ[k])]["state"] is None and
	        locks[os.fsencode(os.environ[k])]["waiters"] == 1
	        for k in ("sa", "sc"))' >/dev/null &&
	    [ ! -e "$sa.lock" ] && [ ! -e "$sc.lock" ]
}
export sa sb sc
check "set: waits in the daemon's queue for the kept lock, holding none" \
    until_true 200 set_waiting
check "set: COMMAND has not run" [ ! -e "$tmp/set-ran" ]
holder_release
check "set: the script releases (exit $rc)" [ "$rc" -eq 0 ]
wait "$waiter"
rc=$?
check "set: the waiter gets all once released, runs COMMAND (exit $rc)" \
    sh -c '[ "$1" -eq 0 ] && [ -e "$2" ]' sh "$rc" "$tmp/set-ran"
holder_exit
check "set: nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

## The script exits without release: the daemon frees the lock.

start_holder "$f" link || fail "acquire for the exiting script"
check "held by the script" held_by "$f" "$holder"
holder_exit
check "the script exited without release: the lock is free within 10 s" \
    until_true 200 is_free "$f"
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

## Released by another process, with --pid.

start_holder "$f" link || fail "acquire for --pid release"
expect_rc 0 "release --pid PID from another process" \
    "$LB" release -v --pid "$holder" "$f"
check "release -v says so" has "$tmp/err" "released $f for pid $holder"
check "the lock is free" is_free "$f"
holder_exit

## --pid names the holder: a sleeping process of ours.

sleep 30 &
sleeper=$!
bg_pids="$bg_pids $sleeper"
expect_rc 0 "acquire --pid of a sleeping process" \
    "$LB" acquire --pid "$sleeper" "$f"
check "the sleeping process holds the lock" held_by "$f" "$sleeper"
kill "$sleeper"
wait "$sleeper" 2>/dev/null
check "the lock is free within 10 s once it is killed" \
    until_true 200 is_free "$f"

## Every method: acquire, held by the script, conflict, release.

for m in link symlink mkdir pidfile sqlite; do
	start_holder "$f" "$m"
	rc=$?
	check "--method $m: acquire (exit $rc)" [ "$rc" -eq 0 ]
	check "--method $m: held by the script" \
	    held_by "$f" "$holder" --method "$m"
	expect_rc 1 "--method $m: lock -n conflicts" \
	    "$LB" lock -n --method "$m" "$f" -- true
	if [ "$m" = pidfile ]; then
		check "--method pidfile: the file holds the script's pid" \
		    [ "$(cat "$f" 2>/dev/null)" = "$holder" ]
	fi
	holder_release
	check "--method $m: release (exit $rc)" [ "$rc" -eq 0 ]
	check "--method $m: free" is_free "$f" --method "$m"
	holder_exit
	rm -f "$d/.lockbroker.sqlite"
done

## A lock kept across kill -9 of the daemon and its restart.

start_holder "$f" link || fail "acquire before the daemon restart"
kill9_daemon
start_daemon
check "after kill -9 and restart, the script still holds the lock" \
    held_by "$f" "$holder" --broker
expect_rc 1 "after the restart, lock -n conflicts" \
    "$LB" lock -n --broker "$f" -- true
holder_release
check "after the restart, release in the script (exit $rc)" [ "$rc" -eq 0 ]
check "after the restart, release frees the lock" is_free "$f"
holder_exit

# A waiting acquire outlives a restart of the daemon: it waits at the
# next one, and gets the lock when the holder releases it.
start_holder "$f" link || fail "acquire before the daemon restart (waiter)"
wdir="$tmp/waiter"
mkdir "$wdir"
sh "$tmp/holder.sh" "$LB" "$wdir" "$f" link --broker -w 60 &
wpid=$!
bg_pids="$bg_pids $wpid"
one_waiter() {
	"$LB" list --json >"$tmp/list.json" 2>/dev/null &&
	    json_check "$tmp/list.json" \
	    'locks[os.fsencode(os.environ["f"])]["waiters"] == 1' >/dev/null
}
check "acquire --broker -w 60 waits behind the script" until_true 200 one_waiter
kill9_daemon
start_daemon
check "after kill -9 and restart, the waiter waits at the new daemon" \
    until_true 200 one_waiter
check "... without the lock" [ ! -e "$wdir/acquired" ]
holder_release
check "the script releases after the restart (exit $rc)" [ "$rc" -eq 0 ]
if until_true 400 test -e "$wdir/acquired"; then
	rc=$(cat "$wdir/acquired")
else
	rc=99
fi
check "the waiter's acquire returns 0 once released (exit $rc)" [ "$rc" -eq 0 ]
check "the waiter's script holds the lock" held_by "$f" "$wpid"
holder_exit
: >"$wdir/exit"
wait "$wpid"
check "the waiter's script exited: the lock is free within 10 s" \
    until_true 200 is_free "$f"

start_holder "$f" link || fail "acquire before the daemon stops"
kill9_daemon
holder_exit
start_daemon
check "a script that exited while the daemon was down: its lock is freed (within 10 s)" \
    until_true 200 is_free "$f"
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

## Refusals: another user's process, no such process, no daemon.

gone=$(dead_pid)
expect_rc 69 "acquire --pid of no process" "$LB" acquire --broker --pid "$gone" "$f"
check "the message names the path, the pid and the reason" \
    has "$tmp/err" "cannot lock $f for pid $gone: .*no such process"
expect_rc 69 "release --pid of no process" "$LB" release --broker --pid "$gone" "$f"
check "the message names the pid and the reason" \
    has "$tmp/err" "$f.*pid $gone.*no such process"
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

if [ "$me" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$LB" --version >/dev/null 2>&1; then
	chmod 1777 "$d"
	as_nobody() {
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
	}
	sleep 30 &
	rootproc=$!
	bg_pids="$bg_pids $rootproc"
	expect_rc 69 "as nobody: acquire --pid of root's process" \
	    as_nobody "$LB" acquire --broker --pid "$rootproc" "$f"
	check "as nobody: refused, another user's process (EPERM)" \
	    has "$tmp/err" "cannot lock $f for pid $rootproc: .*another user.*EPERM"
	expect_rc 69 "as nobody, in-process: acquire --pid of root's process" \
	    as_nobody "$LB" acquire --local --pid "$rootproc" "$f"
	check "as nobody, in-process: refused, another user's process" \
	    has "$tmp/err" "cannot lock $f for pid $rootproc: .*another user"
	check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]
	start_holder "$f" link || fail "acquire of root's lock"
	expect_rc 69 "as nobody: release --pid of root's script" \
	    as_nobody "$LB" release --broker --pid "$holder" "$f"
	check "as nobody: release refused (EPERM)" has "$tmp/err" "EPERM"
	check "root's script keeps its lock" held_by "$f" "$holder"
	holder_release
	holder_exit
	kill "$rootproc"
	wait "$rootproc" 2>/dev/null
	chmod 0755 "$d"
else
	echo "# skip: the checks as nobody need root and setpriv"
fi

## list: several locks, sorted; a path that needs escaping in JSON.

weird=$(printf '%s/we"ird \\ na\tme\303\251\377' "$d")
export weird
start_holder "$weird" mkdir || fail "acquire of a weird name"
w1=$holder
w1dir=$hdir
start_holder "$f" pidfile || fail "acquire of a pidfile lock"
expect_rc 0 "list --json with a weird path" "$LB" list --json
check "list --json: the weird path comes back byte for byte" \
    json_check "$tmp/out" 'len(doc["locks"]) == 2' \
    "os.fsencode(doc[\"locks\"][0][\"path\"]) < os.fsencode(doc[\"locks\"][1][\"path\"])" \
    "locks[os.fsencode(os.environ[\"f\"])][\"method\"] == \"pidfile\"" \
    "locks[os.fsencode(os.environ[\"f\"])][\"holder_pid\"] == $holder" \
    "locks[os.fsencode(os.environ[\"weird\"])][\"method\"] == \"mkdir\"" \
    "locks[os.fsencode(os.environ[\"weird\"])][\"holder_pid\"] == $w1"
check "list --json is one valid UTF-8 JSON document (strict)" \
    "$PYTHON3" -c 'import json, sys; json.loads(open(sys.argv[1], encoding="utf-8", errors="strict").read())' "$tmp/out"
expect_rc 0 "list with a weird path" "$LB" list
check "list: one line a lock" [ "$(wc -l <"$tmp/out")" -eq 3 ]
check "list: a control byte is shown escaped" has "$tmp/out" 'na\\x09me'

holder_exit
hdir=$w1dir
holder=$w1
holder_exit
check "both locks are freed when their scripts exit" \
    until_true 200 sh -c "'$LB' list | [ \$(wc -l) -eq 1 ]"

## The daemon releases what a script took in-process while it was away
## (here --local): the artefact names the script.

start_holder "$f" link --local || fail "acquire --local with a daemon"
check "acquire --local: held by the script" held_by "$f" "$holder" --local
expect_rc 1 "the daemon's clients see it held" "$LB" lock -n --broker "$f" -- true
holder_release
check "release through the daemon of an in-process lock (exit $rc)" \
    [ "$rc" -eq 0 ]
check "... frees it" is_free "$f" --local
holder_exit

kill9_daemon

############################################################################
## In-process: no daemon answers.

export LOCKBROKER_SOCKET="$nosock"

expect_rc 69 "list without a daemon" "$LB" list
check "list without a daemon names the socket" has "$tmp/err" "$nosock"
expect_rc 69 "acquire --broker without a daemon" "$LB" acquire --broker "$f"
check "acquire --broker names the path and the socket" \
    has "$tmp/err" "$nosock"
expect_rc 69 "release --broker without a daemon" "$LB" release --broker "$f"
check "release --broker names the socket" has "$tmp/err" "$nosock"
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

for m in link pidfile mkdir symlink; do
	start_holder "$f" "$m"
	rc=$?
	check "in-process --method $m: acquire (exit $rc)" [ "$rc" -eq 0 ]
	check "in-process --method $m: held by the script" \
	    held_by "$f" "$holder" --method "$m"
	expect_rc 1 "in-process --method $m: lock -n conflicts" \
	    "$LB" lock -n --method "$m" "$f" -- true
	if [ "$have_lockfile" = 1 ]; then
		case $m in
		link) cls=lockfile.linklockfile.LinkLockFile ;;
		pidfile) cls=lockfile.pidlockfile.PIDLockFile ;;
		mkdir) cls=lockfile.mkdirlockfile.MkdirLockFile ;;
		symlink) cls=lockfile.symlinklockfile.SymlinkLockFile ;;
		esac
		check "in-process --method $m: Python's lockfile sees it locked" \
		    py_lockfile "$cls(path).is_locked()" "$f"
		if [ "$m" = pidfile ]; then
			check "in-process pidfile: lockfile reads the script's pid" \
			    py_lockfile "lockfile.pidlockfile.PIDLockFile(path).read_pid() == $holder" "$f"
		fi
	else
		echo "# skip: Python's lockfile is missing"
	fi
	holder_release
	check "in-process --method $m: release (exit $rc)" [ "$rc" -eq 0 ]
	check "in-process --method $m: free" is_free "$f" --method "$m"
	if [ "$have_lockfile" = 1 ]; then
		check "in-process --method $m: Python's lockfile sees it free" \
		    py_lockfile "not $cls(path).is_locked()" "$f"
	fi
	holder_exit
	check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]
done

expect_rc 69 "in-process acquire --pid of no process" \
    "$LB" acquire --pid "$gone" "$f"
check "in-process: the message names the pid and the reason" \
    has "$tmp/err" "cannot lock $f for pid $gone: no such process"
expect_rc 69 "in-process release --pid of no process" \
    "$LB" release --pid "$gone" "$f"
check "in-process: the message names the pid and points to break --stale" \
    has "$tmp/err" "cannot release $f for pid $gone: no such process.*break --stale"

## In-process, nobody watches the holder: the lock outlives the script
## until break --stale.

start_holder "$f" link || fail "in-process acquire for the exiting script"
expect_rc 1 "in-process: a second script conflicts" "$LB" acquire -n "$f"
holder_exit
expect_rc 0 "in-process: the lock outlives the script" "$LB" status "$f"
check "in-process: its holder is dead" has "$tmp/out" '^  holder: +dead$'
expect_rc 0 "in-process: break --stale breaks it" "$LB" break --stale "$f"
check "in-process: free after break --stale" is_free "$f"
check "nothing is left in the lock directory" [ -z "$(ls -A "$d")" ]

lb_done
