"""sets.py: sets, several locks granted together or not at all, over the
daemon's real socket (docs/PROTOCOL.md, "Sets"; docs/SHARED.md).

A set is one ACQUIRE per lock, each with the same set= and of=, in a
version-3 session.  The daemon grants every lock of it in one step, or
none: it never holds one of them while it waits for another, and its
waits keep their places in the locks' queues, first come first served
with single ACQUIREs.
"""
import os
import socket
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import PYTHON, DaemonCase  # noqa: E402


class SetCase(DaemonCase):
    prefix = "lbsets."

    def session(self, version=3):
        c = self.client(hello=False)
        r = c.call("HELLO", version=version)
        self.assertCode(r, "OK")
        self.assertEqual(r.fields["version"], str(version))
        return c

    def send_set(self, c, paths, key=1, **fields):
        """Sends one ACQUIRE per path, members of set key; their ids."""
        return [c.send("ACQUIRE", path=p, set=key, of=len(paths), **fields)
                for p in paths]

    def answers(self, c, ids, seconds=10.0):
        """The replies to ids (in any order), by id."""
        got = {}
        deadline = time.monotonic() + seconds
        while len(got) < len(ids):
            r = c.read(max(deadline - time.monotonic(), 0.01))
            self.assertIn(r.id, ids, r)
            got[r.id] = r
        return got

    def none_within(self, c, seconds):
        """Whether nothing comes on c within seconds."""
        try:
            r = c.read(seconds)
        except (TimeoutError, socket.timeout):
            return True
        self.fail("unexpected reply %r" % r)

    def held_by(self, c, p):
        r = c.call("STATUS", path=p)
        self.assertCode(r, "OK")
        return r.fields.get("locked") == "1", r.fields.get("mine") == "1"

    def python_holds(self, p):
        """A process holding p with Python's lockfile (LinkLockFile), and
        releasing it when told (a line on its stdin)."""
        proc = subprocess.Popen([PYTHON, "-c", textwrap.dedent("""
            import sys
            from lockfile.linklockfile import LinkLockFile
            l = LinkLockFile(sys.argv[1])
            l.acquire(timeout=10)
            print("held", flush=True)
            sys.stdin.readline()
            l.release()
            print("released", flush=True)
            """), p], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.procs.append(proc)
        self.assertEqual(proc.stdout.readline(), b"held\n")
        return proc


class Grant(SetCase):
    def test_granted_at_once_when_all_are_free(self):
        a, b, c3 = self.path("a"), self.path("b"), self.path("c")
        s = self.session()
        got = self.answers(s, self.send_set(s, [a, b, c3], timeout=5))
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        self.assertEqual(len({r.fields["token"] for r in got.values()}), 3)
        for p in (a, b, c3):
            self.assertEqual(self.held_by(s, p), (True, True))
            self.assertTrue(os.path.exists(p + ".lock"))
        for p in (a, b, c3):
            self.assertCode(s.call("RELEASE", path=p), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_members_of_several_methods(self):
        a, b = self.path("a"), self.path("b")
        s = self.session()
        ids = [s.send("ACQUIRE", path=a, method="mkdir", set=7, of=2),
               s.send("ACQUIRE", path=b, method="symlink", set=7, of=2)]
        got = self.answers(s, ids)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        self.assertTrue(os.path.isdir(a + ".lock"))
        self.assertTrue(os.path.islink(b + ".lock"))
        self.assertCode(s.call("RELEASE", path=a, method="mkdir"), "OK")
        self.assertCode(s.call("RELEASE", path=b, method="symlink"), "OK")

    def test_fifo_with_single_requests(self):
        # Before sets were the daemon's, a set waited for one lock while
        # holding none and took the others after: a single ACQUIRE of B
        # asked after the set's was granted B at once, ahead of it.
        a, b = self.path("a"), self.path("b")
        x, s, y = self.session(), self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=a), "OK")
        ids = self.send_set(s, [a, b], timeout=60)
        self.assertCode(s.call("PING"), "OK")
        # B is free on disk (the set holds nothing while it waits) ...
        self.assertFalse(os.path.exists(b + ".lock"))
        self.assertEqual(self.held_by(y, b)[0], False)
        # ... but the set's wait is first in its queue: a later ACQUIRE
        # waits behind it, one that does not wait is refused.
        self.assertCode(y.call("ACQUIRE", path=b, timeout=0), "EALREADY")
        ry = y.send("ACQUIRE", path=b, timeout=60)
        self.assertTrue(self.none_within(y, 0.5))
        # A released: the set has both, in one step; Y waits on.
        self.assertCode(x.call("RELEASE", path=a), "OK")
        got = self.answers(s, ids)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        self.assertEqual(self.held_by(s, a), (True, True))
        self.assertEqual(self.held_by(s, b), (True, True))
        self.assertTrue(self.none_within(y, 0.3))
        self.assertCode(s.call("RELEASE", path=b), "OK")
        self.assertCode(y.wait(ry, 10), "OK")
        self.assertCode(s.call("RELEASE", path=a), "OK")
        self.assertCode(y.call("RELEASE", path=b), "OK")

    def test_waits_for_a_lock_held_outside_the_broker(self):
        # Regression: a set waiting for B, held outside the broker, made
        # A's artefact and released it again each time it looked, and
        # the release woke the watch of their directory, which looked
        # again: the daemon spun, a grant and a release of A each turn.
        a, b = self.path("a"), self.path("b")
        s = self.session()
        got = self.answers(s, self.send_set(s, [a, b], key=1, timeout=5))
        before = int(max(r.fields["token"] for r in got.values()))
        for p in (a, b):
            self.assertCode(s.call("RELEASE", path=p), "OK")
        held_a = self.python_holds(a)
        proc = self.python_holds(b)
        ids = self.send_set(s, [a, b], key=2, timeout=60)
        self.assertTrue(self.none_within(s, 0.5))
        # A goes (its directory is watched for it): the set still waits
        # for B, and must not make A's artefact and remove it for ever.
        held_a.stdin.write(b"go\n")
        held_a.stdin.flush()
        self.assertEqual(held_a.stdout.readline(), b"released\n")
        self.assertTrue(self.none_within(s, 1.0))
        self.assertFalse(os.path.exists(a + ".lock"),
                         "the set holds A while it waits for B")
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        self.assertEqual(proc.stdout.readline(), b"released\n")
        got = self.answers(s, ids, 20)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        after = int(max(r.fields["token"] for r in got.values()))
        self.assertLess(after - before, 20,
                        "%d grants made and given back while the set "
                        "waited" % ((after - before) // 2))
        self.assertTrue(os.path.exists(a + ".lock"))
        self.assertTrue(os.path.exists(b + ".lock"))
        for p in (a, b):
            self.assertCode(s.call("RELEASE", path=p), "OK")

    def test_two_sets_in_opposite_orders(self):
        # Each set waits in both queues at once, in arrival order: the
        # first has both, then the second; no deadlock either way.
        a, b = self.path("a"), self.path("b")
        x, s1, s2 = self.session(), self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=a), "OK")
        i1 = self.send_set(s1, [a, b], timeout=60)
        self.assertCode(s1.call("PING"), "OK")
        i2 = self.send_set(s2, [b, a], timeout=60)
        self.assertCode(s2.call("PING"), "OK")
        self.assertCode(x.call("RELEASE", path=a), "OK")
        got = self.answers(s1, i1)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        self.assertTrue(self.none_within(s2, 0.3))
        for p in (a, b):
            self.assertCode(s1.call("RELEASE", path=p), "OK")
        got = self.answers(s2, i2)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        for p in (a, b):
            self.assertCode(s2.call("RELEASE", path=p), "OK")


