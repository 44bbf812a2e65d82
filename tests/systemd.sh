#!/bin/sh
# systemd.sh: the systemd units (systemd/) and the daemon's side of
# systemd's protocols, without systemd running:
#
#  1. `systemd-analyze verify` accepts the generated units, system and user,
#     silently (an unknown or misspelt key is only a warning there), their
#     Documentation= pages are ours, no @placeholder@ is left, and the
#     system service's exposure score stays low.
#  2. Socket activation: systemd-socket-activate holds the socket; nothing
#     runs until the first connection, which starts lockbrokerd on that
#     socket (same pid: LISTEN_PID matched); it serves HELLO and ACQUIRE,
#     makes the lock file, reports READY=1 to NOTIFY_SOCKET; SIGTERM gives
#     STOPPING=1, the client's EOF, exit 0, the lock kept on disk for the
#     next daemon and the socket left to its owner.
#  3. Readiness on its own socket (abstract NOTIFY_SOCKET): when READY=1
#     arrives the socket accepts at once, mode 0666 like the unit's.
#  4. The unit's confinement, as far as it can be had without systemd:
#     the daemon runs with NoNewPrivileges and, as root, with exactly the
#     unit's CapabilityBoundingSet (setpriv), and serves every method, a
#     lock held outside the broker, SIGHUP and SIGUSR1; as root also other
#     users' clients: their lock files are theirs, their own permissions
#     apply, and root's clients may lock in another user's directory and
#     break another user's lock in a third user's sticky directory.  With
#     strace, every system call of that run must pass the unit's
#     SystemCallFilter=, every socket be of RestrictAddressFamilies=, and no
#     memory be made writable and executable (MemoryDenyWriteExecute=).
#
# Reports in TAP (tests/lib.sh); the first failed check ends it.  Skipped
# when systemd-analyze is missing; the parts that need root, setpriv or
# strace say so when they are left out.  KEEP=1 keeps the
# temporary directory for a look.
set -eu
. "$(dirname "$0")/lib.sh"
: "${LB_BUILDDIR:?}" "${LB_SRCDIR:?}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
daemon=$LB_BUILDDIR/daemon/lockbrokerd
# A test run by a service manager must not talk to it.
unset NOTIFY_SOCKET LISTEN_PID LISTEN_FDS LISTEN_FDNAMES

command -v systemd-analyze >/dev/null 2>&1 ||
	lb_skip_all "systemd-analyze not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbsd.XXXXXX")
pids=
# Ends what the test started: TERM first (strace passes it on to the daemon
# it runs; a KILLed strace would leave it running), then KILL.
cleanup() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || :
	done
	for p in $pids; do
		n=0
		while kill -0 "$p" 2>/dev/null && [ $n -lt 40 ]; do
			n=$((n + 1))
			sleep 0.05
		done
		kill -KILL "$p" 2>/dev/null || :
	done
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# fatal DESC: a failed check, with the daemons' logs; ends the suite.
fatal() {
	for f in "$tmp"/*/log; do
		[ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
	done
	lb_fatal "$*"
}

# Waits (at most 30 s) until the shell condition $1 holds.
wait_for() {
	i=0
	until eval "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || fatal "timed out waiting for: $1"
		sleep 0.05
	done
}

# Waits for child $1 to end (at most 30 s, then it is killed and the test
# fails); sets rc to its exit status.  Polls /proc: a subshell watchdog
# would take the traps along.
wait_exit() {
	i=0
	while [ -e /proc/$1 ] &&
	    [ "$(sed 's/.*) \(.\).*/\1/' /proc/$1/stat 2>/dev/null)" != Z ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { kill -KILL "$1"; fatal "pid $1 did not exit"; }
		sleep 0.05
	done
	rc=0
	wait "$1" || rc=$?
}

# The value of key $1 in unit file $2 (the last one).
unit_value() {
	sed -n "s/^$1=//p" "$2" | tail -n 1
}

: >"$tmp/empty.conf"
cat >"$tmp/lbtalk.py" <<'PY'
"""notify SOCKET OUT READY: collects sd_notify datagrams into OUT, one
assignment a line, until STOPPING=1 (READY is made once listening).
talk [--hold] SOCKET LINE...: sends each request, prints the lines up to its
reply; with --hold, prints HOLDING and then what comes until EOF."""
import socket
import sys


