"""peers.py: the Python locks people use instead of lockbroker, measured
the way bench/lbbench measures lockbroker, and reported in its format
(see bench/bench.h):

    R METRIC REP P50_US P99_US N

    peers.py KIND STAGE DIR REPS SAMPLES
    peers.py lockbroker handoff-queued DIR REPS SAMPLES
    peers.py missing KIND     (prints why KIND cannot be measured here)

KIND is one of
    lockbroker        the Python package lockbroker's LockFile through the
                      daemon (transport='broker', LOCKBROKER_SOCKET; the
                      package on PYTHONPATH)
    lockbroker-local  the same in-process (transport='local')
    lockfile          lockfile.linklockfile.LinkLockFile (Debian
                      python3-lockfile)
    lockfile-mkdir    lockfile.mkdirlockfile.MkdirLockFile
    filelock          filelock.FileLock (python3-filelock)
    fasteners         fasteners.InterProcessLock (python3-fasteners)
each used with its defaults, as a program would (acquire() waits forever,
polling at the library's own pace; lockbroker's waiter through the daemon
is woken by it).

STAGE is
    cycle      uncontended acquire+release, in one process (peer.KIND.cycle)
    handoff    two processes pass the lock back and forth: the holder waits
               for the waiter's word that it is about to acquire, gives it
               SETTLE_S to be well inside its polling loop (none of these
               libraries can say that it waits) plus a random fraction of
               the longest polling interval, POLL_MAX_S (so that the
               release lands at a random moment of the waiter's poll, as a
               program's would, never just before its next try), notes the
               time and releases; the waiter notes the time its acquire
               returns (peer.KIND.handoff: p50 and p99, and the mean as
               V peer.KIND.handoff.mean REP MEAN us).
    handoff-queued
               (lockbroker only) lbbench's broker-handoff game, with its
               wait detection: the holder releases as soon as the daemon
               counts the waiter (holder().waiters, looked at every
               QUEUED_POLL_S as lbbench's lb_get_holder is), so that the
               package's handoff is measured as liblockbroker's is
               (peer.lockbroker.handoff_queued, and its mean).

Run with Debian's /usr/bin/python3, where the three packages live.
"""
import mmap
import os
import random
import struct
import sys
import time

SETTLE_S = 0.15         # longer than the slowest polling interval (0.1 s)
POLL_MAX_S = 0.1        # the longest polling interval of the three: the
                        # holder releases at SETTLE_S plus a uniformly
                        # random fraction of it
QUEUED_POLL_S = 20e-6    # handoff-queued: lbbench's look every 20 us
QUEUED_WAIT_S = 10.0     # ... and its limit: a waiter that never queues
                         # is a broken stage
WARMUP_HANDOFF = 2
WARMUP_CYCLE = 100


