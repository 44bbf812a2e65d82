#!/bin/sh
# readme.sh: runs the examples of README.md, so that they stay true.
#
# Which examples: a fenced code block right after a line that is exactly
#
#     <!-- test: KIND -->
#
# (an HTML comment: invisible where the README is rendered).  KIND says
# how the block is run:
#
#   cli      a shell script, run with `sh -e` in a fresh private directory
#            (so relative paths like inventory.db land there), with the
#            built tools/ first on PATH and LOCKBROKER_SOCKET naming a
#            private daemon; it must exit 0 and, when it has ended, hold no
#            lock (the daemon lists none within 10 s, and no artefact
#            PATH.lock is left in its directory).
#   c        a C program, compiled with -Wall -Wextra -Werror against the
#            built library and header, then run in a fresh private
#            directory twice, through the private daemon and with no
#            daemon (in-process); it must exit 0 both times.
#   systemd  systemctl lines, run as far as they can be without a running
#            systemd: the tree is installed into a private DESTDIR
#            (`make install`, as the README says before the block), and
#            each `systemctl [--user] enable [--now] UNIT...` runs as
#            `systemctl --root=DESTDIR [--global] enable UNIT...` (starting
#            a unit, --now, needs a running systemd); the unit must then be
#            wanted by its target in DESTDIR.  The units themselves are
#            verified by tests/systemd.sh.  Any other command fails the
#            test: a new kind of line needs a way to run it here first.
#
# A marker that is not followed by a fenced block, an unknown KIND, an
# unclosed block, or a README with no block of some KIND fails the test.
#
# Run by `make check` with LB_BUILDDIR and LB_SRCDIR set.  Everything
# lives in a private temporary directory, removed at the end.  Reports in
# TAP (tests/lib.sh); exit 0 when all pass, 1 when any fails, 99 when it
# cannot run.

# shellcheck disable=SC2317 # functions run from traps and until_true

set -u
. "$(dirname "$0")/lib.sh"

: "${LB_BUILDDIR:?LB_BUILDDIR not set}" "${LB_SRCDIR:?LB_SRCDIR not set}"
LB="$LB_BUILDDIR/tools/lockbroker"
DAEMON="$LB_BUILDDIR/daemon/lockbrokerd"
README="$LB_SRCDIR/README.md"
lb_need "$LB" "$DAEMON"
[ -e "$README" ] || lb_bail "$README is missing"

lb_mktemp readme
sock="$tmp/sock"
dpid=""

