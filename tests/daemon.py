"""daemon.py: lockbrokerd's integration tests, over its real socket.

Each test starts the built daemon in a private temporary directory (its own
socket and state database), speaks the wire protocol to it, and looks at
the artefacts on disk.  Python's lockfile (Debian's python3-lockfile) is
the outside party the broker must exclude and be excluded by.
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import (BUILDDIR, DAEMON, NOBODY, PYTHON,  # noqa: E402
                      WRAPPER, Client, Daemon, DaemonCase, connect_many_as,
                      unique_name)

# valgrind (the daemon's wrapper in the valgrind stage) does not know
# openat2 and answers ENOSYS: the daemon then cannot tell a magic link in
# a client's path, and only its other defences stand (docs/THREAT-MODEL.md).
OPENAT2 = not any("valgrind" in w for w in WRAPPER)

SRCDIR = os.environ.get("LB_SRCDIR", os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def holder_script(sock, path, method="link", extra=""):
    """A child process that holds path through the broker and waits."""
    return textwrap.dedent("""
        import socket, sys, time
        s = socket.socket(socket.AF_UNIX)
        s.connect(%r)
        f = s.makefile("rwb", buffering=0)
        f.write(b"HELLO 1 version=1\\nACQUIRE 2 path=%s method=%s%s\\n")
        assert f.readline().startswith(b"OK 1")
        print(f.readline().decode().strip(), flush=True)
        time.sleep(600)
    """) % (sock, path, method, extra)


class DaemonTest(DaemonCase):
    prefix = "lbdaemon."

    def assertPythonSeesItHeld(self, p):
        out = subprocess.run(
            [PYTHON, "-c", textwrap.dedent("""
                import sys
                from lockfile.linklockfile import LinkLockFile
                from lockfile import AlreadyLocked
                l = LinkLockFile(sys.argv[1])
                assert l.is_locked()
                try:
                    l.acquire(timeout=0)
                except AlreadyLocked:
                    print("held")
                """), p], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "held", out.stderr)

    def reply_within(self, c, rid, seconds):
        """c's reply to rid when it comes within seconds, else None."""
        try:
            return c.wait(rid, seconds)
        except (TimeoutError, socket.timeout):
            return None

    def raw_client(self, script):
        """A child process connected to the daemon (a protocol client
        `c`, tests/lbdaemon.py's Client) that runs script, then says so
        and sleeps (killed after the test); returned once it has said so."""
        proc = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket)) + textwrap.dedent(script) +
            'print("ready", flush=True)\ntime.sleep(600)\n')
        self.assertEqual(proc.stdout.readline(), b"ready\n")
        return proc

    @contextlib.contextmanager
    def database_busy(self, directory=None):
        """The sqlite lock database of directory (the locks' by default)
        write-locked by another process's transaction meanwhile."""
        db = os.path.join(directory or self.locks, ".lockbroker.sqlite")
        busy = sqlite3.connect(db, isolation_level=None)
        busy.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            busy.rollback()
            busy.close()


class Hello(DaemonTest):
    def test_hello_first_and_once(self):
        c = self.client(hello=False)
        self.assertCode(c.call("PING"), "EHELLO")
        self.assertCode(c.call("HELLO", version=4), "EVERSION")
        r = c.call("HELLO", version=1)
        self.assertEqual(r.fields["version"], "1")
        self.assertEqual(int(r.fields["pid"]), self.daemon.proc.pid)
        self.assertTrue(r.fields["server"].startswith("lockbrokerd/"))
        self.assertCode(c.call("HELLO", version=1), "EHELLO")
        self.assertCode(c.call("PING"), "OK")

    def test_reply_verbs_are_not_requests(self):
        c = self.client()
        self.assertCode(c.call("OK"), "EVERB")


class Locking(DaemonTest):
    def test_acquire_status_release(self):
        c = self.client()
        p = self.path()
        r = c.call("ACQUIRE", path=p)
        self.assertCode(r, "OK")
        token = int(r.fields["token"])
        self.assertTrue(os.path.exists(p + ".lock"))
        st = c.call("STATUS", path=p)
        self.assertEqual(st.fields["locked"], "1")
        self.assertEqual(st.fields["mine"], "1")
        self.assertEqual(int(st.fields["holder_pid"]), os.getpid())
        self.assertEqual(int(st.fields["holder_uid"]), os.getuid())
        self.assertEqual(int(st.fields["token"]), token)
        self.assertEqual(st.fields["host"], socket.gethostname())
        self.assertEqual(st.fields["waiters"], "0")
        # Re-entrant: the same token, at once.
        self.assertEqual(int(c.call("ACQUIRE", path=p).fields["token"]),
                         token)
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertFalse(os.path.exists(p + ".lock"))
        self.assertEqual(os.listdir(self.locks), [])
        self.assertCode(c.call("RELEASE", path=p), "ENOTLOCKED")
        self.assertEqual(c.call("STATUS", path=p).fields["locked"], "0")

    def test_artefacts_of_every_method(self):
        c = self.client()
        for method in ("link", "symlink", "mkdir", "pidfile", "sqlite"):
            p = self.path(method)
            self.assertCode(c.call("ACQUIRE", path=p, method=method), "OK")
            lock = p if method == "pidfile" else p + ".lock"
            if method == "link":
                self.assertEqual(os.stat(lock).st_nlink, 2)
            elif method == "symlink":
                self.assertIn(".%d~" % os.getpid(), os.readlink(lock))
            elif method == "mkdir":
                self.assertEqual(len(os.listdir(lock)), 1)
            elif method == "pidfile":
                with open(lock) as f:
                    self.assertEqual(f.read(), "%d\n" % os.getpid())
            else:
                db = sqlite3.connect(os.path.join(self.locks,
                                                  ".lockbroker.sqlite"))
                rows = db.execute("SELECT unique_name FROM locks WHERE "
                                  "lock_file = ?", (lock,)).fetchall()
                db.close()
                self.assertEqual(len(rows), 1)
            self.assertCode(c.call("RELEASE", path=p, method=method), "OK")
        self.assertEqual(sorted(os.listdir(self.locks)),
                         [".lockbroker.sqlite"])

    def test_timeout_table(self):
        a, b = self.client(), self.client()
        p = self.path()
        t1 = int(a.call("ACQUIRE", path=p).fields["token"])
        self.assertCode(b.call("ACQUIRE", path=p, timeout=0), "EALREADY")
        self.assertCode(b.call("ACQUIRE", path=p, timeout=-1), "EALREADY")
        t0 = time.monotonic()
        self.assertCode(b.call("ACQUIRE", path=p, timeout=0.3), "ETIMEOUT")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        rid = b.send("ACQUIRE", path=p)            # timeout inf
        self.assertCode(a.call("RELEASE", path=p), "OK")
        r = b.wait(rid)
        self.assertCode(r, "OK")
        self.assertGreater(int(r.fields["token"]), t1)
        self.assertCode(a.call("ACQUIRE", path=p, timeout="nan"), "EINVAL")
        self.assertCode(a.call("ACQUIRE", path="rel/a"), "EINVAL")
        self.assertCode(a.call("ACQUIRE", path=p, method="flock"), "EINVAL")

    def test_threads_are_owners(self):
        c = self.client()
        p = self.path()
        self.assertCode(c.call("ACQUIRE", path=p, thread=11), "OK")
        self.assertCode(c.call("ACQUIRE", path=p, thread=12, timeout=0),
                        "EALREADY")
        self.assertCode(c.call("RELEASE", path=p, thread=12), "ENOTMINE")
        self.assertEqual(c.call("STATUS", path=p, thread=12)
                         .fields["mine"], "0")
        self.assertEqual(c.call("STATUS", path=p, thread=11)
                         .fields["holder_tid"], "11")
        self.assertCode(c.call("RELEASE", path=p, thread=11), "OK")

    def test_fifo_order(self):
        holder = self.client()
        p = self.path()
        holder.call("ACQUIRE", path=p)
        waiters = [self.client() for _ in range(5)]
        rids = []
        for w in waiters:
            rids.append(w.send("ACQUIRE", path=p))
            # The daemon has queued it once STATUS counts it.
            n = len(rids)
            for _ in range(200):
                if int(holder.call("STATUS", path=p)
                       .fields["waiters"]) == n:
                    break
                time.sleep(0.01)
        self.assertCode(holder.call("RELEASE", path=p), "OK")
        for w, rid in zip(waiters, rids):
            self.assertCode(w.wait(rid, timeout=5), "OK")
            self.assertCode(w.call("RELEASE", path=p), "OK")

    def test_out_of_order_replies_and_cancel(self):
        a, b = self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        waiting = b.send("ACQUIRE", path=p)
        ping = b.send("PING")
        others = []
        self.assertCode(b.wait(ping, others=others), "OK")
        self.assertEqual(others, [])
        self.assertCode(b.call("ACQUIRE", path=p, bogus=1), "EPROTO")
        cancel = b.send("CANCEL", target=waiting)
        got = {}
        for _ in range(2):
            r = b.read()
            got[r.id] = r
        self.assertCode(got[waiting], "ECANCELED")
        self.assertCode(got[cancel], "OK")
        self.assertCode(b.call("CANCEL", target=waiting), "ENOENT")

    def test_request_id_in_use(self):
        a, b = self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        b.send_raw("ACQUIRE 7 path=%s\n" % p)
        b.send_raw("ACQUIRE 7 path=%s\n" % p)
        self.assertCode(b.read(), "EID")

    def test_every_request_id_in_use_is_refused(self):
        """An id is in use until its request has had its reply: while an
        ACQUIRE waits, and while its OK is owed for a grant not yet
        recorded (a request in the same read).  Any request with it gets
        EID; the earlier one goes on."""
        a, b = self.client(), self.client()
        p, q = self.path(), self.path("q")
        a.call("ACQUIRE", path=p)
        b.send_raw("ACQUIRE 5 path=%s\n" % p)
        b.send_raw("PING 6\n")
        self.assertCode(b.wait("6"), "OK")          # 5 is queued
        for line in ("STATUS 5 path=%s" % p, "PING 5", "LIST 5",
                     "RELEASE 5 path=%s" % q, "CANCEL 5 target=5"):
            b.send_raw(line + "\n")
            self.assertCode(b.read(), "EID", line)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        r = b.wait("5")
        self.assertCode(r, "OK")
        self.assertIn("token", r.fields)
        # Pipelined: the grant's OK is owed until the commit.
        # Whether the PING is read before that commit depends on the
        # daemon's turns (about turn_us of a user's requests an iteration,
        # which a slow daemon, under valgrind, spends on the ACQUIRE):
        # either it is refused, or it is answered after the grant's OK;
        # never two replies with one id outstanding.
        b.send_raw("ACQUIRE 7 path=%s timeout=0\nPING 7\n" % q)
        got = [(r.code, "token" in r.fields) for r in (b.read(), b.read())]
        self.assertIn(got, ([("OK", True), ("EID", False)],
                            [("EID", False), ("OK", True)],
                            [("OK", True), ("OK", False)]))
        self.assertCode(b.call("PING"), "OK")       # nothing else came
        b.send_raw("PING 7\n")                     # answered: free again
        self.assertCode(b.read(), "OK")

    def test_break_and_late_release(self):
        a, b, w = self.client(), self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        rid = w.send("ACQUIRE", path=p)
        r = b.call("BREAK", path=p)
        self.assertEqual(r.fields["broken"], "1")
        self.assertCode(w.wait(rid), "OK")          # the waiter's turn
        self.assertCode(a.call("RELEASE", path=p), "ENOTMINE")
        self.assertEqual(w.call("STATUS", path=p).fields["mine"], "1")
        self.assertEqual(b.call("BREAK", path=self.path("free"))
                         .fields["broken"], "0")

    def test_list(self):
        a, b = self.client(), self.client()
        a.call("ACQUIRE", path=self.path("x"))
        a.call("ACQUIRE", path=self.path("y"), method="mkdir")
        b.send("ACQUIRE", path=self.path("x"))
        self.assertCode(b.call("PING"), "OK")   # the ACQUIRE is queued
        rid = a.send("LIST")
        items = []
        while True:
            r = a.read()
            self.assertEqual(r.id, rid)
            if r.verb != "ITEM":
                break
            items.append(r)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["count"], "2")
        self.assertEqual(len(items), 2)
        byname = {i.fields["path"]: i for i in items}
        self.assertEqual(byname[self.path("x")].fields["waiters"], "1")
        self.assertEqual(byname[self.path("y")].fields["method"], "mkdir")


class Timeouts(DaemonTest):
    def test_timeouts_beyond_the_clock_are_forever(self):
        """A timeout too long for the daemon's clock waits as inf does,
        rather than ending at once (milliseconds overflowing)."""
        a, b = self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        timeouts = ("100000000000000000", "18446744073709551616",
                    "1" + "0" * 300, "9999999999.5")
        for i, t in enumerate(timeouts):
            b.send_raw("ACQUIRE %d path=%s thread=%d timeout=%s\n"
                       % (10 + i, p, 1 + i, t))
        self.assertEqual(b.call("STATUS", path=p).fields["waiters"], "4")
        with self.assertRaises((TimeoutError, socket.timeout)):
            r = b.read(timeout=1.0)
            self.fail("a reply came: %r" % r)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(b.wait("10"), "OK")

    def test_timeouts_never_end_early(self):
        """An ACQUIRE that times out has waited at least its timeout, on
        the monotonic clock, measured around the request (the loop's
        millisecond clock must not end it before)."""
        a, b = self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        early = []
        for i in range(300):
            t = (0.001, 0.002, 0.003, 0.0105)[i % 4]
            t0 = time.monotonic()
            r = b.call("ACQUIRE", path=p, timeout=repr(t))
            took = time.monotonic() - t0
            self.assertCode(r, "ETIMEOUT")
            if took < t:
                early.append((t, took))
        self.assertEqual(early, [])


class Lifetime(DaemonTest):
    def test_close_hands_on(self):
        a, b = self.client(), self.client()
        p = self.path()
        a.call("ACQUIRE", path=p)
        rid = b.send("ACQUIRE", path=p)
        a.close()
        self.clients.remove(a)
        self.assertCode(b.wait(rid, timeout=5), "OK")

    def test_kill9_holder(self):
        p = self.path()
        child = self.spawn(holder_script(self.daemon.socket, p))
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"))
        w = self.client()
        rid = w.send("ACQUIRE", path=p)
        t0 = time.monotonic()
        child.kill()
        r = w.wait(rid, timeout=5)
        self.assertCode(r, "OK")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(w.call("STATUS", path=p).fields["mine"], "1")


