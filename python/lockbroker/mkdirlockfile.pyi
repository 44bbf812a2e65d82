"""Type stubs of mkdirlockfile.py."""
from . import (LockBase as LockBase, LockFailed as LockFailed,
               NotLocked as NotLocked, NotMyLock as NotMyLock,
               LockTimeout as LockTimeout, AlreadyLocked as AlreadyLocked)


class MkdirLockFile(LockBase): ...
