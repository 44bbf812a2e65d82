"""test_api.py: lockfile's API and lockbroker's extras, every method of
every class, through the daemon and in-process.

Another owner is another thread (every class is threaded here but
PIDLockFile, which lockfile makes per process; its other owner is a
thread made threaded=True) or, where a process must die holding, a child
process.
"""
import contextlib
import gc
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

import pytest

import lockbroker
from conftest import CLASSES, WAIT, python_child


def make(method, path, transport, **kw):
    """A lock of method's class on path with transport."""
    return CLASSES[method](path, transport=transport, **kw)


@contextlib.contextmanager
def other_owner(method, path, transport):
    """Holds path's lock, for the with block, as another owner: a thread
    that makes its own lock object (threaded, so a separate owner for
    the pid file method too) and releases it at the end."""
    held, done = threading.Event(), threading.Event()
    failed = []

    def run():
        try:
            lock = make(method, path, transport, threaded=True)
            lock.acquire(WAIT)
        except BaseException as e:      # reported to the test
            failed.append(e)
            held.set()
            return
        held.set()
        done.wait(WAIT * 4)
        lock.release()

    t = threading.Thread(target=run)
    t.start()
    assert held.wait(WAIT)
    if failed:
        raise failed[0]
    try:
        yield
    finally:
        done.set()
        t.join(WAIT)
        assert not t.is_alive()


def artefact_exists(method, lock):
    """Whether method's artefact of lock is there (sqlite: its row)."""
    if method != "sqlite":
        return os.path.lexists(lock.lock_file)
    db = os.path.join(os.path.dirname(lock.lock_file), ".lockbroker.sqlite")
    if not os.path.exists(db):
        return False
    with contextlib.closing(sqlite3.connect(db)) as c:
        rows = c.execute("select unique_name from locks where lock_file = ?",
                         (lock.lock_file,)).fetchall()
    return len(rows) > 0


def test_acquire_release(method, transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport)
    assert not lock.is_locked() and not lock.i_am_locking()
    assert not artefact_exists(method, lock)
    assert lock.acquire() is None
    assert lock.is_locked() and lock.i_am_locking()
    assert artefact_exists(method, lock)
    other = make(method, path, transport, threaded=True)
    assert other.is_locked()
    lock.release()
    assert not lock.is_locked() and not lock.i_am_locking()
    assert not artefact_exists(method, lock)


def test_reacquire_has_no_counter(method, transport, lockdir):
    lock = make(method, os.path.join(lockdir, "a"), transport)
    lock.acquire(0)
    lock.acquire(0)             # the owner's own lock: at once
    lock.acquire()
    lock.release()              # one release frees it
    assert not lock.is_locked()
    with pytest.raises(lockbroker.NotLocked):
        lock.release()


def test_timeouts_against_another_owner(method, transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport)
    with other_owner(method, path, transport):
        assert lock.is_locked() and not lock.i_am_locking()
        for t in (0, -1, -float("inf")):
            with pytest.raises(lockbroker.AlreadyLocked):
                lock.acquire(t)
        start = time.monotonic()
        with pytest.raises(lockbroker.LockTimeout) as e:
            lock.acquire(0.3)
        took = time.monotonic() - start
        assert 0.25 <= took < 5, took
        assert path in str(e.value)
        with pytest.raises(lockbroker.NotMyLock):
            lock.release()
        assert isinstance(e.value, lockbroker.LockError)
    lock.acquire(0)
    lock.release()


def test_constructor_timeout_is_the_default(method, transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport, timeout=0.2)
    assert lock.timeout == 0.2
    with other_owner(method, path, transport):
        with pytest.raises(lockbroker.LockTimeout):
            lock.acquire()
        with pytest.raises(lockbroker.LockTimeout):
            with lock:
                pytest.fail("entered a lock another owner holds")
        lock.timeout = 0
        with pytest.raises(lockbroker.AlreadyLocked):
            lock.acquire()
        lock.timeout = None
        assert lock.timeout is None
        with pytest.raises(lockbroker.AlreadyLocked):
            lock.acquire(0)     # an explicit timeout wins


def test_waiter_gets_the_lock_on_release(method, transport, lockdir):
    """A blocking acquire lets other threads run (the GIL released) and
    returns once the holder releases."""
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport)
    lock.acquire()
    got = threading.Event()
    waiter_lock = []

    def wait():
        w = make(method, path, transport, threaded=True)
        waiter_lock.append(w)
        w.acquire(WAIT)
        got.set()
        w.release()

    t = threading.Thread(target=wait)
    t.start()
    spins, end = 0, time.monotonic() + 0.3
    while time.monotonic() < end:
        spins += 1              # this thread runs while the waiter waits
    assert spins > 1000 and not got.is_set()
    lock.release()
    assert got.wait(WAIT)
    t.join(WAIT)


