"""migrating.py: a small program written against Python's lockfile, as
a daemon or a cron job would use it (a pid file, a lock with a timeout,
the locked decorator, except clauses).  test_migration.py runs it as it
is and with its import lines changed to lockbroker's; the output must be
the same.  Nothing below the imports may name lockbroker.

Usage: migrating.py DIR (an empty directory for the locks).
"""
import os
import sys

import lockfile
from lockfile.pidlockfile import PIDLockFile


def child(fn):
    """Runs fn in a forked child; its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:
            os._exit(99)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def main(workdir):
    out = []
    pidfile = os.path.join(workdir, "service.pid")
    data = os.path.join(workdir, "data")

    # A service's pid file: one instance at a time.
    service = PIDLockFile(pidfile, timeout=0)
    service.acquire()
    out.append("pid file held: %s, mine: %s, pid right: %s" % (
        service.is_locked(), service.i_am_locking(),
        service.read_pid() == os.getpid()))

    def second_instance():
        try:
            PIDLockFile(pidfile).acquire(timeout=0)
        except lockfile.AlreadyLocked:
            return 3
        return 0
    out.append("second instance: exit %d" % child(second_instance))

    # A lock with a timeout, held by another process.
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        held = lockfile.LockFile(data)
        held.acquire()
        os.write(ready_w, b"x")
        os.read(go_r, 1)
        held.release()
        os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    os.read(ready_r, 1)
    lock = lockfile.LockFile(data, timeout=0.3)
    try:
        lock.acquire()
        out.append("took a held lock")
    except lockfile.LockTimeout:
        out.append("timed out: %s" % lock.is_locked())
    try:
        lock.acquire(timeout=0)
    except lockfile.LockError as e:
        out.append("no wait: %s" % type(e).__name__)
    try:
        lock.release()
    except lockfile.UnlockError as e:
        out.append("release of theirs: %s" % type(e).__name__)
    os.write(go_w, b"x")
    os.waitpid(pid, 0)
    with lock:
        out.append("with: %s %s" % (lock.is_locked(), lock.i_am_locking()))
    out.append("after with: %s" % lock.is_locked())

    # Released twice.
    try:
        lock.release()
    except lockfile.NotLocked:
        out.append("second release: NotLocked")

    # The decorator.
    @lockfile.locked(data, timeout=1)
    def update(n):
        return n + 1 if lockfile.LockFile(data).is_locked() else -1
    out.append("decorated: %d" % update(41))

    # Breaking a lock left behind.
    left = lockfile.LockFile(data)
    left.acquire()
    lockfile.LockFile(data).break_lock()
    try:
        left.release()
    except lockfile.NotLocked:
        out.append("broken, then release: NotLocked")

    service.release()
    out.append("pid file gone: %s" % (not os.path.exists(pidfile)))
    # (Not every name left: after break_lock, lockfile leaves the old
    # holder's unique file behind, a bug lockbroker does not copy.)
    out.append("lock files left: %s" % [
        n for n in sorted(os.listdir(workdir)) if n.endswith((".lock",
                                                              ".pid"))])
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
