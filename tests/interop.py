#!/usr/bin/env python3
"""interop.py: liblockbroker and the real Python lockfile exclude each other.

For the link, symlink, mkdir and pidfile methods (lockfile's LinkLockFile,
SymlinkLockFile, MkdirLockFile and PIDLockFile), a C peer driven through
tests/lockhelper and Python's lockfile in this process take the same lock:

  python-holds    a Python holder excludes C (try 0, try 0.3), and C reads
                  the holder (host, uid, unique name, pid when the name tells)
  c-holds         a C holder excludes Python (acquire 0 and 0.3, release,
                  i_am_locking)
  handoff c->py   Python waits in a thread while C holds, gets it on release
  handoff py->c   C waits (hold 10) while Python holds, gets it on release
  py-breaks-c     Python's break_lock, then C's release is LB_ENOTLOCKED
  c-breaks-py     C's break, then Python's release raises NotLocked
  breaks-and-takes  the breaker takes the lock; the old holder's late
                  release fails (LB_ENOTMINE, NotMyLock) and leaves it be
  relative        relative paths from two working directories are one lock

At every step both sides must agree on is_locked, and after every scenario
the scenario's directory must be empty (no stray unique files).  The sqlite
method is left out: lockfile's SQLiteLockFile keeps its database per
process, so there is nothing to share.

Environment: LB_BUILDDIR (the build tree holding tests/lockhelper).  Exit
status 0 when all pass, 1 when one fails, 77 when lockfile is missing.
"""
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    from lockfile import (AlreadyLocked, LockTimeout, NotLocked, NotMyLock)
    from lockfile.linklockfile import LinkLockFile
    from lockfile.mkdirlockfile import MkdirLockFile
    from lockfile.pidlockfile import PIDLockFile
    from lockfile.symlinklockfile import SymlinkLockFile
except ImportError as e:
    print("SKIP: Python lockfile is missing (%s): install python3-lockfile"
          % e, file=sys.stderr)
    sys.exit(77)

BUILDDIR = os.path.abspath(os.environ.get(
    "LB_BUILDDIR", os.path.join(os.path.dirname(__file__), "..")))
HELPER = os.path.join(BUILDDIR, "tests", "lockhelper")
TRANSPORT = ["-l"]      # the in-process transport: no broker yet
WAIT = 15               # upper bound on any single wait, to catch hangs
WATCHDOG = 120          # upper bound on the whole run

PY_CLASSES = {
    "link": LinkLockFile,
    "symlink": SymlinkLockFile,
    "mkdir": MkdirLockFile,
    "pidfile": PIDLockFile,
}

started = []            # every helper process, killed at scenario end
scratch = []            # the temporary directory, once made


class Failure(Exception):
    """A check that did not hold."""


def check(cond, what):
    """Fails the scenario with what unless cond."""
    if not cond:
        raise Failure(what)


def expect_raises(exc, fn, what):
    """Fails unless fn() raises exc (not merely another lockfile error)."""
    try:
        fn()
    except exc:
        return
    except Exception as e:
        raise Failure("%s: expected %s, got %s: %s"
                      % (what, exc.__name__, type(e).__name__, e))
    raise Failure("%s: expected %s, nothing raised" % (what, exc.__name__))


def artefact(method, path):
    """The on-disk lock artefact of path (absolute) for method."""
    return path if method == "pidfile" else path + ".lock"


def helper_argv(method, path, *args):
    return [HELPER] + TRANSPORT + [method, path] + [str(a) for a in args]


