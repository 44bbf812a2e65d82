"""test_cancel.py: ending a waiting acquire from outside: Ctrl-C and any
signal handler that raises, cancel() from another thread, and the
asyncio form (acquire_async, async with), whose canceled task withdraws
its request; through the daemon and in-process.

A withdrawn request is seen gone while its process still lives (a
process that exits drops its requests anyway): the daemon's STATUS and
LIST (the lockbroker command's) count no waiter, and the next owner's
one try gets the lock as soon as the holder releases.
"""
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

import lockbroker
from conftest import BUILDDIR, INPLACE, WAIT
from test_api import other_owner


def listed_waiters(path):
    """The waiters the daemon's LIST counts on path (lockbroker list
    --json); 0 when it does not list the lock."""
    cmd = os.path.join(BUILDDIR, "tools", "lockbroker")
    r = subprocess.run([cmd, "list", "--json"], capture_output=True,
                       text=True, timeout=WAIT)
    assert r.returncode == 0, r.stderr
    real = os.path.realpath(path)
    return sum(e["waiters"] for e in json.loads(r.stdout)["locks"]
               if e["path"] == real)


def until(what, cond):
    """Waits (WAIT s at most, asserted) until cond() is true."""
    end = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < end, "never: " + what
        time.sleep(0.01)


def no_waiter_left(lock, transport, path):
    """Nothing of a withdrawn acquire is left: through the daemon, STATUS
    and LIST count no waiter."""
    if transport == "broker":
        assert lock.holder().waiters == 0
        assert listed_waiters(path) == 0


@contextlib.contextmanager
def made_elsewhere(paths, transport):
    """Lock objects on paths whose owner is another thread (their methods
    may be called from any thread), which lives on until the with block
    ends."""
    made, ready, end = [], threading.Event(), threading.Event()

    def run():
        made.extend(lockbroker.LockFile(p, transport=transport)
                    for p in paths)
        ready.set()
        end.wait(WAIT * 4)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert ready.wait(WAIT)
        yield made
    finally:
        end.set()
        t.join(WAIT)


def line_from(child):
    """The child's next line of output, waited for WAIT s at most."""
    r, _, _ = select.select([child.stdout], [], [], WAIT)
    assert r, "the child said nothing for %s s" % WAIT
    return child.stdout.readline()


def waiting(lock, transport):
    """Waits until the daemon counts one waiter on lock (in-process: a
    little while, for the waiter to be polling)."""
    if transport == "broker":
        until("a waiter queued", lambda: lock.holder().waiters == 1)
    else:
        time.sleep(0.3)


CHILD = r"""
import sys, time
import lockbroker
lock = lockbroker.LockFile(sys.argv[1], transport=sys.argv[2])
print("waiting", flush=True)
t0 = time.monotonic()
try:
    lock.acquire()
    print("acquired", flush=True)
except KeyboardInterrupt:
    print("interrupted %.3f %s" % (time.monotonic() - t0,
                                   lock.i_am_locking()), flush=True)
sys.stdin.readline()         # lives on until the test has looked
"""


def test_ctrl_c_ends_a_wait(transport, lockdir):
    """SIGINT to a process waiting in acquire(): KeyboardInterrupt
    promptly (a hang guard, not a speed check), holding nothing, its
    request withdrawn while it lives on: no waiter counted, and the next
    owner's one try gets the lock at the holder's release."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    lock.acquire()
    env = dict(os.environ, PYTHONPATH=INPLACE)
    child = subprocess.Popen([sys.executable, "-c", CHILD, path, transport],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        assert line_from(child) == "waiting\n"
        waiting(lock, transport)
        t0 = time.monotonic()
        child.send_signal(signal.SIGINT)
        said = line_from(child).split()
        assert said[:1] == ["interrupted"], said
        assert time.monotonic() - t0 < WAIT
        assert said[2] == "False"
        no_waiter_left(lock, transport, path)
        lock.release()
        lock.acquire(0)
        lock.release()
    finally:
        child.stdin.close()
        assert child.wait(WAIT) == 0


CHILD_FORKED = r"""
import os, sys, threading
import lockbroker
def forker():
    pid = os.fork()
    if pid != 0:
        os.waitpid(pid, 0)
        return
    lock = lockbroker.LockFile(sys.argv[1], transport=sys.argv[2])
    print("waiting %d" % os.getpid(), flush=True)
    try:
        lock.acquire()
        print("acquired", flush=True)
    except KeyboardInterrupt:
        print("interrupted %s" % lock.i_am_locking(), flush=True)
    sys.stdin.readline()
    os._exit(0)
