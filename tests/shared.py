"""shared.py: shared (reader) locks through lockbrokerd (docs/SHARED.md),
over its real socket.

Each test starts the built daemon in a private directory and speaks the
wire protocol, version 2, to it; a version-1 client beside it must see
what it always saw.  Python's lockfile is the outside party that must see
a lock held while any reader holds it.
"""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import (NOBODY, PYTHON, Daemon, DaemonCase,  # noqa: E402
                      boot_id8, start_time, unique_name)

ROOT = os.geteuid() == 0


class SharedCase(DaemonCase):
    prefix = "lbshared."

    def v2(self, nobody=False):
        """A version-2 session (of user nobody's when asked)."""
        c = self.nobody(hello=False) if nobody else self.client(hello=False)
        r = c.call("HELLO", version=2)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["version"], "2")
        return c

    def reply_within(self, c, rid, seconds):
        """c's reply to rid when it comes within seconds, else None."""
        try:
            return c.wait(rid, seconds)
        except (TimeoutError, socket.timeout):
            return None

    def queued(self, c, verb, **fields):
        """Sends a request that must wait, and returns its id once the
        daemon has read it (a PING after it on c answered first)."""
        rid = c.send(verb, **fields)
        self.assertCode(c.call("PING"), "OK")
        return rid

    def list_items(self, c):
        """The ITEMs of a LIST, once its OK says how many."""
        rid = c.send("LIST")
        items = []
        while True:
            r = c.wait(rid)
            if r.verb != "ITEM":
                break
            items.append(r)
        self.assertCode(r, "OK")
        self.assertEqual(int(r.fields["count"]), len(items))
        return items

    def restart(self, *clients, grace=None):
        """The daemon killed (its clients' connections closed) and
        started again, with grace seconds of grace period when given."""
        self.daemon.stop(signal.SIGKILL)
        for c in clients:
            c.close()
        if grace is not None:
            self.daemon = Daemon(self.dir, config="grace = %d\n" % grace)
        self.daemon.start()

    def within(self, what, seconds=10):
        """Whether what() becomes true within seconds."""
        deadline = time.monotonic() + seconds
        while not what() and time.monotonic() < deadline:
            time.sleep(0.05)
        return what()

    def signs(self, d=None):
        """The readers' signs in d (self.locks)."""
        return sorted(f for f in os.listdir(d or self.locks)
                      if f.endswith(".lock.readers"))

    def markers(self, d=None):
        """The readers' markers in d (self.locks)."""
        return sorted(f for f in os.listdir(d or self.locks)
                      if ".lock.reader." in f)

    def status(self, c, p, **kw):
        r = c.call("STATUS", path=p, **kw)
        self.assertCode(r, "OK")
        return r.fields

    def python_sees_held(self, p, method="link"):
        """Whether Python's lockfile finds p held (is_locked, and an
        acquire with timeout 0 refused)."""
        cls = {"link": "linklockfile.LinkLockFile",
               "mkdir": "mkdirlockfile.MkdirLockFile",
               "symlink": "symlinklockfile.SymlinkLockFile",
               "pidfile": "pidlockfile.PIDLockFile"}[method]
        mod, name = cls.split(".")
        out = subprocess.run(
            [PYTHON, "-c", textwrap.dedent("""
                import sys
                from lockfile.%s import %s as L
                from lockfile import AlreadyLocked
                l = L(sys.argv[1])
                try:
                    l.acquire(timeout=0)
                except AlreadyLocked:
                    print("held" if l.is_locked() else "refused, free")
                else:
                    l.release()
                    print("free")
                """ % (mod, name)), p], capture_output=True, text=True,
            timeout=60)
        self.assertIn(out.stdout.strip(), ("held", "free"), out.stderr)
        return out.stdout.strip() == "held"

    def reader_process(self, p):
        """A child process that holds p shared over its own connection;
        returned once it holds it (killed after the test)."""
        proc = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        self.assertEqual(proc.stdout.readline(), b"OK\n")
        return proc


class Session(SharedCase):
    def test_versions(self):
        c = self.client(hello=False)
        self.assertCode(c.call("HELLO", version=4), "EVERSION")
        self.assertCode(c.call("HELLO", version=0), "EVERSION")
        r = c.call("HELLO", version=2)
        self.assertEqual(r.fields["version"], "2")
        old = self.client()                     # HELLO version=1
        p = self.path()
        self.assertCode(old.call("ACQUIRE", path=p, mode="shared"),
                        "EINVAL")
        self.assertCode(old.call("UPGRADE", path=p), "EVERB")
        self.assertCode(old.call("DOWNGRADE", path=p), "EVERB")

    def test_bad_mode(self):
        c = self.v2()
        p = self.path()
        self.assertCode(c.call("ACQUIRE", path=p, mode="read"), "EINVAL")
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared",
                               method="sqlite"), "EINVAL")
        self.assertCode(c.call("STATUS", path=p), "OK")
        self.assertFalse(os.path.exists(p + ".lock"))


class Readers(SharedCase):
    def test_many_readers_hold_at_once(self):
        p = self.path()
        cs = [self.v2() for _ in range(5)]
        tokens = set()
        for c in cs:
            r = c.call("ACQUIRE", path=p, mode="shared", timeout=0)
            self.assertCode(r, "OK")
            tokens.add(r.fields["token"])
        self.assertEqual(len(tokens), 1, "one read, one token")
        st = self.status(cs[4], p)
        self.assertEqual((st["locked"], st["mine"], st["mode"],
                          st["holders"]), ("1", "1", "shared", "5"))
        self.assertTrue(os.path.exists(p + ".lock"))
        self.assertTrue(self.python_sees_held(p))
        # LIST: one ITEM per holder, each shared.
        items = self.list_items(cs[0])
        self.assertEqual([i.fields["mode"] for i in items], ["shared"] * 5)
        # Re-entrant: the same token at once; one RELEASE frees it.
        self.assertEqual(cs[2].call("ACQUIRE", path=p, mode="shared")
                         .fields["token"], tokens.pop())
        for i, c in enumerate(cs):
            self.assertCode(c.call("RELEASE", path=p), "OK")
            self.assertCode(c.call("RELEASE", path=p), "ENOTLOCKED"
                            if i == 4 else "ENOTMINE")
            self.assertEqual(os.path.exists(p + ".lock"), i < 4)
        self.assertFalse(self.python_sees_held(p))
        self.assertEqual(os.listdir(self.locks), [])

    def test_every_method_keeps_its_artefact(self):
        for method in ("link", "symlink", "mkdir", "pidfile"):
            p = self.path(method)
            a, b = self.v2(), self.v2()
            self.assertCode(a.call("ACQUIRE", path=p, method=method,
                                   mode="shared"), "OK")
            self.assertCode(b.call("ACQUIRE", path=p, method=method,
                                   mode="shared", timeout=0), "OK")
            self.assertTrue(self.python_sees_held(p, method), method)
            self.assertCode(a.call("RELEASE", path=p, method=method), "OK")
            self.assertTrue(self.python_sees_held(p, method), method)
            self.assertCode(b.call("RELEASE", path=p, method=method), "OK")
            self.assertFalse(self.python_sees_held(p, method), method)
            a.close()
            b.close()

    def test_writer_and_readers_exclude_each_other(self):
        p = self.path()
        r1, r2, w = self.v2(), self.v2(), self.v2()
        self.assertCode(r1.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY")
        self.assertCode(w.call("ACQUIRE", path=p, mode="exclusive",
                               timeout=0), "EALREADY")
        self.assertCode(r1.call("RELEASE", path=p), "OK")
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "OK")
        self.assertEqual(self.status(w, p)["mode"], "exclusive")
        self.assertCode(r2.call("ACQUIRE", path=p, mode="shared",
                                timeout=0), "EALREADY")
        # A version-1 client sees it held, exclusive or shared.
        old = self.client()
        self.assertCode(old.call("ACQUIRE", path=p, timeout=0), "EALREADY")
        self.assertCode(w.call("RELEASE", path=p), "OK")
        self.assertCode(r2.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(old.call("ACQUIRE", path=p, timeout=0), "EALREADY")

    def test_queued_writer_stops_later_readers(self):
        p = self.path()
        r1, w, r2 = self.v2(), self.v2(), self.v2()
        self.assertCode(r1.call("ACQUIRE", path=p, mode="shared"), "OK")
        wid = self.queued(w, "ACQUIRE", path=p)
        self.assertEqual(self.status(r1, p)["waiters"], "1")
        # No jumping ahead of the writer, not even with timeout 0.
        self.assertCode(r2.call("ACQUIRE", path=p, mode="shared",
                                timeout=0), "EALREADY")
        r2id = self.queued(r2, "ACQUIRE", path=p, mode="shared")
        self.assertEqual(self.status(r1, p)["waiters"], "2")
        self.assertCode(r1.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(wid), "OK")
        self.assertIsNone(self.reply_within(r2, r2id, 0.3))
        self.assertCode(w.call("RELEASE", path=p), "OK")
        self.assertCode(r2.wait(r2id), "OK")
        self.assertEqual(self.status(r2, p)["mode"], "shared")

    def test_consecutive_readers_granted_together(self):
        p = self.path()
        w1 = self.v2()
        self.assertCode(w1.call("ACQUIRE", path=p), "OK")
        rs = [self.v2() for _ in range(3)]
        rids = [self.queued(r, "ACQUIRE", path=p, mode="shared")
                for r in rs]
        w2 = self.v2()
        w2id = self.queued(w2, "ACQUIRE", path=p)
        r4 = self.v2()
        r4id = self.queued(r4, "ACQUIRE", path=p, mode="shared")
        self.assertEqual(self.status(w1, p)["waiters"], "5")
        self.assertCode(w1.call("RELEASE", path=p), "OK")
        for r, rid in zip(rs, rids):
            self.assertCode(r.wait(rid), "OK")
        st = self.status(rs[0], p)
        self.assertEqual((st["mode"], st["holders"], st["waiters"]),
                         ("shared", "3", "2"))
        self.assertIsNone(self.reply_within(w2, w2id, 0.3))
        self.assertIsNone(self.reply_within(r4, r4id, 0.1))
        for r in rs:
            self.assertCode(r.call("RELEASE", path=p), "OK")
        self.assertCode(w2.wait(w2id), "OK")
        self.assertIsNone(self.reply_within(r4, r4id, 0.3))
        self.assertCode(w2.call("RELEASE", path=p), "OK")
        self.assertCode(r4.wait(r4id), "OK")

    def test_writer_timing_out_lets_readers_in(self):
        p = self.path()
        r1, w, r2 = self.v2(), self.v2(), self.v2()
        self.assertCode(r1.call("ACQUIRE", path=p, mode="shared"), "OK")
        wid = w.send("ACQUIRE", path=p, timeout=0.2)
        r2id = r2.send("ACQUIRE", path=p, mode="shared")
        self.assertCode(w.wait(wid), "ETIMEOUT")
        self.assertCode(r2.wait(r2id), "OK")
        self.assertEqual(self.status(r1, p)["holders"], "2")

    def test_crash_of_every_reader_frees_the_lock(self):
        p = self.path()
        procs = [self.reader_process(p) for _ in range(3)]
        c = self.v2()
        st = self.status(c, p)
        self.assertEqual((st["mode"], st["holders"]), ("shared", "3"))
        wid = self.queued(c, "ACQUIRE", path=p)
        for i, proc in enumerate(procs):
            proc.kill()
            proc.wait()
            self.assertTrue(self.python_sees_held(p) or i == 2)
        self.assertCode(c.wait(wid), "OK")
        st = self.status(c, p)
        self.assertEqual((st["mode"], st["holders"], st["holder_pid"]),
                         ("exclusive", "1", str(os.getpid())))

    def test_artefact_handed_to_a_live_reader(self):
        p = self.path()
        first = self.reader_process(p)
        c = self.v2()
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(self.status(c, p)["holder_pid"], str(first.pid))
        first.kill()
        first.wait()
        # The artefact now names the reader left, never the dead one.
        for _ in range(200):
            st = self.status(c, p)
            if st["holder_pid"] == str(os.getpid()):
                break
        self.assertEqual((st["holder_pid"], st["holders"], st["mine"]),
                         (str(os.getpid()), "1", "1"))
        self.assertTrue(self.python_sees_held(p))
        self.assertEqual(os.stat(p + ".lock").st_nlink, 2)
        uniq = [f for f in os.listdir(self.locks) if f != "a.lock"]
        self.assertEqual(len(uniq), 1)      # the dead reader's: gone
        self.assertIn(".%d" % os.getpid(), uniq[0])
        self.assertEqual(os.stat(os.path.join(self.locks, uniq[0])).st_ino,
                         os.stat(p + ".lock").st_ino)
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_closing_a_rider_ends_it(self):
        p = self.path()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        b.close()
        for _ in range(200):
            if self.status(a, p)["holders"] == "1":
                break
        self.assertEqual(self.status(a, p)["holders"], "1")
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "OK")


class UpgradeDowngrade(SharedCase):
    def test_upgrade_alone_is_at_once(self):
        p = self.path()
        a, b = self.v2(), self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        r = a.call("UPGRADE", path=p, timeout=0)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["token"], tok)
        self.assertEqual(self.status(a, p)["mode"], "exclusive")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared",
                               timeout=0), "EALREADY")
        self.assertCode(a.call("UPGRADE", path=p), "OK")    # already
        self.assertCode(b.call("UPGRADE", path=p), "ENOTMINE")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(b.call("UPGRADE", path=p), "ENOTLOCKED")

    def test_upgrade_waits_for_the_other_readers(self):
        p = self.path()
        a, b, c = self.v2(), self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "EALREADY")
        uid = self.queued(a, "UPGRADE", path=p)
        self.assertIsNone(self.reply_within(a, uid, 0.3))
        # The classic upgrade deadlock: refused, not left to wait
        # (docs/DEADLOCK.md).
        r = b.call("UPGRADE", path=p)
        self.assertCode(r, "EDEADLK")
        self.assertIn("would deadlock", r.fields["message"])
        # Readers that come now wait behind the upgrade.
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared",
                               timeout=0), "EALREADY")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(a.wait(uid), "OK")
        st = self.status(a, p)
        self.assertEqual((st["mode"], st["holders"]), ("exclusive", "1"))

    def test_upgrade_by_a_rider_takes_the_artefact(self):
        p = self.path()
        first = self.reader_process(p)
        a = self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        uid = self.queued(a, "UPGRADE", path=p)
        w = self.v2()
        wid = self.queued(w, "ACQUIRE", path=p)
        first.kill()
        first.wait()
        self.assertCode(a.wait(uid), "OK")
        st = self.status(a, p)
        self.assertEqual((st["mode"], st["holder_pid"], st["waiters"]),
                         ("exclusive", str(os.getpid()), "1"))
        self.assertIsNone(self.reply_within(w, wid, 0.2))
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(wid), "OK")

    def test_upgrade_canceled_and_released(self):
        p = self.path()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        uid = self.queued(a, "UPGRADE", path=p)
        got = []
        self.assertCode(a.wait(a.send("CANCEL", target=int(uid)),
                               others=got), "OK")
        self.assertEqual([(r.id, r.code) for r in got], [(uid, "ECANCELED")])
        self.assertEqual(self.status(a, p)["holders"], "2")
        uid = b.send("UPGRADE", path=p, timeout=0.2)
        self.assertCode(b.wait(uid), "ETIMEOUT")
        self.assertEqual(self.status(b, p)["mode"], "shared")
        uid = self.queued(b, "UPGRADE", path=p)
        got = []
        self.assertCode(b.wait(b.send("RELEASE", path=p), others=got), "OK")
        self.assertEqual([(r.id, r.code) for r in got], [(uid, "ECANCELED")])
        self.assertEqual(self.status(a, p)["holders"], "1")

    def test_downgrade_wakes_the_readers_behind(self):
        p = self.path()
        w = self.v2()
        tok = w.call("ACQUIRE", path=p).fields["token"]
        rs = [self.v2() for _ in range(2)]
        rids = [self.queued(r, "ACQUIRE", path=p, mode="shared")
                for r in rs]
        w2 = self.v2()
        w2id = self.queued(w2, "ACQUIRE", path=p)
        r = w.call("DOWNGRADE", path=p)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["token"], tok)
        for c, rid in zip(rs, rids):
            self.assertEqual(c.wait(rid).fields["token"], tok)
        st = self.status(w, p)
        self.assertEqual((st["mode"], st["holders"], st["waiters"]),
                         ("shared", "3", "1"))
        self.assertCode(rs[0].call("DOWNGRADE", path=p), "OK")  # shared
        self.assertIsNone(self.reply_within(w2, w2id, 0.2))
        for c in [w] + rs:
            self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertCode(w2.wait(w2id), "OK")