class Refuse(SetCase):
    def test_timeout_zero_refuses_every_member(self):
        a, b = self.path("a"), self.path("b")
        x, s = self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=b), "OK")
        got = self.answers(s, self.send_set(s, [a, b], timeout=0))
        self.assertEqual({r.code for r in got.values()}, {"EALREADY"})
        for r in got.values():
            self.assertIn(b, r.fields["message"])
        self.assertFalse(os.path.exists(a + ".lock"))
        self.assertEqual(self.held_by(s, a), (False, False))

    def test_timeout_refuses_every_member_and_frees_their_places(self):
        a, b = self.path("a"), self.path("b")
        x, s, y = self.session(), self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=a), "OK")
        ids = self.send_set(s, [a, b], timeout=0.5)
        self.assertCode(s.call("PING"), "OK")
        ry = y.send("ACQUIRE", path=b, timeout=60)
        got = self.answers(s, ids, 10)
        self.assertEqual({r.code for r in got.values()}, {"ETIMEOUT"})
        # The set's wait gone, B's next waiter has it.
        self.assertCode(y.wait(ry, 10), "OK")
        self.assertCode(y.call("RELEASE", path=b), "OK")
        self.assertCode(x.call("RELEASE", path=a), "OK")

    def test_cancel_of_one_member_cancels_the_set(self):
        a, b = self.path("a"), self.path("b")
        x, s = self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=a), "OK")
        ids = self.send_set(s, [a, b], timeout=60)
        rc = s.send("CANCEL", target=ids[1])
        got = self.answers(s, ids + [rc])
        self.assertCode(got[rc], "OK")
        self.assertEqual(got[ids[0]].code, "ECANCELED")
        self.assertEqual(got[ids[1]].code, "ECANCELED")
        self.assertCode(x.call("RELEASE", path=a), "OK")
        self.assertEqual(self.held_by(s, a), (False, False))
        self.assertEqual(os.listdir(self.locks), [])

    def test_closed_connection_drops_its_set(self):
        a, b = self.path("a"), self.path("b")
        x, s, y = self.session(), self.session(), self.session()
        self.assertCode(x.call("ACQUIRE", path=a), "OK")
        self.send_set(s, [a, b], timeout=60)
        self.assertCode(s.call("PING"), "OK")
        ry = y.send("ACQUIRE", path=b, timeout=60)
        self.assertTrue(self.none_within(y, 0.3))
        s.close()
        self.assertCode(y.wait(ry, 10), "OK")
        self.assertCode(y.call("RELEASE", path=b), "OK")
        self.assertCode(x.call("RELEASE", path=a), "OK")

    def test_bad_sets(self):
        a, b = self.path("a"), self.path("b")
        s = self.session()
        # One lock named twice (the same path, however spelled).
        got = self.answers(s, [
            s.send("ACQUIRE", path=a, set=1, of=2),
            s.send("ACQUIRE", path=os.path.join(self.locks, ".", "a"),
                   set=1, of=2)])
        for r in got.values():
            self.assertCode(r, "EINVAL")
            self.assertIn("named twice", r.fields["message"])
        # Shared, or kept for a process: refused alone.
        self.assertCode(s.call("ACQUIRE", path=a, set=2, of=2,
                               mode="shared"), "EINVAL")
        self.assertCode(s.call("ACQUIRE", path=a, set=3, of=2,
                               pid=os.getpid()), "EINVAL")
        # of out of range, or missing.
        self.assertCode(s.call("ACQUIRE", path=a, set=4, of=0), "EINVAL")
        self.assertCode(s.call("ACQUIRE", path=a, set=4, of=257), "EINVAL")
        self.assertCode(s.call("ACQUIRE", path=a, set=4), "EINVAL")
        # Members that disagree: the set refused, each member told.
        got = self.answers(s, [
            s.send("ACQUIRE", path=a, set=5, of=2, stale=0),
            s.send("ACQUIRE", path=b, set=5, of=2, stale=1)])
        for r in got.values():
            self.assertCode(r, "EINVAL")
            self.assertIn("agree", r.fields["message"])
        # A lock its owner holds already.
        self.assertCode(s.call("ACQUIRE", path=a), "OK")
        got = self.answers(s, self.send_set(s, [a, b], key=6))
        for r in got.values():
            self.assertCode(r, "EINVAL")
            self.assertIn("held by this owner", r.fields["message"])
        self.assertFalse(os.path.exists(b + ".lock"))
        self.assertCode(s.call("RELEASE", path=a), "OK")
        self.assertEqual(os.listdir(self.locks), [])

    def test_version_2_knows_no_sets(self):
        s = self.session(version=2)
        r = s.call("ACQUIRE", path=self.path("a"), set=1, of=1)
        self.assertCode(r, "EINVAL")
        self.assertIn("version 3", r.fields["message"])
        self.assertEqual(os.listdir(self.locks), [])

    def test_a_cycle_through_a_set_is_refused(self):
        # P holds A; Q's set {A, B} waits for A, first in B's queue; P's
        # ACQUIRE of B would wait for Q, which waits for P: EDEADLK, and
        # the set waits on.
        a, b = self.path("a"), self.path("b")
        p, q = self.session(), self.session()
        self.assertCode(p.call("ACQUIRE", path=a), "OK")
        ids = self.send_set(q, [a, b], timeout=60)
        self.assertCode(q.call("PING"), "OK")
        r = p.call("ACQUIRE", path=b, timeout=60)
        self.assertCode(r, "EDEADLK")
        self.assertTrue(self.none_within(q, 0.3))
        self.assertCode(p.call("RELEASE", path=a), "OK")
        got = self.answers(q, ids)
        self.assertEqual({r.code for r in got.values()}, {"OK"})
        # The reverse: the set is what closes the cycle, refused whole.
        self.assertCode(p.call("ACQUIRE", path=self.path("c")), "OK")
        ids = [q.send("ACQUIRE", path=self.path("c"), set=9, of=1,
                      timeout=60)]
        self.assertCode(q.call("PING"), "OK")
        rp = p.send("ACQUIRE", path=a, timeout=60)
        self.assertCode(p.wait(rp, 10), "EDEADLK")
        self.assertTrue(self.none_within(q, 0.3))
        rq = q.send("CANCEL", target=ids[0])
        got = self.answers(q, ids + [rq])
        self.assertCode(got[ids[0]], "ECANCELED")
        for x in (a, b):
            self.assertCode(q.call("RELEASE", path=x), "OK")
        self.assertCode(p.call("RELEASE", path=self.path("c")), "OK")

    def test_set_closing_a_cycle_is_refused_whole(self):
        # P holds A and waits for B, held by Q; Q's set {C, A} would wait
        # for P: refused EDEADLK, every member, C left free.
        a, b, c3 = self.path("a"), self.path("b"), self.path("c")
        p, q = self.session(), self.session()
        self.assertCode(p.call("ACQUIRE", path=a), "OK")
        self.assertCode(q.call("ACQUIRE", path=b), "OK")
        rp = p.send("ACQUIRE", path=b, timeout=60)
        self.assertCode(p.call("PING"), "OK")
        got = self.answers(q, self.send_set(q, [c3, a], key=3, timeout=60))
        self.assertEqual({r.code for r in got.values()}, {"EDEADLK"})
        self.assertFalse(os.path.exists(c3 + ".lock"))
        self.assertCode(q.call("RELEASE", path=b), "OK")
        self.assertCode(p.wait(rp, 10), "OK")
        for x in (a, b):
            self.assertCode(p.call("RELEASE", path=x), "OK")



