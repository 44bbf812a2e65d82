# tests/lib.sh: what every shell suite shares, sourced first thing:
#
#     . "$(dirname "$0")/lib.sh"
#
# A suite reports in TAP (automake's tap-driver.sh reads it, one result per
# check): `ok`, `fail` and the helpers built on them number the checks;
# `lb_done` prints the plan and exits 0 when every check passed, 1 when
# one failed.  `lb_fatal` ends a suite that cannot go on after a failed
# check; `lb_bail` one that cannot run at all (a missing program, no
# temporary directory); `lb_skip_all` one that does not apply here.
# Nothing here starts a process or makes a file until asked.

lb_n=0
lb_failures=0
# The file `fail` shows when given none (a suite's last stderr, say).
lb_errfile=

# ok DESC: a passed check.
ok() {
	lb_n=$((lb_n + 1))
	echo "ok $lb_n - $*"
}

# fail DESC [FILE...]: a failed check, each FILE (or $lb_errfile) shown as
# TAP diagnostics.
fail() {
	lb_n=$((lb_n + 1))
	lb_failures=$((lb_failures + 1))
	echo "not ok $lb_n - $1"
	shift
	[ $# -gt 0 ] || set -- $lb_errfile
	for lb_f in "$@"; do
		if [ -s "$lb_f" ]; then
			sed "s|^|#   ${lb_f##*/}: |" "$lb_f"
		fi
	done
}

# diag TEXT...: a line of TAP diagnostics.
diag() {
	echo "# $*"
}

# lb_done: the plan; exits 0 when no check failed, else 1.
lb_done() {
	echo "1..$lb_n"
	[ "$lb_failures" -eq 0 ] && exit 0
	exit 1
}

# lb_fatal DESC [FILE...]: a failed check after which the suite cannot go
# on: reports it, prints the plan and exits 1.
lb_fatal() {
	fail "$@"
	echo "1..$lb_n"
	exit 1
}

# lb_bail REASON: the suite cannot run here (exits 99, a hard error).
lb_bail() {
	echo "Bail out! $*"
	exit 99
}

# lb_skip_all REASON: nothing of the suite applies here (exits 0, skipped).
lb_skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# lb_need FILE...: bails out unless each FILE exists and is executable.
lb_need() {
	for lb_f in "$@"; do
		[ -x "$lb_f" ] || lb_bail "$lb_f is not built (make check builds it)"
	done
}

# lb_mktemp NAME: a private temporary directory, in $tmp.
lb_mktemp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/lb-$1.XXXXXX") ||
	    lb_bail "cannot make a temporary directory"
}

# run CMD...: runs CMD with stdout in $tmp/out and stderr in $tmp/err,
# sets rc.
run() {
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect_rc WANT DESC CMD...: runs CMD and checks its exit status.
expect_rc() {
	lb_want=$1
	lb_desc=$2
	shift 2
	run "$@"
	if [ "$rc" -eq "$lb_want" ]; then
		ok "$lb_desc (exit $rc)"
	else
		fail "$lb_desc: exit $rc, want $lb_want"
	fi
}

# check DESC COMMAND...: a check that passes when COMMAND succeeds.
check() {
	lb_desc=$1
	shift
	if "$@"; then
		ok "$lb_desc"
	else
		fail "$lb_desc"
	fi
}

# has FILE PATTERN: FILE has a line matching the extended regexp PATTERN.
has() {
	grep -Eq -- "$2" "$1"
}

# until_true TRIES CMD...: runs CMD every 0.05 s until it succeeds, at
# most TRIES times.  0 when it did.
until_true() {
	ut_tries=$1
	shift
	ut_i=0
	while [ "$ut_i" -lt "$ut_tries" ]; do
		if "$@"; then
			return 0
		fi
		sleep 0.05
		ut_i=$((ut_i + 1))
	done
	return 1
}

# lb_daemon_start SOCKET STATE LOG [OPTIONS...]: starts lockbrokerd
# ($LB_BUILDDIR/daemon/lockbrokerd, under $LB_DAEMON_WRAPPER if set) on
# SOCKET with STATE, appending its output to LOG, and waits (at most 30 s)
# until it answers HELLO; sets dpid.  Bails out, with the log, when it
# does not.
lb_daemon_start() {
	lb_sock=$1
	lb_state=$2
	lb_log=$3
	shift 3
	# shellcheck disable=SC2086 # the wrapper is a command line
	${LB_DAEMON_WRAPPER:-} "$LB_BUILDDIR/daemon/lockbrokerd" \
	    --socket "$lb_sock" --state "$lb_state" "$@" >>"$lb_log" 2>&1 &
	dpid=$!
	if lb_hello "$lb_sock" "$dpid" 30; then
		return 0
	fi
	sed 's/^/#   daemon: /' "$lb_log"
	lb_bail "the daemon did not answer on $lb_sock"
}

# lb_hello SOCKET PID SECONDS: waits until a daemon answers HELLO on SOCKET
# (at most SECONDS) while process PID lives.  0: it answered; 1: PID
# ended; 2: no answer in time.
lb_hello() {
	"${PYTHON3:-/usr/bin/python3}" -c '
import socket, sys, time
path, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit(1)
    except FileNotFoundError:
        sys.exit(1)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(b"HELLO 1 version=1\n")
        if s.makefile("rb").readline().startswith(b"OK 1"):
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.05)
sys.exit(2)
' "$@"
}

# lb_ended PID SECONDS: waits (at most SECONDS) until process PID has
# ended (a zombie, or gone).  0: it has; 1: it still runs.
lb_ended() {
	"${PYTHON3:-/usr/bin/python3}" -c '
import sys, time
pid, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
while True:
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit(0)
    except FileNotFoundError:
        sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.01)
' "$@"
}
