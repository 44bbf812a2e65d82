"""setup.py: the extension module of the Python package lockbroker, for
pip (pyproject.toml holds the rest).  It is built against the installed
liblockbroker that pkg-config finds (lockbroker.pc: set PKG_CONFIG_PATH
for a prefix pkg-config does not search), which must be this source's
version or later; the module records the library's directory as its
run path, so that a library in a private prefix is found at import.  The
version is the project's, from configure.ac."""
import os
import re
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    """The project's version, from configure.ac's AC_INIT."""
    with open(os.path.join(HERE, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[lockbroker\], \[([0-9.]+)\]", f.read())
    if m is None:
        raise SystemExit("setup.py: no version in configure.ac's AC_INIT")
    return m.group(1)


def pkg_config(*args):
    """pkg-config's words for liblockbroker, or SystemExit saying what is
    missing."""
    cmd = ["pkg-config"] + list(args) + ["lockbroker"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit("setup.py: pkg-config is missing (Debian: "
                         "pkg-config); it finds liblockbroker")
    if r.returncode != 0:
        raise SystemExit(
            "setup.py: liblockbroker %s or later not found by pkg-config "
            "(%s): install lockbroker (./configure && make install), and "
            "set PKG_CONFIG_PATH to PREFIX/lib/pkgconfig when pkg-config "
            "does not search its prefix" % (VERSION, r.stderr.strip()))
    return r.stdout.split()


VERSION = version()
pkg_config("--atleast-version=" + VERSION)
cflags = pkg_config("--cflags")
libs = pkg_config("--libs")
libdirs = [w[2:] for w in libs if w.startswith("-L")]

setup(
    version=VERSION,
    ext_modules=[Extension(
        "lockbroker._lockbroker",
        sources=["python/ext/module.c", "python/ext/args.c",
                 "python/ext/lockobject.c", "python/ext/holder.c",
                 "python/ext/cluster.c", "python/ext/lost.c",
                 "python/ext/acquire_all.c"],
        depends=["python/ext/ext.h"],
        include_dirs=[w[2:] for w in cflags if w.startswith("-I")],
        extra_compile_args=[w for w in cflags if not w.startswith("-I")],
        library_dirs=libdirs,
        libraries=[w[2:] for w in libs if w.startswith("-l")],
        runtime_library_dirs=libdirs,
    )],
)