class Foreign(DaemonTest):
    def test_python_holder_excludes_and_hands_over(self):
        p = self.path()
        script = textwrap.dedent("""
            import sys, time
            from lockfile.linklockfile import LinkLockFile
            l = LinkLockFile(%r)
            l.acquire(timeout=5)
            print("held", flush=True)
            sys.stdin.readline()
            l.release()
            print("released", flush=True)
            time.sleep(600)
        """) % p
        py = subprocess.Popen([PYTHON, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
        self.procs.append(py)
        self.assertEqual(py.stdout.readline(), b"held\n")
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "EALREADY")
        st = c.call("STATUS", path=p)
        self.assertEqual(st.fields["locked"], "1")
        self.assertEqual(st.fields["mine"], "0")
        self.assertNotIn("token", st.fields)
        self.assertCode(c.call("RELEASE", path=p), "ENOTMINE")
        rid = c.send("ACQUIRE", path=p, timeout=20)
        t0 = time.monotonic()
        py.stdin.write(b"go\n")
        py.stdin.flush()
        self.assertEqual(py.stdout.readline(), b"released\n")
        self.assertCode(c.wait(rid, timeout=15), "OK")
        # Woken by the directory watch, not by the one-second poll alone.
        self.assertLess(time.monotonic() - t0, 10)

    def test_stale_breaks_a_dead_outside_holder(self):
        # pidfile: lockfile writes the pid plainly, so death is provable.
        take = textwrap.dedent("""
            import sys, time
            from lockfile.pidlockfile import PIDLockFile
            PIDLockFile(sys.argv[1]).acquire(timeout=0)
            print("held", flush=True)
            time.sleep(600)
        """)
        p = self.path()
        py = subprocess.Popen([PYTHON, "-c", take, p], stdout=subprocess.PIPE)
        self.procs.append(py)
        self.assertEqual(py.stdout.readline(), b"held\n")
        c = self.client()
        # Alive: stale=1 breaks nothing.
        self.assertCode(c.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0, stale=1), "EALREADY")
        # Waiting with stale=1, the holder dies: broken and granted (found
        # by the poll: a process's death does not touch the directory).
        rid = c.send("ACQUIRE", path=p, method="pidfile", timeout=20,
                     stale=1)
        other = self.client()
        rid2 = other.send("ACQUIRE", path=p, method="pidfile", timeout=20)
        self.assertCode(c.call("PING"), "OK")
        py.kill()
        py.wait()
        self.assertCode(c.wait(rid, timeout=15), "OK")
        self.assertIn("holder that is gone", self.daemon.logtext())
        self.assertCode(c.call("RELEASE", path=p, method="pidfile"), "OK")
        self.assertCode(other.wait(rid2, timeout=15), "OK")
        self.assertCode(other.call("RELEASE", path=p, method="pidfile"),
                        "OK")
        # Dead already: without stale=1 it stays; with it, one try wins.
        with open(p, "w") as f:
            f.write("%d\n" % py.pid)
        self.assertCode(c.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0), "EALREADY")
        self.assertCode(c.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0, stale=2), "EINVAL")
        self.assertCode(c.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0, stale=1), "OK")

    def test_handoffs_in_one_iteration(self):
        """Several handoffs read in one loop iteration (one write of
        RELEASEs, every method, locks in one directory): one at a time,
        each finished before the next is prepared; each waiter gets its
        lock, on disk its own, and nothing is left behind."""
        a, b = self.client(), self.client()
        methods = ("link", "symlink", "mkdir", "pidfile", "sqlite")
        paths = [self.path("h-" + m) for m in methods]
        for p, m in zip(paths, methods):
            self.assertCode(a.call("ACQUIRE", path=p, method=m, thread=1),
                            "OK")
        rids = [b.send("ACQUIRE", path=p, method=m, thread=2, timeout=60)
                for p, m in zip(paths, methods)]
        self.assertCode(b.call("PING"), "OK")
        a.send_raw("".join("RELEASE %d path=%s method=%s thread=1\n" %
                           (100 + i, p, m) for i, (p, m) in
                           enumerate(zip(paths, methods))))
        for rid in rids:
            self.assertCode(b.wait(rid), "OK")
        for i in range(len(methods)):
            self.assertCode(a.wait(str(100 + i)), "OK")
        for p, m in zip(paths, methods):
            self.assertEqual(b.call("STATUS", path=p, method=m, thread=2)
                             .fields["mine"], "1")
            self.assertCode(a.call("ACQUIRE", path=p, method=m, thread=3,
                                   timeout=0), "EALREADY")
            self.assertCode(b.call("RELEASE", path=p, method=m, thread=2),
                            "OK")
        self.assertEqual([f for f in os.listdir(self.locks)
                          if not f.startswith(".lockbroker.sqlite")], [])

    def test_handoff_never_leaves_the_lock_free(self):
        p = self.path()
        poller = textwrap.dedent("""
            import sys, time
            from lockfile.linklockfile import LinkLockFile
            from lockfile import AlreadyLocked
            l = LinkLockFile(%r)
            print("ready", flush=True)
            got = free = 0
            end = time.monotonic() + 60
            while time.monotonic() < end:
                try:
                    l.acquire(timeout=0)
                except AlreadyLocked:
                    pass
                else:
                    got += 1
                    l.release()
                if not l.is_locked():
                    free += 1
                import select
                if select.select([sys.stdin], [], [], 0)[0]:
                    break
            print(got, free, flush=True)
        """) % p
        a, b = self.client(), self.client()
        a.call("ACQUIRE", path=p)
        py = subprocess.Popen([PYTHON, "-c", poller], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
        self.procs.append(py)
        self.assertEqual(py.stdout.readline(), b"ready\n")
        holder, waiter = a, b
        for _ in range(300):
            rid = waiter.send("ACQUIRE", path=p)
            for _ in range(500):
                if holder.call("STATUS", path=p).fields["waiters"] == "1":
                    break
            self.assertCode(holder.call("RELEASE", path=p), "OK")
            self.assertCode(waiter.wait(rid), "OK")
            holder, waiter = waiter, holder
        py.stdin.write(b"stop\n")
        py.stdin.flush()
        got, free = map(int, py.stdout.readline().split())
        self.assertEqual((got, free), (0, 0),
                         "Python took the lock %d times and saw it free %d "
                         "times during handoffs" % (got, free))


# Python's lockfile SQLiteLockFile on the database named by argv[1] (its
# class attribute testdb, which it otherwise makes per process), serving
# one lock (argv[2]) to commands on stdin, one answer a line.
PYTHON_SQLITE = textwrap.dedent("""
    import sys
    from lockfile import AlreadyLocked, NotLocked, NotMyLock
    from lockfile.sqlitelockfile import SQLiteLockFile
    SQLiteLockFile.testdb = sys.argv[1]
    lock = SQLiteLockFile(sys.argv[2], threaded=False)
    for line in sys.stdin:
        try:
            if line.startswith("acquire"):
                lock.acquire(timeout=0)
                print("got")
            elif line.startswith("release"):
                lock.release()
                print("released")
            else:
                print(int(lock.is_locked()))
        except AlreadyLocked:
            print("busy")
        except (NotLocked, NotMyLock) as e:
            print(type(e).__name__)
        sys.stdout.flush()
""")


class SqliteShared(DaemonTest):
    """The sqlite method's database is one file that Python's lockfile
    (SQLiteLockFile pointed at it), the broker (which keeps its
    connection open between steps) and in-process clients all use: each
    excludes the others, whoever wrote the database last."""

    def lockhelper(self, p, *args):
        out = subprocess.run(
            [os.path.join(BUILDDIR, "tests", "lockhelper"), "-l", "sqlite",
             p] + [str(a) for a in args], stdout=subprocess.PIPE,
            timeout=30)
        return out.stdout.decode().strip()

    def test_python_sqlitelockfile_broker_and_in_process_exclude(self):
        p = self.path("shared-sqlite")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        c = self.client()
        # The broker makes the database (lockfile would remove one it
        # made at its exit).
        self.assertCode(c.call("ACQUIRE", path=p, method="sqlite"), "OK")
        self.assertCode(c.call("RELEASE", path=p, method="sqlite"), "OK")
        py = subprocess.Popen([PYTHON, "-c", PYTHON_SQLITE, db, p],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.procs.append(py)

        def ask(command):
            py.stdin.write(command.encode() + b"\n")
            py.stdin.flush()
            return py.stdout.readline().decode().strip()

        for i in range(3):
            why = "round %d" % i
            # Python holds: the broker and in-process clients wait.
            self.assertEqual(ask("acquire"), "got", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            st = c.call("STATUS", path=p, method="sqlite")
            self.assertEqual((st.fields["locked"], st.fields["mine"]),
                             ("1", "0"), why)
            self.assertEqual(self.lockhelper(p, "try", 0), "LB_EALREADY",
                             why)
            self.assertEqual(ask("release"), "released", why)
            # The broker holds: Python and in-process clients wait.
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")
            self.assertEqual(ask("is_locked"), "1", why)
            self.assertEqual(ask("acquire"), "busy", why)
            self.assertEqual(self.lockhelper(p, "try", 0), "LB_EALREADY",
                             why)
            self.assertCode(c.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            self.assertEqual(ask("is_locked"), "0", why)
            # An in-process client holds: Python and the broker wait.
            h = subprocess.Popen(
                [os.path.join(BUILDDIR, "tests", "lockhelper"), "-l",
                 "sqlite", p, "hold", "0"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE)
            self.procs.append(h)
            self.assertEqual(h.stdout.readline(), b"locked\n", why)
            self.assertEqual(ask("acquire"), "busy", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            h.stdin.write(b"release\n")
            h.stdin.flush()
            self.assertEqual(h.stdout.readline(), b"released\n", why)
            h.wait(30)
            h.stdin.close()
            h.stdout.close()
            self.assertEqual(ask("is_locked"), "0", why)
        py.stdin.close()
        py.wait(30)
        py.stdout.close()
        self.assertTrue(os.path.exists(db))
        # The database stays in rollback-journal mode for every user.
        h = sqlite3.connect(db)
        self.assertEqual(h.execute("PRAGMA journal_mode").fetchone()[0],
                         "delete")
        h.close()

    def test_python_sqlitelockfile_makes_the_database_first(self):
        """Python's SQLiteLockFile makes the database (and removes it at
        its exit): the broker, keeping its connection between steps,
        excludes with it both ways, and once Python's database is gone
        (the kept connection with it) makes its own."""
        p = self.path("python-first")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        c = self.client()
        for i in range(2):
            why = "round %d" % i
            self.assertFalse(os.path.exists(db), why)
            py = subprocess.Popen([PYTHON, "-c", PYTHON_SQLITE, db, p],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
            self.procs.append(py)

            def ask(command):
                py.stdin.write(command.encode() + b"\n")
                py.stdin.flush()
                return py.stdout.readline().decode().strip()

            self.assertEqual(ask("is_locked"), "0", why)
            self.assertTrue(os.path.exists(db), why)
            self.assertEqual(ask("acquire"), "got", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            self.assertEqual(ask("release"), "released", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")
            self.assertEqual(ask("acquire"), "busy", why)
            self.assertCode(c.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            self.assertEqual(ask("acquire"), "got", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            py.stdin.close()
            py.wait(30)
            py.stdout.close()
            self.assertFalse(os.path.exists(db), why)   # lockfile's atexit
            st = c.call("STATUS", path=p, method="sqlite")
            self.assertEqual(st.fields["locked"], "0", why)
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")
            self.assertCode(c.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            os.unlink(db)

    def daemon_databases(self):
        """How many descriptors the daemon has open on lock databases."""
        fds = "/proc/%d/fd" % self.daemon.proc.pid
        n = 0
        for fd in os.listdir(fds):
            try:
                if os.readlink(os.path.join(fds, fd)).startswith(
                        os.path.join(self.locks, "")) and \
                        ".lockbroker.sqlite" in os.readlink(
                            os.path.join(fds, fd)):
                    n += 1
            except OSError:
                pass
        return n

    def daemon_deleted_databases(self):
        """The daemon's descriptors on lock databases no longer there."""
        fds = "/proc/%d/fd" % self.daemon.proc.pid
        out = []
        for fd in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, fd))
            except OSError:
                continue
            if ".lockbroker.sqlite" in target and \
                    target.endswith(" (deleted)"):
                out.append(target)
        return out

    @unittest.skipIf(WRAPPER, "counts the daemon's own descriptors")
    def test_kept_connection_to_a_replaced_or_deleted_database_goes(self):
        # A kept connection to a database replaced (renamed over) or
        # deleted is closed by the next request on that database, not
        # kept open on the old file until it has gone unused for long.
        c = self.client()
        p = self.path("gone")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        for how in ("replaced", "deleted"):
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite"),
                            "OK")
            self.assertCode(c.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            if how == "replaced":
                shutil.copy(db, db + ".new")
                os.rename(db + ".new", db)
            else:
                os.unlink(db)
            self.assertEqual(c.call("STATUS", path=p, method="sqlite")
                             .fields["locked"], "0", how)
            self.assertEqual(self.daemon_deleted_databases(), [], how)

    @unittest.skipIf(WRAPPER, "counts the daemon's own descriptors")
    def test_kept_connections_are_bounded_and_closed_when_unused(self):
        # The daemon keeps at most 16 sqlite connections open, and closes
        # each one unused for 10 s (daemon/main.c): many databases, or one
        # deleted, are not held open for ever.
        c = self.client()
        for i in range(40):
            d = os.path.join(self.locks, "d%d" % i)
            os.mkdir(d)
            p = os.path.join(d, "a")
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite"),
                            "OK")
            self.assertCode(c.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            self.assertLessEqual(self.daemon_databases(), 16)
        self.assertGreater(self.daemon_databases(), 0)
        deadline = time.monotonic() + 60
        while self.daemon_databases() > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.daemon_databases(), 0)


class Releasing(DaemonTest):
    def test_a_busy_database_holds_up_only_its_own_releases(self):
        # A release that finds its lock database busy leaves the hold
        # releasing (held, answered OK pending=1), tried again in the queue of its
        # user and database, where a busy try stands for the whole queue
        # and sends its hold to the tail: the same user's release in
        # another database, free again, waits behind none of them (in
        # one queue it would wait a try of each, up to 0.5 s apart).
        busy_dir, free_dir = (os.path.join(self.dir, n)
                              for n in ("busy", "free"))
        busy = [os.path.join(busy_dir, "l%d" % i) for i in range(100)]
        free = os.path.join(free_dir, "l")
        c = self.client()
        for d in (busy_dir, free_dir):
            os.mkdir(d)
        for p in busy + [free]:
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")
        readers = []
        try:
            for d in (busy_dir, free_dir):
                r = sqlite3.connect(os.path.join(d, ".lockbroker.sqlite"),
                                    isolation_level=None)
                r.execute("BEGIN")
                r.execute("SELECT * FROM locks").fetchall()
                readers.append(r)
            for p in busy + [free]:
                # Answered pending: the row still names the releaser.
                r = c.call("RELEASE", path=p, method="sqlite")
                self.assertCode(r, "OK")
                self.assertEqual(r.fields.get("pending"), "1", r)
            for p in (busy[0], free):
                st = c.call("STATUS", path=p, method="sqlite")
                self.assertEqual(st.fields.get("locked"), "1", st)
            readers.pop().close()   # free_dir's database is free again
            deadline = time.monotonic() + 10
            while c.call("STATUS", path=free,
                         method="sqlite").fields.get("locked") != "0":
                self.assertLess(time.monotonic(), deadline,
                                "a release in a free database waited "
                                "behind those of a busy database")
                time.sleep(0.05)
            for p in (busy[0], busy[-1]):
                st = c.call("STATUS", path=p, method="sqlite")
                self.assertEqual(st.fields.get("locked"), "1", st)
        finally:
            for r in readers:
                r.close()
        deadline = time.monotonic() + 30
        while c.call("STATUS", path=busy[-1],
                     method="sqlite").fields.get("locked") != "0":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        for p in (busy[0], busy[-1], free):
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")


class BadInput(DaemonTest):
    def corpus(self):
        d = os.path.join(SRCDIR, "tests", "data", "protocol")
        manifest = os.path.join(d, "MANIFEST")
        if not os.path.exists(manifest):
            self.skipTest("no corpus at " + d)
        with open(manifest) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                name, code = line.split()[:2]
                with open(os.path.join(d, name), "rb") as g:
                    yield name, g.read(), code

    def test_corpus(self):
        """Every malformed line of the parser's corpus, sent to the daemon,
        gets its documented error; the connection then still works (but
        after a line over the limit, which closes it), and so does every
        other client's."""
        bystander = self.client()
        bystander.call("ACQUIRE", path=self.path("b"))
        n = 0
        for name, data, code in self.corpus():
            if code == "OK" or b"\n" in data.rstrip(b"\n"):
                continue        # well-formed (the daemon judges its
                                # values), or two lines on a socket
            c = self.client()
            c.send_raw(data if data.endswith(b"\n") else data + b"\n")
            r = c.read()
            self.assertEqual(r.verb, "ERR", "%s: %r" % (name, r))
            self.assertEqual(r.code, code, "%s: %r" % (name, r))
            if code == "ELIMIT":
                self.assertTrue(c.closed(), name)
            else:
                self.assertCode(c.wait(c.send("PING"), others=[]), "OK")
            n += 1
        self.assertGreater(n, 40)
        self.assertEqual(bystander.call("STATUS", path=self.path("b"))
                         .fields["mine"], "1")

    def test_line_too_long_closes_only_that_client(self):
        other = self.client()
        c = self.client()
        c.send_raw(b"PING 1 " + b"x" * 9000)
        r = c.read()
        self.assertEqual(r.verb, "ERR")
        self.assertEqual(r.id, "-")
        self.assertTrue(c.closed())
        self.assertCode(other.call("PING"), "OK")

    def test_client_that_does_not_read(self):
        greedy = self.client()
        payload = b"PING 1\n" * 20000
        for _ in range(20):
            try:
                greedy.sock.settimeout(0.5)
                greedy.sock.sendall(payload)
            except (socket.timeout, BlockingIOError):
                break
        other = self.client()
        t0 = time.monotonic()
        self.assertCode(other.call("PING"), "OK")
        self.assertLess(time.monotonic() - t0, 5)


class SwapWindow(DaemonTest):
    """A handoff's last step comes after its grant is recorded, before
    anyone is told (daemon/swap.c, loop.c): the daemon is killed right
    there, under gdb (a breakpoint on that step), and a restarted daemon
    must finish the handoff, never give the lock to anyone else meanwhile,
    and never take a lock that is someone else's by then."""

    def setUp(self):
        if WRAPPER:
            self.skipTest("the daemon runs under %s" % WRAPPER[0])
        if shutil.which("gdb") is None:
            self.skipTest("gdb is not installed (install-deps.sh does)")
        super().setUp()

    def start_under_gdb(self, *at_last_step, where="lockfs_handoff_finish"):
        """The daemon, run by gdb, which runs the gdb commands at_last_step
        when the daemon reaches the last step of its first handoff (or the
        breakpoint where)."""
        self.assertEqual(self.daemon.stop(), 0)
        commands = []
        for c in at_last_step:
            commands += ["-ex", c]
        logf = open(self.daemon.log, "a")
        self.daemon.proc = subprocess.Popen(
            ["gdb", "-q", "-nx", "-batch",
             "-ex", "set breakpoint pending on",
             "-ex", "break " + where,
             "-ex", "run"] + commands +
            ["--args", DAEMON, "--socket", self.daemon.socket, "--state",
             self.daemon.state, "--debug"] + self.daemon.args,
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        self.daemon.wait_ready(timeout=120)

    def start_killed_at_the_last_step(self):
        """The daemon, run by gdb, killed (SIGKILL) when it reaches the
        last step of its first handoff."""
        self.start_under_gdb("signal SIGKILL")

    def hand_over_and_kill(self, p, method):
        """a holds p; a hold kept for another process (a sleeper: pidfile
        names processes) waits; a releases: that process, once the
        daemon, dead at the handoff's last step, has recorded the grant
        and told nobody."""
        a, b = self.client(), self.client()
        proc = self.spawn("import time; time.sleep(600)")
        self.assertCode(a.call("ACQUIRE", path=p, method=method), "OK")
        rid = b.send("ACQUIRE", path=p, method=method, pid=proc.pid,
                     timeout=60)
        self.assertCode(b.call("PING"), "OK")       # queued
        a.send("RELEASE", path=p, method=method)
        self.daemon.proc.wait(60)                   # gdb killed it there
        self.assertIn("lockfs_handoff_finish (", self.daemon.logtext())
        # Recorded, and nobody told yet: the last step comes first.
        self.assertTrue(b.closed())
        self.assertTrue(a.closed())
        return proc

    def test_a_grant_recorded_and_not_told_is_never_taken_away(self):
        # The daemon records a grant and dies before its reply: the
        # client (the command, AUTO) goes on waiting in-process, where the
        # lock file that names it is its own.  The restarted daemon's
        # orphan of it is not reclaimed (the command knows of no token);
        # its grace ends while the command runs: the lock file stays, so
        # nobody else gets the lock until the command is done with it.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="grace = 1\n").start()
        self.start_under_gdb(
            "signal SIGKILL",
            where="reply_granted")     # the first grant's OK
        p = self.path()
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        out = os.path.join(self.dir, "out")
        holder = subprocess.Popen(
            [os.path.join(BUILDDIR, "tools", "lockbroker"), "lock", "-w",
             "60", p, "--", "sh", "-c",
             "echo in >%s; read x; echo out >>%s" % (out, out)],
            env=env, stdin=subprocess.PIPE)
        self.procs.append(holder)
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("reply_granted (", self.daemon.logtext())
        deadline = time.monotonic() + 30
        while not os.path.exists(out):      # taken in-process
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.daemon.start()
        c = self.client()
        rid = c.send("ACQUIRE", path=p, timeout=60)
        while "not reclaimed within the grace" not in self.daemon.logtext():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertIsNone(self.reply_within(c, rid, 1.0))
        self.assertPythonSeesItHeld(p)
        with open(out) as f:
            self.assertEqual(f.read(), "in\n")
        holder.communicate(b"\n", timeout=30)  # the command is done
        self.assertEqual(holder.returncode, 0)
        self.assertCode(c.wait(rid, 20), "OK")
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(sorted(os.listdir(self.locks)), [])

    def grant_made_and_killed(self, p, method):
        """A process (a raw client) asks for p; the daemon, run by gdb,
        dies right after it made the artefact, before the grant is
        recorded.  The process, which waits on, never told."""
        self.start_under_gdb("signal SIGKILL", where="lbd_store_hold_add")
        holder = self.raw_client("""
            c.send("ACQUIRE", path=%r, method=%r, timeout=60)
            """ % (p, method))
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("lbd_store_hold_add (", self.daemon.logtext())
        if method == "sqlite":
            db = sqlite3.connect(os.path.join(self.locks,
                                              ".lockbroker.sqlite"))
            self.assertEqual(db.execute("SELECT count(*) FROM locks")
                             .fetchone()[0], 1)
            db.close()
        else:
            self.assertTrue(os.path.lexists(p if method == "pidfile" else
                                            p + ".lock"))
        return holder

    def test_a_grant_made_and_not_recorded_is_judged_at_restart(self):
        # Its holder died meanwhile: the restarted daemon knows of the
        # artefact (noted before it was made) and removes it.
        for method in ("link", "symlink", "pidfile", "mkdir", "sqlite"):
            with self.subTest(method=method):
                p = self.path(method)
                holder = self.grant_made_and_killed(p, method)
                holder.kill()
                holder.wait()
                self.daemon.start()
                c = self.client()
                self.assertCode(c.call("ACQUIRE", path=p, method=method,
                                       timeout=0), "OK")
                self.assertCode(c.call("RELEASE", path=p, method=method),
                                "OK")
                self.assertEqual(
                    [n for n in os.listdir(self.locks)
                     if not n.startswith(".lockbroker.sqlite")], [])
                c.close()

    def test_a_grant_made_and_not_recorded_is_held_for_its_process(self):
        # Its holder lives: the lock stays held for it, and is released
        # when it exits.
        p = self.path()
        holder = self.grant_made_and_killed(p, "link")
        self.daemon.start()
        c = self.client()
        rid = c.send("ACQUIRE", path=p, timeout=60)
        self.assertIsNone(self.reply_within(c, rid, 1.0))
        self.assertPythonSeesItHeld(p)
        holder.kill()
        holder.wait()
        self.assertCode(c.wait(rid, 20), "OK")

    def test_a_grant_noted_after_a_recorded_hold_ended_is_judged(self):
        # In one iteration the recorded holder (thread 5) releases and
        # another owner (thread 6, its process dies later) is granted the
        # lock afresh; the daemon dies before the commit.  Its database
        # still records thread 5's hold: thread 6's newer note must be
        # judged all the same, or its artefact, its holder dead, is held
        # by nobody for good.
        self.daemon.stop()      # both requests in one turn
        self.daemon = Daemon(self.dir, config="turn_us = 100000\n").start()
        self.start_under_gdb("signal SIGKILL",
                             where="lbd_store_hold_add if h->tid == 6")
        p = self.path()
        holder = self.raw_client("""
            assert c.call("ACQUIRE", path=%r, thread=5).code == "OK"
            c.send_raw("RELEASE 10 path=%s thread=5\\n"
                       "ACQUIRE 11 path=%s thread=6 timeout=60\\n")
            """ % (p, p, p))
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("lbd_store_hold_add (", self.daemon.logtext())
        self.assertTrue(os.path.lexists(p + ".lock"))
        self.daemon.start()
        c = self.client()
        rid = c.send("ACQUIRE", path=p, timeout=60)
        self.assertIsNone(self.reply_within(c, rid, 0.5))
        holder.kill()
        holder.wait()
        self.assertCode(c.wait(rid, 20), "OK")
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_a_sqlite_handoff_not_recorded_is_judged(self):
        # A sqlite lock is handed over in one transaction of its
        # database, before the commit of the state database: the daemon
        # killed in between, the next holder (its process dies later)
        # was never told, and the restarted daemon must know of its row
        # (the handoff's note in STATE-intents), or it would be held by
        # nobody once that process dies.
        self.start_under_gdb("signal SIGKILL",
                             where="lbd_store_hold_add if h->tid == 6")
        p = self.path()
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite",
                               thread=5), "OK")
        waiter = self.raw_client("""
            c.send("ACQUIRE", path=%r, method="sqlite", thread=6,
                   timeout=60)
            assert c.call("PING").code == "OK"
            """ % p)
        a.send("RELEASE", path=p, method="sqlite", thread=5)
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("lbd_store_hold_add (", self.daemon.logtext())
        self.daemon.start()
        c = self.client()
        rid = c.send("ACQUIRE", path=p, method="sqlite", timeout=60)
        self.assertIsNone(self.reply_within(c, rid, 0.5))
        waiter.kill()
        waiter.wait()
        self.assertCode(c.wait(rid, 20), "OK")
        self.assertCode(c.call("RELEASE", path=p, method="sqlite"), "OK")

    def test_a_sqlite_handoff_noted_and_not_made_leaves_the_holder(self):
        # The daemon killed after the handoff's note and before the row
        # changed hands: the old holder's record stands (the note is not
        # recorded over it, its artefact not being the next holder's), so
        # the old holder reclaims its lock, and the waiter never had it.
        self.start_under_gdb("signal SIGKILL",
                             where="lockfs_handoff_prepare")
        p = self.path()
        a = self.client()
        r = a.call("ACQUIRE", path=p, method="sqlite", thread=5)
        self.assertCode(r, "OK")
        token = r.fields["token"]
        waiter = self.raw_client("""
            c.send("ACQUIRE", path=%r, method="sqlite", thread=6,
                   timeout=60)
            assert c.call("PING").code == "OK"
            """ % p)
        a.send("RELEASE", path=p, method="sqlite", thread=5)
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("lockfs_handoff_prepare (", self.daemon.logtext())
        self.daemon.start()
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, method="sqlite",
                                thread=5, token=token), "OK")
        c = self.client()
        rid = c.send("ACQUIRE", path=p, method="sqlite", thread=7,
                     timeout=60)
        self.assertIsNone(self.reply_within(c, rid, 0.5))
        waiter.kill()
        waiter.wait()
        self.assertIsNone(self.reply_within(c, rid, 0.5))
        self.assertCode(a2.call("RELEASE", path=p, method="sqlite",
                                thread=5), "OK")
        self.assertCode(c.wait(rid, 20), "OK")
        self.assertCode(c.call("RELEASE", path=p, method="sqlite",
                               thread=7), "OK")

    def test_a_grant_made_after_the_state_was_made_anew_is_judged(self):
        # The state database and its intents file deleted while the
        # daemon runs: made anew, the next grants' notes must go to a
        # file the next daemon reads.
        self.start_under_gdb("signal SIGKILL",
                             where="lbd_store_hold_add if h->tid == 6")
        for n in os.listdir(self.dir):
            if n.startswith("state.sqlite"):
                os.unlink(os.path.join(self.dir, n))
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=self.path("q"), thread=5),
                        "OK")                 # a commit: made anew
        self.assertIn("made anew", self.daemon.logtext())
        p = self.path()
        holder = self.raw_client("""
            c.send("ACQUIRE", path=%r, thread=6, timeout=60)
            """ % p)
        self.daemon.proc.wait(60)           # gdb killed it there
        self.assertIn("lbd_store_hold_add (", self.daemon.logtext())
        self.assertTrue(os.path.lexists(p + ".lock"))
        holder.kill()
        holder.wait()
        self.daemon.start()
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK")
        self.assertCode(c.call("RELEASE", path=p), "OK")

    def test_killed_between_the_commit_and_the_swap(self):
        for method in ("link", "symlink", "pidfile", "mkdir"):
            with self.subTest(method=method):
                self.start_killed_at_the_last_step()
                p = self.path(method)
                lock_file = p if method == "pidfile" else p + ".lock"
                proc = self.hand_over_and_kill(p, method)
                self.assertTrue(os.path.lexists(lock_file))
                self.daemon.start()
                # Nobody else gets it, the broker or Python's lockfile.
                c = self.client()
                self.assertCode(c.call("ACQUIRE", path=p, method=method,
                                       timeout=0), "EALREADY")
                if method == "link":
                    self.assertPythonSeesItHeld(p)
                # The kept process's, on disk too: released for it.
                self.assertEqual(c.call("STATUS", path=p, method=method,
                                        pid=proc.pid).fields["mine"], "1")
                self.assertCode(c.call("RELEASE", path=p, method=method,
                                       pid=proc.pid), "OK")
                self.assertFalse(os.path.lexists(lock_file))
                self.assertEqual(os.listdir(self.locks), [])
                self.assertIn("finished the handoff" if method != "mkdir"
                              else "left by a handoff",
                              self.daemon.logtext())

    def helper(self, method, p):
        """tests/lockhelper serving p through the daemon while it answers,
        in-process when it does not (the AUTO transport): a function
        that sends it a command and returns its answer."""
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        proc = subprocess.Popen(
            [os.path.join(os.environ.get("LB_BUILDDIR", "."), "tests",
                          "lockhelper"), "-u", method, p, "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            text=True)
        self.procs.append(proc)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stdin.close)

        def ask(command):
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()
        return ask

    def library_hands_over_and_dies(self, method, p):
        """A library client (lockhelper) holds p, a bare connection waits;
        the library releases, and the daemon, run by gdb, is killed at the
        handoff's last step: (ask, the waiter, its ACQUIRE's id)."""
        self.start_killed_at_the_last_step()
        ask = self.helper(method, p)
        self.assertEqual(ask("acquire 10"), "locked")
        b = self.client()
        rid = b.send("ACQUIRE", path=p, method=method, timeout=60)
        self.assertCode(b.call("PING"), "OK")       # queued
        self.assertEqual(ask("release"), "released")
        self.daemon.proc.wait(60)                   # killed there
        self.assertIn("lockfs_handoff_finish (", self.daemon.logtext())
        return ask, b, rid

    def test_nobody_told_finds_the_old_holders_lock_file(self):
        """Killed at the last step: whoever the daemon told of the handoff
        (the next holder of its grant, the old holder of its release)
        never finds the lock file still the old holder's.  The old holder,
        a library client, takes the lock again in-process (no daemon
        answers: the AUTO transport); the lock file still its own, that
        would be at once, while the next holder was told it holds it."""
        for method in ("link", "symlink", "mkdir"):
            with self.subTest(method=method):
                p = self.path(method)
                ask, b, rid = self.library_hands_over_and_dies(method, p)
                try:
                    told = b.wait(rid).verb == "OK"
                except EOFError:
                    told = False
                again = ask("acquire 0")
                if told:
                    self.assertNotEqual(again, "locked")
                elif again == "locked":
                    self.assertEqual(ask("release"), "released")
                self.daemon.start()
                if told:
                    c = self.client()
                    self.assertCode(c.call("ACQUIRE", path=p, method=method,
                                           thread=7, timeout=0), "EALREADY")

    def test_the_old_holders_lock_taken_anew_is_left_alone(self):
        """Killed at the last step: the old holder, a library client, lets
        go of the lock in-process (its RELEASE went unanswered) and takes
        it anew in-process, its lock file of the same name and owner as
        the one the handoff was to replace.  The restarted daemon must not
        rename the next holder's artefact over that new lock file, nor
        give the next holder the lock back."""
        for method in ("link", "symlink"):
            with self.subTest(method=method):
                p = self.path(method)
                ask, b, rid = self.library_hands_over_and_dies(method, p)
                with contextlib.suppress(EOFError):
                    b.wait(rid)
                # In-process, whatever the lock file is: its own again.
                ask("acquire 0")
                ask("release")
                self.assertEqual(ask("acquire 0"), "locked")
                ino = os.lstat(p + ".lock").st_ino
                self.daemon.start()
                self.assertEqual(os.lstat(p + ".lock").st_ino, ino)
                # b's owner asks again: the lock is the helper's.
                c = self.client()
                self.assertCode(c.call("ACQUIRE", path=p, method=method,
                                       timeout=0), "EALREADY")
                self.assertEqual(ask("release"), "released")

    def test_a_last_step_that_fails_is_never_told(self):
        """The handoff's last step fails (the next holder's artefact gone
        from beside the lock: its owner may remove it, as the test does
        from gdb at that step): the next holder must not be told it holds
        a lock whose file is still the old holder's (which that holder,
        told it released, would take for its own); it is refused, and
        the lock is left free for it to take anew."""
        self.start_under_gdb(
            "shell rm -f %s/.lockbroker-handoff.*" % self.locks,
            "delete", "continue")
        p = self.path()
        a, b = self.client(), self.client()
        proc = self.spawn("import time; time.sleep(600)")
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        rid = b.send("ACQUIRE", path=p, pid=proc.pid, timeout=60)
        self.assertCode(b.call("PING"), "OK")       # queued
        self.assertCode(a.call("RELEASE", path=p), "OK")
        r = b.wait(rid, timeout=60)
        self.assertIn("cannot rename", self.daemon.logtext())
        # Told, b would hold a lock whose file is still a's (the test's
        # process's): refused instead, and the old lock file released.
        self.assertCode(r, "EINTERNAL")
        self.assertIn("last step", r.fields["message"])
        self.assertFalse(os.path.lexists(p + ".lock"))
        self.assertCode(b.call("ACQUIRE", path=p, pid=proc.pid, timeout=0),
                        "OK")
        self.assertCode(b.call("RELEASE", path=p, pid=proc.pid), "OK")
        self.assertEqual(os.listdir(self.locks), [])
        self.daemon.stop()

    def test_a_lock_taken_since_is_left_alone(self):
        """Killed in the window, the old holder's lock file broken while
        no daemon runs, and the lock taken by Python's lockfile: the
        restarted daemon does not rename the next holder's artefact over
        it; the next holder's hold is forgotten."""
        self.start_killed_at_the_last_step()
        p = self.path()
        proc = self.hand_over_and_kill(p, "link")
        os.unlink(p + ".lock")                      # break_lock
        taker = subprocess.Popen(
            [PYTHON, "-c", textwrap.dedent("""
                import sys, time
                from lockfile.linklockfile import LinkLockFile
                l = LinkLockFile(sys.argv[1])
                l.acquire(timeout=0)
                print("taken", flush=True)
                sys.stdin.readline()
                assert l.i_am_locking()
                l.release()
                print("released", flush=True)
                """), p], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self.procs.append(taker)
        self.assertEqual(taker.stdout.readline().strip(), "taken")
        self.daemon.start()
        c = self.client()
        self.assertEqual(c.call("STATUS", path=p, pid=proc.pid)
                         .fields["mine"], "0")
        self.assertCode(c.call("RELEASE", path=p, pid=proc.pid),
                        "ENOTMINE")
        taker.stdin.write("\n")
        taker.stdin.flush()
        self.assertEqual(taker.stdout.readline().strip(), "released")
        self.assertEqual(taker.wait(60), 0)

    def test_handoff_to_another_user_in_a_sticky_directory(self):
        """In a sticky directory only the lock file's owner may replace
        it: a handoff from root's client to nobody's cannot end with a
        rename, so it is not prepared (nothing to finish after the reply
        that could fail); nobody gets the lock anew, its own file."""
        d = self.shared()
        p = os.path.join(d, "x")
        a, b = self.client(), self.nobody()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        rid = b.send("ACQUIRE", path=p, timeout=60)
        self.assertCode(b.call("PING"), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(b.wait(rid), "OK")
        self.assertEqual(os.lstat(p + ".lock").st_uid, NOBODY)
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(d), [])


class Restart(DaemonTest):
    def test_kill9_daemon_live_holder_reclaims(self):
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p).fields["token"]
        self.daemon.kill()
        self.assertTrue(os.path.exists(p + ".lock"))
        self.daemon.start()
        b = self.client()       # another owner: another thread
        self.assertCode(b.call("ACQUIRE", path=p, thread=99, timeout=0),
                        "EALREADY")
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, token=int(token) + 1),
                        "ENOENT")
        r = a2.call("RECLAIM", path=p, token=token)
        self.assertCode(r, "OK")
        self.assertEqual(a2.call("STATUS", path=p).fields["mine"], "1")
        rid = b.send("ACQUIRE", path=p, thread=99)
        self.assertCode(a2.call("RELEASE", path=p), "OK")
        r = b.wait(rid)
        self.assertGreater(int(r.fields["token"]), int(token))

    def test_acquire_takes_back_a_grant_whose_reply_was_lost(self):
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, thread=5).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        # The same process and thread ask again, not knowing they hold it.
        a2 = self.client()
        self.assertCode(a2.call("ACQUIRE", path=p, thread=6, timeout=0),
                        "EALREADY")
        r = a2.call("ACQUIRE", path=p, thread=5, timeout=0)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["token"], token)
        self.assertCode(a2.call("RELEASE", path=p, thread=5), "OK")

    def forget_holds(self):
        """Stops the daemon and deletes its records of holds: as if it
        had died after making the artefacts and before its commit."""
        self.assertEqual(self.daemon.stop(), 0)
        db = sqlite3.connect(self.daemon.state)
        db.execute("DELETE FROM holds")
        db.commit()
        db.close()
        self.daemon.start()

    def test_unrecorded_grant_is_taken_back_before_waiters(self):
        for method in ("link", "symlink", "mkdir", "sqlite"):
            with self.subTest(method=method):
                a = self.client()
                p = self.path()
                a.call("ACQUIRE", path=p, method=method, thread=5)
                self.forget_holds()
                # Another owner queues behind the artefact, which the
                # daemon takes for one made outside the broker.
                b = self.client()
                rid = b.send("ACQUIRE", path=p, method=method, thread=99,
                             timeout=30)
                self.assertCode(b.call("PING"), "OK")
                a2 = self.client()
                self.assertCode(a2.call("ACQUIRE", path=p, method=method,
                                        thread=5, timeout=0), "OK")
                self.assertEqual(a2.call("STATUS", path=p, method=method,
                                         thread=5).fields["mine"], "1")
                self.assertCode(a2.call("RELEASE", path=p, method=method,
                                        thread=5), "OK")
                self.assertCode(b.wait(rid), "OK")
                self.assertCode(b.call("RELEASE", path=p, method=method,
                                       thread=99), "OK")

    def test_unique_file_of_a_release_cut_short_goes(self):
        # A link release cut between its two unlinks (the lock file's,
        # then the unique file's) by a kill of the daemon: the record is
        # there, the lock file gone, the unique file left.  Its holder
        # gone too, the restarted daemon removes that file (its name and
        # owner the record's, linked nowhere else); nothing else would.
        p = self.path()
        holder = self.raw_client("""
            assert c.call("ACQUIRE", path=%r).code == "OK"
            """ % p)
        unique = [n for n in os.listdir(self.locks) if n != "a.lock"]
        self.assertEqual(len(unique), 1)
        self.daemon.kill()
        os.unlink(p + ".lock")
        holder.kill()
        holder.wait()
        self.daemon.start()
        self.assertEqual(os.listdir(self.locks), [])

    def test_unrecorded_grant_can_be_released(self):
        a = self.client()
        p = self.path()
        a.call("ACQUIRE", path=p, method="symlink", thread=5)
        self.forget_holds()
        a2 = self.client()
        self.assertCode(a2.call("RELEASE", path=p, method="symlink",
                                thread=6), "ENOTMINE")
        self.assertCode(a2.call("RELEASE", path=p, method="symlink",
                                thread=5), "OK")
        self.assertFalse(os.path.lexists(p + ".lock"))

    def test_pidfile_threads_are_owners(self):
        # A pid file names only the process: the daemon, not the
        # artefact, tells the threads of one connection apart.
        a = self.client()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p, method="pidfile",
                               thread=5), "OK")
        self.assertCode(a.call("ACQUIRE", path=p, method="pidfile",
                               thread=6, timeout=0), "EALREADY")
        self.assertCode(a.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0), "EALREADY")
        self.assertEqual(a.call("STATUS", path=p, method="pidfile",
                                thread=6).fields["mine"], "0")
        self.assertEqual(a.call("STATUS", path=p, method="pidfile",
                                thread=5).fields["holder_tid"], "5")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=6), "ENOTMINE")
        rid = a.send("ACQUIRE", path=p, method="pidfile", thread=6,
                     timeout=30)
        self.assertCode(a.call("PING"), "OK")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=5), "OK")
        self.assertCode(a.wait(rid), "OK")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=6), "OK")
        self.assertFalse(os.path.exists(p))

    def test_pidfile_naming_the_client_is_not_taken_for_its_own(self):
        # A pid file naming the client's process that the daemon did not
        # make for this thread (another thread's in-process hold, or a
        # grant the previous daemon did not record) is not the
        # requester's: it waits, and cannot release it.
        p = self.path()
        with open(p, "w") as f:
            f.write("%d\n" % os.getpid())
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="pidfile",
                               thread=7, timeout=0), "EALREADY")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=7), "ENOTMINE")
        self.assertTrue(os.path.exists(p))
        rid = a.send("ACQUIRE", path=p, method="pidfile", thread=7,
                     timeout=30)
        self.assertCode(a.call("PING"), "OK")
        os.unlink(p)            # the in-process holder lets go
        self.assertCode(a.wait(rid), "OK")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=7), "OK")
        # Made for thread 5 by a daemon that died before recording it.
        a.call("ACQUIRE", path=p, method="pidfile", thread=5)
        self.forget_holds()
        b = self.client()
        self.assertCode(b.call("ACQUIRE", path=p, method="pidfile",
                               thread=6, timeout=0), "EALREADY")
        self.assertCode(b.call("RELEASE", path=p, method="pidfile",
                               thread=6), "ENOTMINE")
        self.assertTrue(os.path.exists(p))
        os.unlink(p)

    def test_unrecorded_handoff_to_a_dead_or_live_holder(self):
        # The recorded holder's artefact was replaced by another's before
        # the daemon died: a dead holder's is broken at start, a live
        # one's stays.  (pidfile: its artefact names the pid plainly;
        # lockfile's unique names run pid and hash together.)
        take = textwrap.dedent("""
            import sys, time
            from lockfile.pidlockfile import PIDLockFile
            PIDLockFile(sys.argv[1]).acquire(timeout=0)
            print("held", flush=True)
            if sys.argv[2] == "live":
                time.sleep(600)
        """)
        for fate in ("dead", "live"):
            with self.subTest(fate=fate):
                a = self.client()
                p = self.path(fate)
                a.call("ACQUIRE", path=p, method="pidfile")
                self.assertEqual(self.daemon.stop(), 0)
                os.unlink(p)
                child = subprocess.Popen([PYTHON, "-c", take, p, fate],
                                         stdout=subprocess.PIPE)
                self.procs.append(child)
                self.assertEqual(child.stdout.readline(), b"held\n")
                if fate == "dead":
                    child.wait(20)
                self.assertTrue(os.path.exists(p))
                self.daemon.start()
                b = self.client()
                got = b.call("ACQUIRE", path=p, method="pidfile", timeout=0)
                if fate == "dead":
                    self.assertCode(got, "OK", self.daemon.logtext())
                    self.assertIn("who is gone", self.daemon.logtext())
                    b.call("RELEASE", path=p, method="pidfile")
                else:
                    self.assertCode(got, "EALREADY")
                    with open(p) as f:
                        self.assertEqual(int(f.read()), child.pid)
                    child.kill()
                    child.wait()
                    os.unlink(p)

    def test_handoff_temporaries_removed_at_start(self):
        a = self.client()
        p = self.path()
        a.call("ACQUIRE", path=p, method="symlink")
        self.assertEqual(self.daemon.stop(), 0)
        tmp = os.path.join(self.locks, ".lockbroker-handoff.somebody")
        os.symlink("somebody", tmp)
        self.daemon.start()
        self.assertFalse(os.path.lexists(tmp))
        self.assertTrue(os.path.lexists(p + ".lock"))

    def test_next_holders_unique_file_removed_once_it_is_gone(self):
        # A link handoff the previous daemon prepared and never recorded:
        # its temporary, a link to the next holder's unique file.  That
        # holder lives at start: the tidy leaves its file to it (it may
        # ask again and take the name back), and removes it only once its
        # process is gone (before, a next holder that died without asking
        # again left it for good).  A file no temporary names is never
        # taken for litter, whatever its name says (it may be a pid
        # file's lock: a hostile review had one removed while held).
        a = self.client()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p, method="link"), "OK")
        self.assertEqual(self.daemon.stop(), 0)
        nxt = subprocess.Popen([PYTHON, "-c", "import time; "
                                "time.sleep(600)"])
        self.procs.append(nxt)
        dead = subprocess.Popen([PYTHON, "-c", "import time; "
                                 "time.sleep(600)"])
        named_dead = unique_name(dead.pid, p + ".lock", "link")
        dead.kill()
        dead.wait()
        unique = unique_name(nxt.pid, p + ".lock", "link")
        for f in (unique, named_dead):
            with open(f, "w"):
                pass
        tmp = os.path.join(self.locks, ".lockbroker-handoff." +
                           os.path.basename(unique))
        os.link(unique, tmp)
        ino = os.stat(unique).st_ino
        self.daemon.start()
        self.assertFalse(os.path.lexists(tmp))
        self.assertTrue(os.path.lexists(p + ".lock"))
        # Left while its process lives (the watch looks once a second).
        time.sleep(2.5)
        self.assertEqual(os.stat(unique).st_ino, ino)
        nxt.kill()
        nxt.wait()
        deadline = time.monotonic() + 10
        while os.path.lexists(unique) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(os.path.lexists(unique), self.daemon.logtext())
        self.assertIn("its process gone", self.daemon.logtext())
        self.assertTrue(os.path.lexists(named_dead))
        os.unlink(named_dead)
        # The lock itself untouched: still its holder's, which (this
        # process) takes its hold back and lets it go.
        self.assertTrue(os.path.lexists(p + ".lock"))
        b = self.client()
        self.assertCode(b.call("ACQUIRE", path=p, method="link",
                               timeout=0), "OK")
        self.assertCode(b.call("RELEASE", path=p, method="link"), "OK")
        self.assertEqual(sorted(os.listdir(self.locks)), [])

    def test_old_holders_unique_file_of_a_finished_handoff(self):
        # A link handoff finished and recorded (the next holder's record
        # names the old holder's unique file), the daemon killed before
        # it removed the old holder's traces: that unique file, no lock,
        # is removed at start when its process is gone, and, when it
        # lives, once it is gone (before, it was left for good).
        release = textwrap.dedent("""
            import os, socket, sys, time
            s = socket.socket(socket.AF_UNIX)
            s.connect(sys.argv[1])
            f = s.makefile("rwb", buffering=0)
            f.write(("HELLO 1 version=1\\nACQUIRE 2 path=%s "
                     "method=link\\n" % sys.argv[2]).encode())
            assert f.readline().startswith(b"OK 1")
            print(f.readline().decode().strip(), flush=True)
            while not os.path.exists(sys.argv[3]):
                time.sleep(0.05)
            f.write(("RELEASE 3 path=%s method=link\\n" %
                     sys.argv[2]).encode())
            print(f.readline().decode().strip(), flush=True)
            time.sleep(600)
        """)
        for fate in ("dead", "live"):
            with self.subTest(fate=fate):
                p = self.path(fate)
                go = os.path.join(self.dir, "go-" + fate)
                x = subprocess.Popen([PYTHON, "-c", release,
                                      self.daemon.socket, p, go],
                                     stdout=subprocess.PIPE)
                self.procs.append(x)
                self.assertTrue(x.stdout.readline().startswith(b"OK 2"))
                unique = unique_name(x.pid, p + ".lock", "link")
                b = self.client()
                rid = b.send("ACQUIRE", path=p, method="link", timeout=30)
                self.assertCode(b.call("PING"), "OK")
                with open(go, "w"):
                    pass
                self.assertTrue(x.stdout.readline().startswith(b"OK 3"))
                self.assertCode(b.wait(rid), "OK")
                # Removed right after the handoff's replies went out.
                deadline = time.monotonic() + 10
                while (os.path.lexists(unique) and
                       time.monotonic() < deadline):
                    time.sleep(0.05)
                self.assertFalse(os.path.lexists(unique))
                if fate == "dead":
                    x.kill()
                    x.wait()
                self.assertEqual(self.daemon.stop(), 0)
                # What the killed daemon would have left.
                with open(unique, "w"):
                    pass
                self.daemon.start()
                if fate == "live":
                    time.sleep(2.5)
                    self.assertTrue(os.path.lexists(unique))
                    x.kill()
                    x.wait()
                deadline = time.monotonic() + 10
                while (os.path.lexists(unique) and
                       time.monotonic() < deadline):
                    time.sleep(0.1)
                self.assertFalse(os.path.lexists(unique),
                                 self.daemon.logtext())
                c = self.client()
                self.assertCode(c.call("ACQUIRE", path=p, method="link",
                                       timeout=0), "OK")
                self.assertCode(c.call("RELEASE", path=p, method="link"),
                                "OK")
                self.assertEqual(
                    [n for n in os.listdir(self.locks)
                     if n.startswith(fate)], [])
                x.stdout.close()

    def test_handoff_temporaries_removed_at_start_in_each_directory(self):
        # Each directory is tidied once in a start, but each one is: a
        # directory with several recorded locks, and the others.
        a = self.client()
        dirs = [os.path.join(self.locks, "d%d" % i) for i in range(3)]
        for d in dirs:
            os.mkdir(d)
            for name in ("a", "b"):
                self.assertCode(a.call("ACQUIRE", path=os.path.join(d, name),
                                       method="symlink"), "OK")
        self.assertEqual(self.daemon.stop(), 0)
        tmps = [os.path.join(d, ".lockbroker-handoff.somebody") for d in dirs]
        for tmp in tmps:
            os.symlink("somebody", tmp)
        self.daemon.start()
        for tmp in tmps:
            self.assertFalse(os.path.lexists(tmp), tmp)
        for d in dirs:
            self.assertTrue(os.path.lexists(os.path.join(d, "a.lock")))

    def test_dead_holders_artefacts_removed_at_start(self):
        p = self.path()
        child = self.spawn(holder_script(self.daemon.socket, p, "symlink"))
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"))
        self.daemon.kill()
        child.kill()
        child.wait()
        self.assertTrue(os.path.lexists(p + ".lock"))
        self.daemon.start()
        self.assertFalse(os.path.lexists(p + ".lock"))
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, method="symlink",
                               timeout=0), "OK")

    def test_state_database_of_an_earlier_release(self):
        """A state database whose holds table has the first release's
        columns (no kept, supplementary groups, directory identity or
        releasing mark) is read and upgraded: a dead holder's artefact is
        removed at start, as its uid with no supplementary groups."""
        p = self.path()
        child = self.spawn(holder_script(self.daemon.socket, p, "symlink"))
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"))
        self.daemon.kill()
        child.kill()
        child.wait()
        cols = ("lock_file, method, path, unique_name, pid, tid, uid, gid, "
                "start, boot, token, since")
        db = sqlite3.connect(self.daemon.state)
        db.executescript("""
            CREATE TABLE old AS SELECT %s FROM holds;
            DROP TABLE holds;
            CREATE TABLE holds (
              lock_file TEXT NOT NULL, method INTEGER NOT NULL,
              path TEXT NOT NULL, unique_name TEXT NOT NULL,
              pid INTEGER NOT NULL, tid INTEGER NOT NULL,
              uid INTEGER NOT NULL, gid INTEGER NOT NULL,
              start INTEGER NOT NULL, boot TEXT NOT NULL,
              token INTEGER NOT NULL, since REAL NOT NULL,
              PRIMARY KEY (lock_file, method)) WITHOUT ROWID;
            INSERT INTO holds SELECT * FROM old;
            DROP TABLE old;
        """ % cols)
        db.commit()
        db.close()
        self.assertTrue(os.path.lexists(p + ".lock"))
        self.daemon.start()
        self.assertFalse(os.path.lexists(p + ".lock"), self.daemon.logtext())
        self.assertIn("no supplementary groups", self.daemon.logtext())
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, method="symlink"), "OK")
        db = sqlite3.connect(self.daemon.state)
        names = [r[1] for r in db.execute("PRAGMA table_info(holds)")]
        db.close()
        for col in ("kept", "supp_groups", "dir_dev", "dir_ino",
                    "releasing"):
            self.assertIn(col, names)

    def test_busy_lock_database_at_restart_is_not_gone(self):
        # Regression: a sqlite hold whose lock database another process
        # kept write-locked while the restarted daemon reconciled was
        # logged "gone" and forgotten, its row left: the holder could not
        # reclaim it and every waiter waited for good.  Now it stays held
        # for its holder: p is reclaimed once the database is free; q,
        # asked for while it is still busy, is refused (not given back on
        # trust) and left to its holder, whose RELEASE then ends it; r,
        # asked for again by its owner's ACQUIRE (a lost reply) while it
        # is busy, is not granted then, but stays its own and is once
        # the database is free.
        a = self.client()
        p, q, r_ = self.path("p"), self.path("q"), self.path("r")
        tp = a.call("ACQUIRE", path=p, method="sqlite").fields["token"]
        tq = a.call("ACQUIRE", path=q, method="sqlite").fields["token"]
        tr = a.call("ACQUIRE", path=r_, method="sqlite",
                    thread=5).fields["token"]
        self.daemon.kill()
        with self.database_busy():
            self.daemon.start()
            b = self.client()       # another owner waits meanwhile
            self.assertCode(b.call("ACQUIRE", path=p, method="sqlite",
                                   thread=99, timeout=0), "EALREADY")
            rp = b.send("ACQUIRE", path=p, method="sqlite", thread=99,
                        timeout=60)
            rq = b.send("ACQUIRE", path=q, method="sqlite", thread=99,
                        timeout=60)
            a2 = self.client()
            self.assertCode(a2.call("RECLAIM", path=q, method="sqlite",
                                    token=tq), "ENOENT")
            self.assertCode(a2.call("ACQUIRE", path=r_, method="sqlite",
                                    thread=5, timeout=0), "EALREADY")
            self.assertCode(b.call("PING"), "OK")
        r = a2.call("RECLAIM", path=p, method="sqlite", token=tp)
        self.assertCode(r, "OK", self.daemon.logtext())
        self.assertEqual(a2.call("STATUS", path=p, method="sqlite")
                         .fields["mine"], "1")
        self.assertCode(a2.call("RECLAIM", path=q, method="sqlite",
                                token=tq), "ENOENT")
        self.assertCode(b.call("PING"), "OK")   # b has got neither
        r = a2.call("ACQUIRE", path=r_, method="sqlite", thread=5,
                    timeout=0)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["token"], tr)
        self.assertCode(a2.call("RELEASE", path=r_, method="sqlite",
                                thread=5), "OK")
        self.assertCode(a2.call("RELEASE", path=p, method="sqlite"), "OK")
        r = b.wait(rp)
        self.assertCode(r, "OK")
        self.assertGreater(int(r.fields["token"]), int(tp))
        self.assertCode(a2.call("RELEASE", path=q, method="sqlite"), "OK")
        self.assertCode(b.wait(rq), "OK")
        for name in (p, q):
            self.assertCode(b.call("RELEASE", path=name, method="sqlite",
                                   thread=99), "OK")

    def test_busy_lock_database_judged_again_once_free(self):
        # The same hold, its holder not asking for it: once the database
        # is free the daemon looks again by itself, and finds its row.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 600\n").start()
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, method="sqlite").fields["token"]
        self.daemon.kill()
        with self.database_busy():
            self.daemon.start()
            self.assertCode(self.client().call("PING"), "OK")
        deadline = time.monotonic() + 20
        while "hold is there: it may reclaim" not in self.daemon.logtext():
            self.assertLess(time.monotonic(), deadline,
                            self.daemon.logtext())
            time.sleep(0.05)
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, method="sqlite",
                                token=token), "OK")
        self.assertCode(a2.call("RELEASE", path=p, method="sqlite"), "OK")

    def test_owner_waiting_for_an_unjudged_orphan_is_handed_it(self):
        # The owner's ACQUIRE that waits for its own hold, held for it but
        # not yet looked at (its lock database busy at the restart), is
        # handed that hold, token unchanged, once the database is free and
        # the daemon finds the hold still there; before, it waited for
        # the grace period's end.  Another owner, queued first, still
        # waits for the owner's release.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 600\n").start()
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, method="sqlite",
                       thread=5).fields["token"]
        self.daemon.kill()
        with self.database_busy():
            self.daemon.start()
            b = self.client()
            rb = b.send("ACQUIRE", path=p, method="sqlite", thread=99,
                        timeout=60)
            self.assertCode(b.call("PING"), "OK")
            a2 = self.client()
            ra = a2.send("ACQUIRE", path=p, method="sqlite", thread=5,
                         timeout=60)
            self.assertCode(a2.call("PING"), "OK")  # not granted yet
        r = a2.wait(ra, timeout=20)
        self.assertCode(r, "OK", self.daemon.logtext())
        self.assertEqual(r.fields["token"], token)
        self.assertEqual(a2.call("STATUS", path=p, method="sqlite",
                                 thread=5).fields["mine"], "1")
        self.assertCode(b.call("PING"), "OK")   # b waits still
        self.assertCode(a2.call("RELEASE", path=p, method="sqlite",
                                thread=5), "OK")
        r = b.wait(rb, timeout=20)
        self.assertCode(r, "OK")
        self.assertGreater(int(r.fields["token"]), int(token))

    def test_reclaim_of_a_hold_whose_artefact_is_gone(self):
        # Regression: RECLAIM (and ACQUIRE by the same owner) gave back an
        # orphan without looking at its artefact, which may have been
        # removed since the daemon started: the client was told it held
        # a lock nobody held.
        def remove(method, p):
            if method == "mkdir":
                shutil.rmtree(p + ".lock")
            elif method == "sqlite":
                h = sqlite3.connect(os.path.join(self.locks,
                                                 ".lockbroker.sqlite"))
                h.execute("DELETE FROM locks")
                h.commit()
                h.close()
            else:
                os.unlink(p if method == "pidfile" else p + ".lock")
        for method in ("link", "symlink", "mkdir", "pidfile", "sqlite"):
            for verb in ("RECLAIM", "ACQUIRE"):
                with self.subTest(method=method, verb=verb):
                    a = self.client()
                    p = self.path(method + verb)
                    token = a.call("ACQUIRE", path=p, method=method,
                                   thread=5).fields["token"]
                    self.assertEqual(self.daemon.stop(), 0)
                    self.daemon.start()
                    self.assertIn("may reclaim it", self.daemon.logtext())
                    remove(method, p)
                    a2 = self.client()
                    if verb == "RECLAIM":
                        self.assertCode(a2.call("RECLAIM", path=p,
                                                method=method, thread=5,
                                                token=token), "ENOENT")
                    else:
                        r = a2.call("ACQUIRE", path=p, method=method,
                                    thread=5, timeout=10)
                        self.assertCode(r, "OK")
                        self.assertNotEqual(r.fields["token"], token)
                        self.assertCode(a2.call("RELEASE", path=p,
                                                method=method, thread=5),
                                        "OK")
                    # The lock is free: the orphan is forgotten.
                    b = self.client()
                    self.assertCode(b.call("ACQUIRE", path=p, method=method,
                                           thread=99, timeout=10), "OK")
                    self.assertCode(b.call("RELEASE", path=p, method=method,
                                           thread=99), "OK")

    def test_unclaimed_hold_of_a_live_process_lingers(self):
        # The grace ends, the holder (this process) still runs: its lock
        # file is never removed for it (it may hold the lock in-process).
        # Its going (a release in-process) serves the waiters at once.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 2\n").start()
        a = self.client()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        self.daemon.kill()
        self.daemon.start()
        b = self.client()       # another owner (thread) waits
        self.assertCode(b.call("ACQUIRE", path=p, thread=99, timeout=0),
                        "EALREADY")
        rid = b.send("ACQUIRE", path=p, thread=99, timeout=60)
        deadline = time.monotonic() + 30
        while "not reclaimed within the grace" not in self.daemon.logtext():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertIsNone(self.reply_within(b, rid, 1.0))
        self.assertTrue(os.path.lexists(p + ".lock"))
        self.assertPythonSeesItHeld(p)
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, thread=7, timeout=0),
                        "EALREADY")
        # Released in-process: the lock file and its unique file go.
        unique = [n for n in os.listdir(self.locks) if n != "a.lock"]
        os.unlink(p + ".lock")
        for n in unique:
            os.unlink(os.path.join(self.locks, n))
        self.assertCode(b.wait(rid, 20), "OK")
        self.assertCode(b.call("RELEASE", path=p, thread=99), "OK")

    def test_lingering_hold_is_taken_back_reclaimed_and_watched(self):
        # Past its grace, a live process's hold lingers: its process
        # still takes it back (RECLAIM with its token, or ACQUIRE), and
        # an artefact removed while nobody waits frees the lock for the
        # next ACQUIRE, and STATUS does not show it held after that.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 1\n").start()
        a = self.client()
        p, q, r = self.path("p"), self.path("q"), self.path("r")
        tp = a.call("ACQUIRE", path=p, thread=5).fields["token"]
        tq = a.call("ACQUIRE", path=q, thread=5).fields["token"]
        self.assertCode(a.call("ACQUIRE", path=r, thread=5), "OK")
        self.daemon.kill()
        self.daemon.start()
        deadline = time.monotonic() + 30
        while self.daemon.logtext().count("not reclaimed within the "
                                          "grace") < 3:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, thread=5, token=tp),
                        "OK")
        r2 = a2.call("ACQUIRE", path=q, thread=5, timeout=0)
        self.assertCode(r2, "OK")
        self.assertEqual(r2.fields["token"], tq)
        b = self.client()
        self.assertCode(b.call("ACQUIRE", path=p, thread=9, timeout=0),
                        "EALREADY")
        # r released in-process while nobody waits.
        ino = os.stat(r + ".lock").st_ino
        for n in os.listdir(self.locks):
            if os.stat(os.path.join(self.locks, n)).st_ino == ino:
                os.unlink(os.path.join(self.locks, n))
        self.assertEqual(b.call("STATUS", path=r, thread=9)
                         .fields["locked"], "0")
        self.assertCode(b.call("ACQUIRE", path=r, thread=9, timeout=0),
                        "OK")
        self.assertCode(b.call("RELEASE", path=r, thread=9), "OK")
        self.assertCode(a2.call("RELEASE", path=p, thread=5), "OK")
        self.assertCode(a2.call("RELEASE", path=q, thread=5), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_unclaimed_hold_ends_when_its_process_exits(self):
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 1\n").start()
        p = self.path()
        holder = self.raw_client("""
            assert c.call("ACQUIRE", path=%r).code == "OK"
            """ % p)
        self.daemon.kill()
        self.daemon.start()
        b = self.client()
        rid = b.send("ACQUIRE", path=p, timeout=60)
        time.sleep(2.5)                 # past the grace: it lingers
        self.assertIsNone(self.reply_within(b, rid, 0.5))
        holder.kill()
        holder.wait()
        self.assertCode(b.wait(rid, 20), "OK")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_unclaimed_hold_is_shown_as_such(self):
        # Who holds what: a hold of the previous daemon that its process
        # has not claimed back says so (STATUS, LIST, the command's status
        # and list), and no longer once claimed back.
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, thread=5).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        b = self.client()
        r = b.call("STATUS", path=p)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields.get("unclaimed"), "1")
        self.assertEqual(r.fields.get("holder_pid"), str(os.getpid()))
        items = self.list_items(b)
        self.assertEqual([i.fields.get("unclaimed") for i in items], ["1"])
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        tool = os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")
        out = subprocess.run([tool, "status", p], env=env,
                             capture_output=True, timeout=30).stdout.decode()
        self.assertRegex(out, r"\n  unclaimed: held for its process")
        out = subprocess.run([tool, "list"], env=env, capture_output=True,
                             timeout=30).stdout.decode()
        self.assertRegex(out, r"(?m)^PATH .* STATE$")
        self.assertRegex(out, r"(?m)^%s .* unclaimed$" % re.escape(p))
        doc = json.loads(subprocess.run(
            [tool, "list", "--json"], env=env, capture_output=True,
            timeout=30).stdout.decode())
        self.assertEqual([l["state"] for l in doc["locks"]], ["unclaimed"])
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, thread=5, token=token),
                        "OK")
        r = b.call("STATUS", path=p)
        self.assertNotIn("unclaimed", r.fields)
        self.assertEqual([i.fields.get("unclaimed")
                          for i in self.list_items(b)], [None])
        out = subprocess.run([tool, "list"], env=env, capture_output=True,
                             timeout=30).stdout.decode()
        self.assertRegex(out, r"(?m)^%s .* held$" % re.escape(p))
        self.assertCode(a2.call("RELEASE", path=p, thread=5), "OK")

    def list_items(self, c):
        """The ITEMs of a LIST on c."""
        rid = c.send("LIST")
        items = []
        while True:
            m = c.read()
            self.assertEqual(m.id, str(rid))
            if m.verb != "ITEM":
                self.assertCode(m, "OK")
                return items
            items.append(m)

    def test_artefacts_of_an_earlier_boot_are_cleared(self):
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, method="symlink").fields["token"]
        self.assertEqual(self.daemon.stop(), 0)
        # Make it an artefact of another boot: the boot id is in the
        # unique name (HOST.PID~START.BOOT.HASH) and in the record.
        old = os.readlink(p + ".lock")
        head, start_boot_hash = old.split("~")
        start, boot, hsh = start_boot_hash.split(".")
        new = "%s~%s.deadbeef.%s" % (head, start, hsh)
        os.unlink(p + ".lock")
        os.symlink(new, p + ".lock")
        db = sqlite3.connect(self.daemon.state)
        db.execute("UPDATE holds SET boot = 'deadbeef', unique_name = ?",
                   (new,))
        db.commit()
        db.close()
        self.daemon.start()
        # The holder runs (it is this process), but on an earlier boot.
        self.assertFalse(os.path.lexists(p + ".lock"))
        self.assertCode(self.client().call("RECLAIM", path=p, token=token,
                                           method="symlink"), "ENOENT")

    def test_unfinished_mkdir_handoff_is_undone(self):
        a = self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p, method="mkdir").fields["token"]
        self.assertEqual(self.daemon.stop(), 0)
        # A handoff that died half way: the next holder's marker is in,
        # the old one not yet out, and nothing was committed or replied.
        stray = os.path.join(p + ".lock", "%s.-00000063%d~1.deadbeef.0"
                             % (socket.gethostname(), os.getpid()))
        open(stray, "w").close()
        self.daemon.start()
        self.assertFalse(os.path.exists(stray))
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, method="mkdir",
                                token=token), "OK")
        self.assertCode(a2.call("RELEASE", path=p, method="mkdir"), "OK")
        self.assertFalse(os.path.exists(p + ".lock"))

    def test_graceful_stop(self):
        a, b = self.client(), self.client()
        p = self.path()
        token = a.call("ACQUIRE", path=p).fields["token"]
        rid = b.send("ACQUIRE", path=p)
        self.assertEqual(self.daemon.stop(), 0)
        self.assertCode(b.wait(rid), "ESHUTDOWN")
        self.assertTrue(os.path.exists(p + ".lock"))
        self.daemon.start()
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, token=token), "OK")
        self.assertCode(a2.call("RELEASE", path=p), "OK")

    def test_stop_with_a_client_that_does_not_read(self):
        """SIGTERM while a client leaves megabytes of replies unread: the
        daemon stops all the same, with status 0, instead of waiting for
        ever to flush them, and another client's lock stays on disk."""
        other = self.client()
        p = self.path()
        self.assertCode(other.call("ACQUIRE", path=p), "OK")
        greedy = self.client()
        greedy.sock.settimeout(0.5)
        paused = False
        for _ in range(100):
            try:
                greedy.sock.sendall(b"PING 1\n" * 20000)
            except (socket.timeout, BlockingIOError):
                paused = True
                break
        self.assertTrue(paused, "the daemon read every request")
        self.assertEqual(self.daemon.stop(timeout=30), 0)
        self.assertTrue(os.path.exists(p + ".lock"))

    def test_stale_socket_replaced_live_one_kept(self):
        second = Daemon(self.dir)
        second.start(wait=False)
        self.assertNotEqual(second.proc.wait(10), 0)
        self.assertIn("another lockbrokerd listens", second.logtext())
        self.assertCode(self.client().call("PING"), "OK")
        self.daemon.kill()
        self.assertTrue(os.path.exists(self.daemon.socket))
        self.daemon.start()
        self.assertCode(self.client().call("PING"), "OK")