def address(path):
    return "\0" + path[1:] if path.startswith("@") else path


def notify(path, out, ready):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address(path))
    s.settimeout(60)
    open(ready, "w").close()
    with open(out, "a") as f:
        while True:
            lines = s.recv(4096).decode().split("\n")
            for line in lines:
                if line:
                    f.write(line + "\n")
                    f.flush()
            if "STOPPING=1" in lines:
                return 0


def talk(args):
    hold = args[0] == "--hold"
    if hold:
        args = args[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(args[0])
    f = s.makefile("r", encoding="ascii", newline="\n")
    for req in args[1:]:
        s.sendall((req + "\n").encode())
        rid = req.split()[1]
        while True:
            line = f.readline()
            if not line:
                print("EOF", flush=True)
                return 1
            print(line.rstrip("\n"), flush=True)
            w = line.split()
            if len(w) > 1 and w[0] in ("OK", "ERR") and w[1] == rid:
                break
    if hold:
        print("HOLDING", flush=True)
        for line in f:
            print(line.rstrip("\n"), flush=True)
        print("EOF", flush=True)
    return 0


if __name__ == "__main__":
    try:
        if sys.argv[1] == "notify":
            sys.exit(notify(*sys.argv[2:5]))
        sys.exit(talk(sys.argv[2:]))
    except socket.timeout:
        print("TIMEOUT", flush=True)
        sys.exit(3)
PY
chmod 0644 "$tmp/lbtalk.py" "$tmp/empty.conf"
talk() {
	"$PYTHON3" "$tmp/lbtalk.py" talk "$@"
}

# Starts a notify listener on $1 writing into $2; sets npid.
notify_listen() {
	"$PYTHON3" "$tmp/lbtalk.py" notify "$1" "$2" "$2.ready" &
	npid=$!
	pids="$pids $npid"
	wait_for "[ -e '$2.ready' ] || ! kill -0 $npid 2>/dev/null"
	[ -e "$2.ready" ] || fatal "notify listener on $1 did not start"
}

###  1. systemd-analyze verify, on copies that run the built daemon.
v=$tmp/verify
mkdir -p "$v/system" "$v/user" "$v/run" "$v/man/man5" "$v/man/man8"
cp "$LB_SRCDIR/docs/lockbrokerd.8" "$v/man/man8/"
cp "$LB_SRCDIR/docs/lockbrokerd.conf.5" "$v/man/man5/"
chmod 0700 "$v/run"
for kind in system user; do
	case $kind in
	system) from=$LB_BUILDDIR/systemd ;;
	user) from=$LB_BUILDDIR/systemd/user ;;
	esac
	for u in lockbrokerd.socket lockbrokerd.service; do
		[ -f "$from/$u" ] || fatal "$from/$u not built"
		if grep -n '@[A-Za-z_]*@' "$from/$u"; then
			fatal "$kind $u: placeholder left"
		fi
		sed "s|^\(ExecStart=\)[^ ]*/lockbrokerd|\1$daemon|" \
		    "$from/$u" >"$v/$kind/$u"
	done
	grep -q "^ExecStart=$daemon" "$v/$kind/lockbrokerd.service" ||
		fatal "$kind service: no ExecStart= running lockbrokerd"
done
grep -q "^ExecStart=$daemon --state /var/lib/lockbroker/state.sqlite\$" \
    "$v/system/lockbrokerd.service" || fatal "system ExecStart= changed"
[ "$(unit_value ListenStream "$v/system/lockbrokerd.socket")" = \
    /run/lockbroker/socket ] || fatal "system socket not /run/lockbroker/socket"
[ "$(unit_value ListenStream "$v/user/lockbrokerd.socket")" = \
    %t/lockbroker/socket ] || fatal "user socket not %t/lockbroker/socket"
# Man pages found among ours when man is there (else --man=no).
man=--man=no
command -v man >/dev/null 2>&1 && man=--man=yes
MANPATH=$v/man systemd-analyze verify $man \
    "$v/system/lockbrokerd.socket" "$v/system/lockbrokerd.service" \
    >"$v/system.out" 2>&1 || { cat "$v/system.out"; fatal "verify: system units"; }