class CPeer:
    """A lockhelper process with its own handle on one lock, answering the
    commands sent to it one line at a time: "serve" (an observer) or "hold"
    (acquires on start, ends at release)."""

    def __init__(self, method, path, command, *args, cwd=None):
        self.argv = helper_argv(method, path, command, *args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=cwd)
        started.append(self.proc)
        self.buf = b""

    def has_output(self):
        """Whether the helper has said anything not read yet."""
        return bool(self.buf) or bool(
            select.select([self.proc.stdout], [], [], 0)[0])

    def readline(self):
        """The helper's next line, waiting up to WAIT seconds."""
        deadline = time.monotonic() + WAIT
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            check(left > 0, "%s: no answer within %d s"
                  % (" ".join(self.argv), WAIT))
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 4096)
                if not data:
                    raise Failure("%s: exited (status %r) before answering"
                                  % (" ".join(self.argv),
                                     self.proc.wait(WAIT)))
                self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def ask(self, command):
        """Sends command; returns the answer line."""
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self.readline()

    def is_locked(self):
        """C's lb_is_locked, as a bool."""
        line = self.ask("is_locked")
        check(line in ("0", "1"), "C is_locked answered %r" % line)
        return line == "1"

    def try_acquire(self, timeout):
        """C's lb_acquire(timeout), released at once if it succeeded: "0" or
        an error name."""
        return self.ask("try %s" % timeout)

    def holder(self):
        """C's lb_get_holder, as a dict of strings."""
        lines = [self.ask("holder")]
        while lines[-1] != "end" and not lines[-1].startswith("error "):
            lines.append(self.readline())
        check(lines[-1] == "end", "C holder answered %r" % lines)
        return dict((l.split(" ", 1) + [""])[:2] for l in lines[:-1])

    def finish(self, last=None):
        """Sends last (if any), closes stdin and waits for the exit;
        returns (the answer to last or None, exit status)."""
        line = self.ask(last) if last is not None else None
        self.proc.stdin.close()
        try:
            status = self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise Failure("%s: did not exit at the end of its input"
                          % " ".join(self.argv))
        check(status >= 0, "%s: killed by signal %d"
              % (" ".join(self.argv), -status))
        return line, status

    def release(self):
        """Ends a "hold": returns (its answer to release, exit status)."""
        return self.finish("release")


def c_holder_locked(method, path, timeout, cwd=None):
    """A C holder that has taken the lock."""
    ch = CPeer(method, path, "hold", timeout, cwd=cwd)
    line = ch.readline()
    check(line == "locked", "C hold %s: %s" % (timeout, line))
    return ch


def check_released(ch):
    """Releases C holder ch, which must succeed."""
    line, status = ch.release()
    check((line, status) == ("released", 0),
          "C release: %r, exit status %d" % (line, status))


class PyWaiter(threading.Thread):
    """A thread that makes its own lockfile object (its own owner) and
    acquires it with timeout."""

    def __init__(self, cls, path, timeout):
        super().__init__(daemon=True)
        self.cls, self.path, self.timeout = cls, path, timeout
        self.lock = None
        self.error = None

    def run(self):
        try:
            self.lock = self.cls(self.path)
            self.lock.acquire(timeout=self.timeout)
        except Exception as e:
            self.error = e


def agree(pylock, obs, expected, holder=None):
    """Python, the C observer obs and the C holder (when given) all say
    is_locked is expected."""
    check(pylock.is_locked() == expected,
          "Python is_locked is %s, expected %s" % (not expected, expected))
    check(obs.is_locked() == expected,
          "C is_locked is %s, expected %s" % (not expected, expected))
    if holder is not None:
        check(holder.is_locked() == expected, "C holder's is_locked is %s, "
              "expected %s" % (not expected, expected))


def leftovers(top, dirs=()):
    """What is under top besides the directories dirs (relative)."""
    found = []
    for root, subdirs, files in os.walk(top):
        for name in subdirs + files:
            rel = os.path.relpath(os.path.join(root, name), top)
            if name not in files and rel in dirs:
                continue
            found.append(rel)
    return sorted(found)


def check_empty(top, dirs=()):
    found = leftovers(top, dirs)
    check(not found, "left behind in %s: %s" % (top, ", ".join(found)))


def pick_path(top, negative_hash):
    """A path in top whose Python hash has the sign asked for: lockfile's
    link and symlink unique names tell the pid only when it is negative."""
    for i in range(1000):
        path = os.path.join(top, "res%d" % i)
        if (hash(path) < 0) == negative_hash:
            return path
    raise Failure("no path with the hash sign wanted")