def test_context_manager(method, transport, lockdir):
    lock = make(method, os.path.join(lockdir, "a"), transport)
    with lock as entered:
        assert entered is lock
        assert lock.i_am_locking()
    assert not lock.is_locked()
    with pytest.raises(ZeroDivisionError):
        with lock:
            1 / 0
    assert not lock.is_locked()


def test_break_lock(method, transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport)
    lock.break_lock()           # not held: nothing to do
    lock.acquire()
    made = []                   # another owner: made in another thread
    t = threading.Thread(target=lambda: made.append(
        make(method, path, transport, threaded=True)))
    t.start()
    t.join(WAIT)
    breaker = made[0]
    breaker.break_lock()
    assert not lock.is_locked() and not lock.i_am_locking()
    with pytest.raises(lockbroker.NotLocked):
        lock.release()
    # The breaker takes it; the old holder's late release leaves it be.
    breaker.acquire(0)
    with pytest.raises(lockbroker.NotMyLock):
        lock.release()
    assert breaker.i_am_locking()
    breaker.release()


def test_attributes(method, transport, lockdir):
    rel = os.path.relpath(os.path.join(lockdir, "a"))
    lock = make(method, rel, transport, timeout=3)
    assert lock.path == rel
    absolute = os.path.abspath(rel)
    want = absolute if method == "pidfile" else absolute + ".lock"
    assert lock.lock_file == want
    # Where lockfile's classes put theirs: the pid file's path, the
    # symbolic link's target (a bare name), a marker in the directory.
    head, name = os.path.split(lock.unique_name)
    if method == "pidfile":
        assert lock.unique_name == absolute
    else:
        assert head == {"symlink": "", "mkdir": want}.get(method, lockdir)
        assert name.startswith(socket.gethostname())
        assert ("%d~" % os.getpid()) in name
    assert lock.timeout == 3
    assert repr(lock) == "<%s: %r -- %r>" % (
        type(lock).__name__, lock.unique_name, rel)
    with pytest.raises(AttributeError):
        lock.path = "elsewhere"
    with pytest.raises(AttributeError):
        del lock.timeout


def test_path_kinds_name_one_lock(transport, lockdir):
    """str, bytes and os.PathLike of one path are one lock."""
    import pathlib
    p = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(p, transport=transport)
    lock.acquire()
    for other in (os.fsencode(p), pathlib.Path(p)):
        o = lockbroker.LockFile(other, transport=transport)
        assert o.path == other
        assert o.lock_file == lock.lock_file
        assert o.i_am_locking()     # the same owner, the same lock
    lock.release()


def test_threaded_false_makes_the_process_the_owner(transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, threaded=False, transport=transport)
    lock.acquire()
    seen = []

    def look():
        o = lockbroker.LockFile(path, threaded=False, transport=transport)
        seen.append(o.i_am_locking())
        o.release()             # the process's lock: any thread frees it

    t = threading.Thread(target=look)
    t.start()
    t.join(WAIT)
    assert seen == [True]
    assert not lock.is_locked()


def test_pidlockfile_is_per_process_by_default(transport, lockdir):
    path = os.path.join(lockdir, "pid")
    lock = lockbroker.pidlockfile.PIDLockFile(path, transport=transport)
    lock.acquire()
    assert lock.read_pid() == os.getpid()
    assert lockbroker.pidlockfile.read_pid_from_pidfile(path) == os.getpid()
    seen = []
    t = threading.Thread(target=lambda: seen.append(
        lockbroker.pidlockfile.PIDLockFile(path).i_am_locking()))
    t.start()
    t.join(WAIT)
    assert seen == [True]
    lock.release()
    assert lock.read_pid() is None


def test_pidfile_helpers(lockdir):
    from lockbroker import pidlockfile as m
    path = os.path.join(lockdir, "pid")
    assert m.read_pid_from_pidfile(path) is None
    m.write_pid_to_pidfile(path)
    with open(path) as f:
        assert f.read() == "%d\n" % os.getpid()
    with pytest.raises(FileExistsError):
        m.write_pid_to_pidfile(path)
    assert m.read_pid_from_pidfile(path) == os.getpid()
    with open(path, "w") as f:
        f.write("not a pid\n")
    assert m.read_pid_from_pidfile(path) is None
    m.remove_existing_pidfile(path)
    m.remove_existing_pidfile(path)     # none: nothing to do
    assert not os.path.exists(path)


