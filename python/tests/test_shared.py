"""test_shared.py: shared locks through the package (acquire's
shared=True, upgrade(), downgrade(); docs/SHARED.md), with the session's
daemon: readers hold the lock together and keep writers out, and a
writer keeps readers out, for every method the daemon shares; holder()
says the mode and how many hold it; an upgrade waits for the other
readers, a downgrade lets readers in; errors are the package's
exceptions with the library's reasons; without a daemon a shared acquire
raises LockFailed and takes nothing (never an exclusive lock instead);
Python's lockfile sees a lock held shared as held.

Each owner is a thread that made its lock object and lives until the
test ends (threaded=True, so a separate owner for the pid file method
too); its methods are called from the test's thread.
"""
import contextlib
import os
import signal
import threading

import pytest

import lockbroker
from conftest import CLASSES, WAIT, python_child

# The methods the daemon shares (not sqlite: its rows have no readers).
SHARED_METHODS = ["link", "symlink", "mkdir", "pidfile"]


@contextlib.contextmanager
def owners(method, path, n, transport="broker"):
    """n lock objects of method's class on path, each made by a thread
    of its own (each its own owner), which lives on until the with block
    ends; whatever they still hold is released then."""
    made, ready, end = [], threading.Event(), threading.Event()

    def run():
        try:
            made.append(CLASSES[method](path, threaded=True,
                                        transport=transport))
        finally:
            ready.set()
        end.wait(WAIT * 8)

    threads = []
    try:
        for _ in range(n):
            ready.clear()
            t = threading.Thread(target=run)
            t.start()
            threads.append(t)
            assert ready.wait(WAIT)
        assert len(made) == n
        yield made
    finally:
        for lock in made:
            if lock.i_am_locking():
                lock.release()
        end.set()
        for t in threads:
            t.join(WAIT)


@pytest.mark.parametrize("method", SHARED_METHODS)
def test_readers_share_and_exclude_writers(method, daemon, lockdir):
    path = os.path.join(lockdir, "a")
    with owners(method, path, 3) as (a, b, w):
        a.acquire(0, shared=True)
        b.acquire(timeout=0, shared=True)
        assert a.i_am_locking() and b.i_am_locking()
        assert not w.i_am_locking() and w.is_locked()
        with pytest.raises(lockbroker.AlreadyLocked):
            w.acquire(0)
        h = w.holder()
        assert h.broker and h.shared and h.holders == 2
        assert h.pid == os.getpid()
        # Another reader stays out of an upgrade's way: it waits.
        with pytest.raises(lockbroker.AlreadyLocked):
            a.upgrade(0)
        with pytest.raises(lockbroker.LockTimeout):
            a.upgrade(0.2)
        assert a.holder().shared
        b.release()
        assert w.holder().holders == 1
        # Alone, it upgrades at once: a writer, no readers now.
        a.upgrade(0)
        h = w.holder()
        assert not h.shared and h.holders == 1
        with pytest.raises(lockbroker.AlreadyLocked):
            b.acquire(0, shared=True)
        a.upgrade()                         # exclusive already: nothing
        # Downgraded: readers again.
        a.downgrade()
        b.acquire(0, shared=True)
        assert w.holder().shared and w.holder().holders == 2
        a.downgrade()                       # shared already: nothing
        a.release()
        b.release()
        assert not w.is_locked()
        # A writer keeps readers out.
        w.acquire(0)
        with pytest.raises(lockbroker.AlreadyLocked):
            a.acquire(0, shared=True)
        assert not w.holder().shared
        w.release()


def test_upgrade_waits_for_the_other_reader(daemon, lockdir):
    path = os.path.join(lockdir, "a")
    with owners("link", path, 2) as (a, b):
        a.acquire(0, shared=True)
        b.acquire(0, shared=True)
        failed = []

        def upgrade():
            try:
                a.upgrade(WAIT)
            except BaseException as e:      # reported to the test
                failed.append(e)

        t = threading.Thread(target=upgrade)
        t.start()
        t.join(0.3)
        assert t.is_alive(), "upgraded beside a reader: %r" % failed
        b.release()
        t.join(WAIT)
        assert not t.is_alive() and failed == []
        h = b.holder()
        assert not h.shared and h.holders == 1
        with pytest.raises(lockbroker.AlreadyLocked):
            b.acquire(0, shared=True)
        a.release()