class OtherUsers(SharedCase):
    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_rider_of_another_user_takes_the_artefact_as_itself(self):
        d = os.path.join(self.dir, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        p = os.path.join(d, "x")
        me = self.v2()
        them = self.v2(nobody=True)
        self.assertCode(me.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(them.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(os.stat(p + ".lock").st_uid, 0)
        self.assertCode(me.call("RELEASE", path=p), "OK")
        # Never kept on another user's file: it is nobody's own now.
        st = os.stat(p + ".lock")
        self.assertEqual(st.st_uid, NOBODY)
        self.assertEqual(self.status(them, p)["holder_uid"], str(NOBODY))
        self.assertTrue(self.python_sees_held(p))
        self.assertCode(them.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(d), [])

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_reader_that_cannot_take_the_artefact_is_refused(self):
        p = self.path()                 # root's 0755 directory
        me = self.v2()
        them = self.v2(nobody=True)
        self.assertCode(me.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = them.call("ACQUIRE", path=p, mode="shared", timeout=0)
        self.assertCode(r, "EFAILED")
        self.assertIn("cannot make and remove names", r.fields["message"])
        self.assertEqual(self.status(me, p)["holders"], "1")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_rider_whose_handoff_fails_is_told_at_once(self):
        # The directory changed since the rider joined: it may not make
        # its own artefact there any more, so it cannot take the lock
        # over.  It is told at once (LOST, with no request of its own),
        # and the writer behind is granted.
        d = os.path.join(self.dir, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        p = os.path.join(d, "x")
        me, w = self.v2(), self.v2()
        them = self.v2(nobody=True)
        self.assertCode(me.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(them.call("ACQUIRE", path=p, mode="shared"), "OK")
        rw = self.queued(w, "ACQUIRE", path=p, timeout=60)
        os.chmod(d, 0o755)
        self.assertCode(me.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(rw, 30), "OK")
        lost = them.read(30)
        self.assertEqual((lost.verb, lost.id), ("LOST", "-"))
        self.assertEqual(lost.fields["path"], p)
        self.assertEqual(lost.fields["method"], "link")
        self.assertIn("could not be handed to it", lost.fields["message"])
        st = self.status(them, p)
        self.assertEqual((st["mine"], st["holder_pid"]),
                         ("0", str(os.getpid())))

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_mkdir_shared_within_one_user(self):
        d = self.shared()
        p = os.path.join(d, "m")
        me = self.v2()
        them = self.v2(nobody=True)
        self.assertCode(me.call("ACQUIRE", path=p, method="mkdir",
                                mode="shared"), "OK")
        r = them.call("ACQUIRE", path=p, method="mkdir", mode="shared",
                      timeout=0)
        self.assertCode(r, "EFAILED")
        self.assertIn("within one user", r.fields["message"])


    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_sticky_directory_shared_within_one_user(self):
        d = self.shared()               # 1777, root's
        p = os.path.join(d, "s")
        me = self.v2()
        them = self.v2(nobody=True)
        self.assertCode(them.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = me.call("ACQUIRE", path=p, mode="shared", timeout=0)
        self.assertCode(r, "EFAILED")
        self.assertIn("sticky", r.fields["message"])
        other = self.v2(nobody=True)
        self.assertCode(other.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(them.call("RELEASE", path=p), "OK")
        self.assertEqual(self.status(other, p)["holder_pid"],
                         str(other.pid))
        self.assertEqual(os.stat(p + ".lock").st_uid, NOBODY)


class ModeOfAnOwner(SharedCase):
    def test_exclusive_acquire_of_a_shared_hold_is_refused(self):
        # An owner that holds the lock shared and asks for it exclusive
        # is refused, pointing to UPGRADE: an OK would let it believe it
        # writes alone while the other readers read.
        p = self.path()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        for c in (a, b):        # the artefact's reader, then a rider
            for kw in ({}, {"mode": "exclusive"}):
                r = c.call("ACQUIRE", path=p, timeout=0, **kw)
                self.assertCode(r, "EFAILED")
                self.assertIn("held shared by this owner",
                              r.fields["message"])
                self.assertIn("UPGRADE", r.fields["message"])
            self.assertCode(c.call("ACQUIRE", path=p, mode="shared"), "OK")
        st = self.status(a, p)
        self.assertEqual((st["mode"], st["holders"]), ("shared", "2"))


class Bounds(SharedCase):
    def restart_with(self, config):
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config=config).start()

    def test_riders_per_lock_bounded(self):
        self.restart_with("readers_per_lock = 2\n")
        p = self.path()
        cs = [self.v2() for _ in range(4)]
        for c in cs[:3]:
            self.assertCode(c.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = cs[3].call("ACQUIRE", path=p, mode="shared", timeout=0)
        self.assertCode(r, "ELIMIT")
        self.assertIn("readers_per_lock", r.fields["message"])
        self.assertEqual(self.status(cs[0], p)["holders"], "3")
        # A reader that reached the head of the queue is never refused:
        # it waits for a reader to go.
        self.assertCode(cs[1].call("RELEASE", path=p), "OK")
        self.assertCode(cs[2].call("RELEASE", path=p), "OK")
        self.assertCode(cs[0].call("UPGRADE", path=p), "OK")
        rids = [self.queued(c, "ACQUIRE", path=p, mode="shared", timeout=60)
                for c in cs[1:]]
        self.assertCode(cs[0].call("DOWNGRADE", path=p), "OK")
        self.assertCode(cs[1].wait(rids[0], 30), "OK")
        self.assertCode(cs[2].wait(rids[1], 30), "OK")
        self.assertIsNone(self.reply_within(cs[3], rids[2], 1.0))
        self.assertCode(cs[1].call("RELEASE", path=p), "OK")
        self.assertCode(cs[3].wait(rids[2], 30), "OK")
        self.assertEqual(self.status(cs[0], p)["holders"], "3")

    def test_list_of_many_riders_within_the_output_limit(self):
        # LIST sends a lock's ITEMs together: the riders a lock may have
        # are what half of output_per_conn has room for, and a LIST of
        # them all, each with a long path, comes whole.
        self.restart_with("output_per_conn = 65536\nconns_per_uid = 64\n")
        d = os.path.join(self.dir, "d" * 200, "e" * 200)
        os.makedirs(d)
        p = os.path.join(d, "%" * 200)
        cs = [self.v2() for _ in range(5)]
        codes = [c.call("ACQUIRE", path=p, mode="shared", timeout=0).code
                 for c in cs]
        self.assertEqual(codes, ["OK"] * 4 + ["ELIMIT"])
        items = self.list_items(cs[0])
        self.assertEqual(len(items), 4)
        self.assertEqual({i.fields["mode"] for i in items}, {"shared"})
        self.assertEqual({i.fields["path"] for i in items}, {p})


class VersionOne(SharedCase):
    def test_version_1_client_unchanged(self):
        p = self.path()
        old = self.client()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = old.call("STATUS", path=p)
        self.assertEqual(r.fields["locked"], "1")
        self.assertNotIn("mode", r.fields)
        self.assertNotIn("holders", r.fields)
        items = self.list_items(old)
        self.assertEqual(len(items), 1)
        self.assertNotIn("mode", items[0].fields)
        wid = self.queued(old, "ACQUIRE", path=p)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertIsNone(self.reply_within(old, wid, 0.2))
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(old.wait(wid), "OK")
        r = old.call("STATUS", path=p)
        self.assertEqual((r.fields["mine"], r.fields["holders"] if
                          "holders" in r.fields else None), ("1", None))
        self.assertCode(old.call("RELEASE", path=p), "OK")


class Command(SharedCase):
    def lockbroker(self, *args):
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        return subprocess.run(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker")] + list(args),
            capture_output=True, text=True, env=env, timeout=60)

    def test_lock_shared(self):
        p = self.path()
        a = self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = self.lockbroker("lock", "-s", "-n", p, "--", "sh", "-c",
                            "test -e %s.lock" % p)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.lockbroker("lock", "--shared", "-x", "-n", p, "--", "true")
        self.assertEqual(r.returncode, 1, r.stderr)
        r = self.lockbroker("lock", "-s", "-n", "--local", p, "--", "true")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("shared locks need the daemon", r.stderr)
        self.assertEqual(self.status(a, p)["holders"], "1")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        r = self.lockbroker("lock", "-n", p, "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)


class WithoutTheDaemon(SharedCase):
    def break_stale(self, p):
        """lockbroker break --stale p, in-process (no daemon answers)."""
        return subprocess.run(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker"), "break", "--stale",
             "--local", p], capture_output=True, text=True, timeout=60)

    def test_dead_first_reader_with_live_riders_is_not_stale(self):
        # The artefact names the first reader; the riders' own trace is
        # a marker each beside the lock file.  With the daemon gone and
        # the first reader dead, the lock is not stale while a rider
        # lives; once every reader is dead, it is.
        p = self.path()
        first = self.reader_process(p)
        rider = self.reader_process(p)
        marks = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.assertEqual(len(marks), 1)
        self.assertTrue(marks[0].startswith("a.lock.reader.%d." % rider.pid),
                        marks)
        self.daemon.stop(signal.SIGKILL)
        first.kill()
        first.wait()
        self.break_stale(p)
        self.assertTrue(os.path.exists(p + ".lock"))
        self.assertTrue(self.python_sees_held(p))
        rider.kill()
        rider.wait()
        r = self.break_stale(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"))
        self.daemon.start()

    def test_marker_goes_with_the_rider(self):
        p = self.path()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(len([f for f in os.listdir(self.locks)
                              if ".reader." in f]), 1)
        # The artefact handed to the rider: its marker goes with it.
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual([f for f in os.listdir(self.locks)
                          if ".reader." in f], [])
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])


class Sign(SharedCase):
    """The readers' sign, LOCKFILE.readers: a judge without the daemon
    looks for readers' markers only while it lies beside the lock file
    (docs/SHARED.md)."""

    lockbroker_cli = WithoutTheDaemon.break_stale

    def test_sign_comes_with_the_first_rider_and_goes_with_the_last(self):
        p = self.path()
        a, b, c = self.v2(), self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(self.signs(), [], "no rider, no sign")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(self.signs(), ["a.lock.readers"])
        st = os.lstat(os.path.join(self.locks, "a.lock.readers"))
        self.assertTrue(__import__("stat").S_ISREG(st.st_mode))
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertEqual(self.signs(), ["a.lock.readers"], "c rides on")
        self.assertEqual(len(self.markers()), 1)
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(self.signs(), [], "the last rider gone")
        self.assertEqual(self.markers(), [])
        # The artefact handed to the only rider: no rider left.
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertEqual(self.signs(), ["a.lock.readers"])
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual(self.signs(), [])
        self.assertTrue(self.python_sees_held(p))
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_two_connections_of_one_thread_share_a_marker(self):
        # Two connections of one process and thread ride one lock: their
        # marker has one name.  The first to go leaves it for the other,
        # so that the lock stays judged held while that one reads.
        p = self.path()
        a, b, c = self.v2(), self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared",
                               thread=7), "OK")
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared",
                               thread=7), "OK")
        self.assertEqual(len(self.markers()), 1)
        self.assertCode(b.call("RELEASE", path=p, thread=7), "OK")
        self.assertEqual(len(self.markers()), 1, "c reads on")
        self.assertEqual(self.signs(), ["a.lock.readers"])
        c.close()
        self.assertCode(a.call("PING"), "OK")
        for _ in range(100):
            if not self.markers():
                break
            time.sleep(0.05)
        self.assertEqual(self.markers(), [])
        self.assertEqual(self.signs(), [])
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_exclusive_lock_among_many_names_is_broken_stale(self):
        # A lock never shared has no sign: its judges read no directory,
        # so no number of names there (more than the 65536 entries a
        # judge reads for markers, some named as markers) keeps its dead
        # holder's lock from being broken stale, in a sticky directory
        # or not.
        nosock = os.path.join(self.dir, "nosock")
        for d in (self.shared(), self.shared("open")):
            if d.endswith("open"):
                os.chmod(d, 0o777)
            p = os.path.join(d, "x")
            flood = self.spawn(textwrap.dedent("""
                import os
                for i in range(66000):
                    os.close(os.open(os.path.join(%r, "n%%d" %% i),
                                     os.O_CREAT | os.O_WRONLY, 0o644))
                for i in range(100):
                    n = "x.lock.reader.%%d.%%d.0.0" %% (os.getpid(), 1 + i)
                    os.close(os.open(os.path.join(%r, n),
                                     os.O_CREAT | os.O_WRONLY, 0o644))
                print("made", flush=True)
                """ % (d, d)), user="nobody")
            self.assertEqual(flood.stdout.readline(), b"made\n")
            for how in ("daemon", "in-process"):
                r = Reproductions.lockbroker_cli(
                    self, "lock", "--local", p, "--", "sh", "-c",
                    "kill -KILL $PPID", socket=nosock)
                self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
                self.assertTrue(os.path.exists(p + ".lock"))
                if how == "daemon":
                    r = Reproductions.lockbroker_cli(
                        self, "lock", "-n", "--break-stale", p, "--",
                        "true")
                else:
                    r = Reproductions.lockbroker_cli(
                        self, "break", "--stale", "--local", p,
                        socket=nosock)
                self.assertEqual(r.returncode, 0, "%s, %s: %s" %
                                 (d, how, r.stderr))
                self.assertFalse(os.path.exists(p + ".lock"), (d, how))

    def test_reclaimed_rider_makes_the_sign_again(self):
        # A rider of the previous run that reclaims makes the sign again
        # should it have gone meanwhile: its marker must be seen.
        p = self.path()
        a = self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.assertEqual(self.signs(), ["a.lock.readers"])
        self.daemon.stop()
        b.close()
        self.assertEqual(self.signs(), ["a.lock.readers"], "kept")
        os.unlink(os.path.join(self.locks, "a.lock.readers"))
        self.daemon.start()
        c = self.v2()
        self.assertCode(c.call("RECLAIM", path=p, token=tok), "OK")
        self.assertEqual(self.signs(), ["a.lock.readers"])
        self.assertEqual(len(self.markers()), 1)
        a.kill()

    def test_sign_kept_through_grace_for_riders_not_reclaimed(self):
        # A previous run's hold keeps its sign while its riders may
        # still reclaim, and loses it when the grace period ends.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="grace = 2\n").start()
        p = self.path()
        a = self.v2()
        ta = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.reader_process(p)          # reads on, never reclaims
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=ta), "OK")
        self.assertEqual(self.signs(), ["a.lock.readers"])
        for _ in range(200):
            if not self.signs():
                break
            time.sleep(0.05)
        self.assertEqual(self.signs(), [], "the grace period is over")
        self.assertEqual(self.status(a, p)["mode"], "shared")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_sign_of_another_user_refuses_riders(self):
        # In a sticky directory a sign counts only as a file of the lock
        # file's owner: one another user made there would hide the
        # riders' markers from every judge, so no reader rides beside
        # it; the reader holding goes on holding.
        d = self.shared()
        p = os.path.join(d, "y")
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        plant = self.spawn(textwrap.dedent("""
            import os
            os.close(os.open(%r, os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % (p + ".lock.readers")), user="nobody")
        self.assertEqual(plant.stdout.readline(), b"made\n")
        r = b.call("ACQUIRE", path=p, mode="shared", timeout=0)
        self.assertCode(r, "EFAILED")
        self.assertIn("y.lock.readers", r.fields.get("message", ""))
        self.assertEqual(self.markers(d), [])
        self.assertTrue(self.python_sees_held(p))
        self.assertEqual(self.status(a, p)["holders"], "1")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual(sorted(os.listdir(d)), ["y.lock.readers"])


class Restart(SharedCase):
    def test_restart_keeps_the_artefact_readers_hold(self):
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        self.assertTrue(os.path.exists(p + ".lock"))
        c = self.v2()
        self.assertCode(c.call("RECLAIM", path=p, token=tok), "OK")
        st = self.status(c, p)
        self.assertEqual((st["mine"], st["mode"]), ("1", "shared"))
        self.assertTrue(self.python_sees_held(p))
        self.assertCode(self.v2().call("ACQUIRE", path=p, mode="shared",
                                       timeout=0), "OK")

    def tampering_proxy(self, path):
        """A relay at path to the daemon's socket, whatever daemon runs
        there, that turns the mode of every RECLAIM's OK into the other
        one; returns the list of the lines clients sent through it."""
        import threading
        sent = []
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)
        self.addCleanup(srv.close)

        def pump(src, dst, up, reclaims):
            buf = b""
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        words = line.split(b" ")
                        if up:
                            sent.append(line.decode())
                            if words[0] == b"RECLAIM":
                                reclaims.add(words[1])
                        elif words[0] == b"OK" and words[1] in reclaims:
                            line = line.replace(b"mode=shared", b"mode=X")
                            line = line.replace(b"mode=exclusive",
                                                b"mode=shared")
                            line = line.replace(b"mode=X",
                                                b"mode=exclusive")
                        dst.sendall(line + b"\n")
            except OSError:
                pass
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    d.connect(self.daemon.socket)
                except OSError:
                    c.close()
                    continue
                reclaims = set()
                for a in ((c, d, True, reclaims), (d, c, False, reclaims)):
                    threading.Thread(target=pump, args=a,
                                     daemon=True).start()
        threading.Thread(target=serve, daemon=True).start()
        return sent

    def test_library_takes_no_hold_given_back_in_another_mode(self):
        # A restarted daemon that gave a hold back in another mode than
        # its owner was told (its RECLAIM's mode=shared answered
        # mode=exclusive here, by a relay that changes the reply): the
        # library takes it for no hold of its owner's, releases it at
        # once, and its owner is told that it was lost.
        p = self.path()
        relay = os.path.join(self.dir, "relay")
        sent = self.tampering_proxy(relay)
        cmd = subprocess.Popen(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker"), "lock", "-s", p, "--",
             "sh", "-c", "echo held; read x"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, LOCKBROKER_SOCKET=relay))
        self.procs.append(cmd)
        self.assertEqual(cmd.stdout.readline(), "held\n")
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        for _ in range(400):
            if any(x.startswith("RELEASE ") for x in sent):
                break
            time.sleep(0.05)
        reclaim = [x for x in sent if x.startswith("RECLAIM ")]
        self.assertEqual(len(reclaim), 1, sent)
        self.assertIn("mode=shared", reclaim[0])
        self.assertTrue(any(x.startswith("RELEASE ") for x in sent), sent)
        # The RELEASE seen on its way: the daemon may not have done it.
        deadline = time.monotonic() + 30
        while os.path.exists(p + ".lock") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(p + ".lock"))
        self.assertFalse(self.python_sees_held(p))
        out, err = cmd.communicate("\n", timeout=60)
        self.assertEqual(cmd.returncode, 0, err)
        self.assertIn("gave it back exclusive", err)

    def test_restart_keeps_the_mode_an_upgrade_gave(self):
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.assertCode(a.call("UPGRADE", path=p), "OK")
        self.daemon.stop()
        a.close()
        self.daemon.start()
        c = self.v2()
        self.assertCode(c.call("RECLAIM", path=p, token=tok), "OK")
        self.assertEqual(self.status(c, p)["mode"], "exclusive")
        self.assertCode(self.v2().call("ACQUIRE", path=p, mode="shared",
                                       timeout=0), "EALREADY")

    def test_reader_of_the_previous_run_has_no_riders(self):
        # After a restart, a reader's hold not reclaimed yet is nobody's
        # here: a reader joining it would be lost (told nothing) when it
        # ends, and a writer granted while that reader reads on.  A
        # shared request waits for it instead, and holds the writer
        # behind it off once granted.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="grace = 1\n").start()
        p = self.path()
        a = self.reader_process(p)
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        b, w = self.v2(), self.v2()
        rb = b.send("ACQUIRE", path=p, mode="shared", timeout=60)
        self.assertCode(w.call("PING"), "OK")
        rw = self.queued(w, "ACQUIRE", path=p, timeout=60)
        a.kill()
        a.wait()
        self.assertCode(b.wait(rb, 30), "OK")
        self.assertIsNone(self.reply_within(w, rw, 2.0))
        self.assertEqual(self.status(b, p)["mine"], "1")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(rw, 30), "OK")

    def test_downgrade_read_past_its_by_is_not_done(self):
        # by= is the host's monotonic clock (Python's time.monotonic is
        # the daemon's lockfs_now): a DOWNGRADE read past it leaves the
        # hold exclusive, as its client, which gave up, told its owner.
        p = self.path()
        a, r = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        self.assertCode(a.call("DOWNGRADE", path=p,
                               by="%.6f" % (time.monotonic() - 1)),
                        "ETIMEOUT")
        self.assertEqual(self.status(a, p)["mode"], "exclusive")
        self.assertCode(r.call("ACQUIRE", path=p, mode="shared", timeout=0),
                        "EALREADY")
        self.assertCode(a.call("DOWNGRADE", path=p,
                               by="%.6f" % (time.monotonic() + 60)), "OK")
        self.assertEqual(self.status(a, p)["mode"], "shared")
        self.assertCode(r.call("ACQUIRE", path=p, mode="shared", timeout=0),
                        "OK")
        self.assertCode(a.call("DOWNGRADE", path=p, by="soon"), "EINVAL")

    def test_reclaim_settles_the_mode_its_owner_was_told(self):
        # A DOWNGRADE recorded but (as far as its owner knows) not done:
        # the RECLAIM's mode=exclusive undoes it, and the OK says so; an
        # UPGRADE so recorded is undone by mode=shared.
        p, q = self.path(), self.path("b")
        a = self.v2()
        tp = a.call("ACQUIRE", path=p).fields["token"]
        self.assertCode(a.call("DOWNGRADE", path=p), "OK")
        tq = a.call("ACQUIRE", path=q, mode="shared").fields["token"]
        self.assertCode(a.call("UPGRADE", path=q), "OK")
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        c = self.v2()
        r = c.call("RECLAIM", path=p, token=tp, mode="exclusive")
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["mode"], "exclusive")
        self.assertEqual(self.status(c, p)["mode"], "exclusive")
        self.assertCode(self.v2().call("ACQUIRE", path=p, mode="shared",
                                       timeout=0), "EALREADY")
        r = c.call("RECLAIM", path=q, token=tq, mode="shared")
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["mode"], "shared")
        self.assertCode(self.v2().call("ACQUIRE", path=q, mode="shared",
                                       timeout=0), "OK")


class Reproductions(SharedCase):
    """Regressions: faults found by review, each reproduced here first
    (the test failed) and then fixed."""

    def test_owner_queued_twice_rides_on_itself(self):
        # Regression (fixed): an owner whose shared ACQUIRE waits may
        # send another; both wait, and when the writer goes the first is
        # granted the artefact and the second makes the same owner a
        # rider of its own hold (readers.c lbd_readers_serve ->
        # lbd_reader_join, which never asks whether (conn, thread)
        # holds the lock already).  STATUS then counts two holders for
        # one owner, and the owner's RELEASE ends the rider only: the
        # lock stays held by an owner told it released it, and a writer
        # is refused.
        p = self.path()
        w, a = self.v2(), self.v2()
        self.assertCode(w.call("ACQUIRE", path=p), "OK")
        i1 = self.queued(a, "ACQUIRE", path=p, mode="shared")
        i2 = self.queued(a, "ACQUIRE", path=p, mode="shared")
        self.assertCode(w.call("RELEASE", path=p), "OK")
        self.assertCode(a.wait(i1, 30), "OK")
        self.assertCode(a.wait(i2, 30), "OK")
        self.assertEqual(self.status(a, p)["holders"], "1",
                         "one owner counted as two readers")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "OK")


    def test_reader_past_the_bound_waits(self):
        # Regression (fixed): a shared ACQUIRE with a timeout, made
        # while the lock's riders are at readers_per_lock, is refused
        # ELIMIT at once (lock.c lbd_acquire) instead of waiting for a
        # reader to go, as it would behind any holder.  Any user who may
        # take the lock can so keep every other reader from even
        # queueing for it: each is failed at once, whatever its timeout,
        # while a writer behind the same readers waits and is served.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="readers_per_lock = 2\n").start()
        p = self.path()
        cs = [self.v2() for _ in range(4)]
        for c in cs[:3]:
            self.assertCode(c.call("ACQUIRE", path=p, mode="shared"), "OK")
        rid = cs[3].send("ACQUIRE", path=p, mode="shared", timeout=60)
        self.assertIsNone(self.reply_within(cs[3], rid, 0.5),
                          "refused at once instead of waiting")
        self.assertCode(cs[1].call("RELEASE", path=p), "OK")
        self.assertCode(cs[3].wait(rid, 30), "OK")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_upgrade_and_downgrade_tell_nothing_where_one_may_not_look(self):
        # Regression (fixed): UPGRADE and DOWNGRADE answer ENOTMINE
        # ("locked, but not by you") or ENOTLOCKED by whether the lock is
        # held (readers.c owned_lock), before any look as the requester
        # (lbd_creds_may_look, as STATUS and RELEASE do).  A user who may
        # not look into a directory so learns whether another user's lock
        # there is held, and when.
        d = os.path.join(self.dir, "private")
        os.mkdir(d)
        os.chmod(d, 0o700)
        p = os.path.join(d, "secret")
        me = self.v2()
        them = self.v2(nobody=True)
        self.assertCode(them.call("STATUS", path=p), "EPERM")
        free = [them.call(v, path=p).code for v in ("UPGRADE", "DOWNGRADE")]
        self.assertCode(me.call("ACQUIRE", path=p), "OK")
        self.assertCode(them.call("STATUS", path=p), "EPERM")
        held = [them.call(v, path=p).code for v in ("UPGRADE", "DOWNGRADE")]
        self.assertEqual(free, held, "held or not shows to a user who may "
                         "not look")
        self.assertEqual(held, ["EPERM", "EPERM"])

    def test_upgrade_in_grace_passes_riders_not_reclaimed(self):
        # Regression: after a restart, the artefact's reader reclaims its
        # hold and UPGRADEs before the rider beside it has reclaimed.
        # lbd_upgrade counted the riders in memory only (l->nreaders, 0
        # until they reclaim), not the markers that are their record over
        # the restart, and granted the UPGRADE at once.  While the grace
        # period runs, a live marker of a previous run's rider counts as
        # a reader (lbd_readers_unclaimed): the UPGRADE waits.
        p = self.path()
        a = self.v2()
        ta = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        b = self.reader_process(p)      # its process reads on
        mark, = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.assertTrue(mark.startswith("a.lock.reader.%d." % b.pid))
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=ta), "OK")
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "EALREADY",
                        "exclusive while a reader of the previous run, "
                        "its marker there, has not reclaimed yet")

    def test_upgrade_waiting_for_riders_not_reclaimed_ends_with_grace(self):
        # The UPGRADE that waits for a previous run's rider (its marker
        # there, its process alive) that never reclaims is granted when
        # the grace period ends (lbd_readers_grace_over), not left
        # waiting for ever.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="grace = 2\n").start()
        p = self.path()
        a = self.v2()
        ta = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.reader_process(p)          # reads on, never reclaims
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=ta), "OK")
        rid = self.queued(a, "UPGRADE", path=p, timeout=60)
        self.assertCode(a.wait(rid, 30), "OK")
        self.assertEqual(self.status(a, p)["mode"], "exclusive")

    def test_reclaim_exclusive_passes_riders_not_reclaimed(self):
        # Regression: a DOWNGRADE done and a rider granted beside it; the
        # daemon dies.  The owner's RECLAIM with mode=exclusive (its
        # library's answer to a DOWNGRADE it gave up on) was settled
        # exclusive because no rider had reclaimed yet (reconcile.c
        # orphan_adopt: l->nreaders == 0), though the rider's marker lay
        # beside the lock file.  The live marker counts as a reader in
        # the grace period: the RECLAIM is refused (its owner told its
        # hold is lost, never given it back shared behind its back), and
        # the lock stays held for the reader: a writer is refused.
        p = self.path()
        a = self.v2()
        ta = a.call("ACQUIRE", path=p).fields["token"]
        self.assertCode(a.call("DOWNGRADE", path=p), "OK")
        b = self.reader_process(p)      # its process reads on
        mark, = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.assertTrue(mark.startswith("a.lock.reader.%d." % b.pid))
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        a = self.v2()
        r = a.call("RECLAIM", path=p, token=ta, mode="exclusive")
        self.assertCode(r, "ENOENT", "given back under a reader not "
                        "reclaimed yet")
        self.assertIn("not given back exclusive", r.fields["message"])
        w = self.lockbroker_cli("lock", "-n", p, "--", "true")
        self.assertNotEqual(w.returncode, 0, "a writer beside a reader")
        self.assertIsNone(b.poll())

    def lockbroker_cli(self, *args, socket=None):
        """The lockbroker command, speaking to socket (default: the
        daemon's)."""
        env = dict(os.environ,
                   LOCKBROKER_SOCKET=socket or self.daemon.socket)
        return subprocess.run(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker")] + list(args),
            capture_output=True, text=True, env=env, timeout=60)

    def plant_marker(self, p, name):
        """Makes p's lock file's neighbour name as user nobody."""
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        subprocess.run(["touch", os.path.join(os.path.dirname(p), name)],
                       check=True, preexec_fn=demote, timeout=60)

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_planted_marker_keeps_an_owner_from_releasing(self):
        # Regression: any user who may make a name in a lock's directory
        # (a sticky one such as /tmp) could make a "reader's marker"
        # there, naming pid 1 with start time 0, and its owner's
        # in-process release (the daemon away) then kept its own lock
        # file for ever.  A marker counts only as a file of the user of
        # the live process it names, with that process's start time (not
        # 0), in a sticky directory a file of the lock file's owner
        # (lockfs/readers.c), and the library keeps its lock file only
        # for a hold its owner was told is shared (lock.c readers_keep).
        d = self.shared()
        p = os.path.join(d, "v")
        self.plant_marker(p, "v.lock.reader.1.0.0.0")
        nosock = os.path.join(self.dir, "nosock")
        r = self.lockbroker_cli("lock", "-n", p, "--", "true", socket=nosock)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"),
                         "a lock never shared kept by another user's file: "
                         + r.stderr)

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_planted_marker_keeps_a_dead_lock_from_being_stale(self):
        # Regression: the same planted marker made a lock of another
        # user whose holder is provably dead unbreakable by `break
        # --stale` and LB_BREAK_STALE, in-process or through the daemon
        # (lockfs_readers_live counted any parsable name with a live
        # pid); it counts for nothing now.
        d = self.shared()
        p = os.path.join(d, "v")
        nosock = os.path.join(self.dir, "nosock")
        r = self.lockbroker_cli("lock", "--local", p, "--", "sh", "-c",
                                "kill -KILL $PPID", socket=nosock)
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
        self.assertTrue(os.path.exists(p + ".lock"))
        self.plant_marker(p, "v.lock.reader.1.0.0.0")
        r = self.lockbroker_cli("lock", "-n", "--break-stale", p, "--",
                                "true")
        self.assertEqual(r.returncode, 0, "through the daemon: " + r.stderr)
        r = self.lockbroker_cli("lock", "--local", p, "--", "sh", "-c",
                                "kill -KILL $PPID", socket=nosock)
        r = self.lockbroker_cli("break", "--stale", "--local", p,
                                socket=nosock)
        self.assertEqual(r.returncode, 0, "in-process: " + r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"))

    def test_rider_granted_on_a_lock_broken_stale(self):
        # Regression: the artefact's reader's process exits while its
        # connection lives on in a child (a descriptor inherited over
        # fork): the artefact names a dead pid, which `break --stale`
        # (in-process) rightly breaks, and Python's lockfile then takes
        # the lock.  The daemon, which still held its record of the
        # first reader, granted a shared ACQUIRE as a rider of it at
        # once.  A rider's marker is made under the directory's lock
        # (which breakers hold across their judgement and removal) once
        # the lock file is seen to name the artefact's reader still;
        # here it does not: that hold ends (its connection told LOST)
        # and the request is answered as any to a lock held outside the
        # broker (EALREADY).
        p = self.path()
        a = self.spawn(textwrap.dedent("""
            import os, sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            if os.fork() == 0:
                print(os.getpid(), flush=True)
                time.sleep(600)     # the connection lives on here
            os._exit(0)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        self.assertEqual(a.stdout.readline(), b"OK\n")
        child = int(a.stdout.readline())
        self.addCleanup(os.kill, child, signal.SIGKILL)
        a.wait()
        r = subprocess.run(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker"), "break", "--stale",
             "--local", p], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"))
        py = self.spawn(textwrap.dedent("""
            import sys, time
            from lockfile.linklockfile import LinkLockFile
            l = LinkLockFile(%r)
            l.acquire(timeout=0)
            print("held", flush=True)
            time.sleep(600)
            """ % p))
        self.assertEqual(py.stdout.readline(), b"held\n")
        b = self.v2()
        r = b.call("ACQUIRE", path=p, mode="shared", timeout=0)
        self.assertNotEqual(r.code, "OK", "a reader granted while Python's "
                            "lockfile holds the lock exclusively")

    def test_restart_with_the_first_reader_dead_drops_live_riders(self):
        # Regression: the daemon dies while a first reader and a rider
        # hold; the first reader dies meanwhile.  The new daemon judged
        # the first reader's hold at start (reconcile.c reconcile_one ->
        # orphan_end), before the grace timer ran, so
        # lbd_reader_keep_for_readers kept nothing: the artefact was
        # removed under the rider and a writer granted.  Startup counts
        # as the grace period: the hold is kept for the rider, handed to
        # it at its RECLAIM.
        p = self.path()
        a = self.reader_process(p)
        b = self.v2()
        r = b.call("ACQUIRE", path=p, mode="shared")
        self.assertCode(r, "OK")
        tok = r.fields["token"]
        self.daemon.stop(signal.SIGKILL)
        a.kill()
        a.wait()
        b.close()
        self.daemon.start()
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while a live rider of the "
                        "previous run has not reclaimed yet")
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok), "OK")

    def test_reclaimed_riders_pass_holds_per_conn(self):
        # Regression: RECLAIM bounded a connection by c->nholds +
        # c->nwaits (request.c req_reclaim), not counting its riders
        # (c->nreaders), which ACQUIRE counts, and a rider's RECLAIM
        # (lbd_reader_rejoin) only asks for a marker named after the
        # requester's pid and the thread it gives, which its user makes
        # itself: one connection rode past holds_per_conn.  Riders count
        # at RECLAIM as at ACQUIRE, and a rider's RECLAIM is bounded by
        # its user's locks_per_uid too.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="holds_per_conn = 2\n"
                             "readers_per_lock = 16\n").start()
        p = self.path()
        a = self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        mark, = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.daemon.stop()
        b.close()
        self.daemon.start()
        base = mark.rsplit(".", 1)[0]
        for tid in range(1, 9):
            open(os.path.join(self.locks, "%s.%d" % (base, tid)),
                 "w").close()
        c = self.v2()
        codes = [c.call("RECLAIM", path=p, token=tok, thread=tid).code
                 for tid in range(1, 9)]
        self.assertLessEqual(codes.count("OK"), 2,
                             "riders past holds_per_conn = 2: %s" % codes)
        a.kill()

    def test_reclaim_on_a_made_marker_passes_a_queued_writer(self):
        # Regression: RECLAIM of a shared hold's token by any owner whose
        # marker lay beside the lock file made it a rider
        # (lbd_reader_rejoin), in the daemon's run that granted the hold
        # too: the marker is a file its user makes, and the token shows
        # in STATUS, so a reader passed the writer queued before it.  A
        # rider's RECLAIM is taken only for a hold of a previous run (its
        # token's generation older than this start), only while that
        # run's holds are judged (the grace period).
        p = self.path()
        a, b, w = self.v2(), self.v2(), self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        mark, = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.assertCode(b.call("RELEASE", path=p), "OK")
        rw = self.queued(w, "ACQUIRE", path=p, timeout=60)
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared",
                               timeout=0), "EALREADY")
        open(os.path.join(self.locks, mark), "w").close()
        self.assertNotEqual(b.call("RECLAIM", path=p, token=tok).code, "OK",
                            "a reader joined ahead of a queued writer")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(rw, 30), "OK")

    def test_rider_handed_the_artefact_before_the_commit_reclaims(self):
        # Found by chaos: the artefact's reader left, the previous
        # daemon handed the artefact to a rider and took the last step
        # (the rider's file renamed over the lock file: before the
        # commit when another step came in the same iteration), then
        # was killed before its commit.  Its record is the old reader's,
        # forgotten at start (the artefact is not its any more); the
        # rider, told long before that it holds, reclaims: its hold is
        # given back, shared (it was refused ENOENT, lost, and its
        # library removed the lock file).
        p = self.path()
        a = self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.daemon.stop(signal.SIGKILL)
        b.close()
        # What the killed daemon's handoff left: b's unique file as the
        # lock file, b's marker gone with its ride.
        mine = unique_name(os.getpid(), p + ".lock", "link")
        with open(mine, "w"):
            pass
        os.rename(mine, p + ".lock")
        os.link(p + ".lock", mine)
        for m in os.listdir(self.locks):
            if ".lock.reader." in m:
                os.unlink(os.path.join(self.locks, m))
        self.daemon.start()
        b = self.v2()
        r = b.call("RECLAIM", path=p, token=tok, mode="shared")
        self.assertCode(r, "OK", self.daemon.logtext())
        self.assertEqual(r.fields.get("mode"), "shared")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while the reclaimed reader reads")
        self.assertEqual(self.status(b, p)["holders"], "1")
        # A reader's RECLAIM of a lock file that is not its own is
        # refused still (nothing made).
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertFalse(os.path.lexists(p + ".lock"))
        self.assertFalse(os.path.lexists(mine))
        self.assertCode(w.call("RECLAIM", path=p, token=tok,
                               mode="shared"), "ENOENT")
        self.assertFalse(os.path.lexists(p + ".lock"))
        # Nor is a token of this run taken from its owner's word, even
        # with its own artefact there (a lock file it made in-process).
        with open(mine, "w"):
            pass
        os.link(mine, p + ".lock")
        now = str((int(tok) >> 32 | 1) + 1 << 32 | 5)
        self.assertCode(b.call("RECLAIM", path=p, token=now,
                               mode="shared"), "ENOENT")
        os.unlink(p + ".lock")
        os.unlink(mine)
        a.kill()

    def test_reclaimed_rider_keeps_the_lock_its_first_reader_left(self):
        # Regression: after a restart the rider reclaims first and rides
        # on the first reader's hold of the previous run; the first
        # reader's process then exits without reclaiming.  Its hold ends
        # in its judged directory (reconcile.c orphan_end -> orphan_pin:
        # h->pinned), and lbd_hold_end handed nothing on from a pinned
        # hold: the live rider was told LOST ("no memory") and the lock
        # freed.  A pinned orphan with riders is handed to a rider as
        # any live reader's hold is.
        p = self.path()
        a = self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.daemon.stop(signal.SIGKILL)
        b.close()
        self.daemon.start()
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok), "OK")
        a.kill()
        a.wait()
        # Once the daemon has seen the exit, the lock is the rider's
        # (else it is the first reader's still): a writer never gets it.
        deadline = time.monotonic() + 30
        try:
            while (self.status(b, p)["holders"] != "1" and
                   time.monotonic() < deadline):
                time.sleep(0.05)
        except AssertionError as e:     # a LOST line in place of OK
            self.fail("the reclaimed reader lost its hold: %s" % e)
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while a reclaimed reader reads")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_unreadable_directory_hides_the_riders_from_a_release(self):
        # Regression: in a directory its readers may write and search but
        # not list (mode 0333, as drop directories are), the first
        # reader's in-process release after the daemon died asked
        # lockfs_readers_live, which cannot read the directory (-1), and
        # took that for "no reader": the lock file was removed under a
        # live rider.  -1 ("cannot tell") keeps the file, as it keeps
        # break --stale from breaking it (lock.c readers_keep; the
        # daemon's lbd_reader_keep_for_readers the same).
        d = os.path.join(self.dir, "drop")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        os.chmod(d, 0o333)
        p = os.path.join(d, "v")

        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        first = subprocess.Popen(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker"), "lock", "-s", "-n", p,
             "--", "sh", "-c", "echo held; read x"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, preexec_fn=demote)
        self.procs.append(first)
        self.assertEqual(first.stdout.readline(), b"held\n")
        rider = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)), user="nobody")
        self.assertEqual(rider.stdout.readline(), b"OK\n")
        self.assertEqual(len([f for f in os.listdir(d)
                              if ".reader." in f]), 1)
        self.daemon.stop(signal.SIGKILL)
        first.stdin.write(b"\n")
        first.stdin.close()
        first.wait(60)
        self.assertTrue(os.path.exists(p + ".lock"),
                        "removed under a live reader: %r" %
                        first.stderr.read())
        self.daemon.start()


class SecondReview(SharedCase):
    """Reproductions of a second hostile review of the fixes above: each
    fails on the build it was written against."""

    lockbroker_cli = Reproductions.lockbroker_cli

    def lockbroker_path(self):
        return os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                            "tools", "lockbroker")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_directory_lock_held_for_good_refuses_every_reader(self):
        # reader_mark_judged (daemon/readers.c) tries the lock of the
        # lock's directory once and refuses the join EFAILED when another
        # process holds it.  Any user who may open the directory for
        # reading (every user, for /tmp) may hold that flock(2) for as
        # long as it likes: every second reader of every shared lock
        # there is then refused at once, however long its ACQUIRE said
        # it would wait, while writers, releases and handoffs go on
        # (lbd_hold_release_artefact waits 2 s, then releases without
        # it).  A shared ACQUIRE with a timeout must wait, as for any
        # lock it cannot have now, and be granted once it can; a join
        # beside a first reader whose process lives needs no lock of the
        # directory at all (its marker made first, then the lock file
        # and the first reader's process looked at): granted at once.
        p = self.path()                 # root's 0755 directory
        squatter = self.spawn(textwrap.dedent("""
            import fcntl, os, sys, time
            fd = os.open(%r, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep(600)
            """ % self.locks), user="nobody")
        self.assertEqual(squatter.stdout.readline(), b"held\n")
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        rb = b.send("ACQUIRE", path=p, mode="shared", timeout=60)
        early = []
        self.assertCode(b.wait(b.send("PING"), others=early), "OK")
        self.assertEqual([r for r in early if r.verb != "OK"], [],
                         "a reader with timeout=60 refused at once because "
                         "another user holds the lock of the lock's "
                         "directory")
        squatter.kill()
        squatter.wait()
        if not early:
            self.assertCode(b.wait(rb, 30), "OK")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_directory_lock_held_delays_a_join_beside_a_dead_reader(self):
        # The first reader's process is gone, its connection living on
        # in a child: only under the lock of the directory can a join
        # tell that no breaker is half way through.  Another user holds
        # that lock: the shared ACQUIRE with a timeout waits (never
        # refused at once) and is granted once the lock is free.
        p = self.path()
        a = self.spawn(textwrap.dedent("""
            import os, sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            if os.fork() == 0:
                print(os.getpid(), flush=True)
                time.sleep(600)     # the connection lives on here
            os._exit(0)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        self.assertEqual(a.stdout.readline(), b"OK\n")
        child = int(a.stdout.readline())
        self.addCleanup(os.kill, child, signal.SIGKILL)
        a.wait()
        squatter = self.spawn(textwrap.dedent("""
            import fcntl, os, sys, time
            fd = os.open(%r, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep(600)
            """ % self.locks), user="nobody")
        self.assertEqual(squatter.stdout.readline(), b"held\n")
        b = self.v2()
        rb = b.send("ACQUIRE", path=p, mode="shared", timeout=60)
        early = []
        self.assertCode(b.wait(b.send("PING"), others=early), "OK")
        self.assertEqual(early, [], "a join beside a dead first reader "
                         "answered while the directory's lock is held")
        self.assertEqual([f for f in os.listdir(self.locks)
                          if ".reader." in f], [], "a marker left while "
                         "the join waits")
        squatter.kill()
        squatter.wait()
        self.assertCode(b.wait(rb, 30), "OK")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_rider_hidden_by_hidepid_is_broken_stale_under(self):
        # reader_counts (lockfs/readers.c) counts a marker only when the
        # owner of /proc/PID and its start time can be read.  With /proc
        # mounted hidepid=2 (invisible), a common hardening, a judge
        # sees no /proc entry of another user's process: kill(2) says it
        # lives (EPERM), but lockfs_os_process_uid fails and the live
        # rider's marker counts for nothing.  The first reader (nobody)
        # dies with the daemon away; nobody's `break --stale` then
        # removes the lock file under root's live rider (before the
        # marker rules, liveness alone counted it and the lock stood).
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t proc -o hidepid=2 proc /proc"],
            capture_output=True, timeout=60)
        if probe.returncode != 0:
            self.skipTest("cannot mount a hidepid /proc: %r" % probe.stderr)
        d = os.path.join(self.dir, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        p = os.path.join(d, "h")
        first = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)), user="nobody")
        self.assertEqual(first.stdout.readline(), b"OK\n")
        rider = self.reader_process(p)  # root's, a live reader
        self.assertEqual(len([f for f in os.listdir(d)
                              if ".reader.%d." % rider.pid in f]), 1)
        self.daemon.stop(signal.SIGKILL)
        first.kill()
        first.wait()
        r = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t proc -o hidepid=2 proc /proc && exec setpriv "
             "--reuid=%d --regid=%d --clear-groups \"$@\"" %
             (NOBODY, NOBODY), "sh", self.lockbroker_path(), "break",
             "--stale", "--local", p],
            capture_output=True, text=True, timeout=60)
        self.assertTrue(os.path.exists(p + ".lock"),
                        "broken stale under a live reader (its marker "
                        "discounted, /proc hidden): %r" % r.stderr)
        self.assertIsNone(rider.poll())
        self.daemon.start()

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_names_of_another_user_keep_a_release_for_ever(self):
        # lockfs_readers_live reads at most 16384 names of a directory
        # and answers -1 ("cannot tell") past them; since the fix for
        # unreadable directories the library's in-process release of a
        # shared hold takes -1 as a live reader (lock.c readers_keep) and
        # keeps its lock file, LB_EUNLOCK.  In a sticky directory (/tmp)
        # any user may make 16385 names, which the owner cannot remove,
        # and none of which could ever count as a reader there (a marker
        # counts only as a file of the lock file's owner): every first
        # reader's release while the daemon is away then keeps its lock
        # for as long as those names lie there (and, once it has exited,
        # break --stale refuses it for the same -1).
        d = self.shared()               # 1777, root's
        p = os.path.join(d, "f")
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        first = subprocess.Popen(
            [self.lockbroker_path(), "lock", "-s", "-n", p, "--", "sh",
             "-c", "echo held; read x"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env)
        self.procs.append(first)
        self.assertEqual(first.stdout.readline(), b"held\n")
        flood = self.spawn(textwrap.dedent("""
            import os
            for i in range(16400):
                os.close(os.open(os.path.join(%r, "n%%d" %% i),
                                 os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % d), user="nobody")
        self.assertEqual(flood.stdout.readline(), b"made\n")
        self.daemon.stop(signal.SIGKILL)
        first.stdin.write(b"\n")
        first.stdin.close()
        first.wait(60)
        self.assertFalse(os.path.exists(p + ".lock"),
                         "kept by another user's names, none a reader's: "
                         "%r" % first.stderr.read())
        self.daemon.start()

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_rider_that_changed_its_uid_is_broken_stale_under(self):
        # A rider's marker is made as the user its connection had (the
        # peer's credentials when it connected), but reader_counts
        # (lockfs/readers.c) asks that user to be the owner of /proc/PID
        # now, which follows the process's effective uid.  A service
        # that takes its locks as root and then drops to its own user
        # (setuid), reading on, has its marker discounted: with the
        # first reader dead and the daemon away, break --stale removes
        # the lock file under that live reader (liveness alone, before
        # the marker rules, kept it).
        p = self.path()
        first = self.reader_process(p)
        rider = self.spawn(textwrap.dedent("""
            import os, sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            os.setgroups([])
            os.setgid(%d)
            os.setuid(%d)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p, NOBODY, NOBODY)))
        self.assertEqual(rider.stdout.readline(), b"OK\n")
        self.assertEqual(len([f for f in os.listdir(self.locks)
                              if ".reader.%d." % rider.pid in f]), 1)
        self.daemon.stop(signal.SIGKILL)
        first.kill()
        first.wait()
        r = subprocess.run([self.lockbroker_path(), "break", "--stale",
                            "--local", p], capture_output=True, text=True,
                           timeout=60)
        self.assertTrue(os.path.exists(p + ".lock"),
                        "broken stale under a live reader whose uid "
                        "changed since it joined: %r" % r.stderr)
        self.assertIsNone(rider.poll())
        self.daemon.start()

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_names_of_another_user_keep_an_exclusive_lock_from_stale(self):
        # An exclusive lock, never shared: its holder died, and any
        # breaker broke it stale before shared locks (stale.c judged the
        # artefact alone).  lockfs_break_stale now also asks
        # lockfs_readers_live, which answers -1 ("cannot tell", taken as
        # a live reader) past the 16384 names it reads: any user who may
        # make names in the directory (/tmp, sticky, where no other
        # user's name could ever be a reader's marker) makes every stale
        # lock there unbreakable, through the daemon (LB_BREAK_STALE)
        # and in-process, for as long as the names lie there.
        d = self.shared()               # 1777, root's
        p = os.path.join(d, "x")
        nosock = os.path.join(self.dir, "nosock")
        r = self.lockbroker_cli("lock", "--local", p, "--", "sh", "-c",
                                "kill -KILL $PPID", socket=nosock)
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
        self.assertTrue(os.path.exists(p + ".lock"))
        flood = self.spawn(textwrap.dedent("""
            import os
            for i in range(16400):
                os.close(os.open(os.path.join(%r, "n%%d" %% i),
                                 os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % d), user="nobody")
        self.assertEqual(flood.stdout.readline(), b"made\n")
        r = self.lockbroker_cli("lock", "-n", "--break-stale", p, "--",
                                "true")
        self.assertEqual(r.returncode, 0, "through the daemon: " + r.stderr)
        r = self.lockbroker_cli("lock", "--local", p, "--", "sh", "-c",
                                "kill -KILL $PPID", socket=nosock)
        r = self.lockbroker_cli("break", "--stale", "--local", p,
                                socket=nosock)
        self.assertEqual(r.returncode, 0, "in-process: " + r.stderr)
        self.assertFalse(os.path.exists(p + ".lock"))

    def flooded_lock_in_grace(self):
        """A lock of this run's, held shared by a fresh connection, in a
        sticky directory where user nobody made more names than are read
        for it, while a grace period runs (another lock's holder of the
        previous run, alive, has not reclaimed)."""
        other = self.reader_process(self.path("o"))
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        self.assertIsNone(other.poll())
        d = self.shared()               # 1777, root's
        p = os.path.join(d, "g")
        a = self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        flood = self.spawn(textwrap.dedent("""
            import os
            for i in range(16400):
                os.close(os.open(os.path.join(%r, "n%%d" %% i),
                                 os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % d), user="nobody")
        self.assertEqual(flood.stdout.readline(), b"made\n")
        return a, p

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_names_of_another_user_hold_a_released_lock_through_grace(self):
        # lbd_reader_keep_for_readers keeps a shared hold whose owner
        # releases it, in the grace period, when lockfs_readers_live says
        # a reader's marker lies there or cannot tell (-1).  It does so
        # for a hold granted in this run too (no rider of the previous
        # run can be its), and -1 is any user's to bring about in a
        # sticky directory (more names than are read): the RELEASE is
        # answered OK, yet the lock stays held, a writer refused, until
        # the grace period ends.
        a, p = self.flooded_lock_in_grace()
        self.assertCode(a.call("RELEASE", path=p), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "OK",
                        "a lock of this run, released, kept held for "
                        "readers of the previous run it never had")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_names_of_another_user_hold_an_upgrade_through_grace(self):
        # The same for lbd_readers_unclaimed: the UPGRADE of a hold of
        # this run, its only holder, waits for the grace period's end.
        a, p = self.flooded_lock_in_grace()
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "OK",
                        "the only holder of a lock of this run refused "
                        "its UPGRADE for readers of the previous run")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_names_of_another_user_make_a_reclaimed_writer_shared(self):
        # A DOWNGRADE recorded that its owner was told is not done (its
        # library gave up on it: test_reclaim_settles_the_mode_its_owner_
        # was_told): the RECLAIM's mode=exclusive gives the hold back
        # exclusive, unless lbd_readers_unclaimed finds a reader of the
        # previous run.  It takes -1 ("cannot tell") for one, and any
        # user brings -1 about in a sticky directory with more names
        # than are read: the hold comes back shared (OK mode=shared), no
        # reader having ever ridden on it, and a reader is granted beside
        # an owner that asked to write alone.
        d = self.shared()               # 1777, root's
        p = os.path.join(d, "m")
        a = self.v2()
        tp = a.call("ACQUIRE", path=p).fields["token"]
        self.assertCode(a.call("DOWNGRADE", path=p), "OK")
        flood = self.spawn(textwrap.dedent("""
            import os
            for i in range(16400):
                os.close(os.open(os.path.join(%r, "n%%d" %% i),
                                 os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % d), user="nobody")
        self.assertEqual(flood.stdout.readline(), b"made\n")
        self.daemon.stop(signal.SIGKILL)
        a.close()
        self.daemon.start()
        c = self.v2()
        r = c.call("RECLAIM", path=p, token=tp, mode="exclusive")
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["mode"], "exclusive",
                         "given back shared for another user's names")

    def live_marker(self, p, pid):
        """Makes, as root, beside p's lock file the marker of process pid
        (its start time, boot and thread not told), a live reader's to
        every judge."""
        with open("/proc/%d/stat" % pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        name = "%s.lock.reader.%d.%d.0.0" % (os.path.basename(p), pid, start)
        with open(os.path.join(os.path.dirname(p), name), "w"):
            pass
        return name

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_live_marker_holds_a_released_lock_of_this_run(self):
        # The grace-period rules are for the previous run's holds: a
        # shared hold granted in this run, released while a live
        # marker lies beside it (no rider of the previous run could be
        # its), is released, not kept for readers it never had.
        other = self.reader_process(self.path("o"))
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        self.assertIsNone(other.poll())
        p = self.path("t")
        a = self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.live_marker(p, other.pid)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertFalse(os.path.exists(p + ".lock"),
                         "a lock of this run kept for a previous run's "
                         "readers it never had")
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "OK",
                        "the only holder of a lock of this run refused its "
                        "UPGRADE for a previous run's readers")


class ThirdReview(SharedCase):
    """Reproductions of a third hostile review: each fails on the build
    it was written against."""

    lockbroker_cli = Reproductions.lockbroker_cli

    def lockbroker_path(self):
        return os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                            "tools", "lockbroker")

    def spawn_nobody(self, script):
        """The Python script run as user nobody, its stdin and stdout
        pipes; killed after the test."""
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        p = subprocess.Popen([PYTHON, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, preexec_fn=demote)
        self.procs.append(p)
        return p

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_stale_waiter_events_stall_the_loop(self):
        # Never a shared lock here.  lockfs_break_stale reads the lock's
        # directory (up to 65536 entries, about 20 ms) for readers'
        # markers each time it judges a dead holder's lock; the daemon
        # judges a lock with a stale=1 waiter on every inotify event
        # naming its artefact (watch.c dirwatch_event -> lbd_lock_serve
        # -> break_stale_for), in its loop, with no budget.  User nobody
        # makes 65537 names in its own directory (past the entries read:
        # "cannot tell", never broken), two locks there whose holders are
        # dead, waits on both with stale=1, and touches the two lock
        # files in turn (events that inotify does not merge): each touch
        # costs it a system call and the daemon a directory read, and
        # libuv reads every queued event in one iteration.  Another
        # user's PING waits for all of them (6000 touches: 103 s, the
        # daemon's CPU busy all along).  The sign file planned beside
        # a shared lock does not help: the user makes it in its own
        # directory.
        d = os.path.join(self.dir, "flood")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        nosock = os.path.join(self.dir, "nosock")
        attacker = self.spawn_nobody(textwrap.dedent("""
            import os, subprocess, sys
            sys.path.insert(0, %r)
            from lbdaemon import Client
            d, lb, sock, nosock = %r, %r, %r, %r
            for i in range(65537):
                os.close(os.open(os.path.join(d, "n%%d" %% i),
                                 os.O_CREAT | os.O_WRONLY, 0o644))
            env = dict(os.environ, LOCKBROKER_SOCKET=nosock)
            for n in ("x", "y"):
                subprocess.run([lb, "lock", "--local", os.path.join(d, n),
                                "--", "sh", "-c", "kill -KILL $PPID"],
                               env=env)
                assert os.path.exists(os.path.join(d, n + ".lock"))
                # The readers' sign: the directory is read for markers.
                with open(os.path.join(d, n + ".lock.readers"), "w") as f:
                    f.write("lockbroker readers' sign\\n")
            c = Client(sock, timeout=120)
            for n in ("x", "y"):
                c.send("ACQUIRE", path=os.path.join(d, n), stale=1,
                       timeout=3600)
            r = c.call("PING", _wait=120)
            assert r.verb == "PING" or r.code == "OK", r
            print("waiting", flush=True)
            sys.stdin.readline()
            for i in range(600):
                os.utime(os.path.join(d, "x.lock"))
                os.utime(os.path.join(d, "y.lock"))
            print("touched", flush=True)
            sys.stdin.readline()
            """ % (os.path.dirname(os.path.abspath(__file__)), d,
                   self.lockbroker_path(), self.daemon.socket, nosock)))
        self.assertEqual(attacker.stdout.readline(), b"waiting\n")
        other = self.client(timeout=600)
        self.assertCode(other.call("PING"), "OK")
        cpu = self.daemon.cpu_seconds()
        attacker.stdin.write(b"go\n")
        attacker.stdin.flush()
        self.assertEqual(attacker.stdout.readline(), b"touched\n")
        t0 = time.monotonic()
        self.assertCode(other.call("PING", _wait=600), "OK")
        waited = time.monotonic() - t0
        # 1200 directory reads of 65537 entries: 20 s or more; a
        # daemon that judges a lock's stale holder at a bounded cost
        # (the directory read only beside a readers' sign, 4096 entries
        # at most, the judges of one loop iteration within its budget
        # of looks) answers at once.
        self.assertLess(waited, 10, "another user's PING waited %.0f s "
                        "(the daemon used %.0f s of CPU) for the daemon's "
                        "loop, stalled by one user's 1200 touches of two "
                        "lock files" % (waited,
                                        self.daemon.cpu_seconds() - cpu))

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_unreadable_directory_gives_a_writer_back_beside_a_rider(self):
        # test_reclaim_exclusive_passes_riders_not_reclaimed in a
        # directory its users may write and search but not list (mode
        # 0333, as drop directories are): a DOWNGRADE done and a rider
        # granted (its process reads on), the daemon dies, and the
        # owner's RECLAIM says mode=exclusive (the DOWNGRADE it was told
        # is not done).  lbd_readers_unclaimed cannot read the directory
        # (-1), and orphan_adopt takes "cannot tell" for "no reader" (as
        # nowhere else: readers_keep, lbd_reader_keep_for_readers and
        # the stale-breaker keep the lock for -1): the writer is given
        # its hold back exclusive beside the live reader, which reads on
        # until its own RECLAIM is refused.  Any user brings -1 about
        # in /tmp, too, by making more than 65536 names there (ext4
        # lists in hash order: with N names the marker lies past the
        # entries read with odds 1 - 65536/N).
        d = os.path.join(self.dir, "drop")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        os.chmod(d, 0o333)
        p = os.path.join(d, "r")
        owner = self.spawn_nobody(textwrap.dedent("""
            import sys
            sys.path.insert(0, %r)
            from lbdaemon import Client
            sock, p = %r, %r
            c = Client(sock, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            t = c.call("ACQUIRE", path=p, timeout=0).fields["token"]
            print(c.call("DOWNGRADE", path=p).code, flush=True)
            sys.stdin.readline()        # the daemon killed, started
            c.close()
            c = Client(sock, hello=False, timeout=60)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("RECLAIM", path=p, token=t, mode="exclusive")
            print(r.code, r.fields.get("mode"), flush=True)
            sys.stdin.readline()
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        self.assertEqual(owner.stdout.readline(), b"OK\n")
        rider = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)), user="nobody")
        self.assertEqual(rider.stdout.readline(), b"OK\n")
        self.assertEqual(len([f for f in os.listdir(d)
                              if ".reader.%d." % rider.pid in f]), 1)
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        owner.stdin.write(b"go\n")
        owner.stdin.flush()
        got = owner.stdout.readline().decode().split()
        self.assertIsNone(rider.poll())
        self.assertEqual(got[0], "ENOENT", "the owner's hold given back "
                         "%s beside a live reader not reclaimed yet, in a "
                         "directory that cannot be listed" % got[1:])

    def test_upgrade_left_waiting_by_a_release_kept_for_readers(self):
        # RELEASE of a hold whose UPGRADE waits ends that UPGRADE
        # (ECANCELED, docs/PROTOCOL.md): lbd_hold_end drops it.  In the
        # grace period, a previous run's shared hold released while a
        # live reader's marker lies beside it is kept for that reader
        # (lbd_reader_keep_for_readers) and lbd_hold_end is not called:
        # the UPGRADE stays at the head of the queue.  When the rider
        # that took the hold over releases, lbd_hold_end hands the lock
        # to that head waiter, the UPGRADE, as to any ACQUIRE: a new hold
        # recorded shared (the wait's mode) and the answer "OK" to the
        # UPGRADE, and the readers queued behind it join: the owner is
        # told it writes alone while a reader holds beside it.
        p = self.path("u")
        a = self.v2()
        ta = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        a2 = self.v2()                  # a rider of this process, thread 5
        self.assertCode(a2.call("ACQUIRE", path=p, mode="shared", thread=5),
                        "OK")
        self.daemon.stop(signal.SIGKILL)
        a.close()
        a2.close()
        self.daemon.start()
        a = self.v2()
        r = a.call("RECLAIM", path=p, token=ta, mode="shared")
        self.assertCode(r, "OK")
        up = self.queued(a, "UPGRADE", path=p, timeout=60)  # the rider's
        others = []                                         # marker waits
        self.assertCode(a.wait(a.send("RELEASE", path=p), 10, others), "OK")
        a2 = self.v2()
        r = a2.call("RECLAIM", path=p, token=ta, thread=5, mode="shared")
        self.assertCode(r, "OK")
        reader = self.spawn(textwrap.dedent("""
            import sys
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False, timeout=60)
            assert c.call("HELLO", version=2).verb == "OK"
            rid = c.send("ACQUIRE", path=%r, mode="shared", timeout=60)
            print("sent", flush=True)
            print(c.wait(rid, 60).code, flush=True)
            sys.stdin.readline()
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        self.assertEqual(reader.stdout.readline(), b"sent\n")
        self.assertCode(a2.call("PING"), "OK")
        self.assertCode(a2.call("RELEASE", path=p, thread=5), "OK")
        got = others[0] if others else a.wait(up, 30)
        self.assertEqual(got.id, up)
        if got.code == "OK":
            self.assertNotEqual(reader.stdout.readline(), b"OK\n",
                                "a reader granted beside an owner told its "
                                "UPGRADE was done (after its RELEASE)")
        self.assertCode(got, "ECANCELED", "the UPGRADE outlived the "
                        "RELEASE of its hold")

    @unittest.skipIf(os.environ.get("LB_SANITIZERS"), "loads the library "
                     "into Python with ctypes: a sanitizer build's cannot be")
    def test_release_kept_for_readers_leaves_the_owner_its_file(self):
        # In the grace period a previous run's shared hold whose owner
        # releases it while a live reader's marker lies beside it is
        # kept for that reader (lbd_reader_keep_for_readers), and the
        # RELEASE is answered a plain OK: the owner's library, told it
        # released, finds the lock file naming it still, and an
        # in-process acquire of that owner (an LB_LOCAL handle, or LB_AUTO
        # once no daemon answers) takes it for its own, re-entrant: a
        # writer beside the reader the file was kept for.  (A handoff
        # whose last step waits answers pending=1, so that the library
        # never takes a file naming its owner for its own: swap.c.)
        p = self.path("k")
        lib = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                           ".libs", "liblockbroker.so")
        owner = subprocess.Popen([PYTHON, "-c", textwrap.dedent("""
            import ctypes, os, sys
            os.environ["LOCKBROKER_SOCKET"] = %r
            lib = ctypes.CDLL(%r)
            lib.lb_lock_new.restype = ctypes.c_void_p
            lib.lb_lock_new.argtypes = [ctypes.c_char_p, ctypes.c_uint]
            for f in (lib.lb_acquire_shared, lib.lb_acquire):
                f.argtypes = [ctypes.c_void_p, ctypes.c_double]
            lib.lb_release.argtypes = [ctypes.c_void_p]
            lib.lb_lock_error.restype = ctypes.c_char_p
            lib.lb_lock_error.argtypes = [ctypes.c_void_p]
            p = %r.encode()
            lock = lib.lb_lock_new(p, 0)            # LB_LINK, LB_AUTO
            print(lib.lb_acquire_shared(lock, 0.0), flush=True)
            sys.stdin.readline()                    # the daemon restarted
            print(lib.lb_release(lock), flush=True)
            sys.stdin.readline()
            local = lib.lb_lock_new(p, 0x20)        # LB_LOCAL
            print(lib.lb_acquire(local, 0.0), flush=True)
            sys.stdin.readline()
            """ % (self.daemon.socket, lib, p))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.procs.append(owner)
        self.assertEqual(owner.stdout.readline(), b"0\n")
        rider = self.reader_process(p)  # its process reads on
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        owner.stdin.write(b"go\n")
        owner.stdin.flush()
        released = int(owner.stdout.readline())
        self.assertTrue(os.path.exists(p + ".lock"), "freed under a live "
                        "reader (release: %d)" % released)
        owner.stdin.write(b"go\n")
        owner.stdin.flush()
        acquired = int(owner.stdout.readline())
        self.assertIsNone(rider.poll())
        self.assertNotEqual(acquired, 0, "the owner's in-process acquire "
                            "(LB_LOCAL) took the lock file kept for a live "
                            "reader, after its release (%d) was answered"
                            % released)


class FourthReview(SharedCase):
    """Reproductions of a fourth hostile review: each fails on the build
    it was written against."""

    def pidfile_holder(self, q):
        """A child process holding q with Python's lockfile PIDLockFile
        (no broker at all); returned once it holds it."""
        proc = self.spawn(textwrap.dedent("""
            import sys, time
            from lockfile.pidlockfile import PIDLockFile
            PIDLockFile(%r).acquire(timeout=0)
            print("held", flush=True)
            time.sleep(600)
            """ % q))
        self.assertEqual(proc.stdout.readline(), b"held\n")
        return proc

    def test_last_rider_removes_a_lock_file_named_as_the_sign(self):
        # The readers' sign of lock a (lock file a.lock) is named
        # a.lock.readers: a name any lock may have (a pid file, lockfile's
        # PIDLockFile, lockbroker's method pidfile).  lockfs_reader_mark
        # takes the file there (EEXIST) for the sign, since it is a
        # regular file; lockfs_readers_unsign, at the lock's last rider's
        # release, removes it: another owner's lock file, held.  Its
        # owner never used a shared lock, nor even the broker; a second
        # owner then takes the same pid-file lock beside it.
        p = self.path()
        q = p + ".lock.readers"
        # Fixed: a sign holds a text of its own, and a file at its name
        # that does not is in the way: the rider is refused, naming it,
        # and the file is neither taken nor removed.
        self.pidfile_holder(q)
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        r = b.call("ACQUIRE", path=p, mode="shared")
        self.assertCode(r, "EFAILED")
        self.assertIn("a.lock.readers", r.fields.get("message", ""))
        self.assertCode(b.call("RELEASE", path=p), "ENOTMINE")
        self.assertTrue(os.path.exists(q), "the pid file of a live holder "
                        "removed as the readers' sign of another lock")
        self.assertTrue(self.python_sees_held(q, "pidfile"))
        self.assertCode(a.call("RELEASE", path=p), "OK")

    def test_first_reclaimed_of_two_connections_removes_their_marker(self):
        # Two connections of one process and thread ride one lock: one
        # marker (reader_marker_shared keeps it while another rider of
        # that thread rides).  After a restart, the first of them to
        # reclaim and release removes it: reader_marker_shared looks at
        # this run's riders only, and the second, a previous run's rider
        # that may still reclaim in the grace period (its live marker
        # counting as a reader), is not one yet.  Its marker gone, its
        # RECLAIM is refused, and the lock can be released under it.
        p = self.path()
        self.reader_process(p)          # the artefact's reader, lives on
        b1, b2 = self.v2(), self.v2()
        tok = b1.call("ACQUIRE", path=p, mode="shared",
                      thread=7).fields["token"]
        self.assertCode(b2.call("ACQUIRE", path=p, mode="shared",
                                thread=7), "OK")
        self.assertEqual(len(self.markers()), 1)
        self.daemon.stop(signal.SIGKILL)
        b1.close()
        b2.close()
        self.daemon.start()
        c1, c2 = self.v2(), self.v2()
        self.assertCode(c1.call("RECLAIM", path=p, token=tok, thread=7),
                        "OK")
        self.assertCode(c1.call("RELEASE", path=p, thread=7), "OK")
        self.assertEqual(len(self.markers()), 1, "the marker of a live "
                         "rider of the previous run, not reclaimed yet, "
                         "removed by the other connection of its thread")
        self.assertCode(c2.call("RECLAIM", path=p, token=tok, thread=7),
                        "OK")

    def test_sign_left_on_a_lock_upgraded_in_grace(self):
        # A previous run's shared hold keeps its readers' sign through
        # the grace period (its riders may reclaim).  Its reader's
        # UPGRADE, granted at once when no live marker lies there, makes
        # it exclusive: lbd_readers_grace_over removes the sign of shared
        # holds only, and no rider's release ever comes, so the sign
        # stays, through the exclusive hold and its release, beside a
        # lock with no reader at all.  Every later hold of that lock file's
        # user (one who never shares it: Python's lockfile) is judged
        # with a read of the directory, and past 4096 names there, which
        # any user may make in a sticky directory, its dead holder's lock
        # is never broken stale.
        self.daemon.stop()
        self.daemon = Daemon(self.dir, config="grace = 2\n").start()
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        rider = self.reader_process(p)
        self.daemon.stop(signal.SIGKILL)
        a.close()
        rider.kill()
        rider.wait()
        self.daemon.start()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=tok), "OK")
        self.assertCode(a.call("UPGRADE", path=p, timeout=0), "OK")
        self.assertEqual(self.status(a, p)["mode"], "exclusive")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        for _ in range(200):            # past the grace period (2 s)
            if not self.signs():
                break
            time.sleep(0.05)
        left = self.signs()
        # Its user's next hold, exclusive and in-process, dies; 4100 names
        # lie beside it (more than a judge reads).
        for i in range(4100):
            os.close(os.open(os.path.join(self.locks, "n%d" % i),
                             os.O_CREAT | os.O_WRONLY, 0o644))
        nosock = os.path.join(self.dir, "nosock")
        r = Reproductions.lockbroker_cli(
            self, "lock", "--local", p, "--", "sh", "-c",
            "kill -KILL $PPID", socket=nosock)
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
        self.assertTrue(os.path.exists(p + ".lock"))
        r = Reproductions.lockbroker_cli(self, "lock", "-n",
                                         "--break-stale", p, "--", "true")
        self.assertEqual(r.returncode, 0, "a dead holder's exclusive lock "
                         "not broken stale (readers' sign left: %s): %s"
                         % (left, r.stderr))
        self.assertEqual(self.signs(), [], "a readers' sign left beside a "
                         "lock nobody holds, past the grace period")

class RecordedRiders(SharedCase):
    """The riders of connections are recorded (the conn_riders table):
    over a restart a rider's RECLAIM is taken on its record, not on a
    marker alone, and a marker stays while a connection of the previous
    run may still reclaim it (docs/SHARED.md, "Over a restart")."""

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_marker_made_after_a_restart_joins_no_one(self):
        # A user who never rode the lock makes a marker of its own beside
        # a previous run's shared hold (any user may, in a directory
        # open to all) and asks for the hold back with its token (STATUS
        # shows it): it was taken for a rider of the previous run, and
        # rode, in the grace period, beside readers it never was one of.
        d = os.path.join(self.dir, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        p = os.path.join(d, "r")
        self.reader_process(p)          # the artefact's reader
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.restart(b)
        them = self.v2(nobody=True)
        plant = self.spawn(textwrap.dedent("""
            import os
            os.close(os.open(%r, os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % os.path.join(d, "r.lock.reader.%d.%s.%s.0" % (
                them.pid, start_time(them.pid), boot_id8()))),
            user="nobody")
        self.assertEqual(plant.stdout.readline(), b"made\n")
        r = them.call("RECLAIM", path=p, token=tok)
        self.assertNotEqual(r.code, "OK", "a user that never rode the "
                            "lock rides it on a marker it made")
        self.assertEqual(self.status(them, p)["mine"], "0")
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok), "OK")
        self.assertEqual(self.status(b, p)["mine"], "1")

    def test_marker_made_for_another_thread_joins_no_one(self):
        # The same for the rider's own user and process, another thread:
        # its record names the thread that rode.
        p = self.path()
        self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared",
                     thread=1).fields["token"]
        mark, = self.markers()
        self.restart(b)
        open(os.path.join(self.locks, mark[:-1] + "2"), "w").close()
        c = self.v2()
        self.assertNotEqual(c.call("RECLAIM", path=p, token=tok,
                                   thread=2).code, "OK")
        self.assertCode(c.call("RECLAIM", path=p, token=tok, thread=1),
                        "OK")

    def test_both_connections_reclaim_then_their_marker_goes(self):
        p = self.path()
        self.reader_process(p)
        b1, b2 = self.v2(), self.v2()
        tok = b1.call("ACQUIRE", path=p, mode="shared",
                      thread=7).fields["token"]
        self.assertCode(b2.call("ACQUIRE", path=p, mode="shared",
                                thread=7), "OK")
        self.restart(b1, b2)
        c1, c2 = self.v2(), self.v2()
        for c in (c1, c2):
            self.assertCode(c.call("RECLAIM", path=p, token=tok, thread=7),
                            "OK")
        # A third connection of that thread was never a rider.
        self.assertNotEqual(self.v2().call("RECLAIM", path=p, token=tok,
                                           thread=7).code, "OK")
        self.assertCode(c1.call("RELEASE", path=p, thread=7), "OK")
        self.assertEqual(len(self.markers()), 1)
        self.assertCode(c2.call("RELEASE", path=p, thread=7), "OK")
        self.assertEqual(self.markers(), [])

    def test_riders_yet_to_reclaim_outlive_a_second_restart(self):
        # A second restart in the grace period: the record says which
        # connections may still come (the first reclaimed, the second
        # not), written again at the start from memory.
        p = self.path()
        self.reader_process(p)
        b1, b2 = self.v2(), self.v2()
        tok = b1.call("ACQUIRE", path=p, mode="shared",
                      thread=7).fields["token"]
        self.assertCode(b2.call("ACQUIRE", path=p, mode="shared",
                                thread=7), "OK")
        self.restart(b1, b2)
        c1 = self.v2()
        self.assertCode(c1.call("RECLAIM", path=p, token=tok, thread=7),
                        "OK")
        self.restart(c1)
        e1, e2, e3 = self.v2(), self.v2(), self.v2()
        self.assertCode(e1.call("RECLAIM", path=p, token=tok, thread=7),
                        "OK")
        self.assertCode(e2.call("RECLAIM", path=p, token=tok, thread=7),
                        "OK")
        self.assertNotEqual(e3.call("RECLAIM", path=p, token=tok,
                                    thread=7).code, "OK")

    def test_marker_of_a_rider_that_never_reclaims_goes_with_the_grace(self):
        # A rider of the previous run that has not reclaimed when the
        # grace period ends is refused later: its marker, which would
        # count as a live reader for every judge (a dead holder's lock
        # not broken stale while its process lives), goes then.
        self.restart(grace=2)
        p = self.path()
        self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.assertEqual(len(self.markers()), 1)
        self.restart(b)
        self.assertTrue(self.within(lambda: not self.markers()),
                        "the marker of a rider that never reclaimed "
                        "outlives the grace period")
        self.assertNotEqual(self.v2().call("RECLAIM", path=p,
                                           token=tok).code, "OK")

    def test_database_of_an_earlier_release_takes_riders_on_markers(self):
        # A state database an earlier release wrote has no conn_riders
        # table: its riders are taken back on their markers, as that
        # release did.
        import sqlite3
        p = self.path()
        self.reader_process(p)
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.daemon.stop(signal.SIGKILL)
        b.close()
        db = sqlite3.connect(self.daemon.state)
        db.execute("DROP TABLE conn_riders")
        db.commit()
        db.close()
        self.daemon.start()
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok), "OK")
        self.assertEqual(self.status(b, p)["mine"], "1")


    def stopping_daemon(self, trigger):
        """The daemon started again under stopcommit.so: it stops
        (SIGSTOP) before the first COMMIT made while trigger exists."""
        so = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tests", ".libs", "stopcommit.so")
        if not os.path.exists(so):
            self.skipTest("no " + so)
        self.assertEqual(self.daemon.stop(), 0)
        env = dict(os.environ, LD_PRELOAD=so, LB_TEST_STOP_COMMIT="before",
                   LB_TEST_STOP_IF=trigger)
        self.daemon = Daemon(self.dir, env=env).start()

    def test_join_answered_only_once_its_row_is_committed(self):
        # Riders' rows share a commit between iterations (a transaction
        # of riders' rows alone is carried over: lbd_store_carry); the
        # join's OK waits for that commit, so that a daemon killed
        # before it has told nobody of a hold it would not know of.
        trigger = os.path.join(self.dir, "go")
        self.stopping_daemon(trigger)
        p = self.path()
        self.reader_process(p)
        a, b = self.v2(), self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared",
                     thread=1).fields["token"]
        open(trigger, "w").close()
        rid = b.send("ACQUIRE", path=p, mode="shared", thread=2, timeout=0)
        self.assertTrue(KeptReadersReview.stopped(self, self.daemon.proc,
                                                  5),
                        "the daemon did not stop before the commit")
        self.assertIsNone(self.reply_within(b, rid, 0.5), "a rider's join "
                          "answered before the commit of its row")
        self.daemon.kill()
        os.unlink(trigger)
        a.close()
        b.close()
        self.daemon = Daemon(self.dir).start()
        c = self.v2()
        self.assertNotEqual(c.call("RECLAIM", path=p, token=tok, thread=2,
                                   mode="shared").code, "OK",
                            "a join never answered nor committed taken back")
        self.assertCode(c.call("RECLAIM", path=p, token=tok, thread=1,
                               mode="shared"), "OK")

    def test_leave_answered_only_once_its_row_is_gone(self):
        # The same for a leave: its OK waits for the commit that deletes
        # its row.  A leave answered before (its deletion left to a
        # later commit) let a daemon killed in between keep the row of
        # a rider told it had left.
        trigger = os.path.join(self.dir, "go")
        self.stopping_daemon(trigger)
        p = self.path()
        self.reader_process(p)
        b = self.v2()
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        open(trigger, "w").close()
        rid = b.send("RELEASE", path=p)
        self.assertTrue(KeptReadersReview.stopped(self, self.daemon.proc,
                                                  5),
                        "the daemon did not stop before the commit")
        self.assertIsNone(self.reply_within(b, rid, 0.5), "a rider's leave "
                          "answered before the commit of its row's end")
        os.unlink(trigger)
        os.kill(self.daemon.proc.pid, signal.SIGCONT)
        self.assertCode(b.wait(rid), "OK")

    def test_rider_told_it_left_rides_no_more_on_a_marker_it_makes(self):
        # A rider leaves and is told OK; the daemon is killed at once;
        # its user makes the marker again (any user may make its own)
        # and asks for the read back: a row left by a leave answered
        # before its deletion was committed would take it.
        for i in range(5):              # a kill at once after each OK
            p = self.path("r%d" % i)
            self.reader_process(p)
            b = self.v2()
            tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
            mark = self.markers()
            self.assertEqual(len(mark), 1)
            self.assertCode(b.call("RELEASE", path=p), "OK")
            self.daemon.proc.send_signal(signal.SIGKILL)
            self.daemon.proc.wait()
            b.close()
            open(os.path.join(self.locks, mark[0]), "w").close()
            self.daemon.start()
            c = self.v2()
            self.assertNotEqual(c.call("RECLAIM", path=p, token=tok,
                                       mode="shared").code, "OK",
                                "a rider told it had left rides again on "
                                "a marker it made (round %d)" % i)
            c.close()
            os.unlink(os.path.join(self.locks, mark[0]))


