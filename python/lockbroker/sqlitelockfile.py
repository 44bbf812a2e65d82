"""SQLiteLockFile: lockfile's sqlite method, through liblockbroker.

Unlike lockfile's, whose database is a temporary file of each process (so
it excludes nothing between processes), the database is shared:
$LOCKBROKER_SQLITE_DB, else DIR/.lockbroker.sqlite beside the lock.
"""

from . import (LockBase, LockFailed, NotLocked, NotMyLock, LockTimeout,
               AlreadyLocked)
from . import _lockbroker


class SQLiteLockFile(LockBase):
    """A lock whose artefact is a row (PATH.lock, unique name) of the
    table locks in a database shared by every process."""

    _method = _lockbroker.SQLITE