def pid_is_named(method, path, threaded):
    """Whether lockfile's artefact for path names the holder's pid."""
    if method == "pidfile":
        return True
    if method == "mkdir":       # threaded: "HOST.-TIDPID", run together
        return not threaded
    return hash(path) < 0       # "HOST[-TID].PID<hash>"


def python_holds(top, method, threaded, negative_hash):
    cls = PY_CLASSES[method]
    path = pick_path(top, negative_hash)
    obs = CPeer(method, path, "serve")
    pl = cls(path, threaded=threaded)
    agree(pl, obs, False)
    pl.acquire(timeout=0)
    agree(pl, obs, True)
    check(pl.i_am_locking(), "Python i_am_locking after acquire")
    r = obs.try_acquire(0)
    check(r == "LB_EALREADY", "C try 0 on a Python-held lock: %s" % r)
    r = obs.try_acquire(0.3)
    check(r == "LB_ETIMEOUT", "C try 0.3 on a Python-held lock: %s" % r)

    h = obs.holder()
    check(h.get("held") == "1", "C holder: held %r" % h.get("held"))
    check(h.get("host") == socket.gethostname(),
          "C holder: host %r, expected %r" % (h.get("host"),
                                              socket.gethostname()))
    check(h.get("uid") == str(os.getuid()), "C holder: uid %r" % h.get("uid"))
    check(h.get("unique") == pl.unique_name, "C holder: unique %r, expected "
          "%r" % (h.get("unique"), pl.unique_name))
    check(0 < float(h.get("since", 0)) <= time.time() + 5,
          "C holder: since %r" % h.get("since"))
    if pid_is_named(method, path, threaded):
        check(h.get("pid") == str(os.getpid()), "C holder: pid %r, expected "
              "%d" % (h.get("pid"), os.getpid()))
        check(h.get("liveness") == "alive",
              "C holder: liveness %r" % h.get("liveness"))
    else:
        check(h.get("pid") == "0", "C holder: pid %r where the name does "
              "not tell it" % h.get("pid"))
        check(h.get("liveness") == "unknown",
              "C holder: liveness %r" % h.get("liveness"))

    agree(pl, obs, True)
    check(pl.i_am_locking(), "Python i_am_locking after C's tries")
    pl.release()
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def c_holds(top, method):
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    ch = c_holder_locked(method, path, 0)
    pl = PY_CLASSES[method](path)
    agree(pl, obs, True, ch)
    expect_raises(AlreadyLocked, lambda: pl.acquire(timeout=0),
                  "Python acquire(timeout=0) on a C-held lock")
    expect_raises(LockTimeout, lambda: pl.acquire(timeout=0.3),
                  "Python acquire(timeout=0.3) on a C-held lock")
    check(not pl.i_am_locking(), "Python i_am_locking on a C-held lock")
    expect_raises(NotMyLock, pl.release, "Python release of a C-held lock")
    if method == "pidfile":
        pid = int(ch.ask("pid"))
        check(pl.read_pid() == pid, "pid file names %r, C holder is %d"
              % (pl.read_pid(), pid))
    agree(pl, obs, True, ch)
    check(ch.ask("i_am_locking") == "1", "C lost the lock to Python's tries")
    check_released(ch)
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def handoff_c_to_py(top, method):
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    ch = c_holder_locked(method, path, 0)
    waiter = PyWaiter(PY_CLASSES[method], path, 10)
    waiter.start()
    time.sleep(0.3)
    check(waiter.is_alive(), "Python acquire(timeout=10) did not wait: %r"
          % waiter.error)
    check(ch.ask("i_am_locking") == "1", "C lost the lock to the waiter")
    check_released(ch)
    waiter.join(WAIT)
    check(not waiter.is_alive(), "Python still waiting %d s after C's "
          "release" % WAIT)
    check(waiter.error is None, "Python acquire after C's release: %r"
          % waiter.error)
    pl = waiter.lock
    agree(pl, obs, True)
    check(pl.i_am_locking(), "Python i_am_locking after the handoff")
    r = obs.try_acquire(0)
    check(r == "LB_EALREADY", "C try 0 after the handoff: %s" % r)
    pl.release()
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def handoff_py_to_c(top, method):
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    pl = PY_CLASSES[method](path)
    pl.acquire(timeout=0)
    ch = CPeer(method, path, "hold", 10)
    time.sleep(0.3)
    check(ch.proc.poll() is None and not ch.has_output(),
          "C hold 10 did not wait for the Python holder")
    agree(pl, obs, True)
    pl.release()
    line = ch.readline()
    check(line == "locked", "C hold 10 after Python's release: %s" % line)
    agree(pl, obs, True, ch)
    check(not pl.i_am_locking(), "Python i_am_locking after the handoff")
    expect_raises(AlreadyLocked, lambda: pl.acquire(timeout=0),
                  "Python acquire(timeout=0) after the handoff")
    check_released(ch)
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def py_breaks_c(top, method):
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    ch = c_holder_locked(method, path, 0)
    pl = PY_CLASSES[method](path)
    pl.break_lock()
    agree(pl, obs, False, ch)
    check(ch.ask("i_am_locking") == "0", "C i_am_locking after the break")
    line, status = ch.release()
    check(line.startswith("error LB_ENOTLOCKED:") and status == 1,
          "C release after Python's break_lock: %r, exit status %d"
          % (line, status))
    agree(pl, obs, False)
    check_empty(top)
    # The path is usable again, by both.
    pl.acquire(timeout=0)
    r = obs.try_acquire(0)
    check(r == "LB_EALREADY", "C try 0 on the lock taken again: %s" % r)
    pl.release()
    obs.finish()
    check_empty(top)