class Kept(DaemonTest):
    """Holds kept for a process (pid=): they outlive the connection that
    asked, end when that process exits, and survive a daemon restart."""

    def sleeper(self, user=None):
        return self.spawn("import time; time.sleep(600)", user=user)

    def process_with_pid(self, pid):
        """A new sleeping process that runs with pid (which is free):
        the kernel's next pid set just below it (ns_last_pid), a few
        tries, since other processes may take it first; None when it
        cannot be had."""
        for _ in range(50):
            try:
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(pid - 1))
            except OSError:
                return None
            proc = subprocess.Popen(["sleep", "600"])
            if proc.pid == pid:
                self.procs.append(proc)
                return proc
            proc.kill()
            proc.wait()
        return None

    def test_kept_wait_for_a_process_that_exited(self):
        # ACQUIRE pid=P waits; P exits, and another process gets its
        # pid: the wait is refused when the lock comes free, never
        # granted to that other process (a process is its pid and its
        # start time).
        for reuse in (False, True):
            with self.subTest(reuse=reuse):
                p = self.path("reuse%d" % reuse)
                a, c = self.client(), self.client()
                self.assertCode(a.call("ACQUIRE", path=p), "OK")
                proc = self.sleeper()
                rid = c.send("ACQUIRE", path=p, pid=proc.pid, timeout=30)
                self.assertCode(c.call("PING"), "OK")       # queued
                time.sleep(0.05)    # start times count clock ticks
                proc.kill()
                proc.wait()
                again = None
                if reuse:
                    again = self.process_with_pid(proc.pid)
                    if again is None:
                        self.skipTest("cannot give a new process pid %d"
                                      % proc.pid)
                self.assertCode(a.call("RELEASE", path=p), "OK")
                r = c.wait(rid, 10)
                self.assertCode(r, "EFAILED")
                self.assertIn("exited", r.fields["message"])
                st = c.call("STATUS", path=p)
                self.assertEqual(st.fields["locked"], "0")

    def test_kept_hold_outlives_connection_ends_with_process(self):
        for method in ("link", "symlink", "mkdir", "pidfile", "sqlite"):
            with self.subTest(method=method):
                proc = self.sleeper()
                p = self.path(method)
                a = self.client()
                r = a.call("ACQUIRE", path=p, method=method, pid=proc.pid)
                self.assertCode(r, "OK")
                a.close()
                b = self.client()
                st = b.call("STATUS", path=p, method=method)
                self.assertEqual(st.fields["locked"], "1")
                self.assertEqual(st.fields["holder_pid"], str(proc.pid))
                self.assertEqual(b.call("STATUS", path=p, method=method,
                                        pid=proc.pid).fields["mine"], "1")
                if method == "pidfile":
                    with open(p) as f:
                        self.assertEqual(f.read().strip(), str(proc.pid))
                # The next owner waits until the process exits.
                rid = b.send("ACQUIRE", path=p, method=method, timeout=30)
                self.assertCode(b.call("PING"), "OK")
                proc.kill()
                proc.wait()
                r = b.wait(rid)
                self.assertCode(r, "OK")
                self.assertGreater(int(r.fields["token"]),
                                   int(st.fields["token"]))
                self.assertCode(b.call("RELEASE", path=p, method=method),
                                "OK")

    def test_requester_gone_before_the_reply(self):
        # The ACQUIRE and the end of the connection arrive together: the
        # OK is owed to nobody, the hold is kept all the same.
        proc = self.sleeper()
        p = self.path()
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.daemon.socket)
        s.sendall(b"HELLO 1 version=1\nACQUIRE 2 path=%s pid=%d\n"
                  % (p.encode(), proc.pid))
        s.close()
        c = self.client()
        deadline = time.monotonic() + 10
        while c.call("STATUS", path=p).fields["locked"] != "1":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertEqual(c.call("STATUS", path=p, pid=proc.pid)
                         .fields["mine"], "1")
        self.assertCode(c.call("PING"), "OK")
        self.assertCode(c.call("RELEASE", path=p, pid=proc.pid), "OK")

    def spawn_with_pid(self, pid, tries=200):
        """A sleeper whose pid is pid (the kernel's next pid set through
        /proc/sys/kernel/ns_last_pid, root only; other processes forking
        meanwhile can take it: tried again), or None."""
        for _ in range(tries):
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(pid - 1))
            proc = self.sleeper()
            if proc.pid == pid:
                return proc
            proc.kill()
            proc.wait()
        return None

    def test_kept_hold_is_a_process_not_a_pid(self):
        # A kept hold is for a process (its pid and its start time): once
        # it has exited, unseen yet (pidfds_per_uid = 0: the daemon looks
        # once a second), a new process given its pid is not its holder:
        # STATUS pid= says mine=0, RELEASE pid= is refused, ACQUIRE pid=
        # never answers with the old hold's token.
        if os.geteuid() != 0:
            self.skipTest("needs root (ns_last_pid)")
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="pidfds_per_uid = 0\n").start()
        p = self.path()
        for attempt in range(20):
            proc = self.sleeper()
            c = self.client()
            r = c.call("ACQUIRE", path=p, pid=proc.pid)
            self.assertCode(r, "OK")
            token = r.fields["token"]
            pid = proc.pid
            # A process's start time is counted in clock ticks (10 ms):
            # the next one given its pid must start a tick later at
            # least to be told apart (without ns_last_pid, the kernel
            # goes through every other pid before it gives one again).
            time.sleep(0.05)
            proc.kill()
            proc.wait()
            again = self.spawn_with_pid(pid)
            if again is None:
                self.skipTest("pid %d could not be given again" % pid)
            st = c.call("STATUS", path=p, pid=pid)
            rel = c.call("RELEASE", path=p, pid=pid)
            acq = c.call("ACQUIRE", path=p, pid=pid, timeout=5)
            if st.fields.get("holder_pid") == str(pid) and \
                    st.fields.get("token") == token:
                break   # the exit was not seen yet: the case asked for
            # The daemon's look came first: try again.
            if acq.code == "OK":
                self.assertNotEqual(acq.fields["token"], token)
                self.assertCode(c.call("RELEASE", path=p, pid=pid), "OK")
            again.kill()
            again.wait()
            c.close()
        else:
            self.skipTest("the daemon saw every exit before the requests")
        self.assertEqual(st.fields["mine"], "0", st)
        self.assertNotEqual(rel.code, "OK", rel)
        self.assertCode(acq, "OK")
        self.assertNotEqual(acq.fields["token"], token, acq)
        self.assertCode(c.call("RELEASE", path=p, pid=pid), "OK")

    def test_requests_sent_before_the_client_went_are_handled(self):
        # A client sends HELLO and ACQUIRE pid= and closes its socket
        # before the daemon has read anything (stopped meanwhile); with a
        # turn of one request, the HELLO's reply meets the closed socket
        # before the ACQUIRE is handled: the ACQUIRE is still handled (its
        # hold kept), not dropped with the connection.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="turn_us = 0\n").start()
        proc = self.sleeper()
        p = self.path()
        c = self.client()
        self.daemon.pause()
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.daemon.socket)
            s.sendall(b"HELLO 1 version=1\nPING 2\nPING 3\n"
                      b"ACQUIRE 4 path=%s pid=%d\n" % (p.encode(), proc.pid))
            s.close()
        finally:
            os.kill(self.daemon.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while c.call("STATUS", path=p).fields["locked"] != "1":
            self.assertLess(time.monotonic(), deadline,
                            "the ACQUIRE sent before the close was lost")
            time.sleep(0.02)
        self.assertEqual(c.call("STATUS", path=p, pid=proc.pid)
                         .fields["mine"], "1")
        self.assertCode(c.call("RELEASE", path=p, pid=proc.pid), "OK")

    def test_release_by_another_connection_and_reentry(self):
        proc = self.sleeper()
        p = self.path()
        a = self.client()
        t1 = a.call("ACQUIRE", path=p, pid=proc.pid).fields["token"]
        self.assertEqual(a.call("ACQUIRE", path=p, pid=proc.pid)
                         .fields["token"], t1)
        # Not this connection's own hold: a plain RELEASE is refused.
        self.assertCode(a.call("RELEASE", path=p), "ENOTMINE")
        b = self.client()
        self.assertCode(b.call("RELEASE", path=p, pid=proc.pid), "OK")
        self.assertFalse(os.path.exists(p + ".lock"))
        self.assertCode(b.call("RELEASE", path=p, pid=proc.pid),
                        "ENOTLOCKED")

    def test_kept_hold_with_a_busy_database_at_restart(self):
        # Regression: a kept sqlite hold whose lock database was busy
        # when the restarted daemon reconciled was forgotten, its row
        # left: its process was no longer watched, and when it exited
        # the row stayed, so a waiter never got the lock.
        proc = self.sleeper()
        p = self.path()
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite",
                               pid=proc.pid), "OK")
        self.daemon.kill()
        with self.database_busy():
            self.daemon.start()
            b = self.client()
            rid = b.send("ACQUIRE", path=p, method="sqlite", timeout=60)
            self.assertCode(b.call("PING"), "OK")
        self.assertEqual(b.call("STATUS", path=p, method="sqlite")
                         .fields["holder_pid"], str(proc.pid))
        self.assertCode(b.call("PING"), "OK")   # still kept: b waits
        proc.kill()
        proc.wait()
        self.assertCode(b.wait(rid, timeout=30), "OK", self.daemon.logtext())
        self.assertCode(b.call("RELEASE", path=p, method="sqlite"), "OK")

    def test_kept_hold_asked_for_while_its_database_is_busy(self):
        # A kept hold of the previous run whose lock database is busy at
        # the restart is not answered OK to a new ACQUIRE pid= on trust
        # (whether its row is still there cannot be told): EALREADY at
        # once, and a waiting one is answered, token unchanged, once the
        # database is free and the row found.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 600\n").start()
        proc = self.sleeper()
        p = self.path()
        a = self.client()
        token = a.call("ACQUIRE", path=p, method="sqlite",
                       pid=proc.pid).fields["token"]
        self.daemon.kill()
        with self.database_busy():
            self.daemon.start()
            a2 = self.client()
            self.assertCode(a2.call("ACQUIRE", path=p, method="sqlite",
                                    pid=proc.pid, timeout=0), "EALREADY")
            rid = a2.send("ACQUIRE", path=p, method="sqlite", pid=proc.pid,
                          timeout=60)
            self.assertCode(a2.call("PING"), "OK")
        r = a2.wait(rid, timeout=20)
        self.assertCode(r, "OK", self.daemon.logtext())
        self.assertEqual(r.fields["token"], token)
        self.assertCode(a2.call("ACQUIRE", path=p, method="sqlite",
                                pid=proc.pid, timeout=0), "OK")
        self.assertCode(a2.call("RELEASE", path=p, method="sqlite",
                                pid=proc.pid), "OK")
        self.assertEqual(a2.call("STATUS", path=p, method="sqlite")
                         .fields["locked"], "0")

    def test_kept_hold_survives_restart(self):
        proc = self.sleeper()
        p = self.path()
        token = self.client().call("ACQUIRE", path=p, pid=proc.pid) \
            .fields["token"]
        self.daemon.kill()
        self.daemon.start()
        c = self.client()
        st = c.call("STATUS", path=p, pid=proc.pid)
        self.assertEqual((st.fields["mine"], st.fields["token"]),
                         ("1", token))
        self.assertIn("kept for pid %d" % proc.pid, self.daemon.logtext())
        proc.kill()
        proc.wait()
        self.assertCode(c.call("ACQUIRE", path=p, timeout=20), "OK")

    def test_bad_pids_refused(self):
        c = self.client()
        p = self.path()
        dead = subprocess.Popen(["true"])
        dead.wait()
        self.assertCode(c.call("ACQUIRE", path=p, pid=dead.pid), "EINVAL")
        self.assertCode(c.call("ACQUIRE", path=p, pid=0), "EINVAL")
        self.assertCode(c.call("ACQUIRE", path=p, pid="x"), "EINVAL")
        self.assertCode(c.call("ACQUIRE", path=p, pid=os.getpid(),
                               thread=7), "EINVAL")
        self.assertFalse(os.path.exists(p + ".lock"))

    def test_nobody_cannot_keep_for_root_or_release_roots(self):
        mine = self.sleeper()
        p = self.path()
        script = textwrap.dedent("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(%r)
            f = s.makefile("rwb", buffering=0)
            for line in sys.argv[1:]:
                f.write(line.encode() + b"\\n")
                print(f.readline().decode().strip(), flush=True)
        """) % self.daemon.socket
        self.client().call("ACQUIRE", path=p, pid=mine.pid)
        other = self.path("other")
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        out = subprocess.run(
            [PYTHON, "-c", script, "HELLO 1 version=1",
             "ACQUIRE 2 path=%s pid=%d" % (other, mine.pid),
             "RELEASE 3 path=%s pid=%d" % (p, mine.pid)],
            stdout=subprocess.PIPE, preexec_fn=demote, timeout=20)
        lines = out.stdout.decode().splitlines()
        self.assertTrue(lines[1].startswith("ERR 2 code=EPERM"), lines)
        self.assertTrue(lines[2].startswith("ERR 3 code=EPERM"), lines)
        self.assertTrue(os.path.exists(p + ".lock"))
        self.assertFalse(os.path.exists(other + ".lock"))


class Intents(DaemonTest):
    """The grants noted before their artefacts are made (STATE-intents)
    and judged by a restarted daemon: a note says a grant was tried, not
    that it was made."""

    def test_pidfile_of_another_thread_is_not_given_after_a_restart(self):
        # Another thread of the client's process holds the pid file
        # in-process (it names the process only); thread 7 asks the
        # broker and waits.  The daemon is killed meanwhile: the note of
        # thread 7's try (which found the pid file there) must not make
        # the next daemon take the pid file for thread 7's grant.
        p = self.path()
        with open(p, "w") as f:
            f.write("%d\n" % os.getpid())
        a = self.client()
        rid = a.send("ACQUIRE", path=p, method="pidfile", thread=7,
                     timeout=30)
        self.assertCode(a.call("PING"), "OK")
        self.daemon.kill()
        self.daemon.start()
        b = self.client()
        self.assertCode(b.call("ACQUIRE", path=p, method="pidfile",
                               thread=7, timeout=0), "EALREADY")
        self.assertCode(b.call("RELEASE", path=p, method="pidfile",
                               thread=7), "ENOTMINE")
        self.assertTrue(os.path.exists(p))
        os.unlink(p)

    def test_a_note_committed_and_released_is_not_judged_again(self):
        # Thread 5 takes the pid file through the broker and releases it
        # (both committed); then another thread of the process takes it
        # in-process.  The daemon, killed before any other grant, must
        # not take the pid file for thread 5's from its old note.
        p = self.path()
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="pidfile",
                               thread=5), "OK")
        self.assertCode(a.call("RELEASE", path=p, method="pidfile",
                               thread=5), "OK")
        with open(p, "w") as f:
            f.write("%d\n" % os.getpid())
        self.daemon.kill()
        self.daemon.start()
        b = self.client()
        self.assertCode(b.call("ACQUIRE", path=p, method="pidfile",
                               thread=5, timeout=0), "EALREADY")
        self.assertCode(b.call("RELEASE", path=p, method="pidfile",
                               thread=5), "ENOTMINE")
        self.assertTrue(os.path.exists(p))
        os.unlink(p)

    def test_a_note_of_a_gone_process_committed_is_not_judged_again(self):
        # A process takes the pid file through the broker, fresh (its
        # grant noted) and releases it, both committed, and exits; no
        # grant is noted after it.  Its pid is given to another process,
        # which holds the lock in-process: the pid file names that pid
        # again.  The daemon, killed then, must not take its note for a
        # grant it made and did not record: judged as a hold of the
        # process that exited, it would be released, and the pid file of
        # the live process that holds the lock now removed.
        if os.geteuid() != 0:
            self.skipTest("needs root (ns_last_pid)")
        p = self.path()
        script = textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.connect(%r)
            f = s.makefile("rwb", buffering=0)
            for line in ["HELLO 1 version=1",
                         "ACQUIRE 2 path=%s method=pidfile timeout=0",
                         "RELEASE 3 path=%s method=pidfile"]:
                f.write(line.encode() + b"\\n")
                print(f.readline().decode().strip(), flush=True)
        """) % (self.daemon.socket, p, p)
        gone = self.spawn(script)
        out = gone.communicate(timeout=20)[0].decode().splitlines()
        self.assertTrue(out[1].startswith("OK 2 token="), out)
        self.assertTrue(out[2].startswith("OK 3"), out)
        self.assertFalse(os.path.exists(p))
        self.assertCode(self.client().call("PING"), "OK")
        now = None
        for _ in range(50):
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(gone.pid - 1))
            proc = subprocess.Popen(["sleep", "600"])
            if proc.pid == gone.pid:
                self.procs.append(proc)
                now = proc
                break
            proc.kill()
            proc.wait()
        if now is None:
            self.skipTest("pid %d not to be had again" % gone.pid)
        with open(p, "w") as f:
            f.write("%d\n" % now.pid)
        self.daemon.kill()
        self.daemon.start()
        self.assertCode(self.client().call("PING"), "OK")
        self.assertTrue(os.path.exists(p), self.daemon.logtext())
        self.assertNotIn("not recorded before the previous daemon died",
                         self.daemon.logtext())
        os.unlink(p)


