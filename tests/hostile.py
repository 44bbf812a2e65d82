"""hostile.py: liblockbroker and lockbrokerd in a hostile file system.

Another user plants things where a lock's files will be made or read: a
symlink at the artefact, at the link method's unique file or at a handoff's
temporary name; a FIFO or a directory where a file is opened; artefacts
with garbage in them; a lock directory replaced while someone waits for
it.  The victim is a real process using the public API (tests/lockhelper)
of every method, in-process (LB_LOCAL) and through a private daemon
(LB_BROKER), as root (the attacker being nobody) and as nobody (the
attacker another unprivileged uid).

Expected, everywhere: the call refuses (LB_EFAILED, naming the file) or
reports the lock as held by someone else (LB_EALREADY), answers within
HANG_S seconds (a FIFO opened for writing or reading must not hang the
library or the daemon), never follows the attacker's link to create,
truncate or remove a file elsewhere (the targets keep their contents, a
dangling link's target is never created, a directory pointed at stays
empty), leaves nothing of its own behind, and the daemon keeps serving.

The lock directories are world-writable but not sticky: the kernel's
protected_symlinks and protected_fifos guard only sticky ones, so here
nothing but the code under test stands between the victim and the link.
"""
import ctypes
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import (WRAPPER, Client, Daemon, DaemonCase,  # noqa: E402
                      NobodyClient, fnv1a,
                      unique_name)

BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
LOCKHELPER = os.path.join(BUILDDIR, "tests", "lockhelper")
HANG_S = 10.0
METHODS = ("link", "symlink", "mkdir", "pidfile", "sqlite")
TRANSPORTS = ("local", "broker")
ROOT, NOBODY, ATTACKER = 0, 65534, 4242
VICTIMS = (ROOT, NOBODY)
PRECIOUS = b"precious\n"
# valgrind does not know openat2 (ENOSYS): the daemon then cannot tell a
# magic link in a path (tests/daemon.py says the same).
OPENAT2 = not any("valgrind" in w for w in WRAPPER)


def attacker_of(victim):
    """Who attacks a victim: nobody attacks root; another uid, nobody."""
    return NOBODY if victim == ROOT else ATTACKER


class as_user:
    """Runs a block with uid's effective ids (files made are uid's)."""

    def __init__(self, uid):
        self.uid = uid

    def __enter__(self):
        os.setegid(self.uid)
        os.seteuid(self.uid)

    def __exit__(self, *exc):
        os.seteuid(0)
        os.setegid(0)