class OwnWaits(SharedCase):
    """An owner's other requests queued for a lock are answered when one
    of them is granted, as if they came then (lbd_lock_own_waits)."""

    def grants(self, c, rids, seconds=10):
        """The replies to rids on c, in whatever order they come, all
        within seconds (not the requests' 600 s timeout)."""
        got = {}
        deadline = time.monotonic() + seconds
        while set(rids) - set(got) and time.monotonic() < deadline:
            others = []
            self.assertCode(c.wait(c.send("PING"), seconds, others=others),
                            "OK")
            got.update((r.id, r) for r in others)
            if set(rids) - set(got):
                time.sleep(0.05)
        self.assertEqual(set(rids) - set(got), set(),
                         "requests waiting for their own owner's hold")
        return got

    def test_second_exclusive_wait_granted_with_the_first(self):
        a, b = self.v2(), self.v2()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        r1 = self.queued(b, "ACQUIRE", path=p, timeout=600)
        r2 = self.queued(b, "ACQUIRE", path=p, timeout=600)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        got = self.grants(b, [r1, r2])
        self.assertCode(got[r1], "OK")
        self.assertCode(got[r2], "OK")
        self.assertEqual(got[r1].fields["token"], got[r2].fields["token"])
        # One hold, counted once: one RELEASE frees it for the next.
        r3 = self.queued(a, "ACQUIRE", path=p, timeout=600)
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(a.wait(r3, 10), "OK")

    def test_own_waits_of_another_thread_wait_on(self):
        # Another thread of the connection is another owner: it waits.
        a, b = self.v2(), self.v2()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        r1 = self.queued(b, "ACQUIRE", path=p, thread=1, timeout=600)
        r2 = self.queued(b, "ACQUIRE", path=p, thread=2, timeout=600)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertCode(b.wait(r1, 10), "OK")
        self.assertIsNone(self.reply_within(b, r2, 0.3))
        self.assertCode(b.call("RELEASE", path=p, thread=1), "OK")
        self.assertCode(b.wait(r2, 10), "OK")

    def test_exclusive_wait_beside_own_shared_grant_refused(self):
        # b's shared request is granted; its exclusive one, queued
        # behind, would ride... no: it is a change of mode, refused as
        # an ACQUIRE coming now would be.
        a, b = self.v2(), self.v2()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        r1 = self.queued(b, "ACQUIRE", path=p, mode="shared", timeout=600)
        r2 = self.queued(b, "ACQUIRE", path=p, timeout=600)
        self.assertCode(a.call("RELEASE", path=p), "OK")
        got = self.grants(b, [r1, r2])
        self.assertCode(got[r1], "OK")
        self.assertCode(got[r2], "EFAILED")
        self.assertIn("UPGRADE", got[r2].fields["message"])
        self.assertEqual(self.status(b, p)["mode"], "shared")

    def test_shared_wait_behind_a_writer_granted_with_own_read(self):
        # b's first shared request is granted beside reader r; its
        # second, queued behind writer w (who waits for b), would wait
        # for w, who waits for b: answered with the first instead.
        a, b, w = self.v2(), self.v2(), self.v2()
        p = self.path()
        self.assertCode(a.call("ACQUIRE", path=p), "OK")
        r1 = self.queued(b, "ACQUIRE", path=p, mode="shared", timeout=600)
        rw = self.queued(w, "ACQUIRE", path=p, timeout=600)
        r2 = b.send("ACQUIRE", path=p, mode="shared", timeout=600)
        got = []
        self.assertCode(b.wait(b.send("PING"), 10, others=got), "OK")
        if got:         # refused as a cycle of its own: also an answer
            self.assertEqual([(g.id, g.code) for g in got],
                             [(r2, "EDEADLK")])
        self.assertCode(a.call("RELEASE", path=p), "OK")
        replies = self.grants(b, [r1] + ([] if got else [r2]))
        self.assertCode(replies[r1], "OK")
        if not got:
            self.assertCode(replies[r2], "OK")
        self.assertIsNone(self.reply_within(w, rw, 0.3))
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(w.wait(rw, 10), "OK")


