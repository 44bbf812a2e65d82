#!/bin/sh
# pkgconfig.sh: installs the built tree into a private DESTDIR, builds a small
# program against it with nothing but lockbroker.h and
# `pkg-config --cflags --libs lockbroker`, and checks that the lock it takes
# is seen by Python's lockfile (and that only the API is exported).  Also
# that the commands and the four manual pages are installed, and that each
# page renders with man -l (and groff -ww) without a warning.
set -eu
: "${LB_BUILDDIR:?}" "${LB_SRCDIR:?}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbpc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }

make -s -C "$LB_BUILDDIR" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install DESTDIR"; }
pc=$(find "$tmp/root" -name lockbroker.pc | head -n 1)
[ -n "$pc" ] || fail "lockbroker.pc not installed"
hdr=$(find "$tmp/root" -name lockbroker.h | head -n 1)
[ -n "$hdr" ] || fail "lockbroker.h not installed"
so=$(find "$tmp/root" -name 'liblockbroker.so.0*' -type f | head -n 1)
[ -n "$so" ] || fail "liblockbroker.so.0 not installed"
libdir=$(dirname "$so")

# The commands and the manual pages, which render without a warning.
for prog in lockbroker lockbrokerd; do
	[ -n "$(find "$tmp/root" -name "$prog" -type f -perm -u+x)" ] ||
		fail "$prog not installed"
done
for page in man1/lockbroker.1 man3/liblockbroker.3 man5/lockbrokerd.conf.5 \
    man8/lockbrokerd.8; do
	file=$(find "$tmp/root" -path "*/man/$page" | head -n 1)
	[ -n "$file" ] || fail "$page not installed"
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$file" \
		    >"$tmp/page.txt" 2>"$tmp/page.err" ||
			fail "man -l $page: $(cat "$tmp/page.err")"
		[ ! -s "$tmp/page.err" ] ||
			fail "man -l $page warns: $(cat "$tmp/page.err")"
		[ -s "$tmp/page.txt" ] || fail "man -l $page: nothing rendered"
	fi
	if command -v groff >/dev/null; then
		groff -ww -z -man -Tutf8 "$file" 2>"$tmp/page.err" &&
		    [ ! -s "$tmp/page.err" ] ||
			fail "groff -ww $page warns: $(cat "$tmp/page.err")"
	fi
done

# Only the lb_ API is exported, under a version.
nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' >"$tmp/syms"
grep -qv '^lb_' "$tmp/syms" && fail "exports beyond the API: $(grep -v '^lb_' "$tmp/syms")"
grep -q '^lb_acquire@@LOCKBROKER_0.1$' "$tmp/syms" || fail "lb_acquire not versioned"

cat >"$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include <lockbroker.h>

int
main(int argc, char **argv)
{
	lb_lock *lock;
	int      r;

	if (argc != 2 || (lock = lb_lock_new(argv[1], 0)) == NULL)
		return 2;
	if ((r = lb_acquire(lock, 5)) != 0) {
		fprintf(stderr, "%s: %s\n", lb_error_name(r), lb_lock_error(lock));
		return 1;
	}
	puts("locked");
	fflush(stdout);
	getchar();              /* hold until told */
	r = lb_release(lock);
	lb_lock_free(lock);
	return r == 0 ? 0 : 1;
}
PROG
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
flags=$(pkg-config --cflags --libs lockbroker) || fail "pkg-config lockbroker"
${CC:-cc} -o "$tmp/prog" "$tmp/prog.c" $flags || fail "build against the installed tree"

mkfifo "$tmp/in"
LD_LIBRARY_PATH="$libdir" "$tmp/prog" "$tmp/file" <"$tmp/in" >"$tmp/out" &
pid=$!
exec 3>"$tmp/in"
i=0
until grep -q locked "$tmp/out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 200 ] || fail "program did not lock"; sleep 0.05
done
"$PYTHON3" - "$tmp/file" <<'PY' || fail "Python lockfile does not see the lock"
import sys
from lockfile.linklockfile import LinkLockFile
from lockfile import AlreadyLocked
lock = LinkLockFile(sys.argv[1])
assert lock.is_locked(), "is_locked() is False"
try:
    lock.acquire(timeout=0)
except AlreadyLocked:
    pass
else:
    raise SystemExit("Python took a lock the C program holds")
PY
echo >&3
exec 3>&-
wait $pid || fail "program failed to release"
[ ! -e "$tmp/file.lock" ] || fail "lock file left behind"
echo "pkgconfig: built against the installed tree; Python saw the lock"