[ ! -s "$v/system.out" ] || { cat "$v/system.out"; fatal "verify: system units not clean"; }
MANPATH=$v/man XDG_RUNTIME_DIR=$v/run systemd-analyze --user verify $man \
    "$v/user/lockbrokerd.socket" "$v/user/lockbrokerd.service" \
    >"$v/user.out" 2>&1 || { cat "$v/user.out"; fatal "verify: user units"; }
[ ! -s "$v/user.out" ] || { cat "$v/user.out"; fatal "verify: user units not clean"; }
# Exposure 0-100 (2.5 reads 25); 30 leaves room for the scoring of other
# systemd versions, not for dropping a hardening line.  Needs systemd 250.
if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
	systemd-analyze security --offline=yes --threshold=30 --no-pager \
	    "$v/system/lockbrokerd.service" >"$v/security.out" 2>&1 ||
		{ cat "$v/security.out"; fatal "system service exposure above 3.0"; }
	grep 'Overall exposure' "$v/security.out" || :
else
	diag "note: systemd-analyze security --offline unavailable: exposure not checked"
fi
ok "verify: system and user units accepted"

###  2. Socket activation, with readiness.
sa=$tmp/sa
mkdir "$sa"
notify_listen "$sa/notify" "$sa/notified"
systemd-socket-activate -l "$sa/sock" -E "NOTIFY_SOCKET=$sa/notify" \
    "$daemon" --socket "$sa/sock" --state "$sa/state.sqlite" \
    --config "$tmp/empty.conf" >"$sa/log" 2>&1 &
sapid=$!
pids="$pids $sapid"
wait_for "[ -S '$sa/sock' ] || ! kill -0 $sapid 2>/dev/null"
[ -S "$sa/sock" ] || fatal "systemd-socket-activate did not listen"
[ "$(cat /proc/$sapid/comm)" != lockbrokerd ] ||
	fatal "the daemon ran before the first connection"
[ ! -e "$sa/state.sqlite" ] || fatal "state made before the first connection"
talk --hold "$sa/sock" "HELLO 1 version=1" "ACQUIRE 2 path=$sa/x" \
    >"$sa/talk" 2>&1 &
tpid=$!
pids="$pids $tpid"
wait_for "grep -q '^HOLDING' '$sa/talk' || ! kill -0 $tpid 2>/dev/null"
grep -q "^OK 1 version=1 .*pid=$sapid\$" "$sa/talk" ||
	{ cat "$sa/talk"; fatal "HELLO: no OK from the activated daemon (pid $sapid)"; }
grep -q '^OK 2 token=[1-9]' "$sa/talk" ||
	{ cat "$sa/talk"; fatal "ACQUIRE: no OK with a token"; }
[ -f "$sa/x.lock" ] || fatal "no lock file $sa/x.lock"
[ "$(cat /proc/$sapid/comm)" = lockbrokerd ] || fatal "not lockbrokerd now"
[ -e "$sa/state.sqlite" ] || fatal "no state database"
wait_for "grep -qx READY=1 '$sa/notified'"
kill -TERM "$sapid"
wait_exit "$sapid"
[ "$rc" -eq 0 ] || fatal "activated daemon exited $rc on SIGTERM"
wait_exit "$tpid"
tail -n 1 "$sa/talk" | grep -qx EOF || fatal "client not disconnected at stop"
wait_for "grep -qx STOPPING=1 '$sa/notified'"
[ "$(grep -x -e READY=1 -e STOPPING=1 "$sa/notified" | tr '\n' ' ')" = \
    "READY=1 STOPPING=1 " ] || fatal "notifications: $(cat "$sa/notified")"
[ -f "$sa/x.lock" ] || fatal "the held lock was dropped at stop"
[ -S "$sa/sock" ] || fatal "the daemon removed the socket it was passed"
wait_exit "$npid"
ok "socket activation: started by the first client, served, READY=1, STOPPING=1, exit 0"

###  3. Readiness on its own socket, abstract NOTIFY_SOCKET.
own=$tmp/own
mkdir "$own"
name=@lockbroker-test-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
notify_listen "$name" "$own/notified"
NOTIFY_SOCKET=$name "$daemon" --socket "$own/sock" --state "$own/state.sqlite" \
    --config "$tmp/empty.conf" >"$own/log" 2>&1 &
