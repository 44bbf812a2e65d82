"""SymlinkLockFile: lockfile's symlink method, through liblockbroker."""

from . import (LockBase, LockFailed, NotLocked, NotMyLock, LockTimeout,
               AlreadyLocked)
from . import _lockbroker


class SymlinkLockFile(LockBase):
    """A lock whose artefact is PATH.lock, a symbolic link whose target
    is the owner's unique name."""

    _method = _lockbroker.SYMLINK