class LeftMarkers(SharedCase):
    """A marker of the artefact's own reader is left over (a killed
    daemon handed the artefact to a rider, or made a rider's marker, and
    did not finish): it is no reader's, and goes with the hold."""

    def own_marker_left(self):
        """a (thread 1) reads p, b (thread 2) rides beside it; a lets go
        and the artefact is handed to b, whose marker goes; then b's
        marker is made again, as a killed daemon leaves it.  The daemon is
        killed and started again; b's connection, its hold's token and
        the marker's name."""
        p = self.path()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared", thread=1),
                        "OK")
        tb = b.call("ACQUIRE", path=p, mode="shared", thread=2)
        self.assertCode(tb, "OK")
        mark, = [f for f in os.listdir(self.locks) if ".reader." in f]
        self.assertTrue(mark.endswith(".2"), mark)
        self.assertCode(a.call("RELEASE", path=p, thread=1), "OK")
        self.assertCode(b.call("PING"), "OK")
        self.assertEqual([f for f in os.listdir(self.locks)
                          if ".reader." in f], [], "handed: its marker goes")
        open(os.path.join(self.locks, mark), "w").close()
        self.daemon.stop(signal.SIGKILL)
        a.close()
        b.close()
        self.daemon.start()
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tb.fields["token"],
                               thread=2), "OK")
        return p, b, mark

    def test_own_marker_keeps_no_hold_for_readers(self):
        # b's release in the grace period: its own marker is not a reader
        # of the previous run to keep the hold for (the lock free at once,
        # not after the grace period), and it goes.
        p, b, mark = self.own_marker_left()
        self.assertCode(b.call("RELEASE", path=p, thread=2), "OK")
        c = self.v2()
        self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK",
                        "held for a reader that is the releaser itself")
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_sign_a_killed_maker_left_goes(self):
        # The readers' sign is written under a name of its maker's user
        # first, then linked in: a daemon killed in between left that
        # name, which the next sign that user makes (or removes) removes.
        p = self.path()
        left = os.path.join(self.locks, "a.lock.readers.%d.new" % os.getuid())
        open(left, "w").close()
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])
        open(left, "w").close()         # left after the sign was made
        self.assertCode(a.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=p, mode="shared"), "OK")
        self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_own_marker_goes_with_the_connection(self):
        p, b, mark = self.own_marker_left()
        b.close()
        c = self.v2()
        self.assertCode(c.call("ACQUIRE", path=p, timeout=30), "OK")
        self.assertCode(c.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])



