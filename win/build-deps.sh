#!/bin/sh
# win/build-deps.sh: installs the Windows cross toolchain and wine from
# Debian's archive and cross-builds lockbroker's dependencies for 64-bit
# Windows (x86_64-w64-mingw32): libuv, sqlite3 and check, static, from
# Debian's own source packages, into a prefix.
#
#   win/build-deps.sh [PREFIX]
#
# PREFIX defaults to $LB_WIN_DEPS, else /var/cache/lockbroker/win-deps.
# Afterwards PREFIX holds include/, lib/ and lib/pkgconfig/, and configure
# finds the libraries there through pkg-config:
#
#   PKG_CONFIG_LIBDIR=PREFIX/lib/pkgconfig ./configure \
#       --host=x86_64-w64-mingw32
#
# Contract:
# - Run as root, or as a user who may use sudo (for apt-get only).  It
#   installs gcc-mingw-w64-x86-64-win32, wine64 and the native tools the
#   builds use, each only when missing, with one `apt-get update` before
#   (only then).  `apt-get source` needs deb-src entries: when none are
#   configured it adds Debian's (/etc/apt/sources.list.d/
#   lockbroker-deb-src.sources) and updates.
# - Cheap when PREFIX is complete: PREFIX/.lockbroker-win-deps records
#   this script's hash and the versions of the toolchain and of the three
#   source packages; when they all match, it changes nothing and exits 0
#   at once (no network).  Otherwise it empties PREFIX and builds it anew,
#   writing the complete record last, so an interrupted build is redone
#   the next time.  So CI can keep PREFIX between runs.
# - It refuses (exit 1) to empty a PREFIX that is neither empty nor marked
#   as its own by that record file.  PREFIX (and its parent) must be
#   writable by the caller.  Runs sharing a PREFIX take turns (flock on
#   PREFIX.lock): a second one waits, then finds the prefix current.
# - The sources are unpacked and built in a temporary directory (under
#   $TMPDIR), removed at the end.  JOBS sets make's parallelism (default:
#   the number of processors).
# - Exit status: 0 when PREFIX is complete, 1 on any failure (with a
#   message naming the step), 2 on a usage error.
set -eu

host=x86_64-w64-mingw32
stamp_name=.lockbroker-win-deps
# The toolchain and wine, then what the builds run natively: gcc and
# dpkg-dev (sqlite's generators; apt-get source unpacks with dpkg-source),
# autotools (libuv's autogen.sh), tclsh (sqlite's amalgamation).
packages="gcc-mingw-w64-x86-64-win32 wine64 build-essential dpkg-dev \
autoconf automake libtool pkg-config file tcl xz-utils ca-certificates"
# The source packages, in build order.
sources="libuv1 sqlite3 check"

say() { echo "win/build-deps.sh: $*"; }
die() { echo "win/build-deps.sh: $*" >&2; exit 1; }

[ $# -le 1 ] || { echo "usage: $0 [PREFIX]" >&2; exit 2; }
prefix=${1:-${LB_WIN_DEPS:-/var/cache/lockbroker/win-deps}}
case $prefix in
/*) ;;
*) prefix=$(pwd)/$prefix ;;
esac
jobs=${JOBS:-$(nproc)}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	die "run as root or install sudo (apt-get needs it)"
fi

# ------------------------------------------------------------------ #
# Packages.

# missing_packages: the names in $packages that are not installed.
missing_packages() {
	for p in $packages; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || printf ' %s' "$p"
	done
}

# has_deb_src: true when apt knows some deb-src entry.
has_deb_src() {
	grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/
}

# source_version PKG: the newest version of source package PKG that apt
# knows (empty when none).
source_version() {
	apt-cache showsrc --only-source "$1" 2>/dev/null |
		sed -n 's/^Version: //p' | sort -V | tail -n 1
}

updated=no
if ! has_deb_src; then
	say "adding Debian's deb-src entries (apt-get source needs them)"
	$as_root sh -c 'cat >/etc/apt/sources.list.d/lockbroker-deb-src.sources' <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	$as_root apt-get update -q || die "apt-get update failed"
	updated=yes
fi
missing=$(missing_packages)
if [ -n "$missing" ]; then
	say "installing$missing"
	[ $updated = yes ] || $as_root apt-get update -q ||
		die "apt-get update failed"
	updated=yes
	DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q \
		-o DPkg::Lock::Timeout=600 --no-install-recommends $missing ||
		die "cannot install$missing"
fi
if [ -z "$(source_version libuv1)" ] && [ $updated = no ]; then
	# deb-src entries configured, but their lists never fetched.
	$as_root apt-get update -q || die "apt-get update failed"
fi

# ------------------------------------------------------------------ #
# One run at a time per PREFIX, from the look at its record on.

mkdir -p "$(dirname "$prefix")" || die "cannot make $(dirname "$prefix")"
exec 9>"$prefix.lock" || die "cannot open $prefix.lock"
flock 9 || die "cannot lock $prefix.lock"

# ------------------------------------------------------------------ #
# The record: is PREFIX complete and current?

record=$(
	echo "script $(sha256sum <"$self" | cut -d' ' -f1)"
	echo "gcc-mingw-w64-x86-64-win32 $(dpkg-query -W -f='${Version}' \
		gcc-mingw-w64-x86-64-win32)"
	for s in $sources; do
		v=$(source_version "$s")
		[ -n "$v" ] || die "apt knows no source package $s"
		echo "$s $v"
	done
)
if [ -f "$prefix/$stamp_name" ] &&
    [ "$(cat "$prefix/$stamp_name")" = "$record" ]; then
	say "$prefix is complete and current; nothing to do"
	exit 0
fi

# ------------------------------------------------------------------ #
# A fresh PREFIX, marked as ours before anything goes in.

if [ -d "$prefix" ] && [ -n "$(ls -A "$prefix")" ]; then
	[ -f "$prefix/$stamp_name" ] ||
		die "$prefix is not empty and not a dependency prefix of ours; not touching it"
	say "rebuilding $prefix (its record differs)"
	find "$prefix" -mindepth 1 -delete
fi
mkdir -p "$prefix" || die "cannot make $prefix"
echo incomplete >"$prefix/$stamp_name"

work=$(mktemp -d "${TMPDIR:-/tmp}/lb-win-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
step() { say "[$(( $(date +%s) - t0 ))s] $*"; }

# fetch PKG: unpacks source package PKG (the version in the record) into
# $work and prints its directory.
fetch() {
	v=$(echo "$record" | sed -n "s/^$1 //p")
	(cd "$work" && apt-get source -q "$1=$v" >"$1.log" 2>&1) ||
		die "apt-get source $1=$v failed (see above):
$(tail -n 20 "$work/$1.log")"
	dir=$(cd "$work" && ls -d "$1"-*/ | head -n 1)
	[ -n "$dir" ] || die "apt-get source $1 unpacked nothing"
	echo "$work/${dir%/}"
}