class Users(DaemonTest):
    def run_as_nobody(self, lines):
        script = textwrap.dedent("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(%r)
            f = s.makefile("rwb", buffering=0)
            for line in %r:
                f.write(line.encode() + b"\\n")
                print(f.readline().decode().strip(), flush=True)
        """) % (self.daemon.socket, ["HELLO 1 version=1"] + lines)
        p = self.spawn(script, user="nobody")
        out = p.communicate(timeout=20)[0].decode().splitlines()
        return out[1:]

    def test_nobody_cannot_touch_roots_lock(self):
        root = self.client()
        p = self.path()
        root.call("ACQUIRE", path=p)
        os.chmod(self.locks, 0o755)
        out = self.run_as_nobody([
            "RELEASE 2 path=%s" % p,
            "BREAK 3 path=%s" % p,
            "ACQUIRE 4 path=%s timeout=0" % self.path("mine"),
        ])
        self.assertIn("code=ENOTMINE", out[0])
        self.assertIn("code=EPERM", out[1])
        self.assertIn("code=EFAILED", out[2])
        self.assertIn("Permission%20denied", out[2])
        self.assertFalse(os.path.exists(self.path("mine") + ".lock"))
        self.assertEqual(root.call("STATUS", path=p).fields["mine"], "1")

    def test_nobody_locks_where_it_may_as_itself(self):
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        p = os.path.join(shared, "n")
        out = self.run_as_nobody(["ACQUIRE 2 path=%s" % p,
                                  "STATUS 3 path=%s" % p])
        self.assertTrue(out[0].startswith("OK 2 token="), out)
        self.assertIn("holder_uid=%d" % NOBODY, out[1])

    def test_nobody_cannot_reach_through_roots_proc_links(self):
        """/proc/PID/cwd and /proc/PID/fd/N of root's processes lead past
        the directories on the way for whoever passes the kernel's ptrace
        check; a root daemon that kept CAP_SYS_PTRACE passed it for
        every client.  nobody, who cannot look at a root process's cwd
        inside a private directory, learns nothing through it and makes
        nothing there."""
        private = os.path.join(self.dir, "private")
        inner = os.path.join(private, "inner")
        os.makedirs(inner)
        os.chmod(private, 0o700)
        os.chmod(inner, 0o777)
        with open(os.path.join(inner, "pid"), "w") as f:
            f.write("4242\n")
        proc = subprocess.Popen([PYTHON, "-c", "import time; "
                                 "time.sleep(600)"], cwd=inner)
        self.procs.append(proc)
        cwd = "/proc/%d/cwd" % proc.pid
        out = self.run_as_nobody([
            "STATUS 2 path=%s/pid method=pidfile" % cwd,
            "STATUS 3 path=%s/none method=pidfile" % cwd,
            "ACQUIRE 4 path=%s/made method=pidfile timeout=0" % cwd,
            "ACQUIRE 5 path=%s/made timeout=0" % cwd,
            "BREAK 6 path=%s/pid method=pidfile" % cwd,
        ])
        for line in out:
            self.assertIn("cannot%20look%20at%20it", line, out)
        # The pid file's number, as a number: not a piece of another
        # (a time told, 1796664057.424201, holds the digits).
        self.assertIsNone(re.search(r"\b4242\b", " ".join(out)), out)
        self.assertEqual(sorted(os.listdir(inner)), ["pid"])

    def test_nobody_cannot_reach_through_the_daemons_own_proc(self):
        """The kernel always lets a process into its own /proc entries,
        whoever's filesystem credentials it has taken on: a daemon started
        in a directory inside a private one must not lead nobody there
        through /proc/self/cwd, nor through its open files
        (/proc/PID/fd/N).
        Such paths are refused; nothing is read or made."""
        private = os.path.join(self.dir, "private")
        inner = os.path.join(private, "inner")
        os.makedirs(inner)
        os.chmod(private, 0o700)
        os.chmod(inner, 0o777)
        with open(os.path.join(inner, "pid"), "w") as f:
            f.write("4242\n")
        sub = os.path.join(self.dir, "second")
        os.mkdir(sub)
        d = Daemon(sub, preexec=lambda: os.chdir(inner))
        d.start()
        try:
            pid = d.proc.pid
            fds = os.listdir("/proc/%d/fd" % pid)
            saved, self.daemon.socket = self.daemon.socket, d.socket
            try:
                lines = []
                for i, base in enumerate(["/proc/self/cwd",
                                          "/proc/thread-self/cwd",
                                          "/proc/%d/cwd" % pid,
                                          "/proc/%d/task/%d/cwd" %
                                          (pid, pid)]):
                    n = 10 * (i + 1)
                    lines += [
                        "STATUS %d path=%s/pid method=pidfile" % (n, base),
                        "STATUS %d path=%s/none" % (n + 1, base),
                        "ACQUIRE %d path=%s/made method=pidfile timeout=0"
                        % (n + 2, base),
                        "ACQUIRE %d path=%s/made timeout=0" % (n + 3, base),
                        "RELEASE %d path=%s/pid method=pidfile" % (n + 4,
                                                                   base),
                    ]
                for fd in fds:
                    lines += ["STATUS 9%s path=/proc/%d/fd/%s/.." %
                              (fd, pid, fd),
                              "ACQUIRE 8%s path=/proc/self/fd/%s/x "
                              "timeout=0" % (fd, fd)]
                # The same through symbolic links, which the kernel
                # resolves in the daemon's /proc/self.
                viacwd = os.path.join(self.dir, "viacwd")
                viafd = os.path.join(self.dir, "viafd")
                os.symlink("/proc/self/cwd", viacwd)
                os.symlink("/proc/self/fd", viafd)
                links = [
                    "STATUS 50 path=%s/pid method=pidfile" % viacwd,
                    "ACQUIRE 51 path=%s/made method=pidfile timeout=0"
                    % viacwd,
                    "ACQUIRE 52 path=%s/made timeout=0" % viacwd,
                ] + ["STATUS 7%s path=%s/%s method=pidfile" % (fd, viafd, fd)
                     for fd in fds]
                out = self.run_as_nobody(lines + links)
            finally:
                self.daemon.socket = saved
            self.assertEqual(len(out), len(lines + links), out)
            for line in out[:len(lines)]:
                self.assertIn("code=EINVAL", line, out)
                self.assertIn("own%20/proc", line, out)
            for line in out[len(lines):] if OPENAT2 else ():
                self.assertIn("code=EINVAL", line, out)
                self.assertIn("magic%20link", line, out)
            self.assertIsNone(re.search(r"\b4242\b", " ".join(out)), out)
            self.assertEqual(sorted(os.listdir(inner)), ["pid"])
            self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
            for f in (d.state, d.state + "-wal", d.state + "-shm"):
                if os.path.exists(f):
                    self.assertEqual(os.stat(f).st_mode & 0o777, 0o600, f)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_relative_paths_survive_the_move_to_root(self):
        """Relative --socket, --state and --config are taken from the
        directory the daemon was started in, before it moves to "/", and
        a SIGHUP still rereads the config file."""
        work = os.path.join(self.dir, "work")
        os.mkdir(work)
        with open(os.path.join(work, "rel.conf"), "w") as f:
            f.write("holds_per_conn = 2\n")
        d = Daemon(work, args=["--config", "rel.conf"],
                   preexec=lambda: os.chdir(work))
        d.socket = "sock"
        d.state = os.path.join("st", "state.sqlite")
        d.start(wait=False)
        d.socket = os.path.join(work, "sock")
        try:
            d.wait_ready()
            self.assertTrue(os.path.exists(os.path.join(work, "st",
                                                        "state.sqlite")))
            self.assertEqual(os.readlink("/proc/%d/cwd" % d.proc.pid), "/")
            c = d.client()
            self.assertCode(c.call("ACQUIRE", path=self.path("1")), "OK")
            self.assertCode(c.call("ACQUIRE", path=self.path("2")), "OK")
            self.assertCode(c.call("ACQUIRE", path=self.path("3")),
                            "ELIMIT")
            with open(os.path.join(work, "rel.conf"), "w") as f:
                f.write("holds_per_conn = 3\n")
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while True:
                log = d.logtext()       # read once: the line may come
                if "reloaded" in log:   # between two reads
                    break
                self.assertNotIn("reload:", log)
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            self.assertCode(c.call("ACQUIRE", path=self.path("3")), "OK")
            self.assertCode(c.call("PING"), "OK")
            c.close()
        finally:
            self.assertEqual(d.stop(), 0)


class Logging(DaemonTest):
    def test_client_text_cannot_forge_log_lines(self):
        """A lock path with a newline and a "<0>" level prefix (sent as
        %0A) is logged escaped, on its own line: no line of the
        client's making, at any level, reaches stderr (the journal)."""
        a, b, w = self.client(), self.client(), self.client()
        name = "x\n<0>sshd[1]: forged\r\x1b[2J\\y"
        p = self.path(name)
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        rid = w.send("ACQUIRE", path=p)
        self.assertCode(w.call("PING"), "OK")   # queued: handed on next
        self.assertEqual(b.call("BREAK", path=p).fields["broken"], "1")
        self.assertCode(w.wait(rid), "OK")
        self.assertCode(w.call("RELEASE", path=p), "OK")
        # UTF-8 stays as it is; a byte that is not UTF-8 is escaped.
        raw = self.path("u").encode() + b"%C3%A9%FF%C2%9B"
        a.send_raw(b"ACQUIRE 90 path=" + raw + b"\n")
        self.assertCode(a.wait("90"), "OK")
        b.send_raw(b"BREAK 91 path=" + raw + b"\n")
        self.assertEqual(b.wait("91").fields["broken"], "1")
        self.assertCode(b.call("PING"), "OK")
        with open(self.daemon.log, "rb") as f:
            text = f.read()
        self.assertIn(b"/u\xc3\xa9\\xff\\xc2\\x9b: broken", text)
        for line in text.split(b"\n"):
            self.assertFalse(line.startswith(b"<0>"), line)
            self.assertNotIn(b"\r", line)
            self.assertNotIn(b"\x1b", line)
        self.assertIn(b"x\\n<0>sshd[1]: forged\\x0d\\x1b[2J\\\\y", text)


class StateDatabase(DaemonTest):
    def garble(self, pages):
        """With the daemon stopped: folds the WAL into the database and
        writes garbage over the pages that pages(db) names."""
        db = sqlite3.connect(self.daemon.state)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.execute("PRAGMA page_size").fetchone()[0]
        which = pages(db)
        db.close()
        with open(self.daemon.state, "r+b") as f:
            for n in which:
                f.seek((n - 1) * size)
                f.write(bytes((i * 151 + 7) % 256 for i in range(size)))

    def test_intents_file_of_garbage_or_cut_short(self):
        """The file of noted grants (STATE-intents) read at start: a note
        cut short, or garbage, ends the reading; nothing is recorded from
        it, the daemon starts, and the file is emptied."""
        intents = self.daemon.state + "-intents"
        a = self.client()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        a.close()
        self.assertEqual(self.daemon.stop(), 0)
        # A clean stop leaves nothing to note again.
        self.assertEqual(os.path.getsize(intents), 0)
        for junk in (bytes((i * 151 + 7) % 256 for i in range(5000)),
                     b"INT1" + b"\xff" * 200, b"\x00" * 3):
            with open(intents, "wb") as f:
                f.write(junk)
            self.daemon.start()
            self.assertEqual(os.path.getsize(intents), 0)
            c = self.client()
            self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK")
            self.assertCode(c.call("RELEASE", path=p), "OK")
            c.close()
            self.assertEqual(self.daemon.stop(), 0)

    def test_intents_file_not_the_daemons_is_refused(self):
        intents = self.daemon.state + "-intents"
        self.assertEqual(self.daemon.stop(), 0)
        os.unlink(intents)
        target = os.path.join(self.dir, "elsewhere")
        with open(target, "w"):
            pass
        os.symlink(target, intents)
        self.daemon.start(wait=False)
        self.assertEqual(self.daemon.proc.wait(30), 1)
        self.assertIn(intents, self.daemon.logtext())
        self.assertEqual(os.path.getsize(target), 0)
        os.unlink(intents)
        with open(intents, "w"):
            pass
        os.chown(intents, NOBODY, NOBODY)
        self.daemon.start(wait=False)
        self.assertEqual(self.daemon.proc.wait(30), 1)
        self.assertIn("not a regular file of the daemon's user",
                      self.daemon.logtext())
        os.unlink(intents)
        self.daemon.start()

    def test_idle_daemon_holds_no_wal_lock(self):
        """The daemon takes the state database's WAL-index locks in fewer
        system calls (daemon/walshm.c: an unlock held back to be merged
        with the next call): once a request is answered, none of them is
        held any more, so another process may write and checkpoint at
        once.  Over enough transactions for the daemon's own automatic
        checkpoints, every reply is followed by a look at the lock bytes
        (120 to 127 of the -shm file) with a lock of our own, and now and
        then by a write transaction of another connection that may not
        wait; then, while another reader keeps a read transaction open
        (taken anew after each reply, so that the daemon's read marks
        move), each reply's change is what that reader sees."""
        a = self.client()
        p = self.path()
        other = sqlite3.connect(self.daemon.state, isolation_level=None,
                                timeout=0)
        reader = sqlite3.connect(self.daemon.state, isolation_level=None,
                                 timeout=5)
        fd = os.open(self.daemon.state + "-shm", os.O_RDWR)

        def unlocked(nbytes, why):
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, nbytes, 120)
            except OSError as e:
                self.fail("%s: a WAL lock is still held: %s" % (why, e))
            fcntl.lockf(fd, fcntl.LOCK_UN, nbytes, 120)

        try:
            for i in range(1200):       # > 2000 transactions
                for verb, fields, held in (("ACQUIRE", {"timeout": 0}, 1),
                                           ("RELEASE", {}, 0)):
                    self.assertCode(a.call(verb, path=p, **fields), "OK")
                    why = "cycle %d, after %s" % (i, verb)
                    if i < 1100:
                        unlocked(8, why)
                        continue
                    # The reader's own read lock is among 123 to 127.
                    unlocked(3, why)
                    if reader.in_transaction:
                        reader.execute("COMMIT")
                    reader.execute("BEGIN")
                    self.assertEqual(reader.execute(
                        "SELECT count(*) FROM holds").fetchone()[0], held,
                        why)
                if i % 100 == 0:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("INSERT OR REPLACE INTO meta (key, value) "
                                  "VALUES ('other', ?)", (i,))
                    other.execute("COMMIT")
            reader.execute("COMMIT")
            unlocked(8, "at the end")
            self.assertEqual(other.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0], 0)
            self.assertCode(a.call("ACQUIRE", path=p), "OK")
            self.assertEqual(other.execute(
                "SELECT count(*) FROM holds").fetchone()[0], 1)
        finally:
            os.close(fd)
            reader.close()
            other.close()

    def test_damaged_database_moved_aside(self):
        """A damaged state database is moved aside at start (kept, named
        with the time) and a new one made: the daemon serves grants, the
        old holds' lock files still exclude, tokens keep increasing."""
        a = self.client()
        p = self.path()
        t1 = int(a.call("ACQUIRE", path=p).fields["token"])
        for what in ("holds", "everything"):
            self.assertEqual(self.daemon.stop(), 0)
            if what == "holds":
                self.garble(lambda db: [db.execute(
                    "SELECT rootpage FROM sqlite_master WHERE name = "
                    "'holds'").fetchone()[0]])
            else:
                self.garble(lambda db: range(2, db.execute(
                    "PRAGMA page_count").fetchone()[0] + 1))
            self.daemon.start()
            c = self.client()
            self.assertCode(c.call("ACQUIRE", path=p, thread=1,
                                   timeout=0), "EALREADY")
            self.assertTrue(os.path.exists(p + ".lock"))
            r = c.call("ACQUIRE", path=self.path(what), timeout=0)
            self.assertCode(r, "OK")
            t2 = int(r.fields["token"])
            self.assertGreater(t2, t1)
            t1 = t2
            self.assertRegex(self.daemon.logtext(),
                             r"state database .*state\.sqlite is damaged "
                             r".*moved aside")
        aside = [n for n in os.listdir(self.dir)
                 if n.startswith("state.sqlite.damaged-")]
        self.assertTrue(aside, os.listdir(self.dir))
        db = sqlite3.connect(self.daemon.state)
        self.assertEqual(db.execute("PRAGMA quick_check").fetchall(),
                         [("ok",)])
        db.close()

    def test_deleted_database_is_made_anew(self):
        """The state database deleted while the daemon runs is noticed
        (before the next commit, or within seconds when idle), made anew
        with every live hold: after a restart the holders reclaim their
        locks and tokens keep increasing."""
        a = self.client()
        p, q = self.path(), self.path("q")
        t1 = int(a.call("ACQUIRE", path=p).fields["token"])

        def delete():
            for n in os.listdir(self.dir):
                if n.startswith("state.sqlite"):
                    os.unlink(os.path.join(self.dir, n))
        delete()
        r = a.call("ACQUIRE", path=q)           # a commit: noticed first
        self.assertCode(r, "OK")
        t2 = int(r.fields["token"])
        self.assertGreater(t2, t1)
        # Made anew as privately as at start (the kernel lets clients'
        # steps into the daemon's open files through /proc/self/fd).
        made = [n for n in os.listdir(self.dir)
                if n.startswith("state.sqlite")]
        self.assertIn("state.sqlite", made)
        for n in made:
            mode = os.stat(os.path.join(self.dir, n)).st_mode & 0o777
            self.assertEqual(mode, 0o600, "%s is %o" % (n, mode))
        self.daemon.kill()
        self.daemon.start()
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=p, token=t1), "OK")
        self.assertCode(a2.call("RECLAIM", path=q, token=t2), "OK")
        t3 = int(a2.call("ACQUIRE", path=self.path("r")).fields["token"])
        self.assertGreater(t3, t2)
        self.assertIn("was deleted while the daemon ran",
                      self.daemon.logtext())
        # Idle: noticed all the same.
        n = self.daemon.logtext().count("made anew")
        delete()
        deadline = time.monotonic() + 10
        while self.daemon.logtext().count("made anew") == n:
            self.assertLess(time.monotonic(), deadline, "not noticed")
            time.sleep(0.05)
        self.daemon.kill()
        self.daemon.start()
        a3 = self.client()
        self.assertCode(a3.call("RECLAIM", path=p, token=t1), "OK")
        # Only the main file deleted: its -wal and -shm, still there,
        # are the old database's, not the new one's.
        os.unlink(self.daemon.state)
        r = a3.call("ACQUIRE", path=self.path("s"))
        self.assertCode(r, "OK")
        t4 = int(r.fields["token"])
        self.assertGreater(t4, t3)
        # A database that cannot be made anew: grants are refused, not
        # made unrecorded, until it can.
        os.unlink(self.daemon.state)
        os.mkdir(self.daemon.state)
        self.assertCode(a3.call("ACQUIRE", path=self.path("t")),
                        "EINTERNAL")
        self.assertFalse(os.path.exists(self.path("t") + ".lock"))
        os.rmdir(self.daemon.state)
        r = a3.call("ACQUIRE", path=self.path("t"))
        self.assertCode(r, "OK")
        self.assertGreater(int(r.fields["token"]), t4)
        self.daemon.kill()
        self.daemon.start()
        db = sqlite3.connect(self.daemon.state)
        self.assertEqual(db.execute("PRAGMA quick_check").fetchall(),
                         [("ok",)])
        db.close()
        a4 = self.client()
        for name, token in ((p, t1), (self.path("s"), t4)):
            self.assertCode(a4.call("RECLAIM", path=name, token=token),
                            "OK")
        b = self.client()
        rid = b.send("ACQUIRE", path=p, thread=1)
        self.assertCode(a4.call("RELEASE", path=p), "OK")
        self.assertGreater(int(b.wait(rid).fields["token"]), t4)