class TodayReview(SharedCase):
    """Attacks on the day's changes (reconcile.c reclaim_own_artefact)."""

    def reader_code(self, p):
        """The code of a shared ACQUIRE of p (timeout 0) by another
        process, which keeps what it got until the test ends."""
        proc = self.spawn(textwrap.dedent("""
            import sys, time
            sys.path.insert(0, %r)
            from lbdaemon import Client
            c = Client(%r, hello=False)
            assert c.call("HELLO", version=2).verb == "OK"
            r = c.call("ACQUIRE", path=%r, mode="shared", timeout=0)
            print(r.code, flush=True)
            time.sleep(600)
            """ % (os.path.dirname(os.path.abspath(__file__)),
                   self.daemon.socket, p)))
        return proc.stdout.readline().decode().strip()

    def test_reclaim_shared_of_an_exclusive_in_process_lock_refused(self):
        # Attack: reclaim_own_artefact takes a RECLAIM mode=shared of a
        # lock with no holder whenever the artefact is the client's own
        # and the token it names has an earlier generation's high bits.
        # Nothing ties it to a restart, to a hold the daemon ever granted
        # (any token of generation 0 will do, made up: 1), nor to a
        # shared artefact (no readers' sign, no marker): a process that
        # holds the lock EXCLUSIVE in-process (its own link artefact, as
        # lockfs's in-process acquire makes it) turns it into a shared
        # hold of the daemon's, and another process's reader is then
        # granted while that exclusive hold stands: the lock held by a
        # writer and a reader at once.  What should happen: RECLAIM of
        # a hold the daemon never granted (no restart, no such token
        # issued, no sign of a shared lock) is refused ENOENT, and the
        # other reader waits (EALREADY at timeout 0).
        p = self.path()
        mine = unique_name(os.getpid(), p + ".lock", "link")
        with open(mine, "w"):
            pass
        os.link(mine, p + ".lock")      # held exclusive, in-process
        b = self.v2()
        r = b.call("RECLAIM", path=p, token="1", mode="shared")
        code = self.reader_code(p)
        os.unlink(p + ".lock")
        os.unlink(mine)
        self.assertCode(r, "ENOENT", "an in-process exclusive lock taken "
                        "as a shared hold by a made-up token; then "
                        "another reader's ACQUIRE: %s\n%s" %
                        (code, self.daemon.logtext()[-1500:]))
        self.assertEqual(code, "EALREADY")