dpid=$!
pids="$pids $dpid"
wait_for "grep -qx READY=1 '$own/notified' || ! kill -0 $dpid 2>/dev/null"
grep -qx READY=1 "$own/notified" || fatal "no READY=1 from the daemon"
talk "$own/sock" "HELLO 1 version=1" >"$own/talk" 2>&1 ||
	{ cat "$own/talk"; fatal "socket not accepting at READY=1"; }
grep -q "^OK 1 version=1 .*pid=$dpid\$" "$own/talk" || fatal "HELLO after READY=1"
[ "$(stat -c %a "$own/sock")" = 666 ] ||
	fatal "own socket mode $(stat -c %a "$own/sock"), not the unit's 0666"
kill -TERM "$dpid"
wait_exit "$dpid"
[ "$rc" -eq 0 ] || fatal "daemon exited $rc on SIGTERM"
wait_for "grep -qx STOPPING=1 '$own/notified'"
wait_exit "$npid"
ok "readiness: the socket accepts at READY=1; STOPPING=1 and exit 0 at SIGTERM"

###  4. The unit's confinement, emulated.
ex=$tmp/ex
mkdir "$ex" "$ex/own"
unit=$v/system/lockbrokerd.service
wrap="setpriv --no-new-privs"
command -v setpriv >/dev/null 2>&1 || wrap=
cross=no caps=
if [ "$(id -u)" -eq 0 ] && [ -n "$wrap" ]; then
	caps=$(unit_value CapabilityBoundingSet "$unit" | tr 'A-Z ' 'a-z,' |
	    sed 's/cap_/+/g')
	[ -n "$caps" ] || fatal "no CapabilityBoundingSet= in the unit"
	wrap="$wrap --bounding-set=-all,$caps"
	# Clients of other users: uid a owns a directory and a sticky shared
	# one, uid b locks; they must reach $ex.
	a=65534 b=65533
	chmod 0755 "$tmp" "$ex"
	if setpriv --reuid=$b --regid=$b --clear-groups test -x "$ex"; then
		cross=yes
		mkdir "$ex/adir" "$ex/shared" "$ex/rootonly"
		chown $a:$a "$ex/adir" "$ex/shared"
		chmod 0755 "$ex/adir" "$ex/rootonly"
		chmod 1777 "$ex/shared"
	else
		diag "note: uid $b cannot reach $ex: other users' clients not tested"
	fi
elif [ -z "$wrap" ]; then
	diag "note: no setpriv: the daemon runs without NoNewPrivileges"
else
	diag "note: not root: the capability bounding set is not tested"
fi
trace=
if command -v strace >/dev/null 2>&1; then
	trace="strace -f -qq -o $ex/trace"
else
	diag "note: no strace: system calls not checked against the unit"
fi
# LeakSanitizer cannot work under ptrace: in a build with sanitizers the
# traced daemon's leaks are left to the untraced runs.
san=${ASAN_OPTIONS-}
[ -z "$trace" ] || san="$san${san:+:}detect_leaks=0"
ASAN_OPTIONS=$san $wrap $trace "$daemon" --socket "$ex/sock" \
    --state "$ex/state.sqlite" --config "$tmp/empty.conf" >"$ex/log" 2>&1 &
xpid=$!
pids="$pids $xpid"
wait_for "[ -S '$ex/sock' ] || ! kill -0 $xpid 2>/dev/null"
[ -S "$ex/sock" ] || fatal "confined daemon did not start"
# Every method, as the caller.
for m in link symlink mkdir pidfile sqlite; do
	talk "$ex/sock" "HELLO 1 version=1" \
	    "ACQUIRE 2 path=$ex/own/$m method=$m timeout=0" \
	    "STATUS 3 path=$ex/own/$m method=$m" \
	    "RELEASE 4 path=$ex/own/$m method=$m" >"$ex/talk.$m" 2>&1 ||
		{ cat "$ex/talk.$m"; fatal "$m: session"; }
	grep -q '^OK 2 token=' "$ex/talk.$m" &&
	    grep -q '^OK 3 locked=1 mine=1' "$ex/talk.$m" &&
	    grep -q '^OK 4$' "$ex/talk.$m" ||
		{ cat "$ex/talk.$m"; fatal "$m: acquire, status, release"; }
	grep -q "^OK 1 .*pid=" "$ex/talk.$m" || fatal "$m: HELLO"