# quietly LOG CMD...: runs CMD with its output into LOG, which is shown
# when it fails.
quietly() {
	log=$1
	shift
	"$@" >"$log" 2>&1 || {
		tail -n 40 "$log" >&2
		die "failed: $*"
	}
}

# libuv: from git-style sources (autogen.sh); static link needs the
# Windows system libraries its libuv.pc lists in Libs.private.
step "libuv"
src=$(fetch libuv1)
mkdir "$src/build-w64"
quietly "$work/libuv.log" sh -c "cd '$src' && sh autogen.sh && \
cd build-w64 && ../configure --host=$host --prefix='$prefix' \
--enable-static --disable-shared && make -j$jobs && make install"

# sqlite3: config_TARGET_EXEEXT=.exe makes configure build for Windows
# (SQLITE_OS_WIN; else sqlite3.c fails on sys/ioctl.h).  BEXE= because the
# generators built for this machine (lemon, mksourceid) carry no .exe;
# CROSS_BUILDING=yes is for Debian's cross patch.  Only the library (not
# the shell).  Windows sqlite needs no pthread: Libs.private is dropped
# (-lpthread would want libwinpthread-1.dll at run time).
step "sqlite3"
src=$(fetch sqlite3)
mkdir "$src/build-w64"
quietly "$work/sqlite3.log" sh -c "cd '$src/build-w64' && \
config_TARGET_EXEEXT=.exe ../configure --host=$host --prefix='$prefix' \
--enable-static --disable-shared --disable-tcl --disable-readline && \
make -j$jobs BEXE= CROSS_BUILDING=yes libsqlite3.la && \
make BEXE= CROSS_BUILDING=yes install"
sed -i 's/^Libs.private:.*/Libs.private:/' "$prefix/lib/pkgconfig/sqlite3.pc"

# check: no subunit, no docs (makeinfo); only the library and its header.
# Debian's check.pc names -lcheck_pic, a library only Debian's packaging
# makes: the static library is libcheck.a.  check formats its messages
# with its own C99 vsnprintf (rpl_vsnprintf: %jd and the like), so its
# printf-like functions take GNU formats: check.h says so to mingw's gcc,
# which reads a plain printf format attribute as Microsoft's.
step "check"
src=$(fetch check)
mkdir "$src/build-w64"
quietly "$work/check.log" sh -c "cd '$src/build-w64' && \
../configure --host=$host --prefix='$prefix' --enable-static \
--disable-shared --disable-subunit --disable-build-docs && \
make -j$jobs SUBDIRS='lib src' && make SUBDIRS='lib src' install"
sed -i 's/-lcheck_pic/-lcheck/' "$prefix/lib/pkgconfig/check.pc"
sed -i 's/CK_ATTRIBUTE_FORMAT(printf,/CK_ATTRIBUTE_FORMAT(gnu_printf,/' \
	"$prefix/include/check.h"

# What configure will see, or the prefix is not complete.
versions=$(PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig" \
	pkg-config --modversion libuv sqlite3 check) ||
	die "pkg-config does not find the three libraries in $prefix"
echo "$record" >"$prefix/$stamp_name"
step "done: libuv, sqlite3, check $(echo "$versions" | paste -sd, -) in $prefix"
