"""Type stubs of pidlockfile.py: PIDLockFile and lockfile's pid file
helpers."""
from typing import Optional

from . import (LockBase as LockBase, LockFailed as LockFailed,
               NotLocked as NotLocked, NotMyLock as NotMyLock,
               LockTimeout as LockTimeout, AlreadyLocked as AlreadyLocked)
from ._lockbroker import _Path, _Transport


class PIDLockFile(LockBase):
    def __init__(self, path: _Path, threaded: bool = False,
                 timeout: Optional[float] = None, *,
                 transport: _Transport = ...,
                 break_stale: bool = ...) -> None: ...
    def read_pid(self) -> Optional[int]: ...


def read_pid_from_pidfile(pidfile_path: _Path) -> Optional[int]: ...
def write_pid_to_pidfile(pidfile_path: _Path) -> None: ...
def remove_existing_pidfile(pidfile_path: _Path) -> None: ...
