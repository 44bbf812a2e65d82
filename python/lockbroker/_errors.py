"""lockbroker's exceptions: lockfile's classes, in lockfile's hierarchy.

Where Python's lockfile is importable, each class also derives from
lockfile's class of the same name, so that a program's
``except lockfile.LockTimeout:`` catches lockbroker's timeout too.
Without lockfile the package stands on its own.
"""

try:
    import lockfile as _lockfile
except ImportError:
    _lockfile = None


def _bases(name, *ours):
    """ours, and lockfile's class called name when there is one."""
    theirs = getattr(_lockfile, name, None)
    return ours + (theirs,) if theirs is not None else ours


# Error's own base is Exception only without lockfile's Error (which is
# one): both as bases would have no consistent order.
class Error(*_bases("Error") or (Exception,)):
    """Base class for other exceptions."""


class LockError(*_bases("LockError", Error)):
    """Base class for errors arising from attempts to acquire the lock."""


class LockTimeout(*_bases("LockTimeout", LockError)):
    """The lock was not granted within the timeout (> 0)."""


class AlreadyLocked(*_bases("AlreadyLocked", LockError)):
    """Another owner holds the lock (a try with timeout <= 0)."""


class LockFailed(*_bases("LockFailed", LockError)):
    """The lock cannot be taken at all (the reason says why)."""


class LockCanceled(*_bases("LockCanceled", LockError)):
    """The wait was ended from outside: cancel() from another thread.
    Nothing is held, and the request has left the daemon's queue.
    (lockbroker's own: lockfile has no such class.)"""


class Deadlock(*_bases("Deadlock", LockError)):
    """Waiting would close a cycle of waits (the reason names each lock
    and who is in its way); the others in the cycle wait on.  Nothing is
    held by this request.  (lockbroker's own: lockfile has no such
    class.)"""


class UnlockError(*_bases("UnlockError", Error)):
    """Base class for errors arising from attempts to release the lock."""


class NotLocked(*_bases("NotLocked", UnlockError)):
    """Nobody holds the lock."""


class NotMyLock(*_bases("NotMyLock", UnlockError)):
    """Another owner holds the lock."""


# Shown as the package's, where programs meet them.
for _cls in (Error, LockError, LockTimeout, AlreadyLocked, LockFailed,
             LockCanceled, Deadlock, UnlockError, NotLocked, NotMyLock):
    _cls.__module__ = "lockbroker"
del _cls