def c_breaks_py(top, method):
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    pl = PY_CLASSES[method](path)
    pl.acquire(timeout=0)
    r = obs.ask("break")
    check(r == "0", "C break of a Python-held lock: %s" % r)
    agree(pl, obs, False)
    check(not pl.i_am_locking(), "Python i_am_locking after C's break")
    expect_raises(NotLocked, pl.release, "Python release after C's break")
    check_empty(top)
    # The path is usable again, by both.
    r = obs.try_acquire(0)
    check(r == "0", "C try 0 after the break: %s" % r)
    obs.finish()
    check_empty(top)


def py_breaks_and_takes(top, method):
    """C's late release after Python broke the lock and took it must not
    touch Python's lock."""
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    ch = c_holder_locked(method, path, 0)
    pl = PY_CLASSES[method](path)
    pl.break_lock()
    pl.acquire(timeout=0)
    agree(pl, obs, True, ch)
    check(ch.ask("i_am_locking") == "0", "C i_am_locking after the break")
    line, status = ch.release()
    check(line.startswith("error LB_ENOTMINE:") and status == 1,
          "C late release of Python's lock: %r, exit status %d"
          % (line, status))
    agree(pl, obs, True)
    check(pl.i_am_locking(), "Python lost its lock to C's late release")
    pl.release()
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def c_breaks_and_takes(top, method):
    """Python's late release after C broke the lock and took it must not
    touch C's lock (for link, C's break removes Python's unique file, the
    one thing lockfile's release looks at)."""
    path = os.path.join(top, "res")
    obs = CPeer(method, path, "serve")
    pl = PY_CLASSES[method](path)
    pl.acquire(timeout=0)
    r = obs.ask("break")
    check(r == "0", "C break of a Python-held lock: %s" % r)
    ch = c_holder_locked(method, path, 0)
    agree(pl, obs, True, ch)
    expect_raises(NotMyLock, pl.release, "Python late release of C's lock")
    agree(pl, obs, True, ch)
    check(ch.ask("i_am_locking") == "1",
          "C lost its lock to Python's late release")
    check_released(ch)
    agree(pl, obs, False)
    obs.finish()
    check_empty(top)


