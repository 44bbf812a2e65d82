"""PIDLockFile: lockfile's pid file method, through liblockbroker, and
lockfile's helpers for pid files.

The lock is PATH itself, created exclusively, holding the pid and a
newline.  As in lockfile the owner is the process by default
(threaded=False); unlike lockfile's, the holder may acquire again without
waiting on itself, and threaded=True makes each thread its own owner.
"""

import errno
import os

from . import (LockBase, LockFailed, NotLocked, NotMyLock, LockTimeout,
               AlreadyLocked)
from . import _lockbroker


class PIDLockFile(LockBase):
    """A lock whose artefact is the pid file PATH."""

    _method = _lockbroker.PIDFILE

    def __init__(self, path, threaded=False, timeout=None, **extras):
        super().__init__(path, threaded, timeout, **extras)

    def read_pid(self):
        """The pid in the lock's file, or None (see
        read_pid_from_pidfile)."""
        return read_pid_from_pidfile(self.path)


def read_pid_from_pidfile(pidfile_path):
    """The pid recorded in the pid file, or None when the file cannot be
    read or does not start with a number (lockfile's)."""
    try:
        with open(pidfile_path, "r") as pidfile:
            line = pidfile.readline().strip()
    except OSError:
        return None
    try:
        return int(line)
    except ValueError:
        return None


def write_pid_to_pidfile(pidfile_path):
    """Creates the pid file (exclusively, mode 0644 less the umask) and
    writes this process's pid and a newline into it (lockfile's).  Takes
    no lock: use PIDLockFile for that."""
    fd = os.open(pidfile_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with os.fdopen(fd, "w") as pidfile:
        pidfile.write("%d\n" % os.getpid())


def remove_existing_pidfile(pidfile_path):
    """Removes the pid file; nothing when there is none (lockfile's)."""
    try:
        os.remove(pidfile_path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
