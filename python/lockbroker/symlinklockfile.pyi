"""Type stubs of symlinklockfile.py."""
from . import (LockBase as LockBase, LockFailed as LockFailed,
               NotLocked as NotLocked, NotMyLock as NotMyLock,
               LockTimeout as LockTimeout, AlreadyLocked as AlreadyLocked)


class SymlinkLockFile(LockBase): ...
