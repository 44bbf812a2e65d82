"""test_deadlock.py: a cycle of waits through the package (docs/
DEADLOCK.md): the acquire that would close it raises Deadlock, a
LockError (lockfile's LockError too, where lockfile is installed), with
the daemon's reason naming each lock; the other waits go on and are
served once the locks come free.

Each owner is a thread that made its lock objects (threaded=True) and
lives until the test ends; their methods are called from other threads.
"""
import os
import threading
import time

import lockfile

import lockbroker
from conftest import CLASSES, WAIT


def made_by_one_thread(*paths):
    """Lock objects on paths, all made by one thread (one owner), which
    lives on until the returned event is set."""
    made, ready, end = [], threading.Event(), threading.Event()

    def run():
        made.extend(CLASSES["link"](p, threaded=True, transport="broker")
                    for p in paths)
        ready.set()
        end.wait(WAIT * 4)

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(WAIT)
    return made, end


def waiters(lock):
    """How many wait for lock at the daemon."""
    return lock.holder().waiters if lock.holder() is not None else 0


def test_cycle_raises_deadlock(daemon, lockdir):
    x, y = os.path.join(lockdir, "x"), os.path.join(lockdir, "y")
    (ax, ay), a_end = made_by_one_thread(x, y)
    (bx, by), b_end = made_by_one_thread(x, y)
    got = {}
    try:
        ax.acquire(timeout=0)
        by.acquire(timeout=0)

        def a_waits():
            try:
                ay.acquire(timeout=WAIT)
                got["a"] = "granted"
            except lockbroker.Error as e:
                got["a"] = e

        t = threading.Thread(target=a_waits)
        t.start()
        deadline = time.monotonic() + WAIT
        while waiters(by) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            bx.acquire(timeout=WAIT)
        except lockbroker.Deadlock as e:
            err = e
        else:
            raise AssertionError("a cycle of waits was granted")
        assert isinstance(err, lockbroker.LockError)
        assert isinstance(err, lockfile.LockError)
        assert x in str(err) and y in str(err), str(err)
        assert not bx.i_am_locking()
        by.release()
        t.join(WAIT)
        assert got.get("a") == "granted", got
    finally:
        for lock in (ay, ax, bx, by):
            if lock.i_am_locking():
                lock.release()
        a_end.set()
        b_end.set()