def test_locked_decorator(transport, lockdir, monkeypatch):
    monkeypatch.setenv("LOCKBROKER_TRANSPORT", transport)
    path = os.path.join(lockdir, "a")
    calls = []

    @lockbroker.locked(path, timeout=0)
    def work(x, y=1):
        """work's own doc"""
        calls.append(lockbroker.LockFile(path, threaded=True).is_locked())
        return x + y

    assert work.__name__ == "work" and work.__doc__ == "work's own doc"
    assert work(2, y=3) == 5
    assert calls == [True]
    assert not lockbroker.LockFile(path).is_locked()
    with other_owner("link", path, transport):
        with pytest.raises(lockbroker.AlreadyLocked):
            work(1)
    assert calls == [True]      # not called without the lock


def test_names_and_aliases(lockdir):
    assert lockbroker.LockFile is lockbroker.linklockfile.LinkLockFile
    assert lockbroker.FileLock is lockbroker.LockFile
    for cls in CLASSES.values():
        assert issubclass(cls, lockbroker.LockBase)
    path = os.path.join(lockdir, "a")
    for factory, cls in (
            (lockbroker.LinkFileLock, lockbroker.linklockfile.LinkLockFile),
            (lockbroker.MkdirFileLock,
             lockbroker.mkdirlockfile.MkdirLockFile),
            (lockbroker.SQLiteFileLock,
             lockbroker.sqlitelockfile.SQLiteLockFile)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            lock = factory(path)
        assert type(lock) is cls
        assert [x.category for x in w] == [DeprecationWarning]
    import lockfile
    for name in lockfile.__all__:
        assert hasattr(lockbroker, name), name
    for mod in ("linklockfile", "symlinklockfile", "mkdirlockfile",
                "pidlockfile", "sqlitelockfile"):
        theirs = __import__("lockfile." + mod, fromlist=["x"])
        ours = getattr(lockbroker, mod)
        public = [n for n in vars(theirs) if not n.startswith("_") and
                  not isinstance(getattr(theirs, n), type(os)) and
                  n not in ("absolute_import", "division", "unicode")]
        missing = [n for n in public if not hasattr(ours, n)]
        assert missing == [], (mod, missing)


def test_exception_hierarchy():
    import lockfile
    tree = {"Error": None, "LockError": "Error", "LockTimeout": "LockError",
            "AlreadyLocked": "LockError", "LockFailed": "LockError",
            "UnlockError": "Error", "NotLocked": "UnlockError",
            "NotMyLock": "UnlockError"}
    for name, parent in tree.items():
        ours = getattr(lockbroker, name)
        assert issubclass(ours, getattr(lockfile, name)), name
        assert issubclass(ours, Exception)
        if parent:
            assert issubclass(ours, getattr(lockbroker, parent)), name
    try:
        raise lockbroker.LockTimeout("x")
    except lockfile.LockError as e:
        assert isinstance(e, lockbroker.Error)


def test_subclass_of_lockbase(transport, lockdir):
    class Mine(lockbroker.LockBase):
        def __init__(self, path):
            super().__init__(path, transport=transport)
            self.note = "mine"

    lock = Mine(os.path.join(lockdir, "a"))
    with lock:
        assert lock.is_locked() and lock.note == "mine"
        assert lock.lock_file.endswith(".lock")     # the link method


def test_holder(method, transport, lockdir):
    path = os.path.join(lockdir, "a")
    lock = make(method, path, transport)
    assert lock.holder() is None
    lock.acquire()
    h = lock.holder()
    assert isinstance(h, lockbroker.Holder)
    assert h.pid == os.getpid()
    assert h.broker is (transport == "broker")
    assert h.liveness == "alive"
    if method != "sqlite" or transport == "broker":
        assert h.since is not None and abs(h.since - time.time()) < 60
    if method != "sqlite":      # a row records no user
        assert h.uid == os.getuid()
    if transport == "broker":
        assert h.token is not None and h.token > 0
    else:
        assert h.token is None and h.waiters == 0
    lock.release()


def test_holder_counts_waiters(daemon, lockdir):
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport="broker")
    lock.acquire()
    timed_out = []

    def wait():
        try:
            lockbroker.LockFile(path, transport="broker").acquire(2)
        except lockbroker.LockTimeout:
            timed_out.append(True)

    t = threading.Thread(target=wait)
    t.start()
    deadline = time.monotonic() + WAIT
    while lock.holder().waiters != 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t.join(WAIT)
    assert timed_out == [True]
    assert lock.holder().waiters == 0
    lock.release()


def test_fencing_token(daemon, lockdir):
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport="broker")
    with pytest.raises(lockbroker.NotLocked):
        lock.fencing_token()
    lock.acquire()
    first = lock.fencing_token()
    assert first == lock.holder().token
    lock.release()
    lock.acquire()
    assert lock.fencing_token() > first
    lock.release()
    local = lockbroker.LockFile(path, transport="local")
    local.acquire()
    with pytest.raises(lockbroker.LockFailed):
        local.fencing_token()
    local.release()


