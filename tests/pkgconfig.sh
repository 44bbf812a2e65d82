#!/bin/sh
# pkgconfig.sh: installs the built tree into a private DESTDIR, builds a small
# program against it with nothing but lockbroker.h and
# `pkg-config --cflags --libs lockbroker`, and checks that the lock it takes
# is seen by Python's lockfile (and that only the API is exported).  Also
# that the commands and the four manual pages are installed, and that each
# page renders with man -l (and groff -ww) without a warning.
# Reports in TAP (tests/lib.sh); the first failed check ends it.
set -eu
. "$(dirname "$0")/lib.sh"
: "${LB_BUILDDIR:?}" "${LB_SRCDIR:?}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lbpc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

make -s -C "$LB_BUILDDIR" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; lb_fatal "make install DESTDIR"; }
pc=$(find "$tmp/root" -name lockbroker.pc | head -n 1)
[ -n "$pc" ] || lb_fatal "lockbroker.pc not installed"
hdr=$(find "$tmp/root" -name lockbroker.h | head -n 1)
[ -n "$hdr" ] || lb_fatal "lockbroker.h not installed"
[ -f "$(dirname "$hdr")/lockbroker/codes.h" ] ||
	lb_fatal "lockbroker/codes.h not installed beside lockbroker.h"
so=$(find "$tmp/root" -name 'liblockbroker.so.0*' -type f | head -n 1)
[ -n "$so" ] || lb_fatal "liblockbroker.so.0 not installed"
libdir=$(dirname "$so")
ok "make install DESTDIR installs lockbroker.pc, lockbroker.h, lockbroker/codes.h and liblockbroker.so.0"

# The commands and the manual pages, which render without a warning.
for prog in lockbroker lockbrokerd; do
	[ -n "$(find "$tmp/root" -name "$prog" -type f -perm -u+x)" ] ||
		lb_fatal "$prog not installed"
done
for page in man1/lockbroker.1 man3/liblockbroker.3 man5/lockbrokerd.conf.5 \
    man8/lockbrokerd.8; do
	file=$(find "$tmp/root" -path "*/man/$page" | head -n 1)
	[ -n "$file" ] || lb_fatal "$page not installed"
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$file" \
		    >"$tmp/page.txt" 2>"$tmp/page.err" ||
			lb_fatal "man -l $page: $(cat "$tmp/page.err")"
		[ ! -s "$tmp/page.err" ] ||
			lb_fatal "man -l $page warns: $(cat "$tmp/page.err")"
		[ -s "$tmp/page.txt" ] || lb_fatal "man -l $page: nothing rendered"
	fi
	if command -v groff >/dev/null; then
		groff -ww -z -man -Tutf8 "$file" 2>"$tmp/page.err" &&
		    [ ! -s "$tmp/page.err" ] ||
			lb_fatal "groff -ww $page warns: $(cat "$tmp/page.err")"
	fi
done

ok "the commands and the manual pages are installed; each page renders without a warning"

# Only the lb_ API is exported, under a version.
nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' >"$tmp/syms"
grep -qv '^lb_' "$tmp/syms" && lb_fatal "exports beyond the API: $(grep -v '^lb_' "$tmp/syms")"
grep -q '^lb_acquire@@LOCKBROKER_0.1$' "$tmp/syms" || lb_fatal "lb_acquire not versioned"
ok "only the lb_ API is exported, versioned"

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
flags=$(pkg-config --cflags --libs lockbroker) || lb_fatal "pkg-config lockbroker"
${CC:-cc} -o "$tmp/prog" "$tmp/prog.c" $flags || lb_fatal "build against the installed tree"
ok "a program builds with pkg-config lockbroker"

mkfifo "$tmp/in"
LD_LIBRARY_PATH="$libdir" "$tmp/prog" "$tmp/file" <"$tmp/in" >"$tmp/out" &
pid=$!
exec 3>"$tmp/in"
i=0
until grep -q locked "$tmp/out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 200 ] || lb_fatal "program did not lock"; sleep 0.05
done
"$PYTHON3" - "$tmp/file" <<'PY' || lb_fatal "Python lockfile does not see the lock"
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
wait $pid || lb_fatal "program failed to release"
[ ! -e "$tmp/file.lock" ] || lb_fatal "lock file left behind"
ok "the program's lock is seen by Python's lockfile and released"
lb_done