def test_shared_acquire_waits_and_is_canceled(daemon, lockdir):
    """A shared acquire waits for a writer and is granted at its
    release; cancel() ends one that waits, holding nothing."""
    path = os.path.join(lockdir, "a")
    with owners("link", path, 2) as (w, r):
        w.acquire(0)
        outcome = []

        def read():
            try:
                r.acquire(WAIT, shared=True)
                outcome.append("held")
            except lockbroker.LockCanceled:
                outcome.append("canceled")

        t = threading.Thread(target=read)
        t.start()
        deadline = WAIT * 10
        while w.holder().waiters != 1 and deadline > 0:
            deadline -= 1
            t.join(0.1)
        assert w.holder().waiters == 1
        r.cancel()
        t.join(WAIT)
        assert outcome == ["canceled"] and not r.i_am_locking()
        t = threading.Thread(target=read)
        t.start()
        while w.holder().waiters != 1:
            t.join(0.05)
            assert t.is_alive()
        w.release()
        t.join(WAIT)
        assert outcome == ["canceled", "held"]
        assert r.holder().shared
        r.release()


def test_errors(daemon, lockdir):
    path = os.path.join(lockdir, "a")
    with owners("link", path, 2) as (a, b):
        with pytest.raises(lockbroker.NotLocked):
            a.upgrade(0)
        with pytest.raises(lockbroker.NotLocked):
            a.downgrade()
        a.acquire(0, shared=True)
        a.acquire(0, shared=True)           # held already: as it is
        assert a.holder().holders == 1
        # An exclusive acquire does not change a shared hold's mode.
        with pytest.raises(lockbroker.LockFailed) as e:
            a.acquire(0)
        assert "UPGRADE" in str(e.value) or "upgrade" in str(e.value)
        assert a.holder().shared
        with pytest.raises(lockbroker.NotMyLock):
            b.upgrade(0)
        with pytest.raises(lockbroker.NotMyLock):
            b.downgrade()
        a.upgrade(0)
        a.acquire(0, shared=True)           # exclusive, and stays so
        assert not a.holder().shared
        with pytest.raises(TypeError):
            a.upgrade("soon")
        with pytest.raises(ValueError):
            a.upgrade(float("nan"))
        with pytest.raises(TypeError):
            a.downgrade(1)
        with pytest.raises(TypeError):
            b.acquire(0, True)              # shared is keyword-only
        a.release()
    # Not for the sqlite method: refused, with the daemon's reason (the
    # library passes on its EINVAL, liblockbroker(3) says LB_EFAILED:
    # either is taken here), never taken exclusive instead.
    sqlite = os.path.join(lockdir, "s")
    with owners("sqlite", sqlite, 1) as (s,):
        with pytest.raises((lockbroker.LockFailed, ValueError)) as e:
            s.acquire(0, shared=True)
        assert "sqlite" in str(e.value)
        assert not s.is_locked()


def test_shared_needs_the_daemon(lockdir):
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport="local")
    with pytest.raises(lockbroker.LockFailed) as e:
        lock.acquire(0, shared=True)
    assert "need the daemon" in str(e.value)
    assert not lock.is_locked()
    with pytest.raises(lockbroker.LockFailed):
        lock.upgrade(0)
    lock.acquire(0)
    with pytest.raises(lockbroker.LockFailed):
        lock.downgrade()
    assert lock.i_am_locking()
    lock.release()


