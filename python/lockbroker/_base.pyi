"""Type stubs of _base.py: LockBase, the base of every lock class, with
the asyncio form and cancel() of a waiting acquire."""
from types import TracebackType
from typing import Optional, Type

from typing_extensions import Self

from ._lockbroker import Lock


class LockBase(Lock):
    """A lock on a path: LockBase(path, threaded=True, timeout=None, *,
    transport='auto', break_stale=False)."""

    def cancel(self) -> None: ...
    async def acquire_async(self, timeout: Optional[float] = None) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None: ...