# A process of nobody's that plants, in the sticky directory, the artefact
# of lock L (method M) carrying the name N that root's client had: what a
# user can do, since names are predictable (host, pid, start time, boot).
PLANT = textwrap.dedent("""
    import os, sqlite3, sys
    method, lock, name, db = sys.argv[1:5]
    if method == "link":
        open(name, "w").close()
        os.link(name, lock)
    elif method == "symlink":
        os.symlink(name, lock)
    elif method == "mkdir":
        os.mkdir(lock)
        open(os.path.join(lock, name), "w").close()
    elif method == "pidfile":
        with open(lock, "w") as f:
            f.write(name)
    else:
        h = sqlite3.connect(db)
        h.execute("INSERT INTO locks VALUES (?, ?)", (lock, name))
        h.commit()
        h.close()
""")

# The planter removes what it planted.
UNPLANT = textwrap.dedent("""
    import os, shutil, sqlite3, sys
    method, lock, name, db = sys.argv[1:5]
    if method == "link":
        os.unlink(name)
        os.unlink(lock)
    elif method == "mkdir":
        shutil.rmtree(lock)
    elif method == "sqlite":
        h = sqlite3.connect(db)
        h.execute("DELETE FROM locks WHERE lock_file = ?", (lock,))
        h.commit()
        h.close()
    else:
        os.unlink(lock)
""")

