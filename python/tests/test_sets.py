"""test_sets.py: lockbroker.acquire_all(locks, timeout=None), several
exclusive locks taken at once, all or none (liblockbroker's
lb_acquire_all; docs/SHARED.md "Several locks at once"), through the
session's daemon and in-process: a set taken is held whole (the real
Python lockfile, in another process, sees each lock held); while
lockfile holds one of the set, a try or a timeout raises lockfile's
exception naming that lock and leaves none of the others held; a set
that waits gets every lock once lockfile releases; an empty set, a lock
named twice and an object that is not a lock are refused; the sequence
is read once, into a tuple, before anything is taken.
"""
import os
import subprocess
import sys
import threading
import time

import pytest

import lockbroker
from conftest import CLASSES, WAIT

lockfile = pytest.importorskip("lockfile")

# Python's lockfile, in a child process: one lock object per path given,
# driven line by line ("acquire PATH [TIMEOUT]", "release PATH",
# "is_locked PATH"); each answer is ok, True, False or the exception's
# class name.
PEER = r"""
import sys, lockfile
from lockfile.linklockfile import LinkLockFile
from lockfile.mkdirlockfile import MkdirLockFile
cls = {"link": LinkLockFile, "mkdir": MkdirLockFile}[sys.argv[1]]
locks = {p: cls(p) for p in sys.argv[2:]}
for line in sys.stdin:
    verb, path, *arg = line.split()
    try:
        if verb == "acquire":
            r = locks[path].acquire(float(arg[0]) if arg else None)
        else:
            r = getattr(locks[path], verb)()
        print("ok" if r is None else r, flush=True)
    except lockfile.Error as e:
        print(type(e).__name__, flush=True)
"""

METHODS = ["link", "mkdir"]


class Peer:
    """lockfile's locks of method on paths, in a child process."""

    def __init__(self, method, paths):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEER, method] + list(paths),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, *words):
        """Sends a call; its answer."""
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(WAIT)


@pytest.fixture(params=METHODS)
def sets(request, transport, lockdir):
    """Three paths, our lock object of the method on each (with the
    transport), and lockfile's peer with its own on each: (paths, locks,
    peer).  Whatever ours still hold is released at the end."""
    m = request.param
    paths = [os.path.join(lockdir, n) for n in ("a", "b", "c")]
    locks = [CLASSES[m](p, transport=transport) for p in paths]
    peer = Peer(m, paths)
    try:
        yield paths, locks, peer
    finally:
        for lock in locks:
            if lock.i_am_locking():
                lock.release()
        for p in paths:
            if peer("i_am_locking", p) == "True":
                peer("release", p)
        peer.close()


def test_a_set_is_held_whole(sets):
    paths, locks, peer = sets
    assert lockbroker.acquire_all(locks, timeout=0) is None
    for lock, p in zip(locks, paths):
        assert lock.i_am_locking()
        assert peer("is_locked", p) == "True"
        assert peer("acquire", p, "0") == "AlreadyLocked"
    for lock in locks:
        lock.release()
    for p in paths:
        assert peer("is_locked", p) == "False"


def test_none_held_after_a_try_or_a_timeout(sets):
    paths, (a, b, c), peer = sets
    assert peer("acquire", paths[1], "0") == "ok"
    with pytest.raises(lockbroker.AlreadyLocked) as e:
        lockbroker.acquire_all([a, b, c], 0)
    assert paths[1] in str(e.value)
    assert isinstance(e.value, lockfile.AlreadyLocked)
    t0 = time.monotonic()
    with pytest.raises(lockbroker.LockTimeout) as e:
        lockbroker.acquire_all((c, b, a), timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    assert paths[1] in str(e.value)
    assert paths[0] not in str(e.value) and paths[2] not in str(e.value)
    assert isinstance(e.value, lockfile.LockTimeout)
    for lock, p in ((a, paths[0]), (c, paths[2])):
        assert not lock.i_am_locking() and not lock.is_locked()
        assert peer("is_locked", p) == "False"
    assert not b.i_am_locking()
    assert peer("i_am_locking", paths[1]) == "True"


def test_a_waiting_set_gets_all_once_freed(sets):
    paths, locks, peer = sets
    assert peer("acquire", paths[2], "0") == "ok"
    done, failed = threading.Event(), []

    def wait_all():
        try:
            lockbroker.acquire_all(iter(locks), timeout=WAIT)
        except BaseException as e:      # reported to the test
            failed.append(e)
        finally:
            done.set()

    t = threading.Thread(target=wait_all)
    t.start()
    try:
        time.sleep(0.5)
        assert not done.is_set()
        # It waits holding none of the set: lockfile takes a at once.
        assert peer("acquire", paths[0], "0") == "ok"
        assert peer("release", paths[0]) == "ok"
        assert peer("release", paths[2]) == "ok"
        assert done.wait(WAIT)
    finally:
        t.join(WAIT)
    assert failed == []
    for lock, p in zip(locks, paths):
        assert lock.i_am_locking()
        assert peer("acquire", p, "0") == "AlreadyLocked"


def test_refused(transport, lockdir):
    path = os.path.join(lockdir, "a")
    a = lockbroker.LockFile(path, transport=transport)
    again = lockbroker.LockFile(path, transport=transport)
    b = lockbroker.LockFile(os.path.join(lockdir, "b"),
                            transport=transport)
    with pytest.raises(ValueError, match="no locks"):
        lockbroker.acquire_all([])
    with pytest.raises(ValueError, match="no locks"):
        lockbroker.acquire_all(iter(()), timeout=0)
    with pytest.raises(ValueError, match="named twice"):
        lockbroker.acquire_all([a, b, a], 0)
    with pytest.raises(ValueError, match="named twice"):
        lockbroker.acquire_all([again, b, a])
    with pytest.raises(TypeError, match="not a lockbroker lock"):
        lockbroker.acquire_all([a, path])
    with pytest.raises(TypeError):
        lockbroker.acquire_all(a)
    with pytest.raises(TypeError):
        lockbroker.acquire_all([a, b], timeout="soon")
    for lock in (a, again, b):
        assert not lock.is_locked()
    # Held already by its owner: refused, and that hold stays.
    a.acquire(0)
    with pytest.raises(ValueError, match="already held"):
        lockbroker.acquire_all([b, again])
    assert a.i_am_locking() and not b.is_locked()
    a.release()
    assert not a.is_locked()


def test_more_than_256_refused(lockdir):
    locks = [lockbroker.LockFile(os.path.join(lockdir, "p%d" % i),
                                 transport="local") for i in range(257)]
    with pytest.raises(ValueError, match="256"):
        lockbroker.acquire_all(locks, 0)
    assert not any(lock.is_locked() for lock in locks)
    lockbroker.acquire_all(locks[:256], 0)
    assert all(lock.i_am_locking() for lock in locks[:256])
    for lock in locks[:256]:
        lock.release()


class Shifty(list):
    """A list that changes when it is read: the set must be read once."""

    def __iter__(self):
        items = list(super().__iter__())
        self.clear()
        return iter(items)


def test_the_sequence_is_read_once(transport, lockdir):
    a, b = (lockbroker.LockFile(os.path.join(lockdir, n),
                                transport=transport) for n in "ab")
    seq = Shifty([a, b])
    lockbroker.acquire_all(seq, 0)
    assert seq == []
    assert a.i_am_locking() and b.i_am_locking()
    a.release()
    b.release()
