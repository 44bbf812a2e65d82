"""LinkLockFile: lockfile's link method, through liblockbroker."""

from . import (LockBase, LockFailed, NotLocked, NotMyLock, LockTimeout,
               AlreadyLocked)
from . import _lockbroker


class LinkLockFile(LockBase):
    """A lock whose artefact is PATH.lock, a hard link to the owner's
    unique file DIR/NAME (lockfile's LockFile on POSIX)."""

    _method = _lockbroker.LINK
