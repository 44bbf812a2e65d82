"""lockbroker: Python's lockfile API over liblockbroker and its daemon.

A drop-in for lockfile: ``import lockbroker as lockfile`` (or
``from lockbroker.pidlockfile import PIDLockFile``) and the program runs
as before, on the same on-disk lock files, so it excludes and is excluded
by programs still using lockfile, the C library and the lockbroker
command.  When lockbrokerd answers, waiters queue at the daemon and get
the lock the moment it is released, and a process that dies releases its
locks; otherwise the library locks in-process, as lockfile does.

What lockfile never had is keyword-only: transport='auto'|'broker'|'local'
and break_stale=False in every constructor, acquire's shared=False (a
shared lock, through the daemon only), and the methods holder(),
cluster(), fencing_token(), upgrade(), downgrade() and cancel(), and the
asyncio form (acquire_async, async with), and acquire_all(locks,
timeout=None), several exclusive locks taken at once, all or none, and
set_lost_hook(fn), told of a lock lost behind its owner's back.  Ctrl-C, or any
signal handler that raises, ends a waiting acquire with its exception.
docs/python.md tells the differences from lockfile.
"""

import atexit
import functools
import os
import warnings

from ._errors import (Error, LockError, LockTimeout, AlreadyLocked,
                      LockFailed, LockCanceled, Deadlock, UnlockError,
                      NotLocked, NotMyLock)
from ._base import LockBase
from . import _lockbroker
from ._lockbroker import Holder, Cluster, acquire_all, set_lost_hook

__all__ = ['Error', 'LockError', 'LockTimeout', 'AlreadyLocked',
           'LockFailed', 'LockCanceled', 'Deadlock', 'UnlockError',
           'NotLocked', 'NotMyLock',
           'LinkFileLock', 'MkdirFileLock', 'SQLiteFileLock',
           'LockBase', 'locked',
           'LockFile', 'FileLock', 'Holder', 'Cluster', 'acquire_all',
           'set_lost_hook']

# A loss told while the interpreter ends would find it gone: the hook is
# removed first, and a call of it that runs is waited for (not at a
# sub-interpreter's end: the hook is the main interpreter's).  A forked
# child keeps the hook, and needs the thread that tells it.
atexit.register(_lockbroker._lost_at_exit)
os.register_at_fork(after_in_child=_lockbroker._lost_after_fork)


def _fl_helper(cls, mod, *args, **kwds):
    """lockfile's factory of the deprecated aliases: warns, then makes a
    threaded cls."""
    warnings.warn("Import from %s module instead of lockbroker package"
                  % mod, DeprecationWarning, stacklevel=3)
    if len(args) == 1 and not kwds:
        kwds["threaded"] = True
    return cls(*args, **kwds)


def LinkFileLock(*args, **kwds):
    """Deprecated: use lockbroker.linklockfile.LinkLockFile."""
    from . import linklockfile
    return _fl_helper(linklockfile.LinkLockFile, "lockbroker.linklockfile",
                      *args, **kwds)


def MkdirFileLock(*args, **kwds):
    """Deprecated: use lockbroker.mkdirlockfile.MkdirLockFile."""
    from . import mkdirlockfile
    return _fl_helper(mkdirlockfile.MkdirLockFile,
                      "lockbroker.mkdirlockfile", *args, **kwds)


def SQLiteFileLock(*args, **kwds):
    """Deprecated: use lockbroker.sqlitelockfile.SQLiteLockFile."""
    from . import sqlitelockfile
    return _fl_helper(sqlitelockfile.SQLiteLockFile,
                      "lockbroker.sqlitelockfile", *args, **kwds)


def locked(path, timeout=None):
    """Decorator: the function runs holding FileLock(path), taken within
    timeout at each call and released after it.

        @locked('/var/run/myname', timeout=0)
        def myname(...):
            ...
    """
    def decor(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            lock = FileLock(path, timeout=timeout)
            lock.acquire()
            try:
                return func(*args, **kwargs)
            finally:
                lock.release()
        return wrapper
    return decor


from . import linklockfile as _llf  # noqa: E402  (needs LockBase above)
from . import symlinklockfile, mkdirlockfile, pidlockfile  # noqa: E402,F401
from . import sqlitelockfile  # noqa: E402,F401

LockFile = _llf.LinkLockFile
FileLock = LockFile
