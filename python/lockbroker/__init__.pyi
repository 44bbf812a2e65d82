"""Type stubs of the package lockbroker: lockfile's API over
liblockbroker (see __init__.py)."""
from typing import Any, Callable, Optional, TypeVar

from ._errors import (Error as Error, LockError as LockError,
                      LockTimeout as LockTimeout,
                      AlreadyLocked as AlreadyLocked,
                      LockFailed as LockFailed,
                      LockCanceled as LockCanceled,
                      Deadlock as Deadlock,
                      UnlockError as UnlockError,
                      NotLocked as NotLocked, NotMyLock as NotMyLock)
from ._base import LockBase as LockBase
from ._lockbroker import (Holder as Holder, Cluster as Cluster,
                          acquire_all as acquire_all,
                          set_lost_hook as set_lost_hook)
from . import (linklockfile as linklockfile,
               symlinklockfile as symlinklockfile,
               mkdirlockfile as mkdirlockfile, pidlockfile as pidlockfile,
               sqlitelockfile as sqlitelockfile)
from .linklockfile import LinkLockFile
from .mkdirlockfile import MkdirLockFile
from .sqlitelockfile import SQLiteLockFile

__all__ = ['Error', 'LockError', 'LockTimeout', 'AlreadyLocked',
           'LockFailed', 'LockCanceled', 'Deadlock', 'UnlockError',
           'NotLocked', 'NotMyLock',
           'LinkFileLock', 'MkdirFileLock', 'SQLiteFileLock',
           'LockBase', 'locked',
           'LockFile', 'FileLock', 'Holder', 'Cluster', 'acquire_all',
           'set_lost_hook']

_F = TypeVar("_F", bound=Callable[..., Any])

LockFile = LinkLockFile
FileLock = LinkLockFile


def LinkFileLock(*args: Any, **kwds: Any) -> LinkLockFile: ...
def MkdirFileLock(*args: Any, **kwds: Any) -> MkdirLockFile: ...
def SQLiteFileLock(*args: Any, **kwds: Any) -> SQLiteLockFile: ...
def locked(path: Any, timeout: Optional[float] = None
           ) -> Callable[[_F], _F]: ...
