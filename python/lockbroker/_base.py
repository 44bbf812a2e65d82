"""LockBase, the base of every lock class: liblockbroker's handle.

The methods are the extension's (_lockbroker.Lock); a class names its
on-disk method with _method.  The asyncio form is here: a waiting
acquire runs in a thread of its own, which the event loop awaits; a
task canceled while it waits withdraws the request (cancel()).
"""

import asyncio
import threading
import time

from . import _lockbroker
from . import _errors

# How often a canceled acquire_async says cancel() again while its
# thread has not returned (the thread may not have begun its acquire).
_CANCEL_AGAIN_S = 0.05


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
        event loop: the acquire waits in a thread of its own.  When the
        awaiting task is canceled, the wait is ended (its request leaves
        the daemon's queue) and a grant that came first is released,
        before CancelledError goes on: a canceled acquire_async holds
        nothing it took (a hold its owner had before it began, another
        task's of the loop, stays)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        withdrawn = threading.Event()

        def settle(outcome):
            if not done.done():
                done.set_result(outcome)

        def run():
            # outcome: True for a hold this acquire took, False for one
            # its owner had already, else the exception.
            try:
                held = self._held_before()
                self._acquire_until_withdrawn(timeout, withdrawn)
                outcome = not held
            except BaseException as e:      # handed to the awaiting task
                outcome = e
            try:
                loop.call_soon_threadsafe(settle, outcome)
            except RuntimeError:            # the loop is closed
                if outcome is True:
                    self._release_unwanted()

        threading.Thread(target=run, name="lockbroker acquire_async",
                         daemon=True).start()
        try:
            outcome = await asyncio.shield(done)
        except asyncio.CancelledError:
            withdrawn.set()
            await self._withdraw(done)
            raise
        if isinstance(outcome, BaseException):
            raise outcome

    def _held_before(self):
        """Whether the owner holds the lock already (an acquire now only
        re-acquires it).  A broker hold lost meanwhile (NotLocked,
        reported once) goes on, as the acquire would have raised it;
        another failure to look is left to the acquire: False."""
        try:
            return self.i_am_locking()
        except _errors.NotLocked:
            raise
        except _errors.Error:
            return False

    def _acquire_until_withdrawn(self, timeout, withdrawn):
        """acquire(timeout), in acquire_async's thread; taken up again,
        with what is left of the timeout, when cancel() ended it for
        another acquire of this object (withdrawn is not set)."""
        wait = self.timeout if timeout is None else timeout
        end = None
        if wait is not None and wait > 0:
            end = time.monotonic() + wait
        while True:
            try:
                self.acquire(wait if end is None else
                             max(end - time.monotonic(), 0.001))
                return
            except _errors.LockCanceled:
                if withdrawn.is_set():
                    raise

    async def _withdraw(self, done):
        """Ends the acquire whose outcome done will hold: cancel() until
        its thread has answered (cancel() may come before the thread's
        acquire has begun), then releases a grant that came first, if the
        acquire took it (not one its owner held before).  A second
        cancellation meanwhile does not stop it."""
        while not done.done():
            self.cancel()
            try:
                await asyncio.wait([done], timeout=_CANCEL_AGAIN_S)
            except asyncio.CancelledError:
                pass
        if done.result() is True:
            self._release_unwanted()

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