class KeptReaders(SharedCase):
    """ACQUIRE pid= mode=shared (lockbroker acquire --shared): a reader
    kept for a process, which outlives the connection that asked for it,
    ends with its process or its RELEASE pid=, takes the artefact over
    when its reader leaves, and survives a restart of the daemon."""

    lockbroker = Command.lockbroker

    def sleeper(self, user=None):
        return self.spawn("import time; time.sleep(600)", user=user)

    def kept(self, p, proc, **kw):
        """Asks, over a connection closed at once, for p shared kept
        for proc; the reply."""
        c = self.v2()
        r = c.call("ACQUIRE", path=p, pid=proc.pid, mode="shared", **kw)
        c.close()
        return r

    def until(self, what, seconds=10):
        deadline = time.monotonic() + seconds
        while not what():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.02)

    def markers(self):
        return sorted(f for f in os.listdir(self.locks)
                      if ".reader." in f)

    def end(self, proc):
        proc.kill()
        proc.wait()

    def test_kept_readers_outlive_the_connection_and_end_with_the_process(self):
        for method in ("link", "symlink", "mkdir", "pidfile"):
            with self.subTest(method=method):
                p = self.path(method)
                a, b = self.sleeper(), self.sleeper()
                self.assertCode(self.kept(p, a, method=method), "OK")
                self.assertCode(self.kept(p, b, method=method), "OK")
                c = self.v2()
                self.assertCode(c.call("ACQUIRE", path=p, method=method,
                                       timeout=0), "EALREADY")
                self.assertTrue(self.python_sees_held(p, method))
                st = self.status(c, p, method=method)
                self.assertEqual((st["mode"], st["holders"], st["holder_pid"]),
                                 ("shared", "2", str(a.pid)))
                self.assertEqual(len([m for m in self.markers()
                                      if ".reader.%d." % b.pid in m]), 1)
                # Its reader's process exits: the artefact goes to the
                # kept rider, never absent meanwhile.
                self.end(a)
                self.until(lambda: self.status(c, p, method=method)
                           .get("holder_pid") == str(b.pid))
                self.assertEqual(self.status(c, p, method=method)
                                 ["holders"], "1")
                self.assertTrue(self.python_sees_held(p, method))
                self.assertEqual(self.markers(), [])
                self.end(b)
                self.until(lambda: self.status(c, p, method=method)
                           ["locked"] == "0")
                self.assertEqual(os.listdir(self.locks), [])

    def test_kept_reader_waits_in_the_queue_and_is_released_by_pid(self):
        p = self.path()
        w, x = self.v2(), self.v2()
        self.assertCode(w.call("ACQUIRE", path=p), "OK")
        a, b = self.sleeper(), self.sleeper()
        c = self.v2()
        rid = self.queued(c, "ACQUIRE", path=p, pid=a.pid, mode="shared",
                          timeout=30)
        self.assertIsNone(self.reply_within(c, rid, 0.3))
        self.assertCode(w.call("RELEASE", path=p), "OK")
        self.assertCode(c.wait(rid, 10), "OK")
        self.assertCode(self.kept(p, b), "OK")
        # A writer waits for both kept readers.
        wid = self.queued(x, "ACQUIRE", path=p, timeout=30)
        self.assertCode(c.call("RELEASE", path=p, pid=b.pid), "OK")
        self.assertEqual(self.markers(), [])
        self.assertIsNone(self.reply_within(x, wid, 0.3))
        self.assertCode(c.call("RELEASE", path=p, pid=b.pid), "ENOTMINE")
        # Re-entrant: a kept reader asked for again is answered OK; an
        # exclusive ACQUIRE for it is refused, never a silent change.
        self.assertCode(c.call("ACQUIRE", path=p, pid=a.pid, mode="shared",
                               timeout=0), "OK")
        self.assertCode(c.call("ACQUIRE", path=p, pid=a.pid, timeout=0),
                        "EFAILED")
        self.assertCode(c.call("RELEASE", path=p, pid=a.pid), "OK")
        self.assertCode(x.wait(wid, 10), "OK")
        self.assertEqual(self.status(x, p)["mode"], "exclusive")

    def test_another_user_cannot_release_a_kept_reader(self):
        p = self.path()
        a, b = self.sleeper(), self.sleeper()
        self.assertCode(self.kept(p, a), "OK")
        self.assertCode(self.kept(p, b), "OK")
        n = self.v2(nobody=True)
        self.assertNotEqual(n.call("RELEASE", path=p, pid=b.pid).code, "OK")
        self.assertNotEqual(n.call("ACQUIRE", path=p, pid=b.pid,
                                   mode="shared", timeout=0).code, "OK")
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        self.assertEqual(len(self.markers()), 1)

    def test_kept_readers_survive_a_restart(self):
        p = self.path()
        a, b, gone = self.sleeper(), self.sleeper(), self.sleeper()
        for proc in (a, b, gone):
            self.assertCode(self.kept(p, proc), "OK")
        self.assertEqual(len(self.markers()), 2)
        self.daemon.stop(signal.SIGKILL)
        self.end(gone)          # exits while no daemon watches it
        self.daemon.start()
        c = self.v2()
        st = self.status(c, p)
        self.assertEqual((st["mode"], st["holders"], st["holder_pid"]),
                         ("shared", "2", str(a.pid)))
        self.assertEqual([m for m in self.markers()
                          if ".reader.%d." % gone.pid in m], [],
                         "the marker of a reader gone meanwhile")
        self.assertIn("kept for pid %d, shared, as in the previous run"
                      % b.pid, self.daemon.logtext())
        self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "EALREADY")
        # Handed to the kept rider when its reader's process exits,
        # as before the restart.
        self.end(a)
        self.until(lambda: self.status(c, p).get("holder_pid") == str(b.pid))
        self.assertTrue(self.python_sees_held(p))
        self.daemon.stop()              # a clean stop keeps it too
        self.daemon.start()
        self.assertEqual(self.status(self.v2(), p)["holder_pid"], str(b.pid))
        self.end(b)
        self.until(lambda: self.status(self.v2(), p)["locked"] == "0")
        self.assertEqual(self.markers(), [])

    def test_first_reader_dead_at_start_hands_to_a_kept_reader(self):
        # The daemon killed, the artefact's reader (kept) exits meanwhile:
        # the start adopts the kept riders before it judges that hold,
        # so its end hands the artefact to one of them, recorded anew
        # while the start walks the records.
        for method in ("link", "mkdir"):
            with self.subTest(method=method):
                p = self.path(method)
                a, b, c = self.sleeper(), self.sleeper(), self.sleeper()
                for proc in (a, b, c):
                    self.assertCode(self.kept(p, proc, method=method),
                                    "OK")
                self.daemon.stop(signal.SIGKILL)
                self.end(a)
                self.daemon.start()
                w = self.v2()
                st = self.status(w, p, method=method)
                self.assertEqual(st["mode"], "shared")
                self.assertIn(st["holder_pid"], (str(b.pid), str(c.pid)))
                self.assertEqual(st["holders"], "2")
                self.assertTrue(self.python_sees_held(p, method))
                self.assertCode(w.call("ACQUIRE", path=p, method=method,
                                       timeout=0), "EALREADY")
                self.daemon.stop()      # its records, as they stand now
                self.daemon.start()
                w = self.v2()
                self.assertEqual(self.status(w, p, method=method)
                                 ["holders"], "2")
                self.end(b)
                self.end(c)
                self.until(lambda: self.status(self.v2(), p, method=method)
                           ["locked"] == "0")

    def test_command_acquire_shared(self):
        p = self.path()
        a, b = self.sleeper(), self.sleeper()
        for proc in (a, b):
            r = self.lockbroker("acquire", "-s", "-n", "--pid",
                                str(proc.pid), p)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.lockbroker("acquire", "-n", "--pid", str(self.sleeper().pid),
                            p)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        # Without the daemon: refused, never taken exclusive.
        q = self.path("local")
        r = self.lockbroker("acquire", "--shared", "-n", "--local", "--pid",
                            str(a.pid), q)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("shared locks need the daemon", r.stderr)
        self.assertFalse(os.path.exists(q + ".lock"))
        # The daemon away, an in-process release of the artefact's kept
        # reader, a live rider beside it, removes nothing.
        self.daemon.stop(signal.SIGKILL)
        env = dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket)
        r = subprocess.run(
            [os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                          "tools", "lockbroker"), "release", "--pid",
             str(a.pid), p], capture_output=True, text=True, env=env,
            timeout=60)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("held shared", r.stderr)
        self.assertTrue(self.python_sees_held(p))
        self.daemon.start()
        for proc in (b, a):
            r = self.lockbroker("release", "--pid", str(proc.pid), p)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.locks), [])