def test_shared_with_no_daemon_answering(lockdir):
    """transport 'auto' with no daemon: LockFailed, nothing taken."""
    script = (
        "import lockbroker, sys\n"
        "lock = lockbroker.LockFile(sys.argv[1])\n"
        "try:\n"
        "    lock.acquire(0, shared=True)\n"
        "    print('held')\n"
        "except lockbroker.LockFailed as e:\n"
        "    print('failed:', e)\n"
        "print('locked' if lock.is_locked() else 'free')\n")
    env = dict(os.environ, LOCKBROKER_SOCKET=os.path.join(lockdir, "none"))
    r = python_child(script.replace("sys.argv[1]",
                                    repr(os.path.join(lockdir, "a"))),
                     env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("failed:") and "need the daemon" in lines[0]
    assert lines[1] == "free"


def test_holder_views(daemon, lockdir):
    """The in-process view of a lock held shared: its artefact, no
    mode, no count; through the broker, the artefact's reader."""
    path = os.path.join(lockdir, "a")
    with owners("link", path, 2) as (a, b):
        a.acquire(0, shared=True)
        b.acquire(0, shared=True)
        local = lockbroker.LockFile(path, transport="local")
        h = local.holder()
        assert h is not None and not h.broker
        assert not h.shared and h.holders is None
        assert h.pid == os.getpid()
        h = b.holder()
        assert h.broker and h.shared and h.holders == 2
        assert h.unique_name == local.holder().unique_name
        a.release()
        b.release()
        assert b.holder() is None


def test_lockfile_sees_a_shared_lock_held(daemon, lockdir):
    lockfile = pytest.importorskip("lockfile")
    import lockfile.linklockfile
    path = os.path.join(lockdir, "a")
    theirs = lockfile.linklockfile.LinkLockFile(path, threaded=True)
    with owners("link", path, 2) as (a, b):
        a.acquire(0, shared=True)
        b.acquire(0, shared=True)
        assert theirs.is_locked()
        with pytest.raises(lockfile.AlreadyLocked):
            theirs.acquire(0)
        a.release()
        assert theirs.is_locked()           # the other reader's now
        b.release()
        assert not theirs.is_locked()


class Raised(Exception):
    """What the test's signal handler raises."""


def raise_raised(signum, frame):
    raise Raised("signal %d" % signum)


def test_signal_handler_exception_ends_an_upgrade(daemon, lockdir):
    """A signal handler that raises (Ctrl-C's KeyboardInterrupt, here
    SIGALRM's) ends a waiting upgrade with its exception: the hold stays
    shared, and the upgrade leaves the daemon's queue (the other reader
    gone, a third joins at once)."""
    path = os.path.join(lockdir, "a")
    old = signal.signal(signal.SIGALRM, raise_raised)
    try:
        with owners("link", path, 3) as (a, b, c):
            a.acquire(0, shared=True)
            b.acquire(0, shared=True)
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(Raised):
                a.upgrade(WAIT * 2)
            assert a.i_am_locking() and a.holder().shared
            b.release()
            c.acquire(0, shared=True)
            assert c.holder().holders == 2
            c.release()
            a.release()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_signal_handler_exception_leaves_an_exclusive_hold_exclusive(
        daemon, lockdir):
    """A signal handler that raises (Ctrl-C) while upgrade() of a hold
    taken exclusive waits for the daemon's answer (a busy daemon: here
    stopped for 0.6 s, past the interrupt hook's 50 ms) raises its
    exception and leaves the hold exclusive: an upgrade is never undone
    by a downgrade, which would let a reader in beside an owner that
    goes on writing (a review found the extension did so)."""
    path = os.path.join(lockdir, "a")
    old = signal.signal(signal.SIGALRM, raise_raised)
    try:
        with owners("link", path, 2) as (a, b):
            a.acquire(0)                    # exclusive
            assert not a.holder().shared
            daemon.pause()                  # a slow answer
            resume = threading.Timer(
                0.6, os.kill, (daemon.proc.pid, signal.SIGCONT))
            resume.start()
            try:
                signal.setitimer(signal.ITIMER_REAL, 0.2)
                with pytest.raises(Raised):
                    a.upgrade(WAIT)
            finally:
                resume.join()
                os.kill(daemon.proc.pid, signal.SIGCONT)
            assert a.i_am_locking()
            assert not a.holder().shared, \
                "upgrade() interrupted turned an exclusive hold shared"
            with pytest.raises(lockbroker.AlreadyLocked):
                b.acquire(0, shared=True)   # a reader beside the writer
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
