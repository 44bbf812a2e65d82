"""LockBase, the base of every lock class: liblockbroker's handle.

The methods are the extension's (_lockbroker.Lock); a class names its
on-disk method with _method.
"""

from . import _lockbroker


class LockBase(_lockbroker.Lock):
    """A lock on a path: LockBase(path, threaded=True, timeout=None, *,
    transport='auto', break_stale=False).

    As lockfile's: the owner is the thread that makes the object (the
    process with threaded=False); timeout is acquire's default.  Then
    lockbroker's own, keyword-only: transport 'auto' (the broker when its
    socket answers, else in-process; LOCKBROKER_TRANSPORT may say
    otherwise), 'broker' or 'local'; break_stale=True lets acquire break
    the lock of a holder that is provably dead.

    LockBase itself locks with lockfile's default method (LinkLockFile's).
    """

    _method = _lockbroker.LINK
