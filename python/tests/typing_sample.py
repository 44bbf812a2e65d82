"""typing_sample.py: a program written against lockbroker's API as a user
writes it, fully annotated; test_typing.py checks it with mypy --strict
against the package's stubs (it is not run)."""
import asyncio
import os
import sys
from typing import List, Optional

import lockbroker
from lockbroker.mkdirlockfile import MkdirLockFile
from lockbroker.pidlockfile import PIDLockFile, read_pid_from_pidfile


def who(lock: lockbroker.LockBase) -> str:
    """Who holds lock, in words."""
    h: Optional[lockbroker.Holder] = lock.holder()
    if h is None:
        return "nobody"
    pid = h.pid if h.pid is not None else -1
    holders: int = h.holders if h.holders is not None else 0
    mode = "shared" if h.shared else "exclusive"
    return "%s pid %d (%s), %d waiting, %s by %d" % (
        h.host, pid, h.liveness, h.waiters, mode, holders)


def where(lock: lockbroker.LockBase) -> str:
    """Where a cluster lock stands in etcd, in words."""
    c: Optional[lockbroker.Cluster] = lock.cluster()
    if c is None:
        return "this host alone"
    rev = c.revision if c.revision is not None else 0
    return "%s, key %s, held by %s (revision %d), %d hosts waiting%s" % (
        c.state, c.key or "-", c.holder or "-", rev, c.waiters,
        "" if c.error is None else ": " + c.error)


def lost(path: str, why: str) -> None:
    print("lost %s: %s" % (path, why), file=sys.stderr)


lockbroker.set_lost_hook(lost)
lockbroker.set_lost_hook(None)


@lockbroker.locked("/tmp/typing-sample", timeout=0)
def guarded(n: int) -> int:
    return n + 1


def classes(path: str) -> List[lockbroker.LockBase]:
    return [lockbroker.LockFile(path), lockbroker.FileLock(path),
            lockbroker.linklockfile.LinkLockFile(path, threaded=False),
            lockbroker.symlinklockfile.SymlinkLockFile(path, timeout=2),
            MkdirLockFile(os.fsencode(path), transport="local"),
            lockbroker.sqlitelockfile.SQLiteLockFile(path),
            PIDLockFile(path, break_stale=True),
            lockbroker.MkdirFileLock(path)]


def blocking(path: str) -> int:
    lock = lockbroker.LockFile(path, timeout=5, transport="auto",
                               break_stale=True)
    try:
        lock.acquire(timeout=1.5)
    except lockbroker.AlreadyLocked:
        print(who(lock))
        return 1
    except lockbroker.LockError as e:
        print("cannot lock %r: %s" % (lock.path, e), file=sys.stderr)
        return 2
    try:
        token: int = lock.fencing_token()
        print(lock.unique_name, lock.lock_file, token, lock.is_locked())
    finally:
        lock.release()
    lock.timeout = None
    with lock as held:
        assert held.i_am_locking()
    lock.acquire(timeout=0, shared=True)
    lock.upgrade(timeout=2.5)
    lock.downgrade()
    lock.release()
    both: List[lockbroker.LockBase] = [lock, MkdirLockFile(path + ".2")]
    lockbroker.acquire_all(both, timeout=3)
    lockbroker.acquire_all((lock,))
    pid: Optional[int] = read_pid_from_pidfile(path)
    return guarded(pid or 0)


async def waiting(path: str) -> bool:
    lock = MkdirLockFile(path)
    async with lock as held:
        mine = held.i_am_locking()
    await lock.acquire_async(timeout=None)
    lock.cancel()
    lock.release()
    return mine


if __name__ == "__main__":
    sys.exit(blocking(sys.argv[1]) or asyncio.run(waiting(sys.argv[1])))
