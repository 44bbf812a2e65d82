"""MkdirLockFile: lockfile's mkdir method, through liblockbroker."""

from . import (LockBase, LockFailed, NotLocked, NotMyLock, LockTimeout,
               AlreadyLocked)
from . import _lockbroker


class MkdirLockFile(LockBase):
    """A lock whose artefact is the directory PATH.lock, holding the
    owner's marker."""

    _method = _lockbroker.MKDIR
