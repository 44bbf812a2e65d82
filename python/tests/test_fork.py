"""test_fork.py: lock objects across os.fork(), through the daemon and
in-process, for every method.

A forked child is a new owner: it neither holds, nor releases, nor
claims its parent's locks through the objects it inherited, it takes
locks of its own (the library makes it a connection of its own to the
daemon), and the parent's holds stay as they were.  Each child runs a
function and reports what it saw through a pipe, then leaves with
os._exit, whatever happened.
"""
import json
import os
import threading
import time

import pytest

import lockbroker
from conftest import CLASSES, WAIT


def in_child(fn):
    """Runs fn() in a forked child; what it returned (JSON), or raises
    AssertionError with the child's failure."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            try:
                out = {"ok": fn()}
            except BaseException as e:      # reported to the parent
                out = {"error": "%s: %s" % (type(e).__name__, e)}
            os.write(w, json.dumps(out).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + WAIT * 2
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert time.monotonic() < deadline, "the child took too long"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    out = json.loads(b"".join(chunks))
    assert "error" not in out, out["error"]
    return out["ok"]


def outcome(call):
    """call()'s result, or the name of the lockbroker exception it
    raised."""
    try:
        return call()
    except lockbroker.Error as e:
        return type(e).__name__


def test_child_leaves_the_parents_hold(method, transport, lockdir):
    """The child's inherited object neither holds, takes nor releases
    the parent's lock, and names the child once used (unique_name); the
    parent's hold is unchanged after."""
    path = os.path.join(lockdir, "a")
    lock = CLASSES[method](path, transport=transport)
    lock.acquire(0)
    parents_name = lock.unique_name

    def child():
        return {"locked": lock.is_locked(),
                "name": method == "pidfile" or     # its name: the path
                str(os.getpid()) in lock.unique_name and
                lock.unique_name != parents_name,
                "mine": lock.i_am_locking(),
                "acquire": outcome(lambda: lock.acquire(0)),
                "release": outcome(lock.release),
                "break_stale": outcome(lambda: CLASSES[method](
                    path, transport=transport,
                    break_stale=True).acquire(0))}

    seen = in_child(child)
    assert seen == {"locked": True, "name": True, "mine": False,
                    "acquire": "AlreadyLocked", "release": "NotMyLock",
                    "break_stale": "AlreadyLocked"}
    assert lock.i_am_locking()
    if transport == "broker":
        assert lock.holder().pid == os.getpid()
    lock.release()
    assert not lock.is_locked()


def test_child_takes_its_own_locks(method, transport, lockdir):
    """The child takes and releases locks of its own, with the inherited
    object and new ones (through the daemon: on a connection of its own,
    the daemon naming the child as holder), while the parent holds
    another lock; a lock the child holds excludes the parent."""
    held = os.path.join(lockdir, "held")
    mine = os.path.join(lockdir, "child")
    parent = CLASSES[method](held, transport=transport)
    parent.acquire(0)
    inherited = CLASSES[method](mine, transport=transport)

    def child():
        out = {}
        inherited.acquire(0)
        out["mine"] = inherited.i_am_locking()
        h = inherited.holder()
        out["holder"] = h.pid == os.getpid() if h.pid else "unknown"
        out["broker"] = h.broker
        inherited.release()
        fresh = CLASSES[method](mine, transport=transport)
        with fresh:
            out["fresh"] = fresh.i_am_locking()
        out["left"] = fresh.is_locked()
        return out

    seen = in_child(child)
    assert seen["mine"] and seen["fresh"] and not seen["left"]
    assert seen["holder"] in (True, "unknown")
    assert seen["broker"] == (transport == "broker")
    if transport == "broker":
        assert seen["holder"] is True
    assert parent.i_am_locking()
    inherited.acquire(0)
    inherited.release()
    parent.release()


