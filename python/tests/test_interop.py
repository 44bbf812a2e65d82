"""test_interop.py: lockbroker and the real Python lockfile (Debian's
python3-lockfile) on the same paths, both directions, for the link,
symlink, mkdir and pidfile methods, through the daemon and in-process;
and lockbroker with the lockbroker command.

lockfile runs in a child process (a pid file names a process, so a peer
in this one would not be another holder), driven a line at a time.  The
sqlite method is left out: lockfile's SQLiteLockFile keeps its database
per process, so there is nothing to share.
"""
import os
import subprocess
import sys
import threading
import time

import pytest

import lockbroker
from conftest import BUILDDIR, CLASSES, WAIT

lockfile = pytest.importorskip("lockfile")

PEER = r"""
import sys, lockfile
from lockfile.linklockfile import LinkLockFile
from lockfile.symlinklockfile import SymlinkLockFile
from lockfile.mkdirlockfile import MkdirLockFile
from lockfile.pidlockfile import PIDLockFile
cls = {"link": LinkLockFile, "symlink": SymlinkLockFile,
       "mkdir": MkdirLockFile, "pidfile": PIDLockFile}[sys.argv[1]]
lock = cls(sys.argv[2])
for line in sys.stdin:
    verb, *arg = line.split()
    try:
        if verb == "acquire":
            r = lock.acquire(float(arg[0]) if arg else None)
        else:
            r = getattr(lock, verb)()
        print("ok" if r is None else r, flush=True)
    except lockfile.Error as e:
        print(type(e).__name__, flush=True)
"""

METHODS = ["link", "symlink", "mkdir", "pidfile"]


class Peer:
    """lockfile's lock of method on path, in a child process."""

    def __init__(self, method, path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEER, method, path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, *words):
        """Sends a call; its answer: ok, True, False or the exception's
        class name."""
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(WAIT)


@pytest.fixture
def peer():
    peers = []

    def make(method, path):
        p = Peer(method, path)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


@pytest.fixture(params=METHODS)
def both(request, transport, lockdir, peer):
    """One path's lock of each method in turn, lockbroker's (with the
    transport) and lockfile's: (method, ours, theirs)."""
    path = os.path.join(lockdir, "a")
    m = request.param
    return m, CLASSES[m](path, transport=transport), peer(m, path)


def test_lockbroker_holds_lockfile_waits(both):
    m, lock, theirs = both
    lock.acquire()
    assert theirs("is_locked") == "True"
    assert theirs("acquire", "0") == "AlreadyLocked"
    assert theirs("acquire", "0.3") == "LockTimeout"
    assert theirs("release") in ("NotMyLock", "NotLocked")
    assert lock.i_am_locking()
    lock.release()
    assert theirs("is_locked") == "False"
    assert theirs("acquire", "0") == "ok"
    assert lock.is_locked() and not lock.i_am_locking()
    assert theirs("release") == "ok"


def test_lockfile_holds_lockbroker_waits(both):
    m, lock, theirs = both
    assert theirs("acquire") == "ok"
    assert lock.is_locked() and not lock.i_am_locking()
    with pytest.raises(lockfile.AlreadyLocked):     # lockfile's class
        lock.acquire(0)
    with pytest.raises(lockbroker.LockTimeout):
        lock.acquire(0.3)
    with pytest.raises(lockbroker.NotMyLock):
        lock.release()
    h = lock.holder()
    assert h is not None and h.host is not None
    if m == "pidfile":          # lockfile's other names run the pid and
        assert h.pid == theirs.proc.pid     # a hash together
        assert h.liveness == "alive"
    # Handoff: lockbroker waits, lockfile releases.
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(WAIT)))
    t.start()
    time.sleep(0.2)
    assert got == []
    assert theirs("release") == "ok"
    t.join(WAIT)
    assert got == [None]
    assert lock.i_am_locking()
    assert theirs("acquire", "0") == "AlreadyLocked"
    lock.release()


def test_breaking_across(both):
    m, lock, theirs = both
    # lockbroker breaks lockfile's lock: lockfile's release fails.
    assert theirs("acquire") == "ok"
    lock.break_lock()
    assert not lock.is_locked()
    assert theirs("release") in ("NotLocked", "NotMyLock")
    # lockfile breaks lockbroker's: lockbroker's release says NotLocked.
    lock.acquire()
    assert theirs("break_lock") == "ok"
    assert theirs("is_locked") == "False"
    with pytest.raises(lockfile.NotLocked):
        lock.release()


def test_the_command_sees_python_holds(transport, lockdir):
    """lockbroker lock -n fails while Python holds the lock (either
    transport) and runs its command once Python has released it."""
    cmd = os.path.join(BUILDDIR, "tools", "lockbroker")
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    lock.acquire()
    r = subprocess.run([cmd, "lock", "-n", path, "--", "true"],
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 1, r.stderr
    lock.release()
    r = subprocess.run([cmd, "lock", "-n", path, "--", "true"],
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr


def test_python_sees_the_commands_holds(daemon, lockdir):
    """A hold the command keeps for a process (through the daemon) is
    held for lockbroker, which gets it once released."""
    cmd = os.path.join(BUILDDIR, "tools", "lockbroker")
    path = os.path.join(lockdir, "a")
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        r = subprocess.run([cmd, "acquire", "--pid", str(sleeper.pid),
                            path], capture_output=True, text=True,
                           timeout=WAIT)
        assert r.returncode == 0, r.stderr
        lock = lockbroker.LockFile(path, transport="broker")
        assert lock.holder().pid == sleeper.pid
        with pytest.raises(lockbroker.AlreadyLocked):
            lock.acquire(0)
        sleeper.kill()
        sleeper.wait()
        lock.acquire(WAIT)      # the daemon frees the dead process's hold
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()