done
dpid=$(sed -n 's/^OK 1 .*pid=\([0-9]*\)$/\1/p' "$ex/talk.link")
pids="$pids $dpid"
if [ -n "$caps" ]; then
	# The capabilities it has are the unit's, no more (0xca: SETUID,
	# SETGID, DAC_OVERRIDE, FOWNER when the unit is unchanged).
	eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$dpid/status)
	bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/$dpid/status)
	[ "$eff" = "$bnd" ] || fatal "CapEff $eff is not the bounding set $bnd"
	ok "confined daemon: capabilities $eff ($caps)"
fi
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$dpid/status || [ -z "$wrap" ] ||
	fatal "daemon runs without no_new_privs"
# A lock held outside the broker: a waiter is refused in time, and served
# once the lock file goes.
mkdir "$ex/own/f.lock"
talk "$ex/sock" "HELLO 1 version=1" "ACQUIRE 2 path=$ex/own/f method=mkdir timeout=0.3" \
    >"$ex/talk.f1" 2>&1 || :
grep -q '^ERR 2 code=ETIMEOUT' "$ex/talk.f1" ||
	{ cat "$ex/talk.f1"; fatal "foreign lock: waiter not refused"; }
rmdir "$ex/own/f.lock"
talk "$ex/sock" "HELLO 1 version=1" "ACQUIRE 2 path=$ex/own/f method=mkdir timeout=5" \
    "RELEASE 3 path=$ex/own/f method=mkdir" >"$ex/talk.f2" 2>&1 || :
grep -q '^OK 2 token=' "$ex/talk.f2" ||
	{ cat "$ex/talk.f2"; fatal "foreign lock gone: not granted"; }
kill -HUP "$dpid"
kill -USR1 "$dpid"
talk "$ex/sock" "HELLO 1 version=1" "PING 2" >"$ex/talk.ping" 2>&1 || :
grep -qx 'OK 2' "$ex/talk.ping" ||
	{ cat "$ex/talk.ping"; fatal "no answer after SIGHUP and SIGUSR1"; }
if [ $cross = yes ]; then
	as_b="setpriv --reuid=$b --regid=$b --clear-groups"
	# b's lock in a's sticky directory is b's file (setfsuid took).
	$as_b "$PYTHON3" "$tmp/lbtalk.py" talk --hold "$ex/sock" \
	    "HELLO 1 version=1" "ACQUIRE 2 path=$ex/shared/s" >"$ex/talk.b" 2>&1 &
	bpid=$!
	pids="$pids $bpid"
	wait_for "grep -q '^HOLDING' '$ex/talk.b' || ! kill -0 $bpid 2>/dev/null"
	grep -q '^OK 2 token=' "$ex/talk.b" ||
		{ cat "$ex/talk.b"; fatal "uid $b: ACQUIRE in a sticky directory"; }
	[ "$(stat -c %u "$ex/shared/s.lock")" = $b ] ||
		fatal "uid $b's lock file owned by $(stat -c %u "$ex/shared/s.lock")"
	# b's own permissions apply: no lock in root's 0755 directory.
	$as_b "$PYTHON3" "$tmp/lbtalk.py" talk "$ex/sock" "HELLO 1 version=1" \
	    "ACQUIRE 2 path=$ex/rootonly/r timeout=0" >"$ex/talk.b2" 2>&1 || :
	grep -q '^ERR 2 code=EFAILED' "$ex/talk.b2" ||
		{ cat "$ex/talk.b2"; fatal "uid $b locked in root's directory"; }
	[ ! -e "$ex/rootonly/r.lock" ] || fatal "lock file made for uid $b in root's directory"
	# Root's client in a's directory: CAP_DAC_OVERRIDE.
	talk "$ex/sock" "HELLO 1 version=1" "ACQUIRE 2 path=$ex/adir/r timeout=0" \
	    "RELEASE 3 path=$ex/adir/r" >"$ex/talk.r1" 2>&1 ||
		{ cat "$ex/talk.r1"; fatal "root: session"; }
	grep -q '^OK 2 token=' "$ex/talk.r1" && grep -q '^OK 3$' "$ex/talk.r1" ||
		{ cat "$ex/talk.r1"; fatal "root: lock in uid $a's directory"; }
	# Root's sqlite lock in the database b made there: sqlite, seeing euid
	# 0, tries to give its journal the database's owner; that fails
	# without CAP_CHOWN, and must not matter.
	$as_b "$PYTHON3" "$tmp/lbtalk.py" talk "$ex/sock" "HELLO 1 version=1" \
	    "ACQUIRE 2 path=$ex/shared/q method=sqlite timeout=0" \
	    "RELEASE 3 path=$ex/shared/q method=sqlite" >"$ex/talk.b3" 2>&1 || :
	grep -q '^OK 2 token=' "$ex/talk.b3" && grep -q '^OK 3$' "$ex/talk.b3" ||
		{ cat "$ex/talk.b3"; fatal "uid $b: sqlite lock in the sticky directory"; }
	talk "$ex/sock" "HELLO 1 version=1" \
	    "ACQUIRE 2 path=$ex/shared/q method=sqlite timeout=0" \
	    "RELEASE 3 path=$ex/shared/q method=sqlite" >"$ex/talk.r3" 2>&1 || :
	grep -q '^OK 2 token=' "$ex/talk.r3" && grep -q '^OK 3$' "$ex/talk.r3" ||
		{ cat "$ex/talk.r3"; fatal "root: sqlite lock in uid $b's database"; }
	# Root breaks b's lock in a's sticky directory: CAP_FOWNER.
	talk "$ex/sock" "HELLO 1 version=1" "BREAK 2 path=$ex/shared/s" \
	    >"$ex/talk.r2" 2>&1 || { cat "$ex/talk.r2"; fatal "root: BREAK session"; }
	grep -qx 'OK 2 broken=1' "$ex/talk.r2" ||
		{ cat "$ex/talk.r2"; fatal "root: break uid $b's lock in uid $a's sticky directory"; }
	[ ! -e "$ex/shared/s.lock" ] || fatal "broken lock file still there"
	ok "other users: their files, their permissions; root's clients as root"
