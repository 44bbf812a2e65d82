"""test_badinput.py: bad arguments get clear Python exceptions, naming
the argument and what is wrong, and leave nothing behind: no file, no
descriptor, no hold."""
import math
import os
import pathlib

import pytest

import lockbroker
from conftest import CLASSES, python_child


def open_fds():
    return len(os.listdir("/proc/self/fd"))


BAD_PATHS = [
    (3, TypeError, "lock path must be str, bytes or os.PathLike, not int"),
    (None, TypeError, "not NoneType"),
    (["a"], TypeError, "not list"),
    ("", ValueError, "lock path is empty"),
    (b"", ValueError, "lock path is empty"),
    ("a\0b", ValueError, "contains a NUL byte"),
    (b"a\0b", ValueError, "contains a NUL byte"),
    (pathlib.PurePosixPath("a\0b"), ValueError, "contains a NUL byte"),
    (b"caf\xe9", ValueError, "is not UTF-8"),
    ("caf\udce9", ValueError, "is not valid Unicode text"),
]


@pytest.mark.parametrize("path,exc,words", BAD_PATHS,
                         ids=[repr(p[0]) for p in BAD_PATHS])
def test_bad_paths(method, path, exc, words, lockdir):
    os.chdir(lockdir)
    before = open_fds()
    with pytest.raises(exc) as e:
        CLASSES[method](path)
    assert words in str(e.value)
    if isinstance(path, (str, bytes)) and path:
        assert repr(path) in str(e.value)       # names the path
    assert open_fds() == before


def test_too_long_path(lockdir):
    with pytest.raises(OSError) as e:
        lockbroker.LockFile(os.path.join(lockdir, "x" * 300))
    assert e.value.errno == 36      # ENAMETOOLONG
    assert "x" * 300 in str(e.value)


BAD_TIMEOUTS = [
    ("1", TypeError, "timeout must be a number of seconds or None, not str"),
    (b"1", TypeError, "not bytes"),
    ([1], TypeError, "not list"),
    (object(), TypeError, "not object"),
    (math.nan, ValueError, "timeout is NaN"),
]


@pytest.mark.parametrize("timeout,exc,words", BAD_TIMEOUTS,
                         ids=[repr(t[0]) for t in BAD_TIMEOUTS])
def test_bad_timeouts(timeout, exc, words, transport, lockdir):
    path = os.path.join(lockdir, "a")
    with pytest.raises(exc, match=words):
        lockbroker.LockFile(path, timeout=timeout, transport=transport)
    lock = lockbroker.LockFile(path, transport=transport)
    with pytest.raises(exc, match=words):
        lock.acquire(timeout)
    with pytest.raises(exc, match=words):
        lock.timeout = timeout
    assert lock.timeout is None
    assert not lock.is_locked()     # nothing taken


@pytest.mark.parametrize("timeout", [-1, -0.5, -math.inf, -10 ** 400])
def test_negative_timeouts_try_once(timeout, transport, lockdir):
    """timeout <= 0 tries once, as lockfile: the lock when free,
    AlreadyLocked (not a wait, not an error) when held."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    lock.acquire(timeout)
    assert lock.i_am_locking()
    r = python_child(
        "import lockbroker\n"
        "from math import inf\n"
        "try:\n"
        "    lockbroker.LockFile(%r, transport=%r).acquire(%r)\n"
        "except lockbroker.AlreadyLocked:\n"
        "    print('AlreadyLocked')\n" % (path, transport, timeout))
    assert r.stdout == "AlreadyLocked\n", r.stderr
    lock.release()


def test_huge_timeouts_wait_for_ever(lockdir):
    lock = lockbroker.LockFile(os.path.join(lockdir, "a"),
                               timeout=10 ** 400, transport="local")
    lock.acquire()                  # free: taken at once
    lock.acquire(math.inf)
    lock.release()


@pytest.mark.parametrize("transport,exc,words", [
    (1, TypeError, "transport must be 'auto', 'broker' or 'local', not int"),
    ("daemon", ValueError, "not 'daemon'"),
    ("", ValueError, "not ''"),
])
def test_bad_transports(transport, exc, words, lockdir):
    with pytest.raises(exc) as e:
        lockbroker.LockFile(os.path.join(lockdir, "a"), transport=transport)
    assert words in str(e.value)


def test_extras_are_keyword_only(lockdir):
    path = os.path.join(lockdir, "a")
    with pytest.raises(TypeError):
        lockbroker.LockFile(path, True, None, "local")
    with pytest.raises(TypeError):
        lockbroker.LockFile(path, nonsense=1)
    with pytest.raises(TypeError):
        lockbroker.LockFile(path).acquire(1, 2)


def test_missing_directory_fails_with_the_reason(transport, lockdir):
    path = os.path.join(lockdir, "missing", "a")
    lock = lockbroker.LockFile(path, transport=transport)
    with pytest.raises(lockbroker.LockFailed) as e:
        lock.acquire(0)
    assert os.path.join(lockdir, "missing") in str(e.value)


def test_uninitialised_and_twice_initialised(lockdir):
    lock = lockbroker.LockFile.__new__(lockbroker.LockFile)
    with pytest.raises(RuntimeError, match="not initialised"):
        lock.acquire()
    with pytest.raises(RuntimeError, match="not initialised"):
        lock.path
    assert "uninitialised" in repr(lock)
    path = os.path.join(lockdir, "a")
    lock.__init__(path, transport="local")
    with pytest.raises(RuntimeError, match="already initialised"):
        lock.__init__(path)
    with lock:
        assert lock.i_am_locking()


def test_bad_input_leaks_nothing(lockdir):
    """Many failed constructions and calls: no descriptor and no memory
    kept (the process's size settles)."""
    def rss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport="local")

    def round_of_bad_calls():
        for bad, _, _ in BAD_PATHS:
            try:
                lockbroker.LockFile(bad)
            except (TypeError, ValueError):
                pass
        for bad, _, _ in BAD_TIMEOUTS:
            try:
                lock.acquire(bad)
            except (TypeError, ValueError):
                pass
        try:
            lock.release()
        except lockbroker.NotLocked:
            pass

    for _ in range(2000):           # warm up: allocators settle
        round_of_bad_calls()
    fds, rss = open_fds(), rss_kib()
    for _ in range(20000):
        round_of_bad_calls()
    assert open_fds() == fds
    assert rss_kib() - rss < 2048, "grew by %d KiB" % (rss_kib() - rss)