class NamedTwiceOnDisk(SetCase):
    """One lock file named twice by members that are two entries of the
    daemon's table (another spelling through a symlinked directory, or
    another method whose artefact is the same PATH.lock)."""

    def settle(self, s, ids):
        """The members' replies, or a failure naming a daemon that no
        longer answers (killed then, so that tearDown does not wait a
        minute for a daemon that does not stop)."""
        try:
            return self.answers(s, ids, 10)
        except (TimeoutError, OSError):
            pass
        try:
            c = self.daemon.client(timeout=5)
            c.close()
        except (TimeoutError, OSError, AssertionError, EOFError):
            self.daemon.kill()
            self.fail("the daemon answers nobody (a set naming one "
                      "lock file twice: spinning)")
        self.fail("the set's members were not answered within 10 s")

    def check(self, a, other, method=None):
        s = self.session()
        extra = {"method": method} if method else {}
        ids = [s.send("ACQUIRE", path=a, set=1, of=2, timeout=2),
               s.send("ACQUIRE", path=other, set=1, of=2, timeout=2,
                      **extra)]
        got = self.settle(s, ids)
        for r in got.values():
            self.assertCode(r, "EINVAL")
            self.assertIn("named twice", r.fields["message"])
        self.assertEqual(os.listdir(self.locks), [])

    def test_same_lock_file_through_a_symlinked_directory(self):
        # A set {D/a, L/a}, L a symlink to D: two locks of the table, one
        # lock file.  Both free: D/a is made, L/a finds it there
        # (EALREADY), D/a is released, the set queued; lbd_set_try then
        # makes D/a, finds L/a held "outside", releases D/a and watches
        # the directory, whose event (that release) serves the set
        # again: the daemon spins without end (its 2 s timeout never
        # answered, other clients not served, SIGTERM not obeyed).
        # Should be: refused EINVAL "named twice", as lb_acquire_all
        # refuses it (docs/SHARED.md, "The order": a directory reached
        # through a symbolic link), or at least wait without spinning.
        link = os.path.join(self.dir, "link")
        os.symlink(self.locks, link)
        self.check(self.path("a"), os.path.join(link, "a"))

    def test_same_lock_file_by_two_methods(self):
        # The same with link and symlink on one path (one PATH.lock).
        a = self.path("a")
        self.check(a, a, method="symlink")