def now_ns():
    """The monotonic clock that lbbench reads too (CLOCK_MONOTONIC)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def make_lock(kind, path):
    """A lock object of the given kind on path, with its defaults."""
    if kind in ("lockbroker", "lockbroker-local"):
        import lockbroker
        return lockbroker.LockFile(path, transport="broker"
                                   if kind == "lockbroker" else "local")
    if kind == "lockfile":
        from lockfile.linklockfile import LinkLockFile
        return LinkLockFile(path)
    if kind == "lockfile-mkdir":
        from lockfile.mkdirlockfile import MkdirLockFile
        return MkdirLockFile(path)
    if kind == "filelock":
        import filelock
        return filelock.FileLock(path + ".lock")
    if kind == "fasteners":
        import fasteners
        return fasteners.InterProcessLock(path + ".lock")
    raise SystemExit("peers.py: no kind %s" % kind)


def report(metric, rep, samples):
    """Prints one R line: median and 99th percentile in microseconds."""
    s = sorted(samples)
    if not s:
        raise SystemExit("peers.py: %s: no samples" % metric)

    def q(f):
        return s[min(len(s) - 1, int(f * len(s)))] / 1e3
    print("R %s %d %.3f %.3f %d" % (metric, rep, q(0.5), q(0.99), len(s)),
          flush=True)


def cycle(kind, lockdir, reps, samples):
    time_cycles(kind, make_lock(kind, os.path.join(lockdir,
                                                   "peer-%s-cycle" % kind)),
                reps, samples)


def time_cycles(kind, lock, reps, samples):
    """Times uncontended acquire+release of lock (any object with both),
    WARMUP_CYCLE untimed first; an R line peer.KIND.cycle a rep."""
    for rep in range(reps):
        out = []
        for i in range(-WARMUP_CYCLE, samples):
            t0 = now_ns()
            lock.acquire()
            lock.release()
            if i >= 0:
                out.append(now_ns() - t0)
        report("peer.%s.cycle" % kind, rep, out)


def say(fd, word):
    os.write(fd, word)


def hear(fd, word):
    got = os.read(fd, 1)
    if got != word:
        raise SystemExit("peers.py: handoff: expected %r, got %r"
                         % (word, got))


def wait_queued(lock):
    """handoff-queued: returns once the daemon counts a waiter on lock
    (lbbench's lb_queued)."""
    start = time.monotonic()
    while True:
        h = lock.holder()
        if h is not None and h.waiters is not None and h.waiters >= 1:
            return
        if time.monotonic() - start > QUEUED_WAIT_S:
            raise SystemExit("peers.py: handoff-queued: the waiter never "
                             "queued")
        time.sleep(QUEUED_POLL_S)


def play(side, kind, path, rfd, wfd, shared, rounds, queued=False):
    """One side of the handoff game; side 0 holds first.  The waiter of
    round k writes its sample into shared slot k + 1 (slot 0: t0).  With
    queued, the holder releases once the daemon counts the waiter,
    rather than at a random moment of its poll."""
    lock = make_lock(kind, path)
    if side == 0:
        lock.acquire()
        say(wfd, b"R")
    else:
        hear(rfd, b"R")
    for k in range(rounds):
        if k % 2 == side:
            hear(rfd, b"W")
            if queued:
                wait_queued(lock)
            else:
                time.sleep(SETTLE_S + random.uniform(0, POLL_MAX_S))
            struct.pack_into("Q", shared, 0, now_ns())
            lock.release()
            hear(rfd, b"G")
        else:
            say(wfd, b"W")
            lock.acquire()
            t1 = now_ns()
            t0 = struct.unpack_from("Q", shared, 0)[0]
            struct.pack_into("Q", shared, 8 * (k + 1), t1 - t0)
            say(wfd, b"G")
    if rounds % 2 == side:
        lock.release()


def play_pair(side_fn, shared, who):
    """Runs the handoff game once: side_fn(side, rfd, wfd) in this
    process (side 0) and in a forked child (side 1), joined by two pipes;
    shared is the MAP_SHARED memory both write their samples into."""
    a2b = os.pipe()
    b2a = os.pipe()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(a2b[1])
            os.close(b2a[0])
            side_fn(1, a2b[0], b2a[1])
            status = 0
        finally:
            os._exit(status)
    os.close(a2b[0])
    os.close(b2a[1])
    side_fn(0, b2a[0], a2b[1])
    os.close(a2b[1])
    os.close(b2a[0])
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise SystemExit("%s: handoff: the other side failed" % who)


def report_handoff(kind, rep, out, metric="handoff"):
    """The R line of a handoff's samples (ns) and the V line of its
    mean."""
    report("peer.%s.%s" % (kind, metric), rep, out)
    print("V peer.%s.%s.mean %d %.3f us"
          % (kind, metric, rep, sum(out) / len(out) / 1e3), flush=True)


def handoff(kind, lockdir, reps, samples, queued=False):
    path = os.path.join(lockdir, "peer-%s-handoff%s"
                        % (kind, "-queued" if queued else ""))
    rounds = samples + WARMUP_HANDOFF
    shared = mmap.mmap(-1, 8 * (rounds + 1))    # MAP_SHARED: the child's too
    for rep in range(reps):
        play_pair(lambda side, rfd, wfd: play(side, kind, path, rfd, wfd,
                                              shared, rounds, queued),
                  shared, "peers.py")
        out = [struct.unpack_from("Q", shared, 8 * (k + 1))[0]
               for k in range(WARMUP_HANDOFF, rounds)]
        report_handoff(kind, rep, out,
                       "handoff_queued" if queued else "handoff")


def missing(kind):
    """Why kind cannot be measured here (its module does not import), or
    None."""
    module = {"lockbroker": "lockbroker", "lockbroker-local": "lockbroker",
              "lockfile": "lockfile", "lockfile-mkdir": "lockfile",
              "filelock": "filelock", "fasteners": "fasteners"}[kind]
    try:
        __import__(module)
    except ImportError as e:
        return "no %s in %s (%s)" % (module, sys.executable, e)
    return None


def main(argv):
    if len(argv) == 3 and argv[1] == "missing":
        why = missing(argv[2])
        if why:
            print(why)
        return
    if len(argv) != 6 or argv[2] not in ("cycle", "handoff",
                                         "handoff-queued") or (
            argv[2] == "handoff-queued" and argv[1] != "lockbroker"):
        raise SystemExit("usage: peers.py KIND cycle|handoff DIR REPS "
                         "SAMPLES\n       peers.py lockbroker "
                         "handoff-queued DIR REPS SAMPLES\n"
                         "       peers.py missing KIND")
    kind, stage, lockdir = argv[1], argv[2], argv[3]
    reps, samples = int(argv[4]), int(argv[5])
    if stage == "cycle":
        cycle(kind, lockdir, reps, samples)
    else:
        handoff(kind, lockdir, reps, samples, stage == "handoff-queued")


if __name__ == "__main__":
    main(sys.argv)