def exchange(a, b):
    """Swaps the names a and b in one step (renameat2 RENAME_EXCHANGE),
    so that no one sees either missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                      rename_exchange) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


def artefact(path, method):
    """What a lock on path is on disk (the sqlite method: its database)."""
    if method == "pidfile":
        return path
    if method == "sqlite":
        return os.path.join(os.path.dirname(path), ".lockbroker.sqlite")
    return path + ".lock"


class Helper:
    """tests/lockhelper serving the lock on path as uid, in-process
    (transport "local") or through the daemon at sock ("broker"), one
    owner for the whole process (-u)."""

    def __init__(self, uid, transport, method, path, sock):
        def demote():
            if uid != ROOT:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
        env = dict(os.environ, LOCKBROKER_SOCKET=sock)
        self.what = "lockhelper (uid %d, %s, %s)" % (uid, transport, method)
        self.proc = subprocess.Popen(
            [LOCKHELPER, "-u", "-l" if transport == "local" else "-b",
             method, path, "serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, preexec_fn=demote)
        self.buf = b""
        self.pid = int(self.ask("pid"))

    def send(self, command):
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def line(self, timeout=HANG_S, what="?"):
        """The next line of the helper's answer; fails on a hang."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.proc.kill()
                raise AssertionError("%s hung: no answer to %r within "
                                     "%g s" % (self.what, what, timeout))
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError("%s died answering %r" %
                                     (self.what, what))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")

    def ask(self, command, timeout=HANG_S):
        self.send(command)
        return self.line(timeout, command)

    def holder(self):
        """lb_get_holder's fields as a dict (or {"error": ...})."""
        self.send("holder")
        out = {}
        while True:
            line = self.line(what="holder")
            if line.startswith("error"):
                return {"error": line}
            if line == "end":
                return out
            k, _, v = line.partition(" ")
            out[k] = v

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(HANG_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class HostileTest(DaemonCase):
    prefix = "lbhostile."

    def setUp(self):
        super().setUp()
        self.top = self.dir
        self.shared = os.path.join(self.top, "shared")
        os.mkdir(self.shared)
        os.chmod(self.shared, 0o777)
        # Each victim's own files, which attackers point their links at.
        self.safe = {}
        for uid in VICTIMS:
            safe = os.path.join(self.top, "safe-%d" % uid)
            os.mkdir(safe)
            os.mkdir(os.path.join(safe, "dir"))
            with open(os.path.join(safe, "target"), "wb") as f:
                f.write(PRECIOUS)
            for name in ("", "dir", "target"):
                os.chown(os.path.join(safe, name), uid, uid)
            self.safe[uid] = safe
        self.n = 0

    def place(self, name="lock"):
        """A fresh world-writable (not sticky) directory, and a lock path
        in it."""
        self.n += 1
        d = os.path.join(self.shared, "d%d" % self.n)
        os.mkdir(d)
        os.chmod(d, 0o777)
        return d, os.path.join(d, name)

    def helper(self, uid, transport, method, path):
        h = Helper(uid, transport, method, path, self.daemon.socket)
        self.clients.append(h)      # closed after the test
        return h

    def dest(self, uid, kind):
        """What an attacker points a link at: the victim's file, a name in
        the victim's directory that does not exist, or its directory."""
        return os.path.join(self.safe[uid], {"target": "target",
                                             "absent": "absent",
                                             "dir": "dir"}[kind])

    def assertUntouched(self, uid, why=""):
        safe = self.safe[uid]
        with open(os.path.join(safe, "target"), "rb") as f:
            self.assertEqual(f.read(), PRECIOUS, why)
        self.assertEqual(sorted(os.listdir(safe)), ["dir", "target"], why)
        self.assertEqual(os.listdir(os.path.join(safe, "dir")), [], why)

    def assertOnly(self, d, names, why=""):
        """d holds exactly names: nothing of the victim's was left."""
        self.assertEqual(sorted(os.listdir(d)), sorted(names), why)

    def assertServing(self):
        c = Client(self.daemon.socket, timeout=HANG_S)
        try:
            self.assertEqual(c.call("PING", _wait=HANG_S).verb, "OK")
        finally:
            c.close()

    def every_call(self, h, why):
        """Runs every call on h; each must answer (within HANG_S).  An
        acquire may succeed once the victim has removed what was planted
        at its own unique file's name (litter to it): then it releases."""
        for command in ("is_locked", "i_am_locking", "release",
                        "acquire 0"):
            if h.ask(command) == "locked":
                self.assertEqual(h.ask("release"), "released", why)
        h.holder()

    def combos(self, methods=METHODS):
        for uid in VICTIMS:
            for transport in TRANSPORTS:
                for method in methods:
                    yield uid, transport, method

    def expect(self, answer, code, why):
        """answer is "error CODE: reason" (or "locked" for code None)."""
        if code is None:
            self.assertEqual(answer, "locked", why)
        else:
            self.assertTrue(answer.startswith("error %s:" % code),
                            "%s: %r" % (why, answer))


class Names(HostileTest):
    def test_unique_names_are_predicted(self):
        """The names the attacks below plant at are the ones lockbroker
        uses (else those tests would prove nothing)."""
        for transport in TRANSPORTS:
            d, path = self.place()
            h = self.helper(ROOT, transport, "symlink", path)
            self.assertEqual(h.ask("acquire 0"), "locked")
            self.assertEqual(os.readlink(path + ".lock"),
                             unique_name(h.pid, path + ".lock", "symlink"))
            self.assertEqual(h.ask("release"), "released")
            h = self.helper(ROOT, transport, "link", path)
            self.assertEqual(h.ask("acquire 0"), "locked")
            self.assertTrue(os.path.samefile(
                path + ".lock", unique_name(h.pid, path + ".lock", "link")))
            self.assertEqual(h.ask("release"), "released")


class Symlinks(HostileTest):
    def test_symlink_at_the_artefact(self):
        """A symlink where the artefact goes (PATH.lock, PATH for pidfile,
        the sqlite database) is a lock held by someone else, or (sqlite:
        the database cannot be opened) a failure; it is never followed:
        no file is written, made or removed through it, and nothing of
        the victim's is left beside it."""
        for uid, transport, method in self.combos():
            for kind in ("target", "absent", "dir"):
                why = "uid %d %s %s -> %s" % (uid, transport, method, kind)
                d, path = self.place()
                art = artefact(path, method)
                with as_user(attacker_of(uid)):
                    os.symlink(self.dest(uid, kind), art)
                h = self.helper(uid, transport, method, path)
                code = "LB_EFAILED" if method == "sqlite" else "LB_EALREADY"
                self.expect(h.ask("acquire 0"), code, why)
                if kind == "target":        # waiting, too
                    self.expect(h.ask("acquire 0.2"),
                                "LB_EFAILED" if method == "sqlite" else
                                "LB_ETIMEOUT", why)
                if method != "sqlite":
                    self.assertEqual(h.ask("is_locked"), "1", why)
                self.assertNotEqual(h.ask("i_am_locking"), "1", why)
                self.assertTrue(h.ask("release").startswith("error"), why)
                h.holder()
                self.assertUntouched(uid, why)
                self.assertOnly(d, [os.path.basename(art)], why)
                self.assertEqual(os.readlink(art), self.dest(uid, kind))
                h.ask("break")
                self.assertUntouched(uid, why)
                if os.path.lexists(art):
                    self.assertEqual(os.readlink(art), self.dest(uid, kind))
                h.close()
                self.assertServing()

    def test_symlink_at_the_unique_file(self):
        """A symlink where the link method's unique file goes: LB_EFAILED
        naming it; nothing is created or truncated through it, and no lock
        is taken."""
        for uid, transport, _ in self.combos(("link",)):
            for kind in ("target", "absent"):
                why = "uid %d %s -> %s" % (uid, transport, kind)
                d, path = self.place()
                h = self.helper(uid, transport, "link", path)
                unique = unique_name(h.pid, path + ".lock", "link")
                with as_user(attacker_of(uid)):
                    os.symlink(self.dest(uid, kind), unique)
                answer = h.ask("acquire 0")
                self.expect(answer, "LB_EFAILED", why)
                self.assertIn(os.path.basename(unique), answer, why)
                self.assertUntouched(uid, why)
                # The victim may remove the link (it is litter where its
                # unique file goes), never anything else.
                self.assertLessEqual(set(os.listdir(d)),
                                     {os.path.basename(unique)}, why)
                if os.path.lexists(unique):
                    self.assertEqual(os.readlink(unique),
                                     self.dest(uid, kind), why)
                h.close()
                self.assertServing()

    def test_symlink_at_a_handoff_temporary(self):
        """A symlink at the temporary name a handoff makes the next
        holder's artefact under (.lockbroker-handoff.NAME): the waiter
        still gets the lock, and nothing is written through the link."""
        for method in ("link", "symlink", "pidfile"):
            for kind in ("target", "absent"):
                why = "%s -> %s" % (method, kind)
                d, path = self.place()
                holder = Client(self.daemon.socket)
                self.addCleanup(holder.close)
                self.assertEqual(holder.call("ACQUIRE", path=path,
                                             method=method).verb, "OK")
                w = self.helper(ROOT, "broker", method, path)
                lock_file = artefact(path, method)
                name = (str(w.pid) if method == "pidfile" else
                        os.path.basename(unique_name(w.pid, lock_file,
                                                     method)))
                tmp = os.path.join(d, ".lockbroker-handoff." + name)
                with as_user(NOBODY):
                    os.symlink(self.dest(ROOT, kind), tmp)
                w.send("acquire 20")
                deadline = time.monotonic() + HANG_S
                while holder.call("STATUS", path=path, method=method) \
                        .fields["waiters"] != "1":
                    self.assertLess(time.monotonic(), deadline, why)
                    time.sleep(0.02)
                self.assertEqual(holder.call("RELEASE", path=path,
                                             method=method).verb, "OK", why)
                self.assertEqual(w.line(what="acquire 20"), "locked", why)
                self.assertUntouched(ROOT, why)
                self.assertEqual(w.ask("i_am_locking"), "1", why)
                self.assertEqual(w.ask("release"), "released", why)
                left = set(os.listdir(d)) - {os.path.basename(tmp)}
                self.assertEqual(left, set(), why)
                holder.close()
                self.assertServing()


class OddTypes(HostileTest):
    def plant_fifo(self, uid, f):
        with as_user(attacker_of(uid)):
            os.mkfifo(f)

    def plant_dir(self, uid, f):
        with as_user(attacker_of(uid)):
            os.mkdir(f)
            with open(os.path.join(f, "keep"), "wb") as fp:
                fp.write(PRECIOUS)

    def test_fifo_where_a_file_is_opened(self):
        """A FIFO at the link method's unique file (opened for writing),
        at PATH.lock, at a pid file (opened for reading) or at the sqlite
        database: every call answers at once, as held by another
        (LB_EALREADY) or failed (LB_EFAILED); none blocks in open(2)."""
        for uid, transport, method in self.combos():
            places = ["artefact"] + (["unique"] if method == "link" else [])
            for where in places:
                why = "uid %d %s %s: FIFO at the %s" % (uid, transport,
                                                        method, where)
                d, path = self.place()
                h = self.helper(uid, transport, method, path)
                f = (artefact(path, method) if where == "artefact" else
                     unique_name(h.pid, path + ".lock", "link"))
                self.plant_fifo(uid, f)
                code = ("LB_EFAILED" if where == "unique" or
                        method == "sqlite" else "LB_EALREADY")
                self.expect(h.ask("acquire 0"), code, why)
                self.every_call(h, why)
                if where == "unique":
                    self.assertLessEqual(set(os.listdir(d)),
                                         {os.path.basename(f)}, why)
                else:
                    self.assertOnly(d, [os.path.basename(f)], why)
                h.close()
                self.assertServing()

    def test_directory_where_a_file_is_expected(self):
        """A directory at the link method's unique file, at PATH.lock of
        the link and symlink methods, at a pid file or at the sqlite
        database (and a regular file at the mkdir method's PATH.lock):
        held by another or failed; what the directory holds survives
        everything but the victim's explicit break of PATH.lock."""
        for uid, transport, method in self.combos():
            places = ["artefact"] + (["unique"] if method == "link" else [])
            for where in places:
                why = "uid %d %s %s: odd type at the %s" % (
                    uid, transport, method, where)
                d, path = self.place()
                h = self.helper(uid, transport, method, path)
                f = (artefact(path, method) if where == "artefact" else
                     unique_name(h.pid, path + ".lock", "link"))
                if method == "mkdir":
                    with as_user(attacker_of(uid)):
                        with open(f, "wb") as fp:
                            fp.write(PRECIOUS)
                else:
                    self.plant_dir(uid, f)
                code = ("LB_EFAILED" if where == "unique" or
                        method == "sqlite" else "LB_EALREADY")
                self.expect(h.ask("acquire 0"), code, why)
                self.every_call(h, why)
                self.assertOnly(d, [os.path.basename(f)], why)
                if method == "mkdir":
                    with open(f, "rb") as fp:
                        self.assertEqual(fp.read(), PRECIOUS, why)
                else:
                    self.assertEqual(os.listdir(f), ["keep"], why)
                if method in ("pidfile", "sqlite") or where == "unique":
                    h.ask("break")      # refused, or not this file's
                    self.assertEqual(os.listdir(f), ["keep"], why)
                h.close()
                self.assertServing()


class Garbage(HostileTest):
    def plant(self, uid, method, path):
        """Garbage in the artefact of method; returns its path."""
        art = artefact(path, method)
        junk = b"\xff\xfe\n=%& \x01garbage" * 64
        with as_user(attacker_of(uid)):
            if method == "link":
                with open(art, "wb") as f:
                    f.write(junk)
                os.link(art, os.path.join(os.path.dirname(path),
                                          "odd\nname=%"))
            elif method == "symlink":
                os.symlink(b"\xff\n=%& x" * 30, os.fsencode(art))
            elif method == "mkdir":
                os.mkdir(art)
                for name in ("odd\nmarker=%", "host.-zz12~x.y.z"):
                    open(os.path.join(art, name), "w").close()
                os.mkdir(os.path.join(art, "sub"))
                with open(os.path.join(art, "sub", "keep"), "wb") as f:
                    f.write(PRECIOUS)
            elif method == "pidfile":
                with open(art, "wb") as f:
                    f.write(b"-1\n" + junk * 1024)
            else:
                with open(art, "wb") as f:
                    f.write(b"SQLite format 3\0" + junk)
        return art

    def test_garbage_artefacts(self):
        """Artefacts holding garbage (a link lock with odd names and
        bytes, a symlink to bytes that are no unique name, a lock
        directory with odd markers and a subdirectory, a pid file of junk,
        an sqlite database that is none): held by an unknown holder
        (LB_EALREADY), or for sqlite LB_EFAILED; every call answers; the
        daemon's STATUS and LIST stay one well-formed line each."""
        for uid, transport, method in self.combos():
            why = "uid %d %s %s" % (uid, transport, method)
            d, path = self.place()
            art = self.plant(uid, method, path)
            h = self.helper(uid, transport, method, path)
            self.expect(h.ask("acquire 0"),
                        "LB_EFAILED" if method == "sqlite" else
                        "LB_EALREADY", why)
            self.every_call(h, why)
            if method != "sqlite":
                holder = h.holder()
                self.assertEqual(holder.get("held"), "1", why)
                self.assertEqual(holder.get("liveness"), "unknown", why)
            c = Client(self.daemon.socket)
            try:
                st = c.call("STATUS", path=path, method=method)
                if method == "sqlite":
                    self.assertEqual(st.verb, "ERR", why)
                else:
                    self.assertEqual(st.fields["locked"], "1", why)
                    self.assertEqual(st.fields["mine"], "0", why)
                rid = c.send("LIST")
                r = c.read()
                self.assertEqual((r.verb, r.id), ("OK", rid), r)
                self.assertEqual(c.call("PING").verb, "OK")
            finally:
                c.close()
            if method == "mkdir":
                h.ask("break")
                with open(os.path.join(art, "sub", "keep"), "rb") as f:
                    self.assertEqual(f.read(), PRECIOUS, why)
            h.close()
            self.assertServing()

    def test_sqlite_database_of_another_shape(self):
        """An sqlite database whose locks table has other columns: the
        sqlite method fails (LB_EFAILED) rather than misreading it, and
        leaves the table as it was."""
        for uid, transport, _ in self.combos(("sqlite",)):
            why = "uid %d %s" % (uid, transport)
            d, path = self.place()
            db_file = artefact(path, "sqlite")
            with as_user(attacker_of(uid)):
                db = sqlite3.connect(db_file)
                db.execute("CREATE TABLE locks (x, y, z)")
                db.execute("INSERT INTO locks VALUES (1, 2, 3)")
                db.commit()
                db.close()
                os.chmod(db_file, 0o666)
            h = self.helper(uid, transport, "sqlite", path)
            self.expect(h.ask("acquire 0"), "LB_EFAILED", why)
            self.every_call(h, why)
            db = sqlite3.connect(db_file)
            self.assertEqual(db.execute("SELECT * FROM locks").fetchall(),
                             [(1, 2, 3)], why)
            db.close()
            h.close()
            self.assertServing()


class Replaced(HostileTest):
    def test_lock_directory_replaced_while_waiting(self):
        """An mkdir lock held by the attacker; while the victim waits for
        it, the attacker moves the directory away and puts a symlink to
        the victim's directory in its place.  The victim keeps waiting (a
        symlink at PATH.lock is a lock held by someone) and makes nothing
        in the directory pointed at; once the symlink goes, the victim
        gets a real lock directory."""
        for uid, transport, _ in self.combos(("mkdir",)):
            why = "uid %d %s" % (uid, transport)
            d, path = self.place()
            lock = path + ".lock"
            with as_user(attacker_of(uid)):
                os.mkdir(lock)
                open(os.path.join(lock, "someone.1"), "w").close()
            h = self.helper(uid, transport, "mkdir", path)
            h.send("acquire 1")
            time.sleep(0.3)
            with as_user(attacker_of(uid)):
                os.symlink(self.dest(uid, "dir"), path + ".moved")
                exchange(path + ".moved", lock)
            self.expect(h.line(what="acquire 1"), "LB_ETIMEOUT", why)
            self.assertUntouched(uid, why)
            h.send("acquire 20")
            time.sleep(0.2)
            self.assertUntouched(uid, why)
            with as_user(attacker_of(uid)):
                os.unlink(lock)
            self.assertEqual(h.line(what="acquire 20"), "locked", why)
            self.assertFalse(os.path.islink(lock), why)
            self.assertEqual(os.listdir(lock), [os.path.basename(
                unique_name(h.pid, lock, "mkdir"))], why)
            self.assertEqual(h.ask("release"), "released", why)
            self.assertUntouched(uid, why)
            self.assertOnly(d, ["lock.moved"], why)
            h.close()
            self.assertServing()

    def test_broker_holders_directory_replaced(self):
        """The lock directory of a broker client's mkdir lock is moved
        away and replaced by a symlink while another client waits.  The
        holder's RELEASE reports that the lock is no longer its own; the
        handoff does not happen through the symlink, the waiter keeps
        waiting, and nothing is made in the directory pointed at.  Once
        the symlink goes, the waiter gets the lock."""
        d, path = self.place()
        lock = path + ".lock"
        holder, waiter = Client(self.daemon.socket), Client(
            self.daemon.socket)
        self.addCleanup(holder.close)
        self.addCleanup(waiter.close)
        self.assertEqual(holder.call("ACQUIRE", path=path,
                                     method="mkdir").verb, "OK")
        rid = waiter.send("ACQUIRE", path=path, method="mkdir", thread=77,
                          timeout=30)
        deadline = time.monotonic() + HANG_S
        while holder.call("STATUS", path=path, method="mkdir") \
                .fields["waiters"] != "1":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        with as_user(NOBODY):
            os.symlink(self.dest(ROOT, "dir"), path + ".moved")
            exchange(path + ".moved", lock)
        r = holder.call("RELEASE", path=path, method="mkdir")
        self.assertEqual(r.code, "ENOTMINE", r)
        self.assertRaises(TimeoutError, waiter.read, 1.0)
        self.assertUntouched(ROOT)
        os.unlink(lock)
        r = waiter.wait(rid, timeout=HANG_S)
        self.assertEqual(r.verb, "OK", r)
        self.assertFalse(os.path.islink(lock))
        self.assertEqual(waiter.call("RELEASE", path=path, method="mkdir",
                                     thread=77).verb, "OK")
        self.assertUntouched(ROOT)
        self.assertServing()

    def test_lock_directory_swapped_while_the_daemon_starts(self):
        """Root holds an mkdir lock; the daemon restarts, and while it
        judges the previous run's holds, nobody keeps exchanging the lock
        directory with a symlink to root's directory.  Reconcile, which
        looks at the lock directory and then empties it of the markers of
        an unfinished handoff, empties only the directory it judged
        root's, never the one the symlink leads to (which it once did,
        on most starts).  Each round is one restart."""
        d, path = self.place()
        lock, link = path + ".lock", path + ".moved"
        safe = self.safe[ROOT]
        for i in range(8):
            open(os.path.join(safe, "file%d" % i), "wb").close()
        before = sorted(os.listdir(safe))
        with as_user(NOBODY):
            os.symlink(safe, link)
        swapper = textwrap.dedent("""
            import ctypes
            libc = ctypes.CDLL(None)
            print("swapping", flush=True)
            while True:
                libc.renameat2(-100, %r, -100, %r, 2)
        """) % (os.fsencode(lock), os.fsencode(link))
        for rnd in range(12):
            why = "restart %d" % rnd
            if os.path.islink(lock):
                exchange(lock, link)
            c = Client(self.daemon.socket)
            self.assertEqual(c.call("ACQUIRE", path=path, method="mkdir",
                                    timeout=0).verb, "OK", why)
            self.daemon.kill()
            c.close()
            p = self.spawn(swapper, user="nobody")
            p.stdout.readline()
            self.daemon.start()
            p.kill()
            p.wait()
            p.stdout.close()
            self.assertEqual(sorted(os.listdir(safe)), before, why)
        self.assertServing()

    def swap_while_restarting(self, rounds, hold, check):
        """rounds times: hold() makes a hold of root's in the directory
        d of a world-writable (not sticky) directory; the daemon is
        killed and started again while nobody keeps exchanging d with a
        symlink to root's private directory R; check(R, why) after each
        start.  R holds a file named like the lock's artefact."""
        top, _ = self.place()
        d, link = os.path.join(top, "d"), os.path.join(top, "moved")
        os.mkdir(d)
        os.chmod(d, 0o777)
        r = os.path.join(self.top, "private")
        os.mkdir(r, 0o700)
        os.symlink(r, link)
        os.lchown(link, NOBODY, NOBODY)
        swapper = textwrap.dedent("""
            import ctypes
            libc = ctypes.CDLL(None)
            print("swapping", flush=True)
            while True:
                libc.renameat2(-100, %r, -100, %r, 2)
        """) % (os.fsencode(d), os.fsencode(link))
        for rnd in range(rounds):
            why = "restart %d" % rnd
            if os.path.islink(d):
                exchange(d, link)
            hold(os.path.join(d, "lock"), r)
            self.daemon.kill()
            p = self.spawn(swapper, user="nobody")
            p.stdout.readline()
            self.daemon.start()
            p.kill()
            p.wait()
            p.stdout.close()
            check(r, why)
        self.assertServing()

    def test_directory_swapped_while_a_gone_holders_lock_is_released(self):
        """A pidfile lock of root's whose holder has gone by the restart
        is released at start: the pid file is judged and removed in the
        directory whose identity was checked, never in root's private
        directory that nobody's swap puts at its name in between (which
        lost its file on most starts)."""
        def hold(path, r):
            with open(os.path.join(r, "lock"), "wb") as f:
                f.write(PRECIOUS)
            if os.path.exists(path):
                os.unlink(path)
            h = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
                import socket, time
                s = socket.socket(socket.AF_UNIX)
                s.connect(%r)
                f = s.makefile("rwb", buffering=0)
                f.write(b"HELLO 1 version=1\\n"
                        b"ACQUIRE 2 path=%s method=pidfile\\n")
                f.readline()
                print(f.readline().decode().strip(), flush=True)
                time.sleep(600)
            """) % (self.daemon.socket, path)], stdout=subprocess.PIPE)
            self.procs.append(h)
            self.assertTrue(h.stdout.readline().startswith(b"OK 2"))
            h.kill()
            h.wait()
            h.stdout.close()

        def check(r, why):
            self.assertTrue(os.path.exists(os.path.join(r, "lock")), why)
            with open(os.path.join(r, "lock"), "rb") as f:
                self.assertEqual(f.read(), PRECIOUS, why)
        self.swap_while_restarting(30, hold, check)

    def test_directory_swapped_while_a_successor_is_judged(self):
        """A pidfile lock of root's held by this (live) process; at
        start, the artefact found at its name is not root's (nobody's
        swap put root's private directory there, with a pid file naming
        a dead pid): it is never broken as a dead successor's in a
        directory other than the one whose identity was checked (which
        happened about once in 50 starts)."""
        c = Client(self.daemon.socket)
        self.addCleanup(lambda: c.close())

        def hold(path, r):
            nonlocal c
            with open(os.path.join(r, "lock"), "w") as f:
                f.write("999999\n")
            c.close()
            c = Client(self.daemon.socket)
            # This process's hold, taken back; or, forgotten at the last
            # start, its pid file left (the broker's pidfile locks are
            # never taken over from a file): made anew.
            r = c.call("ACQUIRE", path=path, method="pidfile", timeout=0)
            if r.code == "EALREADY":
                os.unlink(path)
                r = c.call("ACQUIRE", path=path, method="pidfile",
                           timeout=0)
            self.assertEqual(r.verb, "OK", r)

        def check(r, why):
            self.assertTrue(os.path.exists(os.path.join(r, "lock")), why)
        self.swap_while_restarting(250, hold, check)


class MagicLinks(HostileTest):
    """A client swaps a directory of its lock's path for a symbolic link
    through a magic link (/proc/self/cwd, which the kernel resolves in
    the daemon's own /proc) after the grant.  The daemon leaves out the
    magic-link check only where the steps are the holder's own on its own
    hold (a RELEASE without waiters; STATUS and a re-entrant ACQUIRE make
    none): those steps still run as the holder and reach nothing it could
    not reach itself.  Everywhere else the check still refuses."""

    def swap_through_proc(self, d, target):
        """As nobody: moves d away to d + ".real" and puts a symbolic link
        to /proc/self/cwd + target in its place."""
        with as_user(NOBODY):
            os.rename(d, d + ".real")
            os.symlink("/proc/self/cwd" + target, d)

    def unswap(self, d):
        with as_user(NOBODY):
            os.unlink(d)
            os.rename(d + ".real", d)

    def test_own_release_without_waiters_acts_as_the_holder(self):
        # Through the magic link into its own directory: released there.
        d, path = self.place("x")
        c = self.nobody()
        self.assertCode(c.call("ACQUIRE", path=path, timeout=0), "OK")
        self.swap_through_proc(d, d + ".real")
        r = c.call("STATUS", path=path)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["mine"], "1", r)
        self.assertCode(c.call("ACQUIRE", path=path, timeout=0), "OK")
        self.assertCode(c.call("RELEASE", path=path), "OK")
        self.assertOnly(d + ".real", [])
        self.unswap(d)
        # Through it into a directory nobody may not search, where root
        # put files of nobody's at the lock's names: the holder's steps
        # cannot look there, and touch nothing.
        private = os.path.join(self.top, "private")
        os.mkdir(private)
        os.chmod(private, 0o700)
        d, path = self.place("x")
        c = self.nobody()
        self.assertCode(c.call("ACQUIRE", path=path, timeout=0), "OK")
        unique = os.path.basename(unique_name(c.pid, path + ".lock",
                                              "link"))
        self.assertIn(unique, os.listdir(d))
        with open(os.path.join(private, unique), "wb") as f:
            f.write(PRECIOUS)
        os.chown(os.path.join(private, unique), NOBODY, NOBODY)
        os.link(os.path.join(private, unique),
                os.path.join(private, "x.lock"))
        self.swap_through_proc(d, private)
        r = c.call("RELEASE", path=path)
        self.assertEqual(r.verb, "ERR", r)
        self.assertIn("Permission%20denied", r.line, r)
        self.assertEqual(sorted(os.listdir(private)), sorted([unique,
                                                             "x.lock"]))
        with open(os.path.join(private, "x.lock"), "rb") as f:
            self.assertEqual(f.read(), PRECIOUS)
        self.unswap(d)
        self.assertServing()

    @unittest.skipUnless(OPENAT2, "no openat2 under valgrind")
    def test_the_check_still_refuses_others_and_handoffs(self):
        d, path = self.place("x")
        c = self.nobody()
        waiter = self.nobody()
        other = self.nobody()
        self.assertCode(c.call("ACQUIRE", path=path, timeout=0), "OK")
        wid = waiter.send("ACQUIRE", path=path, timeout=30)
        self.assertCode(waiter.call("PING"), "OK")     # queued by now
        self.swap_through_proc(d, d + ".real")
        # With a waiter the RELEASE would hand over: the next holder's
        # steps would follow the link.  Refused, the hold kept.
        r = c.call("RELEASE", path=path)
        self.assertCode(r, "EINVAL")
        self.assertIn("magic%20link", r.line, r)
        self.assertEqual(c.call("STATUS", path=path).fields["mine"], "1")
        # Not the asker's hold: refused as before, for every verb.
        for verb, extra in (("RELEASE", {}), ("STATUS", {}),
                            ("BREAK", {}), ("ACQUIRE", {"timeout": 0})):
            r = other.call(verb, path=path, **extra)
            self.assertCode(r, "EINVAL", verb)
            self.assertIn("magic%20link", r.line, r)
        self.unswap(d)
        self.assertCode(c.call("RELEASE", path=path), "OK")
        self.assertCode(waiter.wait(wid), "OK")
        self.assertCode(waiter.call("RELEASE", path=path), "OK")
        self.assertOnly(d, [])


class Interleaved(HostileTest):
    """The daemon keeps what it knows of its own credentials (its uid and
    gid, read once) and switches for each client's steps: requests of
    root and nobody interleaved on one daemon each act as their own
    user, whatever the user before."""

    def test_two_users_interleaved_act_as_themselves(self):
        private = os.path.join(self.top, "root-only")
        os.mkdir(private)
        os.chmod(private, 0o700)
        d, _ = self.place()
        for method in ("link", "symlink", "mkdir", "pidfile"):
            root_path = os.path.join(d, "root-" + method)
            nobody_path = os.path.join(d, "nobody-" + method)
            secret = os.path.join(private, method)
            r = self.helper(ROOT, "broker", method, root_path)
            n = self.helper(NOBODY, "broker", method, nobody_path)
            ns = self.helper(NOBODY, "broker", method, secret)
            rs = self.helper(ROOT, "broker", method, secret)
            for i in range(3):
                why = "%s, round %d" % (method, i)
                self.assertEqual(r.ask("acquire 0"), "locked", why)
                self.assertEqual(n.ask("acquire 0"), "locked", why)
                self.assertEqual(
                    os.lstat(artefact(root_path, method)).st_uid, ROOT, why)
                self.assertEqual(
                    os.lstat(artefact(nobody_path, method)).st_uid, NOBODY,
                    why)
                # Right after a root request that made a file in the
                # root-only directory, nobody still cannot look there.
                self.assertEqual(rs.ask("acquire 0"), "locked", why)
                self.assertEqual(
                    os.lstat(artefact(secret, method)).st_uid, ROOT, why)
                self.expect(ns.ask("acquire 0"), "LB_EFAILED", why)
                self.assertEqual(rs.ask("release"), "released", why)
                self.expect(ns.ask("acquire 0"), "LB_EFAILED", why)
                self.assertFalse(os.path.lexists(artefact(secret, method)),
                                 why)
                self.assertEqual(n.ask("release"), "released", why)
                self.assertEqual(r.ask("release"), "released", why)
                for p in (root_path, nobody_path):
                    self.assertFalse(os.path.lexists(artefact(p, method)),
                                     why)
            self.assertOnly(d, [])
        self.assertServing()


class KeptSqlite(HostileTest):
    """The daemon keeps its sqlite connections open between steps
    (lockfs/sqlite.c, "Kept connections"): one is used again only for
    the credentials that opened it, while they may still open the
    database so, and only on the file it has open.  Each user gets the
    answers of a daemon that opens the database at every step."""

    def db(self, path):
        return artefact(path, "sqlite")

    def test_sqlite_connection_of_one_user_is_never_another_users(self):
        """root's connection to root's database, which nobody may not
        open (0600), kept by the daemon after root's steps, never answers
        nobody: each of nobody's calls fails as an open fails.  (While
        root holds the lock, the daemon answers from what it holds.)"""
        d, path = self.place()
        r = self.helper(ROOT, "broker", "sqlite", path)
        n = self.helper(NOBODY, "broker", "sqlite", path)
        self.assertEqual(r.ask("acquire 0"), "locked")
        os.chmod(self.db(path), 0o600)
        for i in range(3):
            why = "round %d" % i
            self.assertEqual(r.ask("release"), "released", why)
            self.assertEqual(r.ask("is_locked"), "0", why)
            for command in ("is_locked", "i_am_locking", "acquire 0",
                            "release", "break", "is_locked"):
                answer = n.ask(command)
                self.assertTrue(answer.startswith("error ") and
                                "cannot open" in answer and
                                "Permission denied" in answer,
                                "%s: nobody's %s: %r" % (why, command,
                                                         answer))
            self.assertEqual(r.ask("i_am_locking"), "0", why)
            self.assertEqual(r.ask("acquire 0"), "locked", why)
            self.assertEqual(r.ask("i_am_locking"), "1", why)
        self.assertEqual(r.ask("release"), "released")

    def test_sqlite_kept_connection_follows_the_databases_mode(self):
        """nobody's kept connection to its own database counts a chmod at
        the next step: read-only (0444), acquire fails as it does on a
        database nobody may not write; unreadable (0000), every call
        fails; writable again, acquire succeeds."""
        d, path = self.place()
        n = self.helper(NOBODY, "broker", "sqlite", path)
        self.assertEqual(n.ask("acquire 0"), "locked")
        self.assertEqual(n.ask("release"), "released")
        self.assertEqual(os.lstat(self.db(path)).st_uid, NOBODY)
        os.chmod(self.db(path), 0o444)
        answer = n.ask("acquire 0")
        self.assertTrue(answer.startswith("error ") and
                        "readonly" in answer, answer)
        self.assertEqual(n.ask("is_locked"), "0")
        os.chmod(self.db(path), 0)
        for command in ("is_locked", "acquire 0"):
            answer = n.ask(command)
            self.assertTrue(answer.startswith("error ") and
                            "cannot open" in answer,
                            "%s: %r" % (command, answer))
        os.chmod(self.db(path), 0o644)
        self.assertEqual(n.ask("acquire 0"), "locked")
        self.assertEqual(n.ask("release"), "released")

    def test_sqlite_replaced_database_is_read_anew(self):
        """A database replaced (renamed over) after the daemon kept a
        connection to it is read as the new file: a lock held there is
        seen, and not taken; a database deleted holds no lock."""
        d, path = self.place()
        for uid in VICTIMS:
            why = "uid %d" % uid
            h = self.helper(uid, "broker", "sqlite", path)
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            self.assertEqual(h.ask("release"), "released", why)
            self.assertEqual(h.ask("is_locked"), "0", why)
            new = os.path.join(d, "new.sqlite")
            db = sqlite3.connect(new)
            db.execute("CREATE TABLE locks (lock_file varchar(32), "
                       "unique_name varchar(32))")
            db.execute("INSERT INTO locks VALUES (?, ?)",
                       (path + ".lock", "elsewhere.1"))
            db.commit()
            db.close()
            os.chown(new, uid, uid)
            os.rename(new, self.db(path))
            self.assertEqual(h.ask("is_locked"), "1", why)
            self.expect(h.ask("acquire 0"), "LB_EALREADY", why)
            self.assertEqual(h.holder().get("host"), "elsewhere", why)
            os.unlink(self.db(path))
            self.assertEqual(h.ask("is_locked"), "0", why)
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            self.assertEqual(h.ask("release"), "released", why)
            os.unlink(self.db(path))
        self.assertServing()

    def hot_journal(self, copy, journal):
        """Makes journal a hot rollback journal that puts back the pages
        of copy (a copy of a lock database): a process writes to copy in
        a transaction big enough to spill its pages and dies before it
        commits (as tests/check_lockfs_hostile.c's make_hot_journal)."""
        subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import os, sqlite3, sys
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("PRAGMA cache_size=2")
            db.execute("BEGIN")
            db.execute("DELETE FROM locks")
            for i in range(200):
                db.execute("INSERT INTO locks VALUES (hex(randomblob(500)),"
                           " hex(randomblob(500)))")
            os._exit(0)
            """), copy], check=True)
        os.rename(copy + "-journal", journal)

    def test_sqlite_kept_connection_refuses_a_planted_journal(self):
        """A hot journal another user plants beside a database the daemon
        keeps a connection to (in a sticky directory) is refused at the
        next step as at an open: the step fails naming it, nothing is
        rolled back (the journal stays, the victim's row too)."""
        for uid in VICTIMS:
            why = "uid %d" % uid
            attacker = attacker_of(uid)
            d, path = self.place()
            os.chmod(d, 0o1777)
            h = self.helper(uid, "broker", "sqlite", path)
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            self.assertEqual(h.ask("release"), "released", why)
            copy = os.path.join(self.top, "copy-%d.sqlite" % uid)
            shutil.copyfile(self.db(path), copy)    # no row in it
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            journal = self.db(path) + "-journal"
            self.hot_journal(copy, journal)
            os.chown(journal, attacker, attacker)
            for command in ("release", "acquire 0"):
                answer = h.ask(command)
                self.assertTrue(answer.startswith("error ") and
                                journal in answer and "planted" in answer,
                                "%s: %s: %r" % (why, command, answer))
            self.assertTrue(os.path.exists(journal), why)
            os.unlink(journal)
            self.assertEqual(h.ask("release"), "released", why)
        self.assertServing()

    def test_sqlite_kept_connection_of_a_moved_directory(self):
        """A kept connection writes its journal beside the name the
        database was opened by (its directory resolved then).  The
        victim's lock path goes through its own symlink; it renames the
        directory the link led to and points the link at the new name:
        the lock path still leads to the very database.  The old name of
        the directory is then free, and another user makes it, with a
        database and a hot journal of its own there.  The kept
        connection must not roll that journal back into the victim's
        database (its row would vanish, a second owner get in): the
        victim's release finds its row, and the planted journal
        stays."""
        for uid in VICTIMS:
            why = "uid %d" % uid
            attacker = attacker_of(uid)
            d, _ = self.place()
            old, new = os.path.join(d, "real1"), os.path.join(d, "real2")
            link = os.path.join(d, "link")
            os.mkdir(old)
            os.chown(old, uid, uid)
            os.symlink(old, link)
            os.lchown(link, uid, uid)
            path = os.path.join(link, "lock")
            h = self.helper(uid, "broker", "sqlite", path)
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            self.assertEqual(h.ask("release"), "released", why)
            copy = os.path.join(d, "copy.sqlite")
            shutil.copyfile(self.db(path), copy)    # no row in it
            self.assertEqual(h.ask("acquire 0"), "locked", why)
            os.rename(old, new)             # the victim's own doings
            os.unlink(link)
            os.symlink(new, link)
            os.lchown(link, uid, uid)
            with as_user(attacker):
                os.mkdir(old)
                shutil.copyfile(copy, os.path.join(old,
                                                   ".lockbroker.sqlite"))
            journal = os.path.join(old, ".lockbroker.sqlite-journal")
            self.hot_journal(copy, journal)
            os.chown(journal, attacker, attacker)
            ro = sqlite3.connect("file:%s?mode=ro&immutable=1" %
                                 self.db(path), uri=True)
            self.assertEqual(ro.execute("SELECT count(*) FROM locks")
                             .fetchone()[0], 1, why)
            ro.close()
            self.assertEqual(h.ask("release"), "released", why)
            self.assertTrue(os.path.exists(journal), why)
        self.assertServing()



class TodayReview(HostileTest):
    """Attacks on the day's changes (litter.c, the tidy's sweep of unique
    names, RECLAIM of one's own artefact shared)."""

    def test_tidy_sweep_spares_a_live_pidfile_lock_named_like_litter(self):
        # Attack: the tidy at start (lockfs_handoff_tidy's second pass,
        # tidy_named) removes every regular file of the hold's user with
        # one link whose NAME parses as a unique name of the judged lock
        # (the lock file's hash at its end, a '~') and names a process
        # that is gone.  A pidfile lock's lock file is its path itself: a
        # regular file with one link.  A lock whose path is spelt like a
        # dead process's unique name of another lock in that directory
        # (pid 1 with a wrong start time is "gone") is a live lock, its
        # holder alive (its pid inside), yet the daemon removes it at
        # start: a second process then takes it while the first holds it
        # (two holders), and a file judged by its name alone is removed.
        # What should happen: only the daemon's own litter goes (a file
        # the name of which it made, not another lock's artefact); the
        # pidfile lock stays, and an ACQUIRE of it is refused EALREADY.
        d, p = self.place()
        a = self.client()
        self.assertCode(a.call("ACQUIRE", path=p, method="link"), "OK")
        self.assertEqual(self.daemon.stop(), 0)
        holder = subprocess.Popen([sys.executable, "-c",
                                   "import time; time.sleep(600)"])
        self.procs.append(holder)
        # A unique name of p's lock file, of pid 1 with a start time it
        # never had: "gone" to lockfs_holder_liveness.
        name = unique_name(1, p + ".lock", "link")
        pid, rest = os.path.basename(name).split("~", 1)
        pidlock = os.path.join(d, pid + "~1." + rest.split(".", 1)[1])
        # The pidfile lock, held by a live process (Python's PIDLockFile
        # writes its pid in it).
        with open(pidlock, "w") as f:
            f.write("%d\n" % holder.pid)
        self.daemon.start()
        b = self.client()
        self.assertCode(b.call("PING"), "OK")
        time.sleep(1.5)
        self.assertTrue(os.path.lexists(pidlock),
                        "the daemon removed a live pidfile lock at start "
                        "(its name parsed as a dead process's unique "
                        "name):\n" + self.daemon.logtext()[-2000:])
        self.assertCode(b.call("ACQUIRE", path=pidlock, method="pidfile",
                               timeout=0), "EALREADY")


    def test_one_user_cannot_fill_the_litter_watch_for_all(self):
        # Attack: the watch of unique files left to live processes
        # (daemon/litter.c) is one list for every user, at most 1024
        # (LBD_LITTER_MAX).  User nobody, with a hold recorded over a
        # restart, plants in its own lock's directory 1100 files of its
        # own named as unique names of its lock (one process of its,
        # alive, with 1100 thread ids): the tidy at start leaves each to
        # that live process and watches it, and the list is full.
        # Root's hold (in a directory judged after nobody's) has a next
        # holder's unique file of a live process left by an unfinished
        # handoff (as in
        # daemon.py test_next_holders_unique_file_removed_once_it_is_gone):
        # it is not watched ("out of room") and stays for good once its
        # process is gone.  What should happen: one user's files never
        # take another's room (a bound per user, or the planted names not
        # watched: no handoff of the daemon's made them); root's file is
        # removed within seconds of its process's death.
        d, p = self.place()
        os.chmod(d, 0o755)
        os.chown(d, NOBODY, NOBODY)
        n = self.nobody()
        self.assertCode(n.call("ACQUIRE", path=p, method="link"), "OK")
        r = self.client()
        p2 = self.place("rootlock")[1]
        self.assertCode(r.call("ACQUIRE", path=p2, method="link"), "OK")
        self.assertEqual(self.daemon.stop(), 0)
        filler = subprocess.Popen([sys.executable, "-c",
                                   "import time; time.sleep(600)"])
        self.procs.append(filler)
        # Each with a handoff's temporary naming it: the tidy watches
        # only files a temporary names.
        for tid in range(1, 1101):
            f = unique_name(filler.pid, p + ".lock", "link", tid=tid)
            with open(f, "w"):
                pass
            os.chown(f, NOBODY, NOBODY)
            os.link(f, os.path.join(d, ".lockbroker-handoff." +
                                    os.path.basename(f)))
        nxt = subprocess.Popen([sys.executable, "-c",
                                "import time; time.sleep(600)"])
        self.procs.append(nxt)
        unique = unique_name(nxt.pid, p2 + ".lock", "link")
        with open(unique, "w"):
            pass
        os.link(unique, os.path.join(os.path.dirname(p2),
                                     ".lockbroker-handoff." +
                                     os.path.basename(unique)))
        self.daemon.start()
        time.sleep(2.5)
        self.assertTrue(os.path.lexists(unique))
        nxt.kill()
        nxt.wait()
        deadline = time.monotonic() + 10
        while os.path.lexists(unique) and time.monotonic() < deadline:
            time.sleep(0.1)
        log = self.daemon.logtext()
        self.assertFalse(os.path.lexists(unique),
                         "root's litter left for good, the watch filled "
                         "by nobody's names: " + "\n".join(
                             l for l in log.splitlines()
                             if "rootlock" in l)[-1500:])


    def test_many_planted_unique_names_do_not_stall_the_start(self):
        # Attack: the tidy at start (tidy_named) looks at EVERY entry of a
        # recorded hold's directory that is spelt as a unique name of its
        # lock: an fstatat, a parse, a look at /proc for its process, and
        # for a live one lbd_litter_left (a lockfs_init, and past the
        # watch's 1024 a log line each), with no bound (the readers' scan
        # stops at READERS_DIR_MAX).  User nobody, with a hold recorded
        # over a restart, plants 150000 empty files of its own named after
        # a live process of its (its thread ids varied) in its own lock's
        # directory: the daemon's start, which serves nobody meanwhile
        # (every user's reclaims wait), takes seconds, and grows with the
        # count.  What should happen: the sweep is bounded (as the
        # readers' scan is), and the daemon answers within a second of
        # its start, as it does with the directory empty (0.02 s here).
        d, p = self.place()
        os.chown(d, NOBODY, NOBODY)
        n = self.nobody()
        self.assertCode(n.call("ACQUIRE", path=p, method="link"), "OK")
        self.assertEqual(self.daemon.stop(), 0)
        filler = subprocess.Popen([sys.executable, "-c",
                                   "import time; time.sleep(600)"])
        self.procs.append(filler)
        head, tail = unique_name(filler.pid, p + ".lock", "link",
                                 tid=1).split("-00000001", 1)
        for tid in range(1, 150001):
            fd = os.open("%s-%08x%s" % (head, tid, tail),
                         os.O_CREAT | os.O_WRONLY, 0o644)
            os.fchown(fd, NOBODY, NOBODY)
            os.close(fd)
        t0 = time.monotonic()
        self.daemon.start()
        self.assertServing()
        took = time.monotonic() - t0
        self.assertLess(took, 1.0, "the daemon's start took %.2f s, %d log "
                        "lines" % (took, len(self.daemon.logtext()
                                             .splitlines())))



def unrecorded_handoff_litter_aside(d):
    """The names in d, as "NAME (uid N)", less root's handoff temporaries
    (.lockbroker-handoff.*) and the unique file each links to: what a
    killed handoff to root that was never recorded leaves where the
    recorded holder's tidy may not remove root's files (a sticky
    directory), a known limit (docs/RELIABILITY.md)."""
    prefix = ".lockbroker-handoff."
    out = []
    for e in os.listdir(d):
        try:
            st = os.lstat(os.path.join(d, e))
            if st.st_uid == ROOT and e.startswith(prefix):
                continue
            twin = os.path.join(d, prefix + e)
            if st.st_uid == ROOT and os.path.lexists(twin) and \
                    os.lstat(twin).st_ino == st.st_ino:
                continue
        except FileNotFoundError:
            continue                # gone meanwhile
        out.append("%s (uid %d)" % (e, st.st_uid))
    return sorted(out)


class Session21Review(HostileTest):
    """Attacks on session 21's changes: the link handoff's temporary made
    first (lockfs/handoff.c make_link_pair), the litter watch's timer,
    a canceled upgrade."""

    STOPSTEP = os.path.join(BUILDDIR, "tests", ".libs", "stopstep.so")

    def stopped(self, proc, timeout):
        """True once proc is stopped (state T); False if it is not within
        timeout, or exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            with open("/proc/%d/stat" % proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return True
            time.sleep(0.01)
        return False

    def test_cross_user_handoff_killed_leaves_only_roots_temporary(self):
        # Attack (a crash): a link handoff from user nobody to root in a
        # sticky, world-writable directory (/tmp: allowed, rename_allowed:
        # root may rename over nobody's lock file), the daemon killed
        # after each file-system step of it, and root's waiting process
        # gone while the daemon is down.  7a7dd1f makes the temporary
        # first so that "a daemon killed between the two leaves a
        # temporary the start-up tidy removes".  But the tidy at start
        # (reconcile.c orphan_look -> lockfs_handoff_tidy) runs only for
        # the recorded holds, as their users: here nobody's, the old
        # holder (root's grant was never recorded).  In a sticky
        # directory nobody may not remove root's files, so the unlink of
        # root's .lockbroker-handoff.NAME fails (EPERM), the tidy goes on
        # to the next entry, and root's temporary (killed after the
        # mknod), or root's temporary and its unique file (after the
        # link: never given to the litter watch, as the temporary was
        # not removed), stay for good: nothing else ever looks at them.
        # (Killed after the rename, nobody's old unique file stays too:
        # lockfs_handoff_tidy_from runs only when the old and the new
        # holder are one user.)
        # What should happen: once both processes are gone the lock is
        # free, and nothing is left but root's temporary (and the unique
        # file it links to) of the handoff never recorded: nobody's tidy
        # may not remove them there, and a name alone cannot prove a
        # temporary to be looked at as root (a file of root's named so
        # may be a lock of its: test_restart_tidy_spares_* below), a known
        # limit.  Nobody's old unique file of the finished handoff (its
        # name from the record) goes, looked at as nobody.
        if not os.path.exists(self.STOPSTEP):
            self.skipTest("no " + self.STOPSTEP)
        self.assertEqual(self.daemon.stop(), 0)
        left = {}
        handoff_steps = 0
        for step in range(1, 12):
            d = os.path.join(self.top, "sticky%d" % step)
            os.mkdir(d)
            os.chmod(d, 0o1777)
            p = os.path.join(d, "lk")
            env = dict(os.environ, LD_PRELOAD=self.STOPSTEP,
                       LB_TEST_STOP_STEP=str(step), LB_TEST_STOP_UNDER=d)
            self.daemon = Daemon(self.top, env=env).start()
            n = NobodyClient(self.daemon.socket)
            self.clients.append(n)
            rid = n.send("ACQUIRE", path=p, method="link")
            if self.stopped(self.daemon.proc, 0.5):
                # A step of nobody's grant, not of the handoff.
                self.daemon.kill()
                n.close()
                continue
            self.assertCode(n.wait(rid), "OK")
            w = NobodyClient(self.daemon.socket, uid=ROOT)  # root's waiter
            self.clients.append(w)
            w.send("ACQUIRE", path=p, method="link", timeout=60)
            time.sleep(0.3)                 # queued behind nobody
            n.send("RELEASE", path=p, method="link")
            if not self.stopped(self.daemon.proc, 1.0):
                self.daemon.kill()          # beyond the handoff's steps
                break
            handoff_steps += 1
            self.daemon.kill()
            w.close()                       # root's waiter gone
            self.daemon = Daemon(self.top).start()
            n.close()                       # nobody's process gone
            deadline = time.monotonic() + 5
            while unrecorded_handoff_litter_aside(d) and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            if unrecorded_handoff_litter_aside(d):
                left[step] = unrecorded_handoff_litter_aside(d)
            self.assertEqual(self.daemon.stop(), 0)
        self.daemon = Daemon(self.top).start()  # for tearDown
        self.assertGreaterEqual(handoff_steps, 2)
        self.assertEqual(left, {}, "killed after step N of a handoff from "
                         "nobody to root in a sticky directory, both "
                         "processes gone: left for good beside root's "
                         "unrecorded temporary: %r" % left)

    def test_restart_tidy_spares_another_users_files_and_held_lock(self):
        # Attack (415a109): at start the tidy of a recorded lock's
        # directory, run as its holder, hands every .lockbroker-handoff.*
        # name it may not remove (EPERM: another user's, sticky
        # directory) to the litter watch, which a second later unlinks it
        # as its owner (lockfs_unique_litter: same dev, ino, type and
        # uid; nothing else).  Nothing says the file is a temporary of a
        # handoff: the prefix is an ordinary name (no lock path is
        # refused for it), and the temporary branch does not even look
        # at the link count, so a lock artefact with two links goes too.
        # So user 4242, holding any lock in a shared sticky directory
        # (/tmp, a spool) when the daemon restarts, has nobody's files
        # there whose names begin so removed as nobody: here nobody's
        # held link lock on .lockbroker-handoff.job (taken in-process,
        # lb LOCAL, so no record of nobody's runs a tidy of its own) and
        # a plain file of nobody's.  4242 could remove neither itself;
        # before 415a109 the tidy skipped them.  The lock then no longer
        # excludes: a second process takes it while the first holds it.
        # What should happen: the daemon removes, for a tidy 4242
        # started, nothing 4242 could not remove itself; at most what is
        # provably a temporary of a handoff the previous daemon left.
        d = os.path.join(self.top, "spool")
        os.mkdir(d)
        os.chmod(d, 0o1777)                 # as /tmp: root's, sticky
        job = os.path.join(d, ".lockbroker-handoff.job")
        notes = os.path.join(d, ".lockbroker-handoff.notes")
        with as_user(NOBODY):
            with open(notes, "wb") as f:
                f.write(PRECIOUS)
        victim = self.helper(NOBODY, "local", "link", job)
        self.assertEqual(victim.ask("acquire 0"), "locked")
        self.assertTrue(os.path.exists(job + ".lock"))
        with as_user(ATTACKER):             # not 4242's to remove
            for f in (job + ".lock", notes):
                with self.assertRaises(PermissionError):
                    os.unlink(f)
        a = NobodyClient(self.daemon.socket, uid=ATTACKER)
        self.clients.append(a)
        self.assertCode(a.call("ACQUIRE", path=os.path.join(d, "mine"),
                               method="link"), "OK")
        # The daemon restarts (an upgrade, a crash) while 4242's process
        # lives: its hold is recorded, and its directory tidied as 4242.
        self.daemon.kill()
        self.daemon = Daemon(self.top).start()
        time.sleep(3)                       # the litter watch's looks
        gone = [os.path.basename(f) for f in (job + ".lock", notes)
                if not os.path.exists(f)]
        second = self.helper(NOBODY, "local", "link", job)
        taken = second.ask("try 0")
        self.assertEqual(
            (gone, taken), ([], "LB_EALREADY"),
            "uid 4242's recorded lock in a sticky directory made the "
            "restarted daemon remove, as user nobody, nobody's %r there "
            "(names beginning .lockbroker-handoff.), which 4242 may not "
            "remove; a second process then got nobody's held lock: %r"
            % (gone, taken))
        self.assertEqual(victim.ask("i_am_locking"), "1")

    def test_restart_tidy_spares_pid_file_caught_empty(self):
        # Attack (e8e77cf): the start-up tidy of uid 4242's recorded link
        # lock in a sticky directory hands to the litter watch another
        # user's .lockbroker-handoff.NAME when NAME parses as a link
        # unique name ending in 4242's lock's hash (.HASH) and the file is
        # "alone and empty" (nlink 1, size 0): foreign_tmp's proof that
        # it is a next holder's temporary.  But an empty file with one
        # link is also every pid file in the instant between its
        # exclusive creation and the write of its pid: Python's lockfile
        # PIDLockFile (which lockbroker's pidfile method is compatible
        # with) always writes in place, and so does lockfs itself where
        # O_TMPFILE is missing (pidfile.c, create_linked).  And the
        # watch's later look (lockfs_unique_litter, temporary branch)
        # checks only dev, ino, type and uid: not the size, not the
        # links.  So a pid lock of nobody's whose name 4242 chose
        # (.lockbroker-handoff.job.1~1.0.HASH, HASH 4242's own lock's;
        # no collision needed), caught empty by the tidy of a restart,
        # is removed as nobody a second later, written and held: a
        # second process then takes nobody's held lock (exclusion lost).
        # The instant is stretched here (the creator stops between its
        # open and its write), as a preempted process stretches it.
        # What should happen: the watch removes only what is still
        # provably a handoff's temporary; never a pid file that names a
        # process, nor anything 4242 could not remove itself.
        d = os.path.join(self.top, "spool2")
        os.mkdir(d)
        os.chmod(d, 0o1777)                 # as /tmp: root's, sticky
        mine = os.path.join(d, "mine")
        a = NobodyClient(self.daemon.socket, uid=ATTACKER)
        self.clients.append(a)
        self.assertCode(a.call("ACQUIRE", path=mine, method="link"), "OK")
        job = os.path.join(d, ".lockbroker-handoff.job.1~1.0.%08x" %
                           fnv1a(mine + ".lock"))
        script = textwrap.dedent("""
            import os, sys
            from lockfile import pidlockfile
            fdopen = os.fdopen
            def stretched(fd, *a, **k):     # between create and write
                print("created", flush=True)
                sys.stdin.readline()
                return fdopen(fd, *a, **k)
            os.fdopen = stretched
            lk = pidlockfile.PIDLockFile(sys.argv[1], timeout=0)
            lk.acquire()
            print("locked", flush=True)
            sys.stdin.readline()
            print(int(lk.i_am_locking()), flush=True)
        """)

        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        try:
            import lockfile  # noqa: F401
        except ImportError:
            self.skipTest("no Python lockfile")
        v = subprocess.Popen([sys.executable, "-c", script, job],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             preexec_fn=demote, text=True)
        try:
            self.assertEqual(v.stdout.readline().strip(), "created")
            # The daemon restarts (an upgrade, a crash) in that instant:
            # 4242's hold is recorded, its directory tidied as 4242.
            self.daemon.kill()
            self.daemon = Daemon(self.top).start()
            time.sleep(0.3)
            v.stdin.write("\n")
            v.stdin.flush()
            self.assertEqual(v.stdout.readline().strip(), "locked")
            time.sleep(3)                   # the litter watch's looks
            there = os.path.exists(job)
            second = self.helper(NOBODY, "local", "pidfile", job)
            taken = second.ask("try 0")
            v.stdin.write("\n")
            v.stdin.flush()
            still = v.stdout.readline().strip()
        finally:
            v.kill()
            v.wait()
            v.stdin.close()
            v.stdout.close()
        self.assertEqual(
            (there, taken, still), (True, "LB_EALREADY", "1"),
            "uid 4242's recorded lock in a sticky directory made the "
            "restarted daemon remove, as user nobody, nobody's pid file "
            "%s (caught empty between its creation and its write, then "
            "written and held); a second process then got nobody's held "
            "lock: exists %r, second's try %r, first still holds %r"
            % (os.path.basename(job), there, taken, still))

    def test_planted_links_do_not_exhaust_roots_litter_watch(self):
        # Attack (415a109): the litter watch keeps at most 64 files of one
        # owner uid (LBD_LITTER_PER_UID), now counted by the FILE's owner,
        # not by the user whose tidy found it.  User 4242 makes root's
        # files appear: hard links to a file of root's it may link (here
        # one it can read and write, which protected_hardlinks allows;
        # with protected_hardlinks=0 any file of root's on the same file
        # system, /etc/passwd when /tmp is on /), named
        # .lockbroker-handoff.pN in a sticky directory where it holds a
        # lock.  At the next start its hold's tidy, as 4242, may not
        # remove them (EPERM) and hands all 64 to the watch as root's,
        # filling root's share before the records after it are tidied.
        # So the temporary (and unique file) of a killed handoff from
        # nobody to root, which 415a109 makes the watch remove, is "too
        # many watched" and left for good, as before 415a109 (the same
        # kills as test_cross_user_handoff_killed_leaves_nothing, which
        # passes without the planted links).
        # What should happen: one user's doing cannot use up another
        # user's share of the watch; root's leftovers are removed.
        if not os.path.exists(self.STOPSTEP):
            self.skipTest("no " + self.STOPSTEP)
        self.assertEqual(self.daemon.stop(), 0)
        left = {}
        handoff_steps = 0
        for step in range(1, 12):
            d = os.path.join(self.top, "sticky%d" % step)
            a = os.path.join(self.top, "attack%d" % step)
            for x in (d, a):
                os.mkdir(x)
                os.chmod(x, 0o1777)
            rootfile = os.path.join(a, "shared-log")
            with open(rootfile, "wb") as f:
                f.write(PRECIOUS)
            os.chmod(rootfile, 0o666)           # root's, writable by all
            p = os.path.join(d, "lk")
            env = dict(os.environ, LD_PRELOAD=self.STOPSTEP,
                       LB_TEST_STOP_STEP=str(step), LB_TEST_STOP_UNDER=d)
            self.daemon = Daemon(self.top, env=env).start()
            att = NobodyClient(self.daemon.socket, uid=ATTACKER)
            self.clients.append(att)
            self.assertCode(att.call("ACQUIRE", path=os.path.join(a, "mine"),
                                     method="link"), "OK")
            with as_user(ATTACKER):
                for i in range(64):
                    os.link(rootfile, os.path.join(
                        a, ".lockbroker-handoff.p%d" % i))
            n = NobodyClient(self.daemon.socket)
            self.clients.append(n)
            rid = n.send("ACQUIRE", path=p, method="link")
            if self.stopped(self.daemon.proc, 0.5):
                self.daemon.kill()              # a step of nobody's grant
                n.close()
                att.close()
                continue
            self.assertCode(n.wait(rid), "OK")
            w = NobodyClient(self.daemon.socket, uid=ROOT)  # root's waiter
            self.clients.append(w)
            w.send("ACQUIRE", path=p, method="link", timeout=60)
            time.sleep(0.3)                     # queued behind nobody
            n.send("RELEASE", path=p, method="link")
            if not self.stopped(self.daemon.proc, 1.0):
                self.daemon.kill()              # beyond the handoff's steps
                att.close()
                break
            handoff_steps += 1
            self.daemon.kill()
            w.close()                           # root's waiter gone
            self.daemon = Daemon(self.top).start()
            n.close()                           # nobody's process gone
            deadline = time.monotonic() + 5
            while unrecorded_handoff_litter_aside(d) and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            if unrecorded_handoff_litter_aside(d):
                left[step] = unrecorded_handoff_litter_aside(d)
            att.close()
            self.assertEqual(self.daemon.stop(), 0)
        self.daemon = Daemon(self.top).start()  # for tearDown
        self.assertGreaterEqual(handoff_steps, 2)
        self.assertEqual(left, {}, "user 4242's 64 links to a file of "
                         "root's, planted where it holds a lock, filled "
                         "root's share of the litter watch at start: a "
                         "killed handoff from nobody to root, both "
                         "processes gone and the lock free, left for "
                         "good: %r" % left)


if __name__ == "__main__":
    unittest.main(verbosity=2)