t = threading.Thread(target=forker)
t.start()
t.join()
"""


def held_and_waited_for(script, path, transport):
    """This process takes path; a child running script (its arguments the
    path and the transport), which says "waiting PID" and waits for it in
    process PID, is seen waiting.  Returns the lock, the child and PID;
    the child is killed when it does not get so far."""
    lock = lockbroker.LockFile(path, transport=transport)
    lock.acquire()
    env = dict(os.environ, PYTHONPATH=INPLACE)
    child = subprocess.Popen([sys.executable, "-c", script, path,
                              transport], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env, text=True)
    try:
        said = line_from(child).split()
        assert said[:1] == ["waiting"], said
        waiting(lock, transport)
    except BaseException:
        child.kill()
        child.wait()
        raise
    return lock, child, int(said[1])


def test_ctrl_c_ends_a_wait_in_a_child_forked_by_a_thread(transport,
                                                          lockdir):
    """A process forked by a thread other than the main one: that thread
    is the child's main thread, which runs the signal handlers, so SIGINT
    still ends its waiting acquire (the waits of other threads than the
    main one do not look for signals)."""
    path = os.path.join(lockdir, "a")
    lock, child, pid = held_and_waited_for(CHILD_FORKED, path, transport)
    try:
        os.kill(pid, signal.SIGINT)
        said = line_from(child).split()
        assert said == ["interrupted", "False"], said
        no_waiter_left(lock, transport, path)
        lock.release()
    finally:
        child.stdin.close()
        assert child.wait(WAIT) == 0


def test_other_threads_wait_on_through_a_signal(transport, lockdir):
    """A signal handler that raises interrupts the main thread only, as
    Python has it: a thread that waits meanwhile goes on waiting, and
    takes the lock when it is released."""
    path = os.path.join(lockdir, "a")
    old = signal.signal(signal.SIGALRM, raise_raised)
    got = []
    try:
        with other_owner("link", path, transport):
            lock = lockbroker.LockFile(path, transport=transport)
            t = threading.Thread(target=lambda: got.append(
                lock.acquire(WAIT * 2)))
            t.start()
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Raised):
                time.sleep(WAIT)
            assert t.is_alive() and got == []
        t.join(WAIT)
        assert not t.is_alive() and got == [None]
        assert lock.i_am_locking()
        lock.release()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


CHILD_IMPORTED_IN_A_THREAD = r"""
import _thread, os, sys
imported = _thread.allocate_lock()
imported.acquire()
def load():
    import lockbroker           # the process's first import of threading
    imported.release()
_thread.start_new_thread(load, ())
imported.acquire()
import lockbroker
lock = lockbroker.LockFile(sys.argv[1], transport=sys.argv[2])
print("waiting %d" % os.getpid(), flush=True)
try:
    lock.acquire()
    print("acquired", flush=True)
except KeyboardInterrupt:
    print("interrupted %s" % lock.i_am_locking(), flush=True)
sys.stdin.readline()
if lock.i_am_locking():
    lock.release()
"""

CHILD_IMPORTED_IN_A_SUBINTERPRETER = r"""
import _thread, os, sys
import _xxsubinterpreters as interpreters
sub = interpreters.create()
imported = _thread.allocate_lock()
imported.acquire()
def load():
    interpreters.run_string(sub, "import sys; sys.path[:0] = %r; "
                            "import lockbroker" % (sys.path,))
    imported.release()
_thread.start_new_thread(load, ())
imported.acquire()
import lockbroker
lock = lockbroker.LockFile(sys.argv[1], transport=sys.argv[2])
print("waiting %d" % os.getpid(), flush=True)
try:
    lock.acquire()
    print("acquired", flush=True)
