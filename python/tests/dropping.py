"""dropping.py: a program written against lockfile that takes a lock with
one lock object and lets it go, then looks at it and releases it with new
objects (lockfile leaves the lock of an object that is dropped; a new
object of the same thread is its owner).  test_migration.py runs it as it
is and with its import lines made lockbroker's: the output must not
change.  Argument: an empty directory to lock in."""
import gc
import os
import sys
import threading

import lockfile
from lockfile.mkdirlockfile import MkdirLockFile


def step(what, fn):
    """Prints what fn returned, or the lockfile exception it raised."""
    try:
        print(what, fn())
    except lockfile.Error as e:
        print(what, type(e).__name__)


def another_thread(cls, path):
    """What another thread's object on path sees and may do."""
    out = {}

    def run():
        lock = cls(path)
        out["mine"] = lock.i_am_locking()
        try:
            lock.acquire(timeout=0)
            out["acquire"] = "ok"
        except lockfile.AlreadyLocked:
            out["acquire"] = "AlreadyLocked"
        try:
            lock.release()
            out["release"] = "ok"
        except lockfile.NotMyLock:
            out["release"] = "NotMyLock"

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return sorted(out.items())


def main(work):
    for name, cls in (("link", lockfile.LockFile), ("mkdir", MkdirLockFile)):
        path = os.path.join(work, name)
        cls(path).acquire(timeout=0)
        gc.collect()
        step(name + " held after its object went:",
             lambda: cls(path).is_locked())
        step(name + " mine:", lambda: cls(path).i_am_locking())
        print(name, "another thread:", another_thread(cls, path))
        step(name + " released by a new object:", lambda: cls(path).release())
        step(name + " held after:", lambda: cls(path).is_locked())
        step(name + " released again:", lambda: cls(path).release())
    print("left:", sorted(os.listdir(work)))


if __name__ == "__main__":
    main(sys.argv[1])
