"""LockBase, the base of every lock class: liblockbroker's handle.

The methods are the extension's (_lockbroker.Lock); a class names its
on-disk method with _method.  The asyncio form is here, on the library's
asynchronous acquire (_acquire_start, _acquire_finish): no thread waits.
Through the daemon the request waits in its queue and the event loop
watches the handle's descriptor (loop.add_reader), which the library
makes readable when the answer comes; in-process the loop's timer paces
the tries (the library says when the next is due).  A task canceled
while it waits withdraws the request (cancel()) and awaits the daemon's
word on it.
"""

import asyncio
import math

from . import _lockbroker
from . import _errors


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

    async def acquire_async(self, timeout=None):
        """Takes the lock as acquire(timeout) does, without blocking the
        event loop and without a thread: the loop waits for the daemon's
        answer (or, in-process, paces the tries).  When the awaiting task
        is canceled, the request is withdrawn (it leaves the daemon's
        queue) and a grant that came first is released, before
        CancelledError goes on: a canceled acquire_async holds nothing
        it took (a hold its owner had before it began, another task's of
        the loop, stays).  The acquire_async calls of one object take
        turns: the second begins once the first has ended."""
        loop = asyncio.get_running_loop()
        wait = self.timeout if timeout is None else timeout
        end = None
        if wait is not None and wait > 0 and not math.isinf(wait):
            end = loop.time() + wait
        await self._async_turn_begin(loop)
        try:
            while True:
                try:
                    await self._acquire_once_async(
                        loop, wait if end is None else
                        max(end - loop.time(), 0.001))
                    return
                except _errors.LockCanceled:
                    # cancel() from elsewhere, meant for another acquire
                    # of this object (this task was not canceled): taken
                    # up again with what is left of the timeout.
                    continue
        finally:
            self._async_turn_end()

    async def _async_turn_begin(self, loop):
        """Waits until no other acquire_async of this object is in
        progress (the library runs one asynchronous acquire per handle),
        then takes the turn."""
        while True:
            busy = getattr(self, "_async_busy", None)
            if busy is None:
                break
            await asyncio.shield(busy)
        self._async_busy = loop.create_future()

    def _async_turn_end(self):
        """Gives the turn to the next acquire_async of this object."""
        busy, self._async_busy = self._async_busy, None
        if not busy.done():
            busy.set_result(None)

    async def _acquire_once_async(self, loop, wait):
        """One asynchronous acquire through the library: started, then
        finished whenever its descriptor is readable or the time it gave
        has passed.  Canceled, it withdraws the request (cancel()) and
        goes on until the library's outcome, then releases a grant that
        was fresh and raises CancelledError; a second cancellation
        meanwhile does not stop it."""
        if self._acquire_start(wait):
            return
        fd = self._acquire_fd()
        woken = None

        def wake():
            if woken is not None and not woken.done():
                woken.set_result(None)

        if fd >= 0:
            loop.add_reader(fd, wake)
        canceled = False
        again = 0.0
        try:
            while True:
                woken = loop.create_future()
                timer = None
                if not math.isinf(again):
                    timer = loop.call_later(again, wake)
                try:
                    await woken
                except asyncio.CancelledError:
                    if not canceled:
                        canceled = True
                        self.cancel()
                finally:
                    if timer is not None:
                        timer.cancel()
                try:
                    again = self._acquire_finish()
                except _errors.Error:
                    if canceled:
                        raise asyncio.CancelledError() from None
                    raise
                if again is None:
                    break
        finally:
            if fd >= 0:
                loop.remove_reader(fd)
        if canceled:
            if self._acquire_fresh():
                self._release_unwanted()
            raise asyncio.CancelledError()

    def _release_unwanted(self):
        """Releases a grant nobody awaits any more; one that is gone
        already (broken meanwhile) is left so."""
        try:
            self.release()
        except _errors.UnlockError:
            pass

    async def __aenter__(self):
        """async with: acquire_async() with the object's timeout."""
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc):
        """async with: releases (one request to the daemon, or an
        in-process step, made from the event loop's thread)."""
        self.release()