fi
kill -TERM "$dpid"
wait_exit "$xpid"
[ "$rc" -eq 0 ] || fatal "confined daemon exited $rc on SIGTERM"
if [ $cross = yes ]; then
	wait_exit "$bpid"
fi

if [ -n "$trace" ]; then
	# The system calls made, against the unit's filter, expanded.
	expand_filter() {
		systemd-analyze syscall-filter "$1" 2>/dev/null |
		    sed -n '/^@/,$p' | sed '1d; s/^[[:space:]]*//; /^#/d; /^$/d' |
		    while read -r s; do
			case $s in
			@*) expand_filter "$s" ;;
			*) echo "$s" ;;
			esac
		done
	}
	: >"$ex/allowed"
	for g in $(unit_value SystemCallFilter "$unit"); do
		case $g in
		@*) expand_filter "$g" >>"$ex/allowed" ;;
		*) echo "$g" >>"$ex/allowed" ;;
		esac
	done
	[ -s "$ex/allowed" ] || fatal "no SystemCallFilter= to check against"
	sed -n 's/^[0-9][0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$ex/trace" |
	    sort -u >"$ex/used"
	[ "$(wc -l <"$ex/used")" -gt 20 ] || fatal "strace saw almost nothing"
	sort -u "$ex/allowed" | comm -23 "$ex/used" - >"$ex/denied"
	[ ! -s "$ex/denied" ] ||
		fatal "system calls outside SystemCallFilter=: $(tr '\n' ' ' <"$ex/denied")"
	families=$(unit_value RestrictAddressFamilies "$unit")
	grep -o ' socket(AF_[A-Z0-9]*' "$ex/trace" | sed 's/.*(//' | sort -u |
	    while read -r f; do
		case " $families " in
		*" $f "*) ;;
		*) echo "$f" ;;
		esac
	done >"$ex/badfam"
	[ ! -s "$ex/badfam" ] ||
		fatal "sockets outside RestrictAddressFamilies=: $(cat "$ex/badfam")"
	if [ "$(unit_value MemoryDenyWriteExecute "$unit")" = yes ]; then
		if grep -E ' (mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC' "$ex/trace" ||
		    grep -E ' (mprotect|pkey_mprotect)\(.*PROT_EXEC' "$ex/trace"; then
			fatal "writable and executable memory under MemoryDenyWriteExecute="
		fi
	fi
	ok "system calls: $(wc -l <"$ex/used") distinct, all in the unit's filter; sockets: $families only"
fi

lb_done