def test_dropped_object_keeps_its_hold(method, transport, lockdir):
    """As lockfile's: an object that goes leaves its lock held by its
    owner, which a new object of the owner sees and releases; another
    owner is kept out meanwhile."""
    path = os.path.join(lockdir, "a")
    make(method, path, transport, threaded=True).acquire(0)
    gc.collect()
    lock = make(method, path, transport, threaded=True)
    assert lock.is_locked() and lock.i_am_locking()
    seen = []

    def other():
        theirs = make(method, path, transport, threaded=True)
        seen.append(theirs.i_am_locking())
        with pytest.raises(lockbroker.AlreadyLocked):
            theirs.acquire(0)
        with pytest.raises(lockbroker.NotMyLock):
            theirs.release()
        seen.append("kept out")

    t = threading.Thread(target=other)
    t.start()
    t.join(WAIT)
    assert seen == [False, "kept out"]
    probe = make(method, path, transport, threaded=True)
    del probe                   # only looked: changes nothing
    assert lock.i_am_locking()
    lock.release()
    assert not lock.is_locked()
    with pytest.raises(lockbroker.NotLocked):
        lock.release()


@contextlib.contextmanager
def broker_holder(path, take, then):
    """A child process that takes path's lock through the daemon with
    the statement take and then runs then; yields the child (a Popen,
    its stdin a pipe) once the daemon names it as holder; killed at the
    end."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import gc, lockbroker, sys, time\n" + take +
         "\nprint('held', flush=True)\n" + then + "\n", path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(
            os.path.dirname(lockbroker.__file__))))
    try:
        assert child.stdout.readline() == "held\n"
        lock = lockbroker.LockFile(path, transport="broker")
        assert lock.holder().pid == child.pid
        yield child
    finally:
        child.kill()
        child.wait()


def test_dropped_hold_ends_with_the_process(daemon, lockdir):
    """Through the daemon, a hold whose object went lasts until its
    process ends (its connection closes), also by a normal exit."""
    path = os.path.join(lockdir, "a")
    with broker_holder(path, "lockbroker.LockFile(sys.argv[1], "
                       "transport='broker').acquire()\ngc.collect()",
                       "sys.stdin.readline()") as child:
        lock = lockbroker.LockFile(path, transport="broker")
        with pytest.raises(lockbroker.AlreadyLocked):
            lock.acquire(0)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(WAIT) == 0
        lock.acquire(WAIT)
        lock.release()


def test_dead_holder_releases_through_the_broker(daemon, lockdir):
    """A process killed while holding loses the lock at once (the
    broker), and a waiter gets it without waiting for a timeout."""
    path = os.path.join(lockdir, "a")
    with broker_holder(path, "lock = lockbroker.LockFile(sys.argv[1], "
                       "transport='broker')\nlock.acquire()",
                       "time.sleep(600)") as child:
        lock = lockbroker.LockFile(path, transport="broker")
        child.send_signal(signal.SIGKILL)
        start = time.monotonic()
        lock.acquire(WAIT)
        assert time.monotonic() - start < 5
        lock.release()


def test_break_stale(lockdir):
    """break_stale=True takes the lock of a provably dead in-process
    holder; without it the lock stays."""
    path = os.path.join(lockdir, "a")
    r = python_child(
        "import lockbroker, os, sys\n"
        "lock = lockbroker.LockFile(%r, transport='local')\n"
        "lock.acquire()\n"
        "os._exit(0)\n" % path)
    assert r.returncode == 0, r.stderr
    lock = lockbroker.LockFile(path, transport="local")
    assert lock.holder().liveness == "dead"
    with pytest.raises(lockbroker.AlreadyLocked):
        lock.acquire(0)
    stale = lockbroker.LockFile(path, transport="local", break_stale=True)
    stale.acquire(0)
    stale.release()


def test_broker_transport_without_a_daemon(tmp_path):
    """transport='broker' with no daemon: LockFailed naming the socket;
    'auto' locks in-process."""
    sock = str(tmp_path / "no-daemon.socket")
    path = str(tmp_path / "a")
    r = python_child(
        "import lockbroker\n"
        "try:\n"
        "    lockbroker.LockFile(%r, transport='broker').acquire(0)\n"
        "except lockbroker.LockFailed as e:\n"
        "    print('LockFailed:', e)\n"
        "a = lockbroker.LockFile(%r)\n"
        "a.acquire(0)\n"
        "print('auto broker:', a.holder().broker)\n"
        "a.release()\n" % (path, path),
        env=dict(os.environ, LOCKBROKER_SOCKET=sock,
                 LOCKBROKER_TRANSPORT="auto"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("LockFailed:") and sock in lines[0], lines
    assert lines[1] == "auto broker: False"