class KeptReadersReview(SharedCase):
    """Review of "Kept readers" (ACQUIRE pid= mode=shared): each test
    asserts what docs/SHARED.md promises and fails on the code as it
    stands."""

    sleeper = KeptReaders.sleeper
    kept = KeptReaders.kept
    until = KeptReaders.until
    markers = KeptReaders.markers
    end = KeptReaders.end

    def riders_recorded(self):
        """The riders table of the state database: (pid, uid) rows."""
        import sqlite3
        db = sqlite3.connect(self.daemon.state)
        try:
            return sorted(db.execute("SELECT pid, uid FROM riders"))
        finally:
            db.close()

    def stopped(self, proc, seconds):
        """Whether proc is stopped (SIGSTOP: stopcommit.so) within
        seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    return True
            time.sleep(0.02)
        return False

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_kept_riders_of_one_process_for_two_users_keep_their_records(self):
        # Found: root's kept reader for nobody's process b and nobody's
        # own kept reader for b were two riders with ONE record (keyed by
        # lock, pid, start): nobody's release deleted root's record, and
        # after a restart a writer was granted beside root's reader.
        # Now a process is kept reading a lock once: nobody, who may not
        # act for root's rider, is refused (EFAILED, saying so), and
        # root's reader keeps its record over a kill -9.
        d = os.path.join(self.dir, "open")      # not sticky: two users
        os.mkdir(d)                             # may share a lock there
        os.chmod(d, 0o777)
        p = os.path.join(d, "x")
        a, b = self.sleeper(), self.sleeper(user="nobody")
        self.assertCode(self.kept(p, a), "OK")
        self.assertCode(self.kept(p, b), "OK")  # root's, for nobody's b
        n = self.v2(nobody=True)
        r = n.call("ACQUIRE", path=p, pid=b.pid, mode="shared", timeout=0)
        self.assertCode(r, "EFAILED")
        self.assertIn("one kept reader a process", r.fields["message"])
        self.assertNotEqual(n.call("RELEASE", path=p, pid=b.pid).code, "OK")
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        self.assertEqual(self.riders_recorded(), [(b.pid, 0)])
        self.daemon.stop(signal.SIGKILL)
        self.daemon = Daemon(self.dir, config="grace = 1\n").start()
        c = self.v2()
        holders = self.status(c, p)["holders"]
        self.assertCode(c.call("RELEASE", path=p, pid=a.pid), "OK")
        time.sleep(2)                           # past the grace period
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while root's kept reader for b "
                        "(never released, its process alive) reads")
        self.assertEqual(holders, "2",
                         "root's kept reader for b not kept over the restart")

    def test_kept_rider_handed_the_artefact_before_the_commit_stays_kept(self):
        # What goes wrong: the artefact's reader (kept for a) is
        # released while a rider is kept for b: lbd_hold_end hands the
        # artefact to b (b's file renamed over the lock file) and removes
        # b's marker, before the iteration's commit.  A daemon killed
        # before that commit leaves the riders table naming b and the
        # holds table naming a.  At start b's record is not adopted (its
        # marker is gone: "it ends") and a's hold is forgotten (its
        # artefact is b's now).  A rider of a connection in this state
        # gets its hold back by RECLAIM (reclaim_own_artefact); a kept
        # rider has no connection to reclaim with, and nothing adopts
        # it: the lock is left held "outside the broker" by b's file,
        # shown exclusive, its process not watched.  When b exits the
        # lock is never freed (its file stays, naming a dead process)
        # and readers can no longer join it.  Why it matters: a kept
        # reader must survive a kill -9 like a kept exclusive hold, and
        # end with its process; here it does neither.
        stopcommit = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                                  "tests", ".libs", "stopcommit.so")
        if not os.path.exists(stopcommit):
            self.skipTest("no " + stopcommit)
        p = self.path()
        a, b = self.sleeper(), self.sleeper()
        self.assertEqual(self.daemon.stop(), 0)
        env = dict(os.environ, LD_PRELOAD=stopcommit,
                   LB_TEST_STOP_COMMIT="before",
                   LB_TEST_STOP_IF=unique_name(b.pid, p + ".lock", "link"))
        self.daemon = Daemon(self.dir, env=env).start()
        self.assertCode(self.kept(p, a), "OK")
        self.assertCode(self.kept(p, b), "OK")
        c = self.v2()
        c.send("RELEASE", path=p, pid=a.pid)    # handed to b's rider
        self.assertTrue(self.stopped(self.daemon.proc, 5),
                        "the daemon did not stop before the commit")
        self.daemon.kill()
        self.daemon.proc.wait()
        self.daemon = Daemon(self.dir).start()
        c = self.v2()
        st = self.status(c, p)
        self.assertEqual((st["mode"], st.get("holder_pid")),
                         ("shared", str(b.pid)),
                         "b's kept read not kept over the restart: %r\n%s"
                         % (st, self.daemon.logtext()))
        # b's process exits: its kept reader ends, the lock is free.
        self.end(b)
        self.until(lambda: self.status(c, p)["locked"] == "0", 5)

class KeptReadersReview2(SharedCase):
    """Second review of "Kept readers" (ACQUIRE pid= mode=shared): each
    test asserts what docs/SHARED.md promises and fails on the code as it
    stands."""

    sleeper = KeptReaders.sleeper
    kept = KeptReaders.kept
    until = KeptReaders.until
    markers = KeptReaders.markers
    end = KeptReaders.end
    riders_recorded = KeptReadersReview.riders_recorded
    stopped = KeptReadersReview.stopped
    plant_marker = Reproductions.plant_marker

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_kept_readers_of_one_process_for_two_users_survive_a_restart(self):
        # Found: root's kept reader for nobody's process b and nobody's
        # own had a record each but ONE marker, of the first to join: at
        # a restart the other's record found no marker of its user's and
        # was dropped, and a writer was granted beside it.  Now a
        # process is kept reading a lock once: nobody's own kept reader
        # for b comes first, root's ACQUIRE for b (root may act for it)
        # is answered as the same hold, and that one reader, with its
        # one record and marker, is kept over a clean restart.
        d = os.path.join(self.dir, "open")      # not sticky: two users
        os.mkdir(d)                             # may share a lock there
        os.chmod(d, 0o777)
        p = os.path.join(d, "x")
        a, b = self.sleeper(), self.sleeper(user="nobody")
        self.assertCode(self.kept(p, a), "OK")
        n = self.v2(nobody=True)
        self.assertCode(n.call("ACQUIRE", path=p, pid=b.pid, mode="shared",
                               timeout=0), "OK")   # nobody's own for b
        n.close()
        self.assertCode(self.kept(p, b), "OK")  # root's: the same hold
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        self.assertEqual(self.riders_recorded(), [(b.pid, NOBODY)])
        self.assertEqual(self.daemon.stop(), 0)     # a clean stop
        self.daemon.start()
        c = self.v2()
        holders = self.status(c, p)["holders"]
        self.assertCode(c.call("RELEASE", path=p, pid=a.pid), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while nobody's kept reader for b "
                        "(never released, its process alive) reads")
        self.assertEqual(holders, "2", "a kept reader lost over a clean "
                         "restart:\n" + self.daemon.logtext())
        self.assertCode(c.call("RELEASE", path=p, pid=b.pid), "OK")  # root
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "OK")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_marker_planted_at_a_kept_readers_name_drops_it_at_a_restart(self):
        # What goes wrong: a kept reader's marker is named from things
        # any user can read ahead (the lock file's name, the pid, its
        # start time from /proc/PID/stat, the boot id, thread 0).  User
        # nobody makes that name in a sticky directory (/tmp) before
        # root's kept reader for b joins: lockfs_reader_mark's
        # empty_make takes EEXIST as "its own, from a join before" and
        # the join is answered OK on nobody's file.  At the next start
        # (a clean stop, or a kill) lbd_reader_adopt_kept finds no
        # marker of root's (reader_marked: a file of r's user) and
        # drops the kept reader ("has no marker beside the lock file
        # (removed): it ends"); when the artefact's reader releases, a
        # writer is granted while b's kept reader, told OK, never
        # released, its process alive, still believes it reads.  (The
        # same planted file does not count for a stale-breaker either: in
        # a sticky directory only the lock file's owner's markers
        # count, so with the daemon away b's read does not keep a dead
        # first reader's lock from being broken.)  Why it matters: any
        # local user can make a root-kept shared lock in /tmp stop
        # excluding across a restart; the join should refuse a name it
        # did not make (as a sign in the way is refused), or make its
        # marker under a name of its own.
        d = self.shared()                       # sticky, mode 1777
        p = os.path.join(d, "x")
        a, b = self.sleeper(), self.sleeper()
        self.plant_marker(p, "x.lock.reader.%d.%s.%s.0"
                          % (b.pid, start_time(b.pid), boot_id8()))
        self.assertCode(self.kept(p, a), "OK")
        r = self.kept(p, b)
        if r.code != "OK":
            return      # refused on nobody's file: the right answer
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        c = self.v2()
        holders = self.status(c, p)["holders"]
        self.assertCode(c.call("RELEASE", path=p, pid=a.pid), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while b's kept reader (never "
                        "released, its process alive) reads")
        self.assertEqual(holders, "2", "b's kept reader dropped at the "
                         "restart:\n" + self.daemon.logtext())

    def test_kept_rider_beside_a_rider_handed_the_artefact_stays(self):
        # What goes wrong: a lock read by a's kept reader (the
        # artefact's), a rider kept for k, and a connection's rider r
        # (the newest).  a is released: lbd_hold_end hands the artefact
        # to r (lbd_reader_next: the newest), its file renamed over the
        # lock file before the iteration's commit, and the daemon is
        # killed before that commit.  At start k's record is adopted on
        # a's recorded hold (same token, marker there); a's hold is
        # found not to own the artefact, and lbd_reader_owner looks only
        # among KEPT riders for the lock file's owner: r's is a
        # connection's, so the "mine == 0" branch forgets a's hold
        # (lbd_hold_forget), which ends every rider: k's kept reader is
        # "lost" ("the lock's artefact went with its reader's hold"),
        # its marker removed, though r reclaims the very artefact a
        # moment later (reclaim_own_artefact) and k's process, told OK,
        # never released, still reads.  Once r releases, a writer is
        # granted beside k.  (The kept-rider case of the first review
        # was fixed; a kept rider beside a connection's rider that got
        # the artefact was not.  a's unique file is also left behind:
        # gone_unique_remove only runs there for a dead holder.)  Why it
        # matters: a lock that does not exclude after a kill -9.
        stopcommit = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                                  "tests", ".libs", "stopcommit.so")
        if not os.path.exists(stopcommit):
            self.skipTest("no " + stopcommit)
        self.assertEqual(self.daemon.stop(), 0)
        trigger = os.path.join(self.dir, "go")  # armed once made
        env = dict(os.environ, LD_PRELOAD=stopcommit,
                   LB_TEST_STOP_COMMIT="before", LB_TEST_STOP_IF=trigger)
        self.daemon = Daemon(self.dir, env=env).start()
        p = self.path()
        a, k = self.sleeper(), self.sleeper()
        self.assertCode(self.kept(p, a), "OK")
        self.assertCode(self.kept(p, k), "OK")
        r = self.v2()
        tok = r.call("ACQUIRE", path=p, mode="shared",
                     timeout=0).fields["token"]
        open(trigger, "w").close()
        c = self.v2()
        c.send("RELEASE", path=p, pid=a.pid)    # handed to r, the newest
        self.assertTrue(self.stopped(self.daemon.proc, 5),
                        "the daemon did not stop before the commit")
        self.daemon.kill()
        self.daemon.proc.wait()
        os.unlink(trigger)
        r.close()
        self.daemon = Daemon(self.dir).start()
        r = self.v2()
        self.assertCode(r.call("RECLAIM", path=p, token=tok, mode="shared"),
                        "OK")
        holders = self.status(r, p)["holders"]
        self.assertCode(r.call("RELEASE", path=p), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while k's kept reader (never "
                        "released, its process alive) reads:\n"
                        + self.daemon.logtext())
        self.assertEqual(holders, "2", "k's kept reader lost at start")

class KeptReadersReview3(SharedCase):
    """Third review of "Kept readers" (commits 6c77bb8, 3204187): each
    test asserts what docs/SHARED.md promises and fails on the code as it
    stands."""

    sleeper = KeptReaders.sleeper
    kept = KeptReaders.kept
    until = KeptReaders.until
    markers = KeptReaders.markers
    end = KeptReaders.end
    riders_recorded = KeptReadersReview.riders_recorded

    def open_dir(self):
        d = os.path.join(self.dir, "open")      # not sticky: two users
        os.mkdir(d)                             # may share a lock there
        os.chmod(d, 0o777)
        return d

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_kept_once_counts_the_artefacts_kept_reader_too(self):
        # What goes wrong: reader_kept_once (3204187) looks for another
        # kept reader of the process among the lock's RIDERS only.  When
        # root's kept reader for nobody's process b is the artefact's
        # reader (b came first, on a free lock), nobody's own kept
        # ACQUIRE for b finds no hold it may act for (lbd_hold_find: not
        # its uid), passes reader_kept_once, and joins as a second kept
        # reader of b: one process kept reading one lock twice, by two
        # users, the very state the fix was meant to refuse (two
        # records, a rider of b riding on b's own artefact).  When root
        # releases its hold for b the artefact is "handed" from b to b
        # (one unique name: lockfs_handoff sees one owner, nothing to
        # do): observed, root's RELEASE pid=b is OK, holders drops to 1,
        # b's marker and the readers' sign go, the lock file stays
        # root's, and nobody's RELEASE pid=b of its own kept reader
        # (told OK) is then refused ENOTMINE "locked, but not by you".
        # Why it matters: the invariant "one kept reader a process" is
        # what the restart's adoption relies on (one record, one
        # marker, one user); here it does not hold.
        d = self.open_dir()
        p = os.path.join(d, "x")
        b = self.sleeper(user="nobody")
        self.assertCode(self.kept(p, b), "OK")  # root's, the artefact's
        n = self.v2(nobody=True)
        r = n.call("ACQUIRE", path=p, pid=b.pid, mode="shared", timeout=0)
        holders = self.status(self.v2(), p)["holders"]
        self.assertCode(r, "EFAILED", "nobody's kept ACQUIRE for b, which "
                        "root keeps reading as the artefact's reader; "
                        "holders=%s, riders recorded %r"
                        % (holders, self.riders_recorded()))
        self.assertEqual(holders, "1")

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_kept_reader_for_a_process_that_reads_on_its_own(self):
        # (Answered with a refusal that says why: a process and thread
        # reads a lock as one user; the test asserts that now.)
        # What went wrong: a kept reader's marker is named like the
        # rider of its process's unthreaded connection (thread 0 both).
        # Root keeps nobody's process n reading (a supervisor's
        # `lockbroker acquire -s --pid`), then n's own connection asks
        # for a shared hold of the same lock: since 3204187,
        # lockfs_reader_mark finds root's file at its marker's name and
        # refuses the join ("in the way", EFAILED), though the lock is
        # only read and nobody waits.  The reverse order (n reads, then
        # root's kept ACQUIRE for n) is refused too.
        # Why it matters: fix (1) applies to every rider, and turns a
        # legitimate read into an error: a process cannot read a lock
        # that it is kept reading by another user; two holds of one
        # process need markers of their own (or a refusal that says so,
        # as reader_kept_once does for two kept ones).
        d = self.open_dir()
        p = os.path.join(d, "x")
        a = self.sleeper()
        self.assertCode(self.kept(p, a), "OK")
        n = self.v2(nobody=True)
        self.assertCode(self.kept(p, n), "OK")  # root's, for n's process
        r = n.call("ACQUIRE", path=p, mode="shared", timeout=0)
        # Answered since: refused, saying why (before: "in the way",
        # naming a file), the kept reader untouched.
        self.assertCode(r, "EFAILED")
        self.assertIn("reads a lock as one user", r.fields["message"])
        self.assertEqual(self.status(self.v2(), p)["holders"], "2")
        self.assertEqual(len([f for f in os.listdir(d)
                              if ".reader." in f]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