class OtherUsers(SetCase):
    """A set of another user (nobody) and locks it may not see or take."""

    def nobody_session(self):
        c = self.nobody(hello=False)
        self.assertCode(c.call("HELLO", version=3), "OK")
        return c

    def test_set_does_not_tell_whether_a_hidden_lock_is_held(self):
        # P is in root's private directory (0700): nobody may not look
        # at it.  Nobody's set {P, B}, B held by nobody's other
        # connection, timeout=0: while P is free the set is refused
        # EALREADY for B (set_check looks only at a lock held or waited
        # for); while root holds P it is refused EFAILED "cannot look at
        # it".  The answer tells nobody whether root holds P.  Should
        # be: the same answer either way (docs/PROTOCOL.md, "Where the
        # client may not look": nothing told, held or not).
        priv = os.path.join(self.dir, "private")
        os.mkdir(priv, 0o700)
        p = os.path.join(priv, "p")
        b = os.path.join(self.shared(), "b")
        root = self.session()
        n1, n2 = self.nobody_session(), self.nobody_session()
        self.assertCode(n1.call("ACQUIRE", path=b), "OK")
        free = self.answers(n2, self.send_set(n2, [p, b], key=1, timeout=0))
        self.assertCode(root.call("ACQUIRE", path=p), "OK")
        held = self.answers(n2, self.send_set(n2, [p, b], key=2, timeout=0))
        seen = [sorted((r.code, r.fields.get("lock"), r.fields["message"])
                       for r in got.values()) for got in (free, held)]
        self.assertEqual(seen[0], seen[1],
                         "nobody learns whether root holds " + p)
        self.assertCode(root.call("RELEASE", path=p), "OK")

    def test_set_cannot_reserve_a_lock_its_owner_cannot_take(self):
        # R is in a directory of root's that nobody may search but not
        # write (0755): nobody can never make R's artefact, and a single
        # ACQUIRE of R by nobody, R free, is refused EFAILED at once.
        # Nobody's set {R, B}, B held by nobody's other connection,
        # timeout=inf, is queued instead: its wait is the head of free
        # R's queue, and R is not granted to anyone else while it waits
        # (root's ACQUIRE of R, timeout=0: EALREADY, R free on disk) -
        # for as long as nobody keeps B.  Should be: the set refused
        # EFAILED (an artefact it cannot make), R left to those who can
        # take it.
        ro = os.path.join(self.dir, "rootonly")
        os.mkdir(ro, 0o755)
        r_ = os.path.join(ro, "r")
        b = os.path.join(self.shared(), "b")
        root = self.session()
        n1, n2 = self.nobody_session(), self.nobody_session()
        self.assertCode(n1.call("ACQUIRE", path=r_, timeout=0), "EFAILED")
        self.assertCode(n1.call("ACQUIRE", path=b), "OK")
        ids = self.send_set(n2, [r_, b])
        for r in self.answers(n2, ids).values():
            self.assertCode(r, "EFAILED")
            self.assertEqual(r.fields.get("lock"), r_)
        self.assertFalse(os.path.exists(r_ + ".lock"))
        self.assertCode(root.call("ACQUIRE", path=r_, timeout=0), "OK",
                        "nobody's set keeps root's free lock from root")
        self.assertCode(root.call("RELEASE", path=r_), "OK")