# Python's lockfile, as a second program: "got" when it took the lock.
PYTHON_TAKES = textwrap.dedent("""
    import sys
    from lockfile import AlreadyLocked
    from lockfile.linklockfile import LinkLockFile
    from lockfile.mkdirlockfile import MkdirLockFile
    from lockfile.pidlockfile import PIDLockFile
    from lockfile.symlinklockfile import SymlinkLockFile
    cls = {"link": LinkLockFile, "symlink": SymlinkLockFile,
           "mkdir": MkdirLockFile, "pidfile": PIDLockFile}[sys.argv[1]]
    try:
        cls(sys.argv[2]).acquire(timeout=0)
        print("got")
    except AlreadyLocked:
        print("busy")
""")


class Forged(DaemonTest):
    """Artefacts another user plants under a client's (predictable)
    unique name are not the client's: its name and its owner uid must
    both say so."""

    def setUp(self):
        super().setUp()
        self.shared = os.path.join(self.dir, "shared")
        os.mkdir(self.shared)
        os.chmod(self.shared, 0o1777)
        self.db = os.path.join(self.shared, ".lockbroker.sqlite")

    def as_nobody(self, script, *args):
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        out = subprocess.run([PYTHON, "-c", script] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=demote, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        return out.stdout.decode()

    def name_of(self, c, p, method, lock):
        """Takes p as c (thread 5), reads the unique name its artefact
        carries, and releases it."""
        self.assertCode(c.call("ACQUIRE", path=p, method=method, thread=5),
                        "OK")
        if method == "link":
            ino = os.stat(lock).st_ino
            name = [os.path.join(self.shared, n)
                    for n in os.listdir(self.shared)
                    if n != os.path.basename(lock) and
                    os.lstat(os.path.join(self.shared, n)).st_ino == ino][0]
        elif method == "symlink":
            name = os.readlink(lock)
        elif method == "mkdir":
            name = os.listdir(lock)[0]
        elif method == "pidfile":
            with open(lock) as f:
                name = f.read()
        else:
            h = sqlite3.connect(self.db)
            name = h.execute("SELECT unique_name FROM locks WHERE "
                             "lock_file = ?", (lock,)).fetchone()[0]
            h.close()
        self.assertCode(c.call("RELEASE", path=p, method=method, thread=5),
                        "OK")
        if method == "sqlite":
            os.chmod(self.db, 0o666)    # a database every user shares
        return name

    def test_planted_artefact_is_not_the_clients(self):
        # Regression: a link, symlink, mkdir, pidfile or sqlite artefact
        # another user planted with a root client's unique name was taken
        # as the client's own (ACQUIRE answered OK, RELEASE removed it),
        # by the name alone.
        for method in ("link", "symlink", "mkdir", "pidfile", "sqlite"):
            for waiter in (False, True):
                with self.subTest(method=method, waiter=waiter):
                    p = os.path.join(self.shared, "%s-%d" % (method, waiter))
                    lock = p if method == "pidfile" else p + ".lock"
                    a = self.client()
                    name = self.name_of(a, p, method, lock)
                    self.as_nobody(PLANT, method, lock, name, self.db)
                    if waiter:
                        # Someone queues first: the daemon then judges the
                        # artefact as perhaps an unrecorded grant of a's.
                        b = self.client()
                        rid = b.send("ACQUIRE", path=p, method=method,
                                     thread=99, timeout=30)
                        self.assertCode(b.call("PING"), "OK")
                    r = a.call("ACQUIRE", path=p, method=method, thread=5,
                               timeout=0)
                    self.assertIn(r.code, ("EALREADY", "EFAILED"), r)
                    st = a.call("STATUS", path=p, method=method, thread=5)
                    self.assertEqual(st.fields.get("mine"), "0", st)
                    self.assertCode(a.call("RELEASE", path=p, method=method,
                                           thread=5), "ENOTMINE")
                    self.as_nobody(UNPLANT, method, lock, name, self.db)
                    if waiter:
                        self.assertCode(b.wait(rid, timeout=15), "OK")
                        self.assertCode(b.call("RELEASE", path=p,
                                               method=method, thread=99),
                                        "OK")

    def test_planted_artefact_is_not_reclaimed_after_restart(self):
        # Regression: at start the daemon judged a recorded hold's artefact
        # by name alone, so one another user planted under the holder's
        # name while the daemon was down (the real one gone) was kept as
        # the holder's, for it to take back with ACQUIRE or RECLAIM.
        p = os.path.join(self.shared, "r")
        lock = p + ".lock"
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="symlink",
                               thread=5), "OK")
        name = os.readlink(lock)
        self.assertEqual(self.daemon.stop(), 0)
        os.unlink(lock)
        self.as_nobody(PLANT, "symlink", lock, name, self.db)
        self.daemon.start()
        a2 = self.client()
        r = a2.call("ACQUIRE", path=p, method="symlink", thread=5,
                    timeout=0)
        self.assertCode(r, "EALREADY")
        self.assertEqual(a2.call("STATUS", path=p, method="symlink",
                                 thread=5).fields["mine"], "0")
        self.as_nobody(UNPLANT, "symlink", lock, name, self.db)
        self.assertCode(a2.call("ACQUIRE", path=p, method="symlink",
                                thread=5, timeout=0), "OK")
        self.assertCode(a2.call("RELEASE", path=p, method="symlink",
                                thread=5), "OK")

    def test_replaced_artefact_is_not_reclaimed(self):
        # Regression: RECLAIM gave back an orphan judged at start without
        # looking at its artefact again: another user who replaced it
        # meanwhile by one of its own under the holder's name (names are
        # predictable) made the client believe it held the lock, which
        # the planter could then remove: two holders.
        for method in ("link", "symlink", "mkdir", "pidfile"):
            with self.subTest(method=method):
                p = os.path.join(self.shared, "q" + method)
                lock = p if method == "pidfile" else p + ".lock"
                a = self.client()
                r = a.call("ACQUIRE", path=p, method=method)
                token = r.fields["token"]
                if method == "link":
                    ino = os.stat(lock).st_ino
                    name = [os.path.join(self.shared, n)
                            for n in os.listdir(self.shared)
                            if os.path.join(self.shared, n) != lock and
                            os.lstat(os.path.join(self.shared, n)).st_ino
                            == ino][0]
                elif method == "symlink":
                    name = os.readlink(lock)
                elif method == "mkdir":
                    name = os.listdir(lock)[0]
                else:
                    with open(lock) as f:
                        name = f.read()
                self.assertEqual(self.daemon.stop(), 0)
                self.daemon.start()
                self.assertIn("may reclaim it", self.daemon.logtext())
                # Gone, then planted by nobody under the same name.
                if method == "link":
                    os.unlink(name)
                if method == "mkdir":
                    shutil.rmtree(lock)
                else:
                    os.unlink(lock)
                self.as_nobody(PLANT, method, lock, name, self.db)
                a2 = self.client()
                self.assertCode(a2.call("RECLAIM", path=p, method=method,
                                        token=token), "ENOENT")
                self.as_nobody(UNPLANT, method, lock, name, self.db)
                b = self.client()
                self.assertCode(b.call("ACQUIRE", path=p, method=method,
                                       thread=99, timeout=10), "OK")
                self.assertCode(b.call("RELEASE", path=p, method=method,
                                       thread=99), "OK")

    def test_plant_then_remove_makes_no_second_holder(self):
        # Regression, the issue's sequence: root's ACQUIRE of a lock whose
        # artefact nobody planted under root's name was answered OK; the
        # planter removed its file; a second program (Python's lockfile)
        # took the lock: two holders.
        for method in ("link", "symlink", "mkdir", "pidfile"):
            with self.subTest(method=method):
                p = os.path.join(self.shared, method)
                lock = p if method == "pidfile" else p + ".lock"
                a = self.client()
                name = self.name_of(a, p, method, lock)
                self.as_nobody(PLANT, method, lock, name, self.db)
                root_ok = a.call("ACQUIRE", path=p, method=method, thread=5,
                                 timeout=0).code == "OK"
                self.as_nobody(UNPLANT, method, lock, name, self.db)
                second = subprocess.run(
                    [PYTHON, "-c", PYTHON_TAKES, method, p],
                    stdout=subprocess.PIPE, timeout=30).stdout.decode()
                self.assertFalse(root_ok and second.strip() == "got",
                                 "two holders of %s" % p)
                self.assertFalse(root_ok)
                if os.path.lexists(lock):
                    shutil.rmtree(lock) if os.path.isdir(lock) and \
                        not os.path.islink(lock) else os.unlink(lock)


