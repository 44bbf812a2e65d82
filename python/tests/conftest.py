"""conftest.py: what the package's suites share.

The package under test is the one make check builds (python/inplace/ of
the build tree, LB_BUILDDIR), never one installed elsewhere.  The daemon
is the built lockbrokerd, started once for the session in a private
directory (tests/lbdaemon.py), its socket in LOCKBROKER_SOCKET: the
library keeps one connection per process, so one daemon serves every
test of this process; a test that needs another daemon, or none, runs a
child process.
"""
import os
import signal
import subprocess
import sys
import tempfile
import shutil

import pytest

# The suites send SIGINT to child processes and expect KeyboardInterrupt
# there (test_cancel.py).  A process started with SIGINT ignored (a
# command run in the background by a shell without job control, as a
# `make check &` from a script is) passes that on through exec to every
# child, and a Python started so never turns SIGINT into
# KeyboardInterrupt: the children would be deaf to it.  Handled here, it
# reaches the children as the default disposition again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LB_SRCDIR",
                        os.path.dirname(os.path.dirname(HERE)))
BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
INPLACE = os.path.join(BUILDDIR, "python", "inplace")

sys.path.insert(0, INPLACE)
sys.path.insert(0, os.path.join(SRCDIR, "tests"))

import lockbroker  # noqa: E402
from lbdaemon import Daemon  # noqa: E402

if not os.path.dirname(lockbroker.__file__).startswith(INPLACE):
    raise ImportError("lockbroker came from %s, not the build tree's %s"
                      % (lockbroker.__file__, INPLACE))

# Every method, by the class lockfile gives it.
CLASSES = {
    "link": lockbroker.linklockfile.LinkLockFile,
    "symlink": lockbroker.symlinklockfile.SymlinkLockFile,
    "mkdir": lockbroker.mkdirlockfile.MkdirLockFile,
    "pidfile": lockbroker.pidlockfile.PIDLockFile,
    "sqlite": lockbroker.sqlitelockfile.SQLiteLockFile,
}

WAIT = 15               # upper bound on any single wait, to catch hangs


@pytest.fixture(scope="session")
def daemon():
    """lockbrokerd, for the whole session; LOCKBROKER_SOCKET names it."""
    d = tempfile.mkdtemp(prefix="lbpython.")
    os.chmod(d, 0o755)
    dmn = Daemon(d)
    old = os.environ.get("LOCKBROKER_SOCKET")
    try:
        dmn.start()
        os.environ["LOCKBROKER_SOCKET"] = dmn.socket
        yield dmn
    finally:
        dmn.stop()
        if old is None:
            os.environ.pop("LOCKBROKER_SOCKET", None)
        else:
            os.environ["LOCKBROKER_SOCKET"] = old
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["broker", "local"])
def transport(request):
    """Each transport in turn: through the session's daemon, and
    in-process."""
    if request.param == "broker":
        request.getfixturevalue("daemon")
    return request.param


@pytest.fixture(params=sorted(CLASSES))
def method(request):
    """Each method's name in turn (CLASSES gives its class)."""
    return request.param


@pytest.fixture
def lockdir():
    """A private directory for lock paths, empty at the end (no stray
    artefacts), then removed."""
    d = tempfile.mkdtemp(prefix="lbpy.")
    os.chmod(d, 0o755)
    yield d
    try:
        left = [n for n in os.listdir(d) if n != ".lockbroker.sqlite"]
        assert left == [], "left behind in the lock directory: %r" % left
    finally:
        shutil.rmtree(d, ignore_errors=True)


def python_child(script, env=None, timeout=60):
    """Runs script in a child Python that imports the built package;
    its CompletedProcess (text)."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = INPLACE
    return subprocess.run([sys.executable, "-c", script], env=e,
                          capture_output=True, text=True, timeout=timeout)