class RefusedWhileServed(SetCase):
    def test_two_sets_refused_from_one_serving(self):
        # X holds L; nobody's sets S1 {L, Z} and S2 {L, Z} (two
        # connections) queue behind it; Z is free, in a directory nobody
        # may write when they queue (a set that could not take Z then is
        # refused at once), and not after.  X releases L: lbd_lock_serve(L)
        # tries S1, which cannot make Z: refused, and set_end serves Z,
        # whose head is now S2; S2 cannot make Z either: refused, and its
        # set_end serves L (not the lock being served for it), which has
        # no waiter left and is freed.  Back in the first
        # lbd_lock_serve(L), the loop reads the freed L: the daemon
        # crashes (X's RELEASE unanswered, every connection closed).
        # Should be: both sets refused EFAILED lock=Z, L free, the
        # daemon alive.
        ro = os.path.join(self.dir, "rootonly")
        os.mkdir(ro)
        os.chmod(ro, 0o777)
        z = os.path.join(ro, "z")
        l = os.path.join(self.shared(), "l")
        x = self.session()
        self.assertCode(x.call("ACQUIRE", path=l), "OK")
        sets = []
        for _ in range(2):
            n = self.nobody(hello=False)
            self.assertCode(n.call("HELLO", version=3), "OK")
            ids = self.send_set(n, [l, z], timeout=60)
            self.assertCode(n.call("PING"), "OK")
            sets.append((n, ids))
        os.chmod(ro, 0o755)
        self.assertCode(x.call("RELEASE", path=l), "OK")
        for n, ids in sets:
            got = self.answers(n, ids)
            for r in got.values():
                self.assertCode(r, "EFAILED")
                self.assertEqual(r.fields.get("lock"), z)
        self.assertEqual(self.held_by(x, l), (False, False))
        self.assertCode(x.call("ACQUIRE", path=l, timeout=0), "OK")
        self.assertCode(x.call("RELEASE", path=l), "OK")