except KeyboardInterrupt:
    print("interrupted %s" % lock.i_am_locking(), flush=True)
sys.stdin.readline()
if lock.i_am_locking():
    lock.release()
"""


@pytest.mark.parametrize("script", [CHILD_IMPORTED_IN_A_THREAD,
                                    CHILD_IMPORTED_IN_A_SUBINTERPRETER],
                         ids=["thread", "subinterpreter"])
def test_ctrl_c_ends_a_wait_of_a_package_loaded_elsewhere(script, transport,
                                                          lockdir):
    """The package loaded first by a thread other than the main one
    (there the process's first import of threading, whose main_thread()
    is then that thread, or in a subinterpreter that thread runs): the
    main thread still runs the signal handlers, so SIGINT must still end
    its waiting acquire with KeyboardInterrupt, holding nothing."""
    path = os.path.join(lockdir, "a")
    lock, child, pid = held_and_waited_for(script, path, transport)
    try:
        os.kill(pid, signal.SIGINT)
        r, _, _ = select.select([child.stdout], [], [], WAIT)
        lock.release()          # a child deaf to SIGINT takes it now
        assert r, "SIGINT did not end the wait in %s s" % WAIT
        said = child.stdout.readline().split()
        assert said == ["interrupted", "False"], said
    finally:
        child.stdin.close()
        try:
            child.wait(WAIT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Raised(Exception):
    """What the test's signal handler raises."""


def raise_raised(signum, frame):
    raise Raised("signal %d" % signum)


def test_signal_handler_exception_ends_a_wait(transport, lockdir):
    """Any signal handler that raises ends a waiting acquire with its
    exception (here SIGALRM's, in this very process), holding nothing
    and leaving no waiter."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    old = signal.signal(signal.SIGALRM, raise_raised)
    try:
        with other_owner("link", path, transport):
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            t0 = time.monotonic()
            with pytest.raises(Raised):
                lock.acquire(WAIT * 2)
            assert 0.25 <= time.monotonic() - t0 < WAIT
            assert not lock.i_am_locking()
            no_waiter_left(lock, transport, path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    lock.acquire(0)
    lock.release()


def test_signal_during_reacquire_keeps_hold(daemon, lockdir):
    """A signal handler that raises while acquire() waits for the
    daemon's word on a lock its owner holds already (the daemon stopped
    meanwhile): the exception goes on, and the earlier hold stays, which
    that acquire did not take."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport="broker")
    lock.acquire(0)
    pid = daemon.proc.pid
    old = signal.signal(signal.SIGALRM, raise_raised)
    resume = threading.Timer(0.6, os.kill, (pid, signal.SIGCONT))
    try:
        os.kill(pid, signal.SIGSTOP)
        resume.start()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Raised):
            lock.acquire(WAIT)
            time.sleep(WAIT)        # the handler's turn, at the latest
        assert lock.i_am_locking()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
        signal.signal(signal.SIGALRM, old)
    lock.release()


