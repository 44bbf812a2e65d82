"""Type stubs of the extension module _lockbroker (python/ext/): the Lock
type over one liblockbroker handle, the Holder and Cluster records,
set_lost_hook and the method numbers.  LockBase (_base.py) is Lock with lockfile's name."""
import os
from types import TracebackType
from typing import (Callable, Iterable, Literal, NamedTuple, Optional,
                    Type, Union)

from typing_extensions import Self, TypeAlias

# A lock path: str, UTF-8 bytes, or a path-like object giving either.
_Path: TypeAlias = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
# transport=: the daemon when it answers, else in-process; or one only.
_Transport: TypeAlias = Literal["auto", "broker", "local"]

LINK: int
SYMLINK: int
MKDIR: int
PIDFILE: int
SQLITE: int


class Holder(NamedTuple):
    """Who holds a lock, as Lock.holder() tells it."""
    host: Optional[str]
    unique_name: Optional[str]
    pid: Optional[int]
    tid: Optional[int]
    uid: Optional[int]
    since: Optional[float]
    liveness: Literal["alive", "dead", "unknown"]
    waiters: int
    token: Optional[int]
    broker: bool
    unclaimed: bool
    shared: bool
    holders: Optional[int]


class Cluster(NamedTuple):
    """A cluster lock's side in etcd, as Lock.cluster() tells it."""
    state: Literal["idle", "taking", "waiting", "held", "lost",
                   "releasing", "unknown"]
    key: Optional[str]
    holder: Optional[str]
    revision: Optional[int]
    waiters: int
    error: Optional[str]


class Lock:
    """A lock on a path, through liblockbroker."""
    _method: int

    def __init__(self, path: _Path, threaded: bool = ...,
                 timeout: Optional[float] = ..., *,
                 transport: _Transport = ...,
                 break_stale: bool = ...) -> None: ...

    @property
    def path(self) -> _Path: ...
    @property
    def lock_file(self) -> str: ...
    @property
    def unique_name(self) -> str: ...
    @property
    def timeout(self) -> Optional[float]: ...
    @timeout.setter
    def timeout(self, value: Optional[float]) -> None: ...

    def acquire(self, timeout: Optional[float] = None, *,
                shared: bool = False) -> None: ...
    def upgrade(self, timeout: Optional[float] = None) -> None: ...
    def downgrade(self) -> None: ...
    def release(self) -> None: ...
    def is_locked(self) -> bool: ...
    def i_am_locking(self) -> bool: ...
    def break_lock(self) -> None: ...
    def holder(self) -> Optional[Holder]: ...
    def cluster(self) -> Optional[Cluster]: ...
    def fencing_token(self) -> int: ...

    # The asynchronous acquire under LockBase.acquire_async (liblockbroker's
    # lb_acquire_start, lb_acquire_finish, lb_lock_fd, lb_acquire_fresh).
    def _acquire_start(self, timeout: Optional[float]) -> bool: ...
    def _acquire_finish(self) -> Optional[float]: ...
    def _acquire_fd(self) -> int: ...
    def _acquire_fresh(self) -> bool: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None: ...


def set_lost_hook(fn: Optional[Callable[[str, str], object]]) -> None:
    """Calls fn(path, why), on a thread of the package's, when a lock
    held through the daemon was lost; None removes it."""
    ...


def _lost_after_fork() -> None: ...
def _lost_at_exit() -> None: ...


def acquire_all(locks: Iterable[Lock],
                timeout: Optional[float] = None) -> None:
    """Takes every lock of locks (1 to 256) exclusive, all or none."""
    ...