cleanup() {
	if [ -n "$dpid" ]; then
		kill -9 "$dpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

## The blocks: $tmp/blocks/NNN.KIND, NNN the README line of the marker.

mkdir "$tmp/blocks"
if ! awk -v out="$tmp/blocks" '
	function bad(msg) {
		printf "README.md:%d: %s\n", NR, msg > "/dev/stderr"
		status = 1
	}
	fence == 0 && marker == 0 && /^<!-- test: [a-z]+ -->$/ {
		kind = $3
		if (kind != "cli" && kind != "c" && kind != "systemd")
			bad("unknown kind of example: " kind)
		marker = NR
		next
	}
	marker != 0 {
		if ($0 !~ /^```/)
			bad("a test marker must be followed by a fenced block")
		else {
			file = sprintf("%s/%04d.%s", out, marker, kind)
			printf "" > file
			fence = 1
		}
		marker = 0
		next
	}
	fence == 1 {
		if ($0 ~ /^```[ \t]*$/) {
			close(file)
			fence = 0
		} else
			print > file
	}
	END {
		if (fence == 1 || marker != 0)
			bad("the README ends inside a marked example")
		exit status
	}' "$README"; then
	fail "README.md: the marked examples can be read"
fi
for kind in cli c systemd; do
	if ls "$tmp/blocks/"*".$kind" >/dev/null 2>&1; then
		ok "README.md has examples of kind $kind"
	else
		fail "README.md has no example marked <!-- test: $kind -->"
	fi
done

## The private daemon.

lb_daemon_start "$sock" "$tmp/state.sqlite" "$tmp/daemon.log"

# no_lock_listed: the daemon knows no lock.
no_lock_listed() {
	[ "$(LOCKBROKER_SOCKET="$sock" "$LB" list | wc -l)" -eq 1 ]
}

# run_in DIR SOCKET CMD...: runs CMD in DIR with the built tools first on
# PATH and LOCKBROKER_SOCKET=SOCKET, output in DIR.out and DIR.err, for at
# most 120 s; sets rc.
run_in() {
	ri_dir=$1
	ri_sock=$2
	shift 2
	mkdir -p "$ri_dir"
	(cd "$ri_dir" &&
	    PATH="$LB_BUILDDIR/tools:$PATH" LOCKBROKER_SOCKET="$ri_sock" \
	    timeout 120 "$@") >"$ri_dir.out" 2>"$ri_dir.err"
	rc=$?
}

## cli: each block as a script, against the daemon.

for b in "$tmp/blocks/"*.cli; do
	[ -e "$b" ] || continue
	line=$(basename "$b" .cli | sed 's/^0*//')
	what="cli example at README.md:$line"
	run_in "$tmp/run.$line" "$sock" sh -e "$b"
	if [ "$rc" -eq 0 ]; then
		ok "$what exits 0"
	else
		fail "$what: exit $rc" "$b" "$tmp/run.$line.out" \
		    "$tmp/run.$line.err"
	fi
	if until_true 200 no_lock_listed; then
		ok "$what leaves no lock at the daemon"
	else
		LOCKBROKER_SOCKET="$sock" "$LB" list >"$tmp/list.out"
		fail "$what leaves a lock at the daemon" "$tmp/list.out"
	fi
	left=$(find "$tmp/run.$line" -name '*.lock')
	if [ -z "$left" ]; then
		ok "$what leaves no lock file"
	else
		fail "$what leaves lock files: $left"
	fi
done

## c: compile against the built library, run through the daemon and
## in-process.

CC=${CC:-cc}
for b in "$tmp/blocks/"*.c; do
	[ -e "$b" ] || continue
	line=$(basename "$b" .c | sed 's/^0*//')
	what="C example at README.md:$line"
	cp "$b" "$tmp/prog$line.c"
	if $CC -Wall -Wextra -Werror -I"$LB_SRCDIR/include" \
	    -o "$tmp/prog$line" "$tmp/prog$line.c" \
	    -L"$LB_BUILDDIR/.libs" -llockbroker \
	    -Wl,-rpath,"$LB_BUILDDIR/.libs" >"$tmp/cc.err" 2>&1; then
		ok "$what compiles"
	else
		fail "$what does not compile" "$tmp/cc.err"
		continue
	fi
	run_in "$tmp/c.$line.broker" "$sock" "$tmp/prog$line"
	if [ "$rc" -eq 0 ]; then
		ok "$what runs through the daemon"
	else
		fail "$what through the daemon: exit $rc" \
		    "$tmp/c.$line.broker.out" "$tmp/c.$line.broker.err"
	fi
	run_in "$tmp/c.$line.local" "$tmp/no-daemon.sock" "$tmp/prog$line"
	if [ "$rc" -eq 0 ]; then
		ok "$what runs in-process"
	else
		fail "$what in-process: exit $rc" \
		    "$tmp/c.$line.local.out" "$tmp/c.$line.local.err"
	fi
	left=$(find "$tmp/c.$line.broker" "$tmp/c.$line.local" -name '*.lock')
	if [ -z "$left" ]; then
		ok "$what leaves no lock file"
	else
		fail "$what leaves lock files: $left"
	fi
done

## systemd: make install into DESTDIR, then systemctl --root.

root="$tmp/root"
if ! command -v systemctl >/dev/null 2>&1; then
	echo "# skip: systemd examples: systemctl is not installed"
elif ! make -s -C "$LB_BUILDDIR" install DESTDIR="$root" \
    >"$tmp/install.log" 2>&1; then
	fail "make install DESTDIR (before the systemd examples)" \
	    "$tmp/install.log"
else
	# The units where systemd looks for them: where configure put them
	# (by default); or, when that is elsewhere (make distcheck: under its
	# own prefix), copied to DESTDIR/etc/systemd/SCOPE, as an
	# administrator would.
	placed=0
	for scope in system user; do
		found=$(find "$root" -path "*/systemd/$scope/lockbrokerd.socket" |
		    head -n 1)
		[ -n "$found" ] || continue
		placed=$((placed + 1))
		case ${found%/*} in
		"$root"/lib/systemd/system | "$root"/usr/lib/systemd/system | \
		"$root"/usr/local/lib/systemd/system | \
		"$root"/etc/systemd/system | "$root"/usr/lib/systemd/user | \
		"$root"/usr/local/lib/systemd/user | "$root"/etc/systemd/user | \
		"$root"/usr/share/systemd/user | \
		"$root"/usr/local/share/systemd/user)
			;;
		*)
			mkdir -p "$root/etc/systemd/$scope"
			cp "${found%/*}"/lockbrokerd.* "$root/etc/systemd/$scope/"
			;;
		esac
	done
	if [ "$placed" -eq 0 ]; then
		echo "# skip: systemd examples: this build installs no units"
		rm -f "$tmp/blocks/"*.systemd
	fi
	for b in "$tmp/blocks/"*.systemd; do
		[ -e "$b" ] || continue
		line=$(basename "$b" .systemd | sed 's/^0*//')
		sed -e 's/#.*//' -e 's/^[ \t]*//' -e 's/[ \t]*$//' "$b" |
		    grep -v '^$' >"$tmp/cmds"
		i=0
		while read -r cmd; do
			i=$((i + 1))
			what="systemd example at README.md:$line, '$cmd'"
			# shellcheck disable=SC2086 # words, on purpose
			set -- $cmd
			[ "$1" = sudo ] && shift
			scope=system
			global=""
			if [ "$1" = systemctl ] && [ "${2:-}" = --user ]; then
				scope=user
				global=--global
				shift 2
				set -- systemctl "$@"
			fi
			if [ "$1" != systemctl ] || [ "${2:-}" != enable ]; then
				fail "$what: readme.sh cannot run this line"
				continue
			fi
			shift 2
			units=""
			for w in "$@"; do
				[ "$w" = --now ] || units="$units $w"
			done
			# shellcheck disable=SC2086
			if systemctl --root="$root" $global enable $units \
			    >"$tmp/systemctl.out" 2>&1; then
				ok "$what (as systemctl --root${global:+ $global} enable$units)"
			else
				fail "$what: systemctl --root${global:+ $global} enable$units" \
				    "$tmp/systemctl.out"
				continue
			fi
			for u in $units; do
				if [ -n "$(find "$root/etc/systemd/$scope" \
				    -path "*.wants/$u" 2>/dev/null)" ]; then
					ok "$what: $u is wanted by its target"
				else
					fail "$what: $u is not enabled in $root/etc/systemd/$scope"
				fi
			done
		done <"$tmp/cmds"
		[ "$i" -gt 0 ] || fail "systemd example at README.md:$line is empty"
	done
fi

lb_done