def test_child_of_a_waiting_process(daemon, lockdir):
    """A fork while another thread of the parent waits at the daemon for
    a lock: the child takes locks of its own at once (nothing of the
    library is left locked in it), its exit takes nothing from the
    parent, and the parent's waiter is granted when the holder lets
    go."""
    path = os.path.join(lockdir, "a")
    other = os.path.join(lockdir, "b")
    holder = lockbroker.LockFile(path, transport="broker")
    holder.acquire(0)
    granted = threading.Event()

    def wait():
        w = lockbroker.LockFile(path, transport="broker")
        w.acquire(WAIT)
        granted.set()
        w.release()

    t = threading.Thread(target=wait)
    t.start()
    deadline = time.monotonic() + WAIT
    while holder.holder().waiters != 1:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.01)

    def child():
        lock = lockbroker.LockFile(other, transport="broker")
        lock.acquire(WAIT)
        ok = lock.i_am_locking()
        lock.release()
        return ok

    assert in_child(child) is True
    assert not granted.is_set()
    assert holder.holder().waiters == 1
    holder.release()
    t.join(WAIT)
    assert granted.is_set()


def test_child_exit_keeps_the_parents_locks(transport, lockdir):
    """A child that exits without a word (os._exit) or is killed takes
    nothing with it: the parent's hold through the daemon is not its
    connection's."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    lock.acquire(0)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    pid = os.fork()
    if pid == 0:
        time.sleep(WAIT)
        os._exit(0)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert lock.i_am_locking()
    assert lockbroker.LockFile(path, transport=transport,
                               threaded=True).is_locked()
    lock.release()


def test_fork_while_another_thread_uses_the_object(transport, lockdir):
    """A fork while another thread is inside a call on the same object
    (holding the handle's mutex for a step): the child's calls on the
    object still answer, each fork after each."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            lock.is_locked()

    t = threading.Thread(target=hammer)
    t.start()
    hung, failed = 0, []
    try:
        for _ in range(40):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    lock.acquire(0)
                    code = 0 if lock.i_am_locking() else 2
                    lock.release()
                finally:
                    os._exit(code)
            deadline = time.monotonic() + WAIT
            while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.005)
            if hung:
                break
            if done[1] != 0:
                failed.append(done[1])
    finally:
        stop.set()
        t.join(WAIT)
    assert hung == 0, "a child hung in its first call on the object"
    assert failed == []
    assert not lock.is_locked()


def test_fork_inside_an_inprocess_sqlite_step(lockdir):
    """Forks, many times, while another thread takes and releases a
    sqlite-method lock in-process, again and again (so that most forks
    land inside one of its sqlite steps): each child then takes and
    releases a sqlite lock of its own in the same database (while it
    runs the thread pauses between its rounds, not to starve it).  The library
    lets no fork happen inside its sqlite step, so sqlite's process-wide
    state (its open files and their locks, its mutexes) is never copied
    half-way through one."""
    cls = CLASSES["sqlite"]
    busy = cls(os.path.join(lockdir, "busy"), transport="local")
    stop = threading.Event()
    quiet = threading.Event()   # set while a child runs
    rounds = [0]

    def hammer():
        while not stop.is_set():
            if quiet.is_set():  # the child's turn: no starving it
                time.sleep(0.001)
                continue
            busy.acquire(WAIT)
            busy.release()
            rounds[0] += 1

    t = threading.Thread(target=hammer)
    t.start()
    hung, failed = 0, []
    try:
        deadline = time.monotonic() + WAIT
        while rounds[0] == 0:
            assert time.monotonic() < deadline, "the thread never locked"
            time.sleep(0.001)
        for i in range(150):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    own = cls(os.path.join(lockdir, "child%d" % i),
                              transport="local")
                    own.acquire(WAIT)
                    code = 0 if own.i_am_locking() else 2
                    own.release()
                    code = code or (3 if own.is_locked() else 0)
                finally:
                    os._exit(code)
            quiet.set()
            deadline = time.monotonic() + WAIT * 2
            while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.002)
            quiet.clear()
            if hung:
                break
            if done[1] != 0:
                failed.append(done[1])
    finally:
        stop.set()
        t.join(WAIT * 2)
    assert not t.is_alive(), "the looping thread hung"
    assert hung == 0, "a child hung in its sqlite lock"
    assert failed == [], failed
    assert rounds[0] > 0
    assert not busy.is_locked()