class RequestIds(SetCase):
    def test_a_member_being_collected_keeps_its_id_in_use(self):
        # Member 5 of set 1 has come, member 6 not yet: 5 has had no
        # reply.  A PING 5 then is answered OK 5, and a second member
        # with id 5 is taken as well: two "OK 5 token=..." come, and the
        # client cannot tell which lock each token is for.  Should be:
        # EID for a request id that has not had its reply (docs/
        # PROTOCOL.md, "Error codes"), as for a waiting ACQUIRE's id.
        a, b, c3 = self.path("a"), self.path("b"), self.path("c")
        s = self.session()
        s.send_raw("ACQUIRE 5 path=%s set=1 of=2\nPING 5\n" % a)
        r = s.read()
        self.assertEqual((r.id, r.code), ("5", "EID"), r)
        s.send_raw("ACQUIRE 5 path=%s set=1 of=2\n" % b)
        r = s.read()
        self.assertEqual((r.id, r.code), ("5", "EID"), r)
        s.send_raw("ACQUIRE 6 path=%s set=1 of=2\n" % c3)
        got = self.answers(s, ["5", "6"])
        self.assertEqual({x.code for x in got.values()}, {"OK"})
        self.assertTrue(os.path.exists(a + ".lock"))
        self.assertFalse(os.path.exists(b + ".lock"))

if __name__ == "__main__":
    unittest.main(verbosity=2)