def relative_paths(top, method):
    """C in TOP/a/b takes ../../res, Python in TOP/c takes ./../c/../res:
    one lock, TOP/res."""
    c_cwd = os.path.join(top, "a", "b")
    py_cwd = os.path.join(top, "c")
    os.makedirs(c_cwd)
    os.makedirs(py_cwd)
    dirs = ("a", os.path.join("a", "b"), "c")
    c_rel, py_rel = os.path.join("..", "..", "res"), "./../c/../res"
    target = artefact(method, os.path.join(top, "res"))
    obs = CPeer(method, c_rel, "serve", cwd=c_cwd)
    old_cwd = os.getcwd()
    os.chdir(py_cwd)
    try:
        pl = PY_CLASSES[method](py_rel)
        pl.acquire(timeout=0)
        check(os.path.lexists(target), "Python's artefact is not %s" % target)
        agree(pl, obs, True)
        r = obs.try_acquire(0)
        check(r == "LB_EALREADY", "C try 0 by a relative path: %s" % r)
        h = obs.holder()
        want = (pl.unique_name if method == "symlink"
                else os.path.abspath(pl.unique_name))
        check(h.get("unique") == want, "C holder by a relative path: unique "
              "%r, expected %r" % (h.get("unique"), want))
        pl.release()
        agree(pl, obs, False)

        ch = c_holder_locked(method, c_rel, 0, cwd=c_cwd)
        check(os.path.lexists(target), "C's artefact is not %s" % target)
        agree(pl, obs, True, ch)
        expect_raises(AlreadyLocked, lambda: pl.acquire(timeout=0),
                      "Python acquire(timeout=0) by a relative path")
        check_released(ch)
        agree(pl, obs, False)
    finally:
        os.chdir(old_cwd)
    obs.finish()
    check_empty(top, dirs)


def scenarios():
    """(name, function, arguments) of every scenario, in order."""
    out = []
    for m in ("link", "symlink", "mkdir", "pidfile"):
        out += [
            ("%s: python holds (threaded, hash < 0)" % m,
             python_holds, (m, True, True)),
            ("%s: python holds (unthreaded, hash > 0)" % m,
             python_holds, (m, False, False)),
            ("%s: C holds" % m, c_holds, (m,)),
            ("%s: handoff C -> python" % m, handoff_c_to_py, (m,)),
            ("%s: handoff python -> C" % m, handoff_py_to_c, (m,)),
            ("%s: python breaks C's lock" % m, py_breaks_c, (m,)),
            ("%s: C breaks python's lock" % m, c_breaks_py, (m,)),
            ("%s: python breaks and takes C's lock" % m,
             py_breaks_and_takes, (m,)),
            ("%s: C breaks and takes python's lock" % m,
             c_breaks_and_takes, (m,)),
            ("%s: relative paths" % m, relative_paths, (m,)),
        ]
    return out


def reap_helpers():
    """Kills and waits for every helper still running."""
    while started:
        p = started.pop()
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdin, p.stdout):
            if f is not None:
                f.close()


def on_watchdog(signum, frame):
    """Ends a run that hangs: kills the helpers, removes the temporary
    directory, exits 1."""
    print("FAIL  interop: still running after %d s" % WATCHDOG, flush=True)
    for p in started:
        if p.poll() is None:
            p.kill()
    if scratch:
        shutil.rmtree(scratch[0], ignore_errors=True)
    os._exit(1)


def main():
    if not os.access(HELPER, os.X_OK):
        print("FAIL  interop: no helper at %s (set LB_BUILDDIR)" % HELPER)
        return 1
    signal.signal(signal.SIGALRM, on_watchdog)
    signal.alarm(WATCHDOG)
    root = tempfile.mkdtemp(prefix="lb-interop-")
    scratch.append(root)
    failed = 0
    try:
        for i, (name, fn, args) in enumerate(scenarios()):
            top = os.path.join(root, "s%02d" % i)
            os.mkdir(top)
            t0 = time.monotonic()
            try:
                fn(top, *args)
                print("ok    %-45s %.2f s" % (name, time.monotonic() - t0),
                      flush=True)
            except Exception as e:
                failed += 1
                print("FAIL  %s: %s" % (name, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc(file=sys.stdout)
            finally:
                reap_helpers()
    finally:
        reap_helpers()
        shutil.rmtree(root, ignore_errors=True)
        signal.alarm(0)
    print("%d of %d scenarios failed" % (failed, len(scenarios())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