# nobody reads root's lock database (mode 0644), copies it as it is before
# root's row is in it, and makes a hot journal that puts that copy's pages
# back: a transaction on the copy that spills its pages, and a death
# before its commit.  Then it puts the journal beside root's database.
HOT_JOURNAL = textwrap.dedent("""
    import os, shutil, sqlite3, sys
    db, copy, step = sys.argv[1:4]
    if step == "copy":
        shutil.copyfile(db, copy)
        sys.exit(0)
    h = sqlite3.connect(copy, isolation_level=None)
    h.execute("PRAGMA cache_size=2")
    h.execute("BEGIN")
    h.execute("DELETE FROM locks")
    for i in range(200):
        h.execute("INSERT INTO locks VALUES "
                  "(hex(randomblob(500)), hex(randomblob(500)))")
    os.rename(copy + "-journal", db + "-journal")
    os._exit(0)
""")


class PlantedJournal(DaemonTest):
    def test_planted_hot_journal_is_not_replayed(self):
        # Regression: a hot journal another user put beside root's lock
        # database (in a sticky directory) was rolled back into it at the
        # daemon's next open (a STATUS, which anyone can send): root's row
        # vanished and a second holder could get in.  Now the journal is
        # refused, the error names it, and the row stays.
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        db = os.path.join(shared, ".lockbroker.sqlite")
        journal = db + "-journal"
        copy = os.path.join(shared, "copy")
        p = os.path.join(shared, "a")
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite"), "OK")
        self.assertCode(a.call("RELEASE", path=p, method="sqlite"), "OK")
        self.assertEqual(os.stat(db).st_mode & 0o777, 0o644)
        Forged.as_nobody(self, HOT_JOURNAL, db, copy, "copy")
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite"), "OK")
        Forged.as_nobody(self, HOT_JOURNAL, db, copy, "journal")
        self.assertEqual(os.stat(journal).st_uid, NOBODY)
        # Another lock in the same database: the daemon opens it.
        b = self.client()
        q = os.path.join(shared, "b")
        st = b.call("STATUS", path=q, method="sqlite")
        self.assertNotEqual(st.code, "OK", st)
        self.assertIn(journal, st.fields.get("message", ""), st)
        r = b.call("ACQUIRE", path=q, method="sqlite", timeout=0)
        self.assertNotEqual(r.code, "OK", r)
        self.assertIn(journal, r.fields.get("message", ""), r)
        self.assertTrue(os.path.exists(journal))        # not rolled back
        self.assertIn("refused to open %s" % journal, self.daemon.logtext())
        # The journal goes (root removes it): the row is still root's.
        os.unlink(journal)
        st = a.call("STATUS", path=p, method="sqlite")
        self.assertEqual(st.fields["locked"], "1", st)
        self.assertEqual(st.fields["mine"], "1", st)
        self.assertCode(a.call("RELEASE", path=p, method="sqlite"), "OK")


