#!/bin/sh
# install-deps.sh: installs, from Debian's archive, what building and testing
# lockbroker needs.  Run as root, or as a user who may use sudo.
set -e

packages="build-essential autoconf automake libtool pkg-config \
libuv1-dev libsqlite3-dev check python3 python3-lockfile \
python3-dev python3-pytest python3-mypy python3-venv python3-pip \
python3-setuptools \
systemd strace gdb socat man-db groff-base \
gnuplot-nox python3-filelock python3-fasteners \
postgresql python3-psycopg2 redis-server python3-redis etcd-server \
etcd-client libcurl4-openssl-dev libjansson-dev \
clang libclang-rt-dev valgrind"

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	echo "install-deps.sh: run as root or install sudo" >&2
	exit 1
fi

missing=
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	$as_root apt-get update -q
	DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q $missing
fi
