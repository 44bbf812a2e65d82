"""test_pip.py: pip builds and installs the package from the source's
pyproject.toml and setup.py into a virtualenv, against an installed
liblockbroker found with pkg-config, and the installed package imports,
locks, and carries its type hints.

The library is this build's, installed into a private DESTDIR (make
install), which pkg-config is pointed at (PKG_CONFIG_PATH and
PKG_CONFIG_SYSROOT_DIR).  pip builds a copy of the package's sources
(never in the source tree, which may be read-only), offline
(--no-build-isolation, --no-index), with the system's setuptools seen
through a venv made with --system-site-packages.  Skipped, saying why,
without the venv module, pip or setuptools (Debian: python3-venv,
python3-pip, python3-setuptools).
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILDDIR, SRCDIR


def need(module, package):
    """Skips unless this interpreter has module (found, not imported:
    setuptools must not be imported after distutils)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip("%s is missing: install %s" % (module, package))


def test_pip_install_into_a_venv(tmp_path):
    need("venv", "python3-venv")
    need("pip", "python3-pip")
    need("setuptools", "python3-setuptools")
    root = tmp_path / "root"
    r = subprocess.run(["make", "-s", "-C", BUILDDIR, "install",
                        "DESTDIR=%s" % root], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
           if f == "lockbroker.pc"]
    assert len(pcs) == 1, pcs

    src = tmp_path / "src"
    for f in ("pyproject.toml", "setup.py", "configure.ac"):
        (src / os.path.dirname(f)).mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(SRCDIR, f), src / f)
    for d in ("python/ext", "python/lockbroker"):
        shutil.copytree(os.path.join(SRCDIR, d), src / d)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    "--without-pip", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
               PKG_CONFIG_SYSROOT_DIR=str(root), PIP_NO_INPUT="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation",
                        "--no-index", "--no-deps", str(src)], env=env,
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    lock = tmp_path / "a"
    r = subprocess.run([py, "-c", "import os, sys, lockbroker\n"
                        "d = os.path.dirname(lockbroker.__file__)\n"
                        "assert d.startswith(sys.prefix), d\n"
                        "assert os.path.isfile(os.path.join(d, 'py.typed'))\n"
                        "assert os.path.isfile(os.path.join(d, "
                        "'_lockbroker.pyi'))\n"
                        "l = lockbroker.LockFile(sys.argv[1], "
                        "transport='local')\n"
                        "l.acquire(0)\nprint(l.i_am_locking())\n"
                        "l.release()\nprint(l.is_locked())\n", str(lock)],
                       env=env, cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]
    r = subprocess.run(["ldd", str(next((venv).rglob("_lockbroker*.so")))],
                       capture_output=True, text=True, timeout=60)
    assert str(root) in r.stdout, r.stdout     # the installed library


def test_pip_names_a_missing_library(tmp_path):
    """Without liblockbroker where pkg-config looks, the build stops
    saying what to install and where pkg-config looks."""
    need("setuptools", "python3-setuptools")
    env = dict(os.environ, PKG_CONFIG_PATH=str(tmp_path),
               PKG_CONFIG_LIBDIR=str(tmp_path))
    r = subprocess.run([sys.executable, os.path.join(SRCDIR, "setup.py"),
                        "--version"], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "liblockbroker" in r.stderr and "PKG_CONFIG_PATH" in r.stderr, \
        r.stderr