class Credentials(DaemonTest):
    """Every file-system step of the daemon runs with the client's
    credentials, supplementary groups included, and tells a client
    nothing about a path it could not look at itself (docs/PROTOCOL.md,
    docs/THREAT-MODEL.md).  The attacker is nobody; root's files and
    locks are the victims."""

    def run_as(self, lines, uid=NOBODY, groups=()):
        """Sends lines (after HELLO) from a process of uid with the given
        supplementary groups; the replies, one per line."""
        script = textwrap.dedent("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.connect(%r)
            f = s.makefile("rwb", buffering=0)
            for line in %r:
                f.write(line.encode() + b"\\n")
                while True:
                    r = f.readline().decode().strip()
                    print(r, flush=True)
                    if not r.startswith("ITEM"):
                        break
        """) % (self.daemon.socket, ["HELLO 1 version=1"] + lines)

        def demote():
            os.setgroups(list(groups))
            os.setgid(uid)
            os.setuid(uid)
        p = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE,
                             preexec_fn=demote)
        self.procs.append(p)
        out = p.communicate(timeout=30)[0].decode().splitlines()
        self.assertTrue(out and out[0].startswith("OK 1"), out)
        return out[1:]

    def private_dir(self, name="private", mode=0o700, gid=0):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        os.chown(d, 0, gid)
        os.chmod(d, mode)
        return d

    def restart_with_groups(self, groups):
        """The daemon again, started with these supplementary groups (as
        from a root shell), which it must not pass on to clients."""
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon = Daemon(self.dir, preexec=lambda: os.setgroups(groups))
        self.daemon.start()

    def test_no_sqlite_database_made_to_look_or_remove(self):
        """STATUS, RELEASE and BREAK of the sqlite method make no
        database: not for root in its own directory, not for nobody
        anywhere (root's private directory, or root's 0755 one)."""
        private = self.private_dir()
        for who, d in ((0, self.locks), (NOBODY, self.locks),
                       (NOBODY, private)):
            with self.subTest(uid=who, dir=d):
                p = os.path.join(d, "x")
                lines = ["STATUS 2 path=%s method=sqlite" % p,
                         "RELEASE 3 path=%s method=sqlite" % p,
                         "BREAK 4 path=%s method=sqlite" % p]
                out = self.run_as(lines, uid=who)
                self.assertEqual(len(out), 3, out)
                self.assertFalse(os.path.exists(
                    os.path.join(d, ".lockbroker.sqlite")), out)
                if d == self.locks:
                    self.assertTrue(out[0].startswith("OK 2 locked=0"), out)
                    self.assertIn("code=ENOTLOCKED", out[1])
                    self.assertTrue(out[2].startswith("OK 4 broken=0"), out)
                else:
                    for line in out:
                        self.assertIn("code=EPERM", line)
        self.assertEqual(os.listdir(private), [])

    def test_nothing_revealed_where_the_client_may_not_look(self):
        """A root pid file (0600, in a 0700 directory, naming a process),
        a root broker lock beside it and a name with nothing there: to
        nobody, STATUS, RELEASE, BREAK and ACQUIRE answer each alike, and
        say nothing of holder, owner or time."""
        private = self.private_dir()
        pidfile = os.path.join(private, "pf")
        with open(pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
        os.chmod(pidfile, 0o600)
        held = os.path.join(private, "held")
        root = self.client()
        self.assertCode(root.call("ACQUIRE", path=held, method="pidfile"),
                        "OK")
        missing = os.path.join(private, "none")
        answers = {}
        for p in (pidfile, held, missing):
            out = self.run_as([
                "STATUS 2 path=%s method=pidfile" % p,
                "RELEASE 3 path=%s method=pidfile" % p,
                "BREAK 4 path=%s method=pidfile" % p,
                "ACQUIRE 5 path=%s method=pidfile timeout=0" % p,
            ])
            for line in out:
                for word in ("locked", "holder", "since", "uid=", "pid="):
                    self.assertNotIn(word, line)
            # The same answers, the path aside.
            answers[p] = [line.replace(p, "PATH") for line in out]
        self.assertEqual(answers[pidfile], answers[missing])
        self.assertEqual(answers[held], answers[missing])
        a = answers[missing]
        self.assertTrue(a[0].startswith("ERR 2 code=EPERM"), a)
        self.assertTrue(a[1].startswith("ERR 3 code=EPERM"), a)
        self.assertTrue(a[2].startswith("ERR 4 code=EPERM"), a)
        self.assertTrue(a[3].startswith("ERR 5 code=EFAILED"), a)
        self.assertTrue(os.path.exists(pidfile))
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(root.call("STATUS", path=held,
                                   method="pidfile").fields["mine"], "1")
        # Where nobody may look, it sees what it could see itself.
        os.chmod(private, 0o711)
        out = self.run_as(["STATUS 2 path=%s method=pidfile" % pidfile,
                           "STATUS 3 path=%s method=pidfile" % missing])
        self.assertIn("locked=1", out[0])
        self.assertIn("holder_pid=0 ", out[0])     # 0600: unreadable
        self.assertTrue(out[1].startswith("OK 3 locked=0"), out)

    def test_pid_file_fifo_never_opened(self):
        """A FIFO where a pid file is read is not opened, not even with
        O_NONBLOCK: a writer waiting to open it keeps waiting."""
        p = self.path("fifo")
        os.mkfifo(p)
        opened = threading.Event()

        def writer():
            fd = os.open(p, os.O_WRONLY)
            opened.set()
            os.close(fd)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=p, method="pidfile",
                               timeout=0), "EALREADY")
        self.assertCode(c.call("RELEASE", path=p, method="pidfile"),
                        "ENOTMINE")
        self.assertCode(c.call("STATUS", path=p, method="pidfile"), "OK")
        self.assertFalse(opened.wait(1.0), "the daemon opened the FIFO")
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        t.join(5)
        os.close(fd)
        os.unlink(p)

    def test_list_shows_only_what_the_asker_may_see(self):
        private = self.private_dir()
        hidden = os.path.join(private, "secret")
        shown = self.path("public")
        root = self.client()
        self.assertCode(root.call("ACQUIRE", path=hidden), "OK")
        self.assertCode(root.call("ACQUIRE", path=shown), "OK")
        mine = os.path.join(self.dir, "nobodys")
        os.mkdir(mine)
        os.chown(mine, NOBODY, NOBODY)
        own = os.path.join(mine, "own")
        out = self.run_as(["ACQUIRE 2 path=%s" % own, "LIST 3"])
        self.assertTrue(out[0].startswith("OK 2"), out)
        items = [line for line in out[1:] if line.startswith("ITEM 3 ")]
        text = "\n".join(out)
        self.assertNotIn("secret", text)
        self.assertIn("path=%s " % shown, text)
        self.assertIn("path=%s " % own, text)
        self.assertTrue(out[-1].startswith("OK 3 count=%d" % len(items)),
                        out)
        self.assertEqual(len(items), 2, out)
        # Root sees every lock.
        rid = root.send("LIST")
        got = []
        while True:
            r = root.read()
            if r.verb != "ITEM":
                break
            got.append(r.fields["path"])
        self.assertCode(r, "OK")
        self.assertEqual(r.id, rid)
        self.assertIn(hidden, got)
        self.assertIn(shown, got)

    def test_daemons_groups_are_not_the_clients(self):
        """Started with root's groups (0 and 4, adm), the daemon still
        lets nobody create nothing in root:root and root:adm 0770
        directories."""
        self.restart_with_groups([0, 4])
        for gid in (0, 4):
            with self.subTest(gid=gid):
                d = self.private_dir("g%d" % gid, 0o770, gid)
                for method in ("link", "pidfile", "sqlite"):
                    p = os.path.join(d, "x")
                    out = self.run_as(["ACQUIRE 2 path=%s method=%s "
                                       "timeout=0" % (p, method)])
                    self.assertIn("code=EFAILED", out[0])
                self.assertEqual(os.listdir(d), [])

    def test_clients_groups_are_taken_on(self):
        """nobody, in a group that may write a directory (its process's
        supplementary groups, which the daemon reads from the socket),
        locks there, and a handoff and the release work as well; without
        that group it may not."""
        group = 4243
        d = self.private_dir("grouped", 0o770, group)
        for method in ("link", "symlink", "mkdir", "pidfile", "sqlite"):
            with self.subTest(method=method):
                p = os.path.join(d, method)
                out = self.run_as(["ACQUIRE 2 path=%s method=%s" % (p, method),
                                   "STATUS 3 path=%s method=%s" % (p, method),
                                   "RELEASE 4 path=%s method=%s" % (p, method)],
                                  groups=[group])
                self.assertTrue(out[0].startswith("OK 2 token="), out)
                self.assertIn("holder_uid=%d" % NOBODY, out[1])
                self.assertTrue(out[2].startswith("OK 4"), out)
                out = self.run_as(["ACQUIRE 2 path=%s method=%s timeout=0"
                                   % (p, method)])
                self.assertIn("code=EFAILED", out[0])
        self.assertEqual(sorted(os.listdir(d)), [".lockbroker.sqlite"])

    def test_recorded_groups_serve_after_a_restart(self):
        """The groups are recorded with the hold: a holder (nobody, with
        the directory's group) that died while the daemon was down has
        its artefact removed at start, as nobody with that group."""
        group = 4243
        d = self.private_dir("grouped", 0o770, group)
        p = os.path.join(d, "x")
        script = holder_script(self.daemon.socket, p, "symlink")

        def demote():
            os.setgroups([group])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        child = subprocess.Popen([PYTHON, "-c", script],
                                 stdout=subprocess.PIPE, preexec_fn=demote)
        self.procs.append(child)
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"))
        self.daemon.kill()
        child.kill()
        child.wait()
        self.assertTrue(os.path.lexists(p + ".lock"))
        self.daemon.start()
        self.assertFalse(os.path.lexists(p + ".lock"),
                         self.daemon.logtext())

    def test_directory_that_cannot_be_looked_at_is_not_gone(self):
        # Regression: at start, a hold whose directory its user could not
        # look at (EACCES: its parent made unsearchable while the daemon
        # was down) was forgotten as if gone, its artefact left: its
        # holder could not reclaim it once the directory was open again.
        home = os.path.join(self.dir, "home")
        d = os.path.join(home, "d")
        os.mkdir(home)
        os.mkdir(d)
        os.chown(home, NOBODY, NOBODY)
        os.chown(d, NOBODY, NOBODY)
        p = os.path.join(d, "x")
        go = os.path.join(self.dir, "go")
        child = self.spawn(textwrap.dedent("""
            import os, socket, time
            def conn():
                s = socket.socket(socket.AF_UNIX)
                s.connect(%r)
                f = s.makefile("rwb", buffering=0)
                f.write(b"HELLO 1 version=1\\n")
                assert f.readline().startswith(b"OK 1")
                return s, f
            s, f = conn()
            f.write(b"ACQUIRE 2 path=%s method=symlink\\n")
            r = f.readline().decode().strip()
            print(r, flush=True)
            token = r.split("token=")[1]
            while not os.path.exists(%r):
                time.sleep(0.05)
            s, f = conn()
            f.write(("RECLAIM 2 path=%s method=symlink token=%%s\\n"
                     %% token).encode())
            print(f.readline().decode().strip(), flush=True)
            f.write(b"RELEASE 3 path=%s method=symlink\\n")
            print(f.readline().decode().strip(), flush=True)
            time.sleep(600)
        """) % (self.daemon.socket, p, go, p, p), user="nobody")
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"))
        self.daemon.kill()
        os.chmod(home, 0)
        try:
            self.daemon.start()
            b = self.client()
            rid = b.send("ACQUIRE", path=p, method="symlink", timeout=60)
            self.assertCode(b.call("PING"), "OK")
        finally:
            os.chmod(home, 0o755)
        self.assertTrue(os.path.lexists(p + ".lock"))
        open(go, "w").close()
        self.assertTrue(child.stdout.readline().startswith(b"OK 2"),
                        self.daemon.logtext())
        self.assertTrue(child.stdout.readline().startswith(b"OK 3"))
        self.assertCode(b.wait(rid), "OK")
        self.assertCode(b.call("RELEASE", path=p, method="symlink"), "OK")

    def test_reconcile_never_follows_a_swapped_directory(self):
        """A hold's directory, replaced while the daemon is down by a
        symlink to root's private directory holding a pid file of a dead
        process under the lock's name: the daemon, restarted, leaves that
        file alone, whether the hold was nobody's or root's."""
        dead = subprocess.Popen(["true"])
        dead.wait()
        private = self.private_dir()
        victim = os.path.join(private, "victim")
        home = os.path.join(self.dir, "home")
        os.mkdir(home)
        os.chown(home, NOBODY, NOBODY)
        for holder, stop in ((NOBODY, signal.SIGTERM),
                             (NOBODY, signal.SIGKILL),
                             (0, signal.SIGTERM)):
            with self.subTest(holder=holder, stop=stop):
                with open(victim, "w") as f:
                    f.write("%d\n" % dead.pid)
                d = os.path.join(home, "d")
                os.mkdir(d)
                os.chown(d, NOBODY, NOBODY)
                p = os.path.join(d, "victim")
                child = self.spawn(holder_script(self.daemon.socket, p,
                                                 "pidfile"),
                                   user="nobody" if holder else None)
                try:
                    self.assertTrue(child.stdout.readline().startswith(
                        b"OK 2"))
                    self.daemon.stop(stop)
                    # nobody swaps its directory for a link to root's.
                    os.setegid(NOBODY)
                    os.seteuid(NOBODY)
                    try:
                        os.rename(d, d + ".old")
                        os.symlink(private, d)
                    finally:
                        os.seteuid(0)
                        os.setegid(0)
                    self.daemon.start()
                    self.assertCode(self.client().call("PING"), "OK")
                    self.assertTrue(os.path.exists(victim),
                                    self.daemon.logtext())
                    with open(victim) as f:
                        self.assertEqual(f.read(), "%d\n" % dead.pid)
                finally:
                    child.kill()
                    child.wait()
                    if self.daemon.proc.poll() is not None:
                        self.daemon.start()
                    if os.path.islink(d):
                        os.unlink(d)
                    shutil.rmtree(d, ignore_errors=True)
                    shutil.rmtree(d + ".old", ignore_errors=True)


class Start(DaemonTest):
    def test_state_in_missing_directories(self):
        d = Daemon(self.dir)
        d.socket = os.path.join(self.dir, "deep", "er", "sock")
        d.state = os.path.join(self.dir, "a", "b", "c", "state.sqlite")
        d.start()
        self.assertTrue(os.path.exists(d.state))
        self.assertEqual(os.stat(os.path.dirname(d.state)).st_mode & 0o777,
                         0o700)
        self.assertEqual(d.stop(), 0)


class Cluster(DaemonTest):
    """Locks under cluster_dir are cluster-wide (docs/CLUSTER.md): without
    etcd (built without it, or no etcd_endpoints; tests/cluster.py runs
    it with etcd) refused with a reason, and nothing made on disk; every
    other lock, a sibling directory with the same beginning included, as
    before.  The daemon leaves a sign in cluster_dir, by which the
    library, with no daemon to ask, refuses such a lock rather than take
    it on this host alone."""

    def make_daemon(self):
        self.cluster = os.path.join(self.locks, "cluster")
        os.mkdir(self.cluster)
        os.mkdir(self.cluster + "-not")
        return Daemon(self.dir, config="cluster_dir = %s\n" % self.cluster)

    def test_cluster_lock_refused(self):
        c = self.client()
        for name in ("x", "x/y", "deep/er/lock"):
            p = os.path.join(self.cluster, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            r = c.call("ACQUIRE", path=p, timeout=0)
            self.assertCode(r, "EFAILED")
            msg = r.fields["message"]
            self.assertIn("is a cluster lock", msg)
            self.assertIn(self.cluster, msg)
            # Built without etcd, or with it and no etcd_endpoints set
            # (tests/cluster.py runs the daemon with them).
            self.assertTrue("built without" in msg or
                            "no etcd_endpoints" in msg, msg)
            self.assertFalse(os.path.exists(p + ".lock"))
        # The same path spelt with . and .. is the same lock.
        r = c.call("ACQUIRE", path=self.cluster + "/./a/../x", timeout=0)
        self.assertCode(r, "EFAILED")
        for p in (os.path.join(self.cluster + "-not", "x"),
                  os.path.join(self.locks, "x")):
            self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK")
            self.assertTrue(os.path.exists(p + ".lock"))
            self.assertCode(c.call("RELEASE", path=p), "OK")


    def tool(self, *args, socket=None, user=None):
        """The command lockbroker run with LOCKBROKER_SOCKET socket (by
        default one where no daemon answers), as user nobody when asked:
        the completed process, its output text."""
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        env = dict(os.environ, LOCKBROKER_SOCKET=socket or
                   os.path.join(self.dir, "nosock"))
        env.pop("LOCKBROKER_TRANSPORT", None)
        return subprocess.run([self.tool_path()] + list(args), env=env,
                              text=True,
                              capture_output=True, timeout=30,
                              preexec_fn=demote if user else None)

    def tool_path(self):
        return os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")

    def test_sign_refuses_the_in_process_fallback(self):
        sign = os.path.join(self.cluster, ".lockbroker-cluster")
        st = os.lstat(sign)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_uid, os.geteuid())
        with open(sign) as f:
            self.assertIn("cluster-wide", f.read())
        # No daemon answers: AUTO refuses a lock under cluster_dir, at
        # any depth, naming the sign; nothing is made.
        for name in ("x", "deep/er/lock"):
            p = os.path.join(self.cluster, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            r = self.tool("lock", "-n", p, "--", "true")
            self.assertNotEqual(r.returncode, 0, r)
            self.assertIn("is a cluster lock", r.stderr)
            self.assertIn(sign, r.stderr)
            self.assertFalse(os.path.exists(p + ".lock"))
        # A lock kept for a process (lb_acquire_for), the same.
        p = os.path.join(self.cluster, "kept")
        r = self.tool("acquire", "-n", p)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("is a cluster lock", r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"))
        # Asked for in-process (LB_LOCAL), it is taken all the same; a
        # sibling directory is no cluster lock.
        p = os.path.join(self.cluster, "x")
        self.assertEqual(self.tool("lock", "--local", "-n", p, "--",
                                   "true").returncode, 0)
        p = os.path.join(self.cluster + "-not", "x")
        r = self.tool("lock", "-n", p, "--", "test", "-e", p + ".lock")
        self.assertEqual(r.returncode, 0, r)    # its lock file made
        r = self.tool("lock", "-n", p, "--", self.tool_path(), "lock",
                      "-n", p, "--", "true")
        self.assertNotEqual(r.returncode, 0, "an AUTO lock in-process "
                            "beside the cluster guard does not exclude")
        # Through the daemon, the daemon says why (no etcd here).
        r = self.tool("lock", "-n", os.path.join(self.cluster, "x"), "--",
                      "true", socket=self.daemon.socket)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("is a cluster lock", r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root (a second user)")
    def test_sign_of_another_user_is_not_counted(self):
        # In a directory anyone may write, a sign user nobody made
        # refuses nobody's own locks there, and nobody else's.
        d = self.shared()
        plant = self.spawn("open(%r, 'w').write('x')\nprint('made')"
                           % os.path.join(d, ".lockbroker-cluster"),
                           user="nobody")
        self.assertEqual(plant.stdout.readline(), b"made\n")
        plant.wait()
        plant.stdout.close()
        p = os.path.join(d, "y")
        r = self.tool("lock", "-n", p, "--", "true")
        self.assertEqual(r.returncode, 0, r)
        r = self.tool("lock", "-n", p, "--", "true", user="nobody")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("is a cluster lock", r.stderr)


class Limits(DaemonTest):
    config = "holds_per_conn = 2\nconns_per_uid = 4\n"

    def test_holds_per_conn(self):
        c = self.client()
        self.assertCode(c.call("ACQUIRE", path=self.path("1")), "OK")
        self.assertCode(c.call("ACQUIRE", path=self.path("2")), "OK")
        r = c.call("ACQUIRE", path=self.path("3"))
        self.assertCode(r, "ELIMIT")
        self.assertIn("holds_per_conn", r.fields["message"])

    def test_conns_per_uid(self):
        for _ in range(4):
            self.client()
        extra = Client(self.daemon.socket, hello=False)
        r = extra.read()
        self.assertCode(r, "ELIMIT")
        self.assertTrue(extra.closed())
        extra.close()

    def refuse(self, sock, n, uid):
        """n connections of uid (a child of that user makes them) refused
        at conns_per_uid: each told ELIMIT and closed by the daemon."""
        socks, keeper, pid = connect_many_as(sock, n, uid)
        try:
            for s in socks:
                self.assertCode(Client.of_socket(s).read(), "ELIMIT")
                s.close()
        finally:
            keeper.close()
            os.waitpid(pid, 0)

    @staticmethod
    def refusals(log, uid):
        """uid's refusals at conns_per_uid in log: (logged, counted in the
        lines that say how many were not logged for uid)."""
        logged = len(re.findall(r"uid %d refused: conns_per_uid" % uid, log))
        counted = sum(int(n) for n in re.findall(
            r"(\d+) refusals of connections not logged for uid %d " % uid,
            log))
        return logged, counted

    def test_refusals_logged_bounded(self):
        """A user who connects in a loop, each connection refused at
        conns_per_uid, makes the daemon log at most 10 of his refusals a
        minute (refusals_logged_per_uid): the others are counted, and the
        count logged for his uid when the minute ends or the daemon
        stops; another user's refusals meanwhile are all logged (three,
        within his own 10), none counted: one user's flood hides
        nobody else's."""
        for _ in range(4):
            self.client()
        keep = self.nobody_conns(4)
        flood = 200
        self.refuse(self.daemon.socket, flood, NOBODY)
        for _ in range(3):
            extra = Client(self.daemon.socket, hello=False)
            self.assertCode(extra.read(), "ELIMIT")
            extra.close()
        keep()
        self.assertEqual(self.daemon.stop(), 0)
        log = self.daemon.logtext()
        logged, counted = self.refusals(log, NOBODY)
        self.assertEqual(logged, 10, log[-4000:])
        self.assertEqual(logged + counted, flood, log[-4000:])
        self.assertEqual(self.refusals(log, os.getuid()), (3, 0),
                         log[-4000:])

    def nobody_conns(self, n):
        """n connections of nobody's kept open (at conns_per_uid, the
        next are refused); returns what closes them."""
        socks, keeper, pid = connect_many_as(self.daemon.socket, n, NOBODY)

        def close():
            for s in socks:
                s.close()
            keeper.close()
            os.waitpid(pid, 0)
        return close

    def test_refusals_counted_at_interval_end(self):
        """With a short interval (refusals_interval = 0.5), two lines a
        user and three in all: every refusal is either logged or counted
        in a line for its uid that the end of an interval writes, while
        the daemon runs (not its stop); in every interval the other user
        still gets a line of his own logged, whatever nobody's flood took
        (nobody at most 2 of the 3)."""
        sub = os.path.join(self.dir, "short")
        os.mkdir(sub)
        d = Daemon(sub, config="conns_per_uid = 1\n"
                   "refusals_interval = 0.5\n"
                   "refusals_logged_per_uid = 2\n"
                   "refusals_logged = 3\n")
        d.start()
        try:
            mine = d.client()
            socks, keeper, pid = connect_many_as(d.socket, 1, NOBODY)
            self.refuse(d.socket, 20, NOBODY)
            for _ in range(5):
                extra = Client(d.socket, hello=False)
                self.assertCode(extra.read(), "ELIMIT")
                extra.close()
            deadline = time.monotonic() + 60
            while True:
                log = d.logtext()
                nobody = self.refusals(log, NOBODY)
                me = self.refusals(log, os.getuid())
                if sum(nobody) == 20 and sum(me) == 5:
                    break
                self.assertLess(time.monotonic(), deadline,
                                "not every refusal logged or counted:\n"
                                + log[-4000:])
                time.sleep(0.1)
            self.assertGreaterEqual(nobody[0], 2, log[-4000:])
            self.assertGreater(nobody[1], 0, log[-4000:])
            self.assertGreaterEqual(me[0], 1, log[-4000:])
            self.assertIn("(at most 2 logged a user, 3 in all, in 0.5 s)",
                          log)
            mine.close()
            for s in socks:
                s.close()
            keeper.close()
            os.waitpid(pid, 0)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_sighup_reloads(self):
        with open(self.daemon.config, "w") as f:
            f.write("holds_per_conn = 3\n")
        self.daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reloaded" not in self.daemon.logtext():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        c = self.client()
        for i in range(3):
            self.assertCode(c.call("ACQUIRE", path=self.path(str(i))), "OK")
        self.assertCode(c.call("ACQUIRE", path=self.path("x")), "ELIMIT")

    def test_bad_config_refused_at_start(self):
        self.assertRefusedAtStart(["holds_per_conn = lots"])

    def test_seconds_out_of_range_refused_at_start(self):
        """grace and foreign_poll become timer milliseconds: a value
        beyond their range is refused, naming the key and the range."""
        self.assertRefusedAtStart(["foreign_poll = 1e300", "grace = 1e20",
                                   "grace = 100000000000000000000",
                                   "foreign_poll = 86400.5", "grace = 0"],
                                  "greater than 0 and at most 86400")
        sub = os.path.join(self.dir, "c9")
        os.mkdir(sub)
        d = Daemon(sub, config="grace = 86400\nforeign_poll = 0.5\n")
        d.start()
        c = d.client()
        self.assertCode(c.call("PING"), "OK")
        c.close()
        self.assertEqual(d.stop(), 0)

    def test_counts_out_of_range_refused_at_start(self):
        """A count key beyond its range (pidfds_per_uid: 0 to 1000000;
        conns: 1 to 1000000) is refused, naming the key and the range;
        pidfds_per_uid = 0 and its largest value are accepted."""
        self.assertRefusedAtStart(["pidfds_per_uid = 1000001",
                                   "pidfds_per_uid = -1",
                                   "pidfds_per_uid = some"],
                                  "from 0 to 1000000")
        self.assertRefusedAtStart(["conns = 0"], "from 1 to 1000000")
        for i, line in enumerate(["pidfds_per_uid = 0",
                                  "pidfds_per_uid = 1000000"]):
            sub = os.path.join(self.dir, "m%d" % i)
            os.mkdir(sub)
            d = Daemon(sub, config=line + "\n")
            d.start()
            c = d.client()
            self.assertCode(c.call("PING"), "OK")
            c.close()
            self.assertEqual(d.stop(), 0, line)


class Command(DaemonTest):
    """The lockbroker command goes through the broker when one answers."""

    def run_tool(self, *args, **kw):
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        tool = os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")
        return subprocess.run([tool] + list(args), env=env,
                              capture_output=True, timeout=30, **kw)

    def test_lock_status_through_the_broker(self):
        p = self.path()
        tool = os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")
        r = self.run_tool("lock", p, "--", tool, "status", p)
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout.decode()
        self.assertIn("granted by the broker", out)
        self.assertRegex(out, r"token: +[1-9][0-9]*")
        self.assertFalse(os.path.exists(p + ".lock"))

    def test_own_sqlite_database_is_honoured(self):
        # A client's LOCKBROKER_SQLITE_DB names a database the daemon does
        # not use: such a lock is taken in-process, where both agree.
        p = self.path()
        tool = os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket,
                   LOCKBROKER_SQLITE_DB=os.path.join(self.dir, "own.db"))
        r = subprocess.run([tool, "lock", "--method", "sqlite", p, "--",
                            tool, "lock", "--local", "-n", "--method",
                            "sqlite", p, "--", "echo", "BAD"], env=env,
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1, r)
        self.assertNotIn(b"BAD", r.stdout)

    def test_killed_holder_hands_over(self):
        p = self.path()
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        tool = os.path.join(os.environ.get("LB_BUILDDIR", "."), "tools",
                            "lockbroker")
        holder = subprocess.Popen([tool, "lock", p, "--", "sleep", "600"],
                                  env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(os.killpg, holder.pid, signal.SIGKILL)
        self.procs.append(holder)
        c = self.client()
        deadline = time.monotonic() + 10
        while c.call("STATUS", path=p).fields["locked"] != "1":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertEqual(self.run_tool("lock", "-n", p, "--", "true")
                         .returncode, 1)
        waiter = subprocess.Popen([tool, "lock", "-w", "20", p, "--",
                                   "true"], env=env)
        self.procs.append(waiter)
        while c.call("STATUS", path=p).fields["waiters"] != "1":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        os.kill(holder.pid, signal.SIGKILL)    # not its command: it sleeps on
        self.assertEqual(waiter.wait(15), 0)


class SocketActivation(unittest.TestCase):
    def test_systemd_socket_activate(self):
        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            self.skipTest("systemd-socket-activate is not installed")
        d = tempfile.mkdtemp(prefix="lbdaemon.")
        try:
            daemon = Daemon(d)
            log = open(daemon.log, "a")
            p = subprocess.Popen(
                [tool, "-l", daemon.socket, DAEMON_BIN(), "--state",
                 daemon.state, "--debug"], stdout=log, stderr=log)
            log.close()
            daemon.proc = p
            # The tool binds the socket file before it listens: connect
            # until it takes (the first connection starts the daemon).
            deadline = time.monotonic() + 10
            while True:
                try:
                    c = Client(daemon.socket)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.02)
            self.assertCode = None
            r = c.call("ACQUIRE", path=os.path.join(d, "x"))
            self.assertEqual(r.verb, "OK", r)
            c.close()
            self.assertEqual(daemon.stop(), 0)
            self.assertIn("listening on the socket systemd passed",
                          daemon.logtext())
        finally:
            shutil.rmtree(d, ignore_errors=True)


def DAEMON_BIN():
    from lbdaemon import DAEMON
    return DAEMON


if __name__ == "__main__":
    unittest.main(verbosity=2)