def test_handler_that_returns_keeps_the_wait(transport, lockdir):
    """A signal handler that returns, run while acquire waits, leaves the
    wait alone: the lock is taken once the holder releases it."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    ran = []
    old = signal.signal(signal.SIGALRM, lambda s, f: ran.append(s))
    try:
        with other_owner("link", path, transport):
            signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
            with pytest.raises(lockbroker.LockTimeout):
                lock.acquire(0.6)
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert len(ran) >= 3
        lock.acquire(WAIT)
        assert lock.i_am_locking()
        lock.release()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_cancel_from_another_thread(transport, lockdir):
    """cancel() ends the acquire another thread waits in: LockCanceled,
    nothing held, no waiter left; a cancel() with no acquire in progress
    does nothing, and is not kept for the next acquire."""
    path = os.path.join(lockdir, "a")
    lock = lockbroker.LockFile(path, transport=transport)
    probe = lockbroker.LockFile(path, transport=transport)
    got = []

    def wait():
        try:
            lock.acquire(WAIT * 2)
            got.append("acquired")
        except lockbroker.LockCanceled as e:
            got.append(e)

    with other_owner("link", path, transport):
        t = threading.Thread(target=wait)
        t.start()
        waiting(probe, transport)
        lock.cancel()
        t.join(WAIT)
        assert not t.is_alive()
        assert isinstance(got[0], lockbroker.LockCanceled), got
        assert isinstance(got[0], lockbroker.LockError)
        assert "canceled" in str(got[0])
        assert not lock.i_am_locking()
        no_waiter_left(probe, transport, path)
    lock.cancel()
    lock.acquire(0)
    lock.release()


# ---------------------------------------------------------------------
# asyncio

def test_async_with_takes_and_releases(transport, lockdir):
    """async with takes the lock (acquire_async, with the object's
    timeout) and releases it; the object is what it gives."""
    path = os.path.join(lockdir, "a")

    async def main():
        lock = lockbroker.LockFile(path, transport=transport)
        async with lock as held:
            assert held is lock
            assert lock.i_am_locking()
        assert not lock.is_locked()
        await lock.acquire_async(0)
        assert lock.i_am_locking()
        lock.release()

    asyncio.run(main())


def test_async_timeouts(transport, lockdir):
    """acquire_async times out as acquire does (LockTimeout, or
    AlreadyLocked for one try), and async with uses the object's
    timeout."""
    path = os.path.join(lockdir, "a")

    async def main():
        lock = lockbroker.LockFile(path, transport=transport, timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(lockbroker.LockTimeout):
            async with lock:
                pass
        assert time.monotonic() - t0 >= 0.25
        with pytest.raises(lockbroker.AlreadyLocked):
            await lock.acquire_async(0)
        with pytest.raises(lockbroker.LockTimeout):
            await lock.acquire_async(0.2)
        assert not lock.i_am_locking()

    with other_owner("link", path, transport):
        asyncio.run(main())


def test_async_many_waiters_one_loop(transport, lockdir):
    """Many tasks of one event loop (200) wait at once, each for a lock
    another owner holds, while the loop goes on running other work, and
    no thread is started for them; each gets its lock when it is
    released."""
    n = 200
    paths = [os.path.join(lockdir, "l%d" % k) for k in range(n)]
    ticks = []

    async def one(path):
        lock = lockbroker.LockFile(path, transport=transport)
        async with lock:
            return lock.i_am_locking()

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main(holders):
        threads = threading.active_count()
        tick = asyncio.ensure_future(ticker())
        waits = [asyncio.ensure_future(one(p)) for p in paths]
        await asyncio.sleep(0.5)
        assert not any(w.done() for w in waits)
        assert threading.active_count() == threads
        if transport == "broker":
            assert sum(h.holder().waiters for h in holders[:5]) == 5
        before = len(ticks)
        await asyncio.sleep(0.3)
        assert len(ticks) - before >= 5     # the loop was not blocked
        for h in holders:
            h.release()
        got = await asyncio.wait_for(asyncio.gather(*waits), WAIT)
        assert threading.active_count() == threads
        tick.cancel()
        return got

    with made_elsewhere(paths, transport) as holders:
        for h in holders:
            h.acquire(0)
        assert asyncio.run(main(holders)) == [True] * n


def test_async_no_thread_while_waiting(transport, lockdir):
    """acquire_async starts no thread: the count of the interpreter's
    threads is the same while it waits, after a timeout, and after a
    cancel."""
    path = os.path.join(lockdir, "a")

    async def main():
        threads = threading.active_count()
        lock = lockbroker.LockFile(path, transport=transport)
        task = asyncio.ensure_future(lock.acquire_async())
        await asyncio.sleep(0.2)
        assert not task.done()
        assert threading.active_count() == threads
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(lockbroker.LockTimeout):
            await lock.acquire_async(0.1)
        assert threading.active_count() == threads

    with other_owner("link", path, transport):
        asyncio.run(main())


def test_async_tasks_of_one_object_take_turns(transport, lockdir):
    """Tasks awaiting acquire_async on one object at once (one owner) take
    turns: each gets the lock once another owner releases it, the later
    ones re-entrantly, and one release frees it."""
    path = os.path.join(lockdir, "a")

    async def main():
        lock = lockbroker.LockFile(path, transport=transport)
        tasks = [asyncio.ensure_future(lock.acquire_async())
                 for _ in range(5)]
        await asyncio.sleep(0.2)
        assert not any(t.done() for t in tasks)
        return lock, tasks

    async def run():
        with other_owner("link", path, transport):
            lock, tasks = await main()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
        assert lock.i_am_locking()
        lock.release()
        assert not lock.is_locked()

    asyncio.run(run())


def test_async_cancel_withdraws(transport, lockdir):
    """A task canceled while it awaits acquire_async: CancelledError,
    nothing held, its request withdrawn (no waiter in STATUS or in
    lockbroker list; a second waiter queued behind it gets the lock at the
    holder's release, and after it the next owner's one try)."""
    path = os.path.join(lockdir, "a")
    probe = lockbroker.LockFile(path, transport=transport)

    async def main(holder):
        lock = lockbroker.LockFile(path, transport=transport)
        second = lockbroker.LockFile(path, transport=transport)
        task = asyncio.ensure_future(lock.acquire_async())
        await asyncio.get_running_loop().run_in_executor(
            None, waiting, probe, transport)
        behind = asyncio.ensure_future(second.acquire_async())
        if transport == "broker":
            while probe.holder().waiters != 2:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        assert not lock.i_am_locking()
        if transport == "broker":
            assert probe.holder().waiters == 1
            assert listed_waiters(path) == 1
        holder.release()
        await asyncio.wait_for(behind, WAIT)
        assert second.i_am_locking()
        no_waiter_left(probe, transport, path)
        second.release()

    with made_elsewhere([path], transport) as holders:
        holders[0].acquire(0)
        asyncio.run(main(holders[0]))
    probe.acquire(0)
    probe.release()


def test_async_cancel_keeps_earlier_hold(transport, lockdir):
    """A task canceled while its acquire_async takes a lock its owner
    already holds (another task's of the loop, the same owner: the
    acquire returns at once) releases nothing: the earlier hold stays,
    round after round."""
    path = os.path.join(lockdir, "a")
    canceled = 0

    async def main():
        nonlocal canceled
        lock = lockbroker.LockFile(path, transport=transport)
        async with lock:
            for k in range(30):
                task = asyncio.ensure_future(lock.acquire_async())
                await asyncio.sleep(0)      # its acquire has started
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    canceled += 1
                assert lock.i_am_locking(), "round %d" % k
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(lock.acquire_async(), 0)
            assert lock.i_am_locking()

    asyncio.run(main())
    # In-process the owner's re-entrant acquire takes no turn of the
    # loop (one try, at once): there is nothing for the cancel to end.
    # Through the daemon the answer takes turns, which the cancels end.
    if transport == "broker":
        assert canceled > 0
    assert not lockbroker.LockFile(path, transport=transport).is_locked()


def test_async_cancel_crosses_grant(daemon, lockdir):
    """The task's cancel and the grant cross, round after round: a
    canceled acquire_async never leaves the lock held."""
    path = os.path.join(lockdir, "a")
    probe = lockbroker.LockFile(path, transport="broker")
    async def round_(k, holder):
        lock = lockbroker.LockFile(path, transport="broker")
        task = asyncio.ensure_future(lock.acquire_async())
        while probe.holder().waiters != 1:
            await asyncio.sleep(0.002)
        holder.release()
        await asyncio.sleep((k % 6) * 0.0002)
        task.cancel()
        try:
            await task
            return "granted"            # the grant came before the cancel
        except asyncio.CancelledError:
            assert not lock.i_am_locking(), "round %d" % k
            return "canceled"
        finally:
            if lock.i_am_locking():
                lock.release()

    async def main(holder):
        seen = []
        for k in range(60):
            holder.acquire(WAIT)
            seen.append(await round_(k, holder))
            until("the lock free", lambda: not probe.is_locked())
        return seen

    with made_elsewhere([path], "broker") as holders:
        seen = asyncio.run(main(holders[0]))
    print("acquire_async: cancel and grant crossed %d times: %d granted, "
          "%d canceled" % (len(seen), seen.count("granted"),
                           seen.count("canceled")))
    assert set(seen) <= {"granted", "canceled"}
    assert probe.holder() is None
