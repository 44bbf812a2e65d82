"""deadlock.py: the daemon's wait-for graph (docs/DEADLOCK.md), over its
real socket.

Each test starts the built daemon in a private directory and speaks the
wire protocol to it, one connection per owner.  A request that would
close a cycle of waits fails at once, EDEADLK, naming the cycle; the
others in the cycle wait on, and are served as the locks come free.
"""
import os
import random
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import (Client, Daemon, DaemonCase,  # noqa: E402
                      connect_many_as)


class DeadlockCase(DaemonCase):
    prefix = "lbdeadlock."

    def v2(self):
        c = self.client(hello=False)
        self.assertCode(c.call("HELLO", version=2), "OK")
        return c

    def queued(self, c, verb, **fields):
        """Sends a request that must wait; its id once the daemon has
        read it (a PING after it on c answered first)."""
        rid = c.send(verb, **fields)
        self.assertCode(c.call("PING"), "OK")
        return rid

    def assertWaits(self, c, rid):
        """rid, sent on c, has no answer yet."""
        with self.assertRaises(Exception):
            c.wait(rid, 0.2)


class Cycles(DeadlockCase):
    def ring(self, n):
        """n owners, owner i holding lock i and waiting for lock i+1; the
        last one's request closes the ring: its reply, and the owners,
        locks and ids of the waits."""
        cs = [self.v2() for _ in range(n)]
        ps = [self.path("l%d" % i) for i in range(n)]
        for c, p in zip(cs, ps):
            self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK")
        rids = [self.queued(cs[i], "ACQUIRE", path=ps[i + 1],
                            timeout=600) for i in range(n - 1)]
        r = cs[-1].call("ACQUIRE", path=ps[0], timeout=600)
        return r, cs, ps, rids

    def check_ring(self, n):
        r, cs, ps, rids = self.ring(n)
        self.assertCode(r, "EDEADLK")
        msg = r.fields["message"]
        for p in ps:
            self.assertIn(p, msg)
        for c in cs:
            self.assertIn("pid %d" % os.getpid(), msg)
        # The others wait on; the lock its last owner lets go is served
        # to the owner before it, and so on down the ring.
        for c, rid in zip(cs, rids):
            self.assertWaits(c, rid)
        self.assertCode(cs[-1].call("RELEASE", path=ps[-1]), "OK")
        for i in range(n - 2, -1, -1):
            self.assertCode(cs[i].wait(rids[i], 30), "OK")
            self.assertCode(cs[i].call("RELEASE", path=ps[i + 1]), "OK")
            self.assertCode(cs[i].call("RELEASE", path=ps[i]), "OK")

    def test_cycle_of_two(self):
        self.check_ring(2)

    def test_cycle_of_three(self):
        self.check_ring(3)

    def test_cycle_of_fifty(self):
        self.check_ring(50)

    def test_chain_is_no_cycle(self):
        # Owner i holds lock i and waits for lock i+1, the last lock
        # free of waits: a chain, never refused.
        cs = [self.v2() for _ in range(4)]
        ps = [self.path("c%d" % i) for i in range(5)]
        for c, p in zip(cs, ps):
            self.assertCode(c.call("ACQUIRE", path=p, timeout=0), "OK")
        last = self.v2()
        self.assertCode(last.call("ACQUIRE", path=ps[4], timeout=0), "OK")
        rids = [self.queued(cs[i], "ACQUIRE", path=ps[i + 1], timeout=600)
                for i in range(4)]
        for c, rid in zip(cs, rids):
            self.assertWaits(c, rid)
        self.assertCode(last.call("RELEASE", path=ps[4]), "OK")
        self.assertCode(cs[3].wait(rids[3], 30), "OK")

    def test_try_never_deadlocks(self):
        # A request that does not wait (timeout 0) closes no cycle.
        a, b = self.v2(), self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        self.queued(a, "ACQUIRE", path=y, timeout=600)
        self.assertCode(b.call("ACQUIRE", path=x, timeout=0), "EALREADY")

    def test_version_1_session_told_efailed(self):
        a, b = self.v2(), self.client()         # b: HELLO version=1
        x, y = self.path("x"), self.path("y")
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        self.queued(a, "ACQUIRE", path=y, timeout=600)
        r = b.call("ACQUIRE", path=x, timeout=600)
        self.assertCode(r, "EFAILED")
        self.assertIn("deadlock", r.fields["message"])

    def test_threads_of_one_connection_are_owners(self):
        # Two threads over one connection are two owners: thread 1 holds
        # x and waits for y, thread 2 holds y and asks for x.
        c = self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(c.call("ACQUIRE", path=x, thread=1), "OK")
        self.assertCode(c.call("ACQUIRE", path=y, thread=2), "OK")
        rid = self.queued(c, "ACQUIRE", path=y, thread=1, timeout=600)
        r = c.call("ACQUIRE", path=x, thread=2, timeout=600)
        self.assertCode(r, "EDEADLK")
        self.assertIn("thread 1", r.fields["message"])
        self.assertIn("thread 2", r.fields["message"])
        self.assertCode(c.call("RELEASE", path=y, thread=2), "OK")
        self.assertCode(c.wait(rid, 30), "OK")


class OtherUsers(DeadlockCase):
    @unittest.skipUnless(os.geteuid() == 0, "needs root (a second user)")
    def test_lock_one_may_not_look_at_is_not_named(self):
        # root's a holds x, in a directory only root may search, and
        # waits for y; nobody's b holds y and asks for z, which root's c
        # holds while it waits for x.  b is refused, and told of x only
        # that an owner waits for a lock it may not look at.
        private = os.path.join(self.dir, "private")
        os.mkdir(private, 0o700)
        x = os.path.join(private, "x")
        shared = self.shared()
        y, z = os.path.join(shared, "y"), os.path.join(shared, "z")
        a, c = self.v2(), self.v2()
        b = self.nobody(hello=False)
        self.assertCode(b.call("HELLO", version=2), "OK")
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        self.assertCode(c.call("ACQUIRE", path=z), "OK")
        ra = self.queued(a, "ACQUIRE", path=y, timeout=600)
        self.queued(c, "ACQUIRE", path=x, timeout=600)
        r = b.call("ACQUIRE", path=z, timeout=600)
        self.assertCode(r, "EDEADLK")
        msg = r.fields["message"]
        self.assertNotIn(x, msg)
        self.assertNotIn("private", msg)
        self.assertIn("may not look at", msg)
        self.assertIn(z, msg)
        self.assertCode(b.call("RELEASE", path=y), "OK")
        self.assertCode(a.wait(ra, 30), "OK")


class Shared(DeadlockCase):
    def test_cycle_through_a_reader(self):
        # a reads x, b holds y; b waits to write x (for reader a); a's
        # wait for y closes the cycle.
        a, b = self.v2(), self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(a.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        rid = self.queued(b, "ACQUIRE", path=x, timeout=600)
        r = a.call("ACQUIRE", path=y, mode="shared", timeout=600)
        self.assertCode(r, "EDEADLK")
        self.assertIn("read by", r.fields["message"])
        self.assertCode(a.call("RELEASE", path=x), "OK")
        self.assertCode(b.wait(rid, 30), "OK")

    def test_readers_wait_for_no_reader(self):
        # No false cycle: a reader queued behind another reader does not
        # wait for it.  w holds x; a and b wait to read x, in that order;
        # b holds y, a asks for y shared... a waits for b's y (exclusive),
        # b waits for w only (not for a, a reader ahead of a reader).
        w, a, b = self.v2(), self.v2(), self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(w.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        ra = self.queued(a, "ACQUIRE", path=x, mode="shared", timeout=600)
        rb = self.queued(b, "ACQUIRE", path=x, mode="shared", timeout=600)
        self.assertCode(w.call("RELEASE", path=x), "OK")
        self.assertCode(a.wait(ra, 30), "OK")
        self.assertCode(b.wait(rb, 30), "OK")
        # Now a reads x; a waits for y (b's): no cycle (b waits for
        # nothing).
        rid = self.queued(a, "ACQUIRE", path=y, timeout=600)
        self.assertWaits(a, rid)
        self.assertCode(b.call("RELEASE", path=y), "OK")
        self.assertCode(a.wait(rid, 30), "OK")

    def test_two_upgraders(self):
        # The classic: two readers of one lock both ask to write it.
        a, b = self.v2(), self.v2()
        x = self.path("x")
        self.assertCode(a.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=x, mode="shared"), "OK")
        rid = self.queued(a, "UPGRADE", path=x, timeout=600)
        r = b.call("UPGRADE", path=x, timeout=600)
        self.assertCode(r, "EDEADLK")
        self.assertIn("to upgrade", r.fields["message"])
        self.assertCode(b.call("RELEASE", path=x), "OK")
        self.assertCode(a.wait(rid, 30), "OK")

    def test_upgrader_and_a_writer(self):
        # a and b read x; b holds y; a waits to upgrade x (for b); b's
        # wait for y's... b asks for z held by c, c asks for... keep it
        # to two: b asks to write y2 held by a.
        a, b = self.v2(), self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(a.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.assertCode(a.call("ACQUIRE", path=y), "OK")
        rid = self.queued(a, "UPGRADE", path=x, timeout=600)
        r = b.call("ACQUIRE", path=y, timeout=600)
        self.assertCode(r, "EDEADLK")
        self.assertCode(b.call("RELEASE", path=x), "OK")
        self.assertCode(a.wait(rid, 30), "OK")


class Model:
    """The locks as the daemon serves them (docs/SHARED.md, "The queue"),
    for owners that never time out: holders with their modes, one FIFO
    queue per lock, at most one wait per owner; bound: readers_per_lock
    (the readers beside a lock's holder), or None."""

    def __init__(self, bound=None):
        self.bound = bound
        self.holders = {}       # lock -> {owner: "x" or "s"}
        self.queue = {}         # lock -> [(owner, kind)], kind x/s/u
        self.waiting = {}       # owner -> (lock, kind, rid)

    def held(self, lock):
        return self.holders.setdefault(lock, {})

    def q(self, lock):
        return self.queue.setdefault(lock, [])

    def at_once(self, owner, lock, kind):
        """Whether a request is granted at once, as the daemon does."""
        h, q = self.held(lock), self.q(lock)
        if kind == "u":
            return list(h) == [owner]
        if q:
            return False
        if kind == "x":
            return not h
        return all(m == "s" for m in h.values()) and not self.full(h)

    def full(self, h):
        """Whether a lock held by h has no room for another reader."""
        return self.bound is not None and h and len(h) - 1 >= self.bound

    def serve(self, lock):
        """Grants what the lock's queue's head may have now; the owners
        granted, each with the id of its request."""
        h, q, granted = self.held(lock), self.q(lock), []
        while q:
            owner, kind = q[0]
            if kind == "u":
                if list(h) != [owner]:
                    break
                h[owner] = "x"
            elif kind == "x":
                if h:
                    break
                h[owner] = "x"
            else:
                if any(m == "x" for m in h.values()) or self.full(h):
                    break
                h[owner] = "s"
            q.pop(0)
            granted.append((owner, self.waiting.pop(owner)[2]))
            if kind != "s":
                break
        return granted

    def deadlocked(self, owner):
        """Whether owner's wait can never be granted, every owner that
        does not wait (or is granted) letting all its locks go in time:
        the oracle, by playing the locks out on a copy."""
        holders = {k: dict(v) for k, v in self.holders.items()}
        queue = {k: list(v) for k, v in self.queue.items()}
        waiting = dict(self.waiting)
        play = Model(self.bound)
        play.holders, play.queue, play.waiting = holders, queue, waiting
        moved = True
        while moved and owner in play.waiting:
            moved = False
            for lock, h in play.holders.items():
                for o in [o for o in h if o not in play.waiting]:
                    del h[o]
                    moved = True
            for lock in list(play.queue):
                if play.serve(lock):
                    moved = True
        return owner in play.waiting


class RandomStress(DeadlockCase):
    """Owners (one connection each) take random locks, shared or not, in
    random orders, upgrade and let go; a model of the daemon's queues
    knows the true wait-for state, and an oracle that plays the locks
    out says whether each new wait can ever be granted.  Every request
    the oracle finds deadlocked must be refused EDEADLK, and no other;
    every grant the model makes must come, and no other.  Steps:
    LB_DEADLOCK_STEPS (default 1500; longer runs by hand), owners
    LB_DEADLOCK_OWNERS (7), locks LB_DEADLOCK_LOCKS (4)."""
    bound = None                # readers_per_lock, as configured
    shared = 0.4                # of the ACQUIREs

    def test_detected_equals_real(self):
        seed = int(os.environ.get("LB_DEADLOCK_SEED", random.randrange(
            1 << 30)))
        steps = int(os.environ.get("LB_DEADLOCK_STEPS", "1500"))
        rng = random.Random(seed)
        owners = [self.v2() for _ in range(
            int(os.environ.get("LB_DEADLOCK_OWNERS", "7")))]
        locks = [self.path("r%d" % i) for i in range(
            int(os.environ.get("LB_DEADLOCK_LOCKS", "4")))]
        m = Model(self.bound)
        real = detected = granted_later = 0

        for step in range(steps):
            free = [o for o in range(len(owners)) if o not in m.waiting]
            o = rng.choice(free)
            c = owners[o]
            mine = [k for k in locks if o in m.held(k)]
            shared = [k for k in mine if m.held(k)[o] == "s"]
            r = rng.random()
            if mine and (r < 0.35 or len(mine) >= 3):
                lock = rng.choice(mine)
                self.assertCode(c.call("RELEASE", path=lock), "OK")
                del m.held(lock)[o]
                # An UPGRADE of o's queued at the head would have been
                # ended with it: o does not wait, so it has none.
                for g, rid in m.serve(lock):
                    self.assertCode(owners[g].wait(rid, 30), "OK",
                                    "seed %d step %d: pid of owner %d "
                                    "granted %s" % (seed, step, g, lock))
                    granted_later += 1
                continue
            if shared and r < 0.45:
                lock, kind, verb = rng.choice(shared), "u", "UPGRADE"
                fields = {}
            else:
                others = [k for k in locks if k not in mine]
                if not others:
                    continue
                lock = rng.choice(others)
                kind = "s" if rng.random() < self.shared else "x"
                verb = "ACQUIRE"
                fields = {"mode": "shared"} if kind == "s" else {}
            rid = c.send(verb, path=lock, timeout=3600, **fields)
            if m.at_once(o, lock, kind):
                self.assertCode(c.wait(rid, 30), "OK", "seed %d step %d"
                                % (seed, step))
                m.held(lock)[o] = "x" if kind != "s" else "s"
                continue
            q = m.q(lock)
            if kind == "u":
                q.insert(0, (o, kind))
            else:
                q.append((o, kind))
            m.waiting[o] = (lock, kind, rid)
            dead = m.deadlocked(o)
            pong = c.send("PING")
            got = c.read(30)
            if dead:
                real += 1
                q.remove((o, kind))
                del m.waiting[o]
                self.assertEqual((got.id, got.code), (rid, "EDEADLK"),
                                 "seed %d step %d: a real deadlock not "
                                 "refused: %r" % (seed, step, got))
                detected += 1
                self.assertEqual(c.read(30).id, pong)
            else:
                self.assertEqual(got.id, pong, "seed %d step %d: %s %s "
                                 "answered %r where it must wait"
                                 % (seed, step, verb, lock, got))
        # Let everything go: owners that do not wait release, and the
        # waits are served, till nothing is held.
        while any(m.held(k) for k in locks):
            for k in locks:
                for o in [o for o in m.held(k) if o not in m.waiting]:
                    self.assertCode(owners[o].call("RELEASE", path=k), "OK")
                    del m.held(k)[o]
                    for g, rid in m.serve(k):
                        self.assertCode(owners[g].wait(rid, 30), "OK")
        self.assertEqual(m.waiting, {})
        for c in owners:
            r = c.call("PING")          # no reply left unread before it
            self.assertCode(r, "OK")
        sys.stderr.write("\n  seed %d, %d steps: %d real deadlocks, %d "
                         "detected, %d waits granted later\n"
                         % (seed, steps, real, detected, granted_later))
        self.assertEqual(real, detected)
        self.assertGreater(real, 10, "too few deadlocks to prove much")


class RandomStressBound(RandomStress):
    """RandomStress with one reader beside a lock's holder at most
    (readers_per_lock = 1) and mostly shared requests: a reader past the
    bound waits for room, which any reader's going makes."""
    config = "readers_per_lock = 1\n"
    bound = 1
    shared = 0.7


class Review(DeadlockCase):
    """Attacks on the claim: refused exactly when a real cycle closes,
    the message telling a client nothing it may not see, and the search
    never stalling the daemon for other clients."""

    def v2_nobody(self):
        c = self.nobody(hello=False)
        self.assertCode(c.call("HELLO", version=2), "OK")
        return c

    def nobodies(self, n):
        """n version-2 connections of user nobody's, made by one child."""
        socks, keeper, pid = connect_many_as(self.daemon.socket, n)

        def end():
            for s in socks:
                s.close()
            keeper.close()
            os.waitpid(pid, 0)
        self.addCleanup(end)
        cs = [Client.of_socket(s, 60.0) for s in socks]
        for c in cs:
            self.assertCode(c.call("HELLO", version=2), "OK")
        return cs

    def pipelined(self, c, reqs, code):
        """Sends every (verb, fields) of reqs on c, then a PING; each
        request answered code, or (code None) none answered."""
        rids = [c.send(verb, **f) for verb, f in reqs]
        ping = c.send("PING")
        got = []
        r = c.wait(ping, 120, others=got)
        self.assertCode(r, "OK")
        if code is None:
            self.assertEqual(got, [])
        else:
            self.assertEqual(len(got), len(rids), got[:3])
            for g in got:
                self.assertCode(g, code)

    def test_message_names_no_lock_the_client_may_not_see(self):
        # Root's r1 holds a lock in a directory nobody may not look in
        # (0700) and waits for y, nobody's; root's r2 holds z and waits
        # for the hidden lock; nobody's request for z closes the cycle.
        # It is refused, but the message must not name the hidden lock,
        # which PROTOCOL.md ("Where the client may not look") says such
        # a client learns nothing about.
        hidden = os.path.join(self.dir, "private")
        os.mkdir(hidden, 0o700)
        secret = os.path.join(hidden, "secret-name")
        sd = self.shared()
        y, z = os.path.join(sd, "y"), os.path.join(sd, "z")
        r1, r2, n = self.v2(), self.v2(), self.v2_nobody()
        self.assertCode(r1.call("ACQUIRE", path=secret), "OK")
        self.assertCode(n.call("ACQUIRE", path=y), "OK")
        self.assertCode(r2.call("ACQUIRE", path=z), "OK")
        self.queued(r1, "ACQUIRE", path=y, timeout=600)
        self.queued(r2, "ACQUIRE", path=secret, timeout=600)
        r = n.call("ACQUIRE", path=z, timeout=600)
        self.assertCode(r, "EDEADLK")
        self.assertNotIn("secret-name", r.fields["message"])

    def test_refusals_logged_bounded(self):
        # Each refusal writes a log line as long as its cycle (up to a
        # line's 8 KiB): a user that closes the same cycle again and
        # again writes the daemon's log at will, which THREAT-MODEL.md
        # bounds for refused connections (refusals_logged_per_uid, 10 an
        # interval).  Nobody's 200 refusals must not write 200 lines.
        sd = self.shared()
        x, y = os.path.join(sd, "x" * 200), os.path.join(sd, "y" * 200)
        a, b = self.nobodies(2)
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        self.queued(a, "ACQUIRE", path=y, timeout=600)
        self.pipelined(b, [("ACQUIRE", dict(path=x, timeout=600))
                           for _ in range(200)], "EDEADLK")
        lines = [ln for ln in self.daemon.logtext().splitlines()
                 if "a cycle of waits" in ln]
        self.assertLessEqual(len(lines), 10, "%d lines" % len(lines))

    def test_message_tells_a_waiter_ahead_from_a_reader(self):
        # Thread 1 reads x, thread 2 waits to write x, thread 3 holds y
        # and thread 1 waits for y; thread 3's shared request for x
        # (behind thread 2's) closes the cycle 3 -> 2 -> 1 -> 3.  Thread
        # 2 stands in the way as a writer queued first, not as a reader
        # (in_the_way says "read by" for anyone while the lock is read).
        c = self.v2()
        x, y = self.path("x"), self.path("y")
        self.assertCode(c.call("ACQUIRE", path=x, mode="shared", thread=1),
                        "OK")
        self.assertCode(c.call("ACQUIRE", path=y, thread=3), "OK")
        self.queued(c, "ACQUIRE", path=x, thread=2, timeout=600)
        self.queued(c, "ACQUIRE", path=y, thread=1, timeout=600)
        r = c.call("ACQUIRE", path=x, mode="shared", thread=3, timeout=600)
        self.assertCode(r, "EDEADLK")
        msg = r.fields["message"]
        self.assertIn("(shared), waited for first by pid %d thread 2"
                      % os.getpid(), msg)

    def test_reclaim_that_closes_a_cycle(self):
        # After a restart, owner 1 (thread 1) held x and owner 2 (thread
        # 2) held y, both orphans.  Owner 2 takes y back and waits for x
        # (an orphan: the path ends); owner 1, over its new connection,
        # first waits for y (for owner 2, who waits for the orphan: no
        # cycle yet), then takes x back with RECLAIM.  Now each waits
        # for the other, for ever, and nothing looked: a RECLAIM (an
        # orphan adopted) draws edges to its owner without a search.
        # One of the two waits must be refused EDEADLK.
        x, y = self.path("x"), self.path("y")
        a, b = self.v2(), self.v2()
        tx = a.call("ACQUIRE", path=x, thread=1).fields["token"]
        ty = b.call("ACQUIRE", path=y, thread=2).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        a2, b2 = self.v2(), self.v2()
        self.assertCode(b2.call("RECLAIM", path=y, token=ty, thread=2), "OK")
        rb = self.queued(b2, "ACQUIRE", path=x, thread=2, timeout=600)
        ra = self.queued(a2, "ACQUIRE", path=y, thread=1, timeout=600)
        got = []                # the refusal may come before the OK
        self.assertCode(a2.wait(a2.send("RECLAIM", path=x, token=tx,
                                         thread=1), 10, others=got), "OK",
                        "x taken back")
        self.assertCode(a2.wait(a2.send("PING"), 10, others=got), "OK")
        self.assertCode(b2.wait(b2.send("PING"), 10, others=got), "OK")
        self.assertIn("EDEADLK", [g.code for g in got],
                      "both wait for ever: %r %r" % (ra, rb))

    def test_search_stalls_no_one(self):
        # One user (nobody), within the default limits, queues 15,000
        # shared waits on lock L (held by z) over 15 connections: each
        # costs its search little (readers queued together wait for no
        # one).  Then one writer queues behind them: its search reaches
        # the 15,000 waits (under SEARCH_MAX), and for each one walks
        # every wait queued ahead of it (and for the writer's step each
        # reader's connection's 1,000 waits): about 10^8 steps for one
        # request, which DEADLOCK.md bounds at a few milliseconds.  Root
        # is served meanwhile only between two such requests.
        sd = self.shared()
        lk = os.path.join(sd, "L")
        cs = self.nobodies(17)
        z, t, bs = cs[0], cs[1], cs[2:]
        self.assertCode(z.call("ACQUIRE", path=lk), "OK")
        for b in bs:
            self.pipelined(b, [("ACQUIRE", dict(path=lk, mode="shared",
                                                thread=i, timeout=600))
                               for i in range(1, 1001)], None)
        root = self.v2()
        self.assertCode(root.call("PING"), "OK")
        cpu = self.daemon.cpu_seconds()
        start = time.monotonic()
        rids = [t.send("ACQUIRE", path=lk, thread=i, timeout=600)
                for i in range(1, 6)]
        time.sleep(0.05)
        self.assertCode(root.call("PING", _wait=600), "OK")
        took = time.monotonic() - start
        self.assertCode(t.call("PING", _wait=600), "OK")
        cpu = self.daemon.cpu_seconds() - cpu
        print("root's PING waited %.2f s; 5 writers cost the daemon "
              "%.2f s of CPU" % (took, cpu), file=sys.stderr)
        self.assertLess(cpu / 5, 0.05)


class ReviewBound(DeadlockCase):
    """A reader past readers_per_lock waits for a reader to go."""
    config = "readers_per_lock = 1\n"

    def test_reader_past_the_bound_waits_for_the_readers(self):
        # r1 and r2 read L (its holder and its one rider: the bound), w
        # holds Y; r1 and r2 both wait to write Y (for w).  w's shared
        # request for L waits for a reader to go (readers.c: the head
        # waits past readers_per_lock), and both readers wait for w: a
        # real cycle, which nothing ever breaks.  It must be refused
        # EDEADLK; the graph draws no edge from a shared wait to the
        # readers, so it waits for ever.
        r1, r2, w = self.v2(), self.v2(), self.v2()
        lk, y = self.path("L"), self.path("Y")
        self.assertCode(r1.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(r2.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(w.call("ACQUIRE", path=y), "OK")
        r1y = self.queued(r1, "ACQUIRE", path=y, timeout=600)
        self.queued(r2, "ACQUIRE", path=y, timeout=600)
        rid = w.send("ACQUIRE", path=lk, mode="shared", timeout=600)
        got = []
        self.assertCode(w.wait(w.send("PING"), 10, others=got), "OK")
        self.assertEqual([(g.id, g.code) for g in got], [(rid, "EDEADLK")])
        self.assertIn("%s (shared, past readers_per_lock: each reader "
                      "waits), read by pid" % lk, got[0].fields["message"])
        # r1 and r2 wait on for Y, and are served in turn once w lets go.
        self.assertCode(w.call("RELEASE", path=y), "OK")
        self.assertCode(r1.wait(r1y, 10), "OK")

    def test_reader_past_the_bound_waits_while_one_reader_can_go(self):
        # As above, but r2 waits for nothing: it will go, and make room
        # for w.  No cycle: w waits, and is granted when r2 lets L go.
        r1, r2, w = self.v2(), self.v2(), self.v2()
        lk, y = self.path("L"), self.path("Y")
        self.assertCode(r1.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(r2.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(w.call("ACQUIRE", path=y), "OK")
        self.queued(r1, "ACQUIRE", path=y, timeout=600)
        rid = self.queued(w, "ACQUIRE", path=lk, mode="shared",
                          timeout=600)
        self.assertWaits(w, rid)
        self.assertCode(r2.call("RELEASE", path=lk), "OK")
        self.assertCode(w.wait(rid, 10), "OK")

    def test_readers_queued_past_the_bound_each_need_a_place(self):
        # r1 and r2 read L (the bound, 1 rider); a and b, who wait for
        # nothing else, queue shared requests for L; then w, which holds
        # Y, queues its own behind them.  r1 and r2 wait for Y.  The
        # room: r1 and r2 never go; a and b would go once granted, but
        # neither is granted before a reader goes.  w waits for a place
        # nobody frees: a cycle.
        r1, r2, a, b, w = (self.v2() for _ in range(5))
        lk, y = self.path("L"), self.path("Y")
        self.assertCode(r1.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(r2.call("ACQUIRE", path=lk, mode="shared"), "OK")
        self.assertCode(w.call("ACQUIRE", path=y), "OK")
        ra = self.queued(a, "ACQUIRE", path=lk, mode="shared", timeout=600)
        rb = self.queued(b, "ACQUIRE", path=lk, mode="shared", timeout=600)
        self.queued(r1, "ACQUIRE", path=y, timeout=600)
        r2y = self.queued(r2, "ACQUIRE", path=y, timeout=600)
        self.assertCode(w.call("ACQUIRE", path=lk, mode="shared",
                               timeout=600), "EDEADLK")
        # With r2 free of Y's queue (its wait cancelled), r2 can go: a is
        # granted, then goes, then b, then w would be: no cycle.
        got = []
        self.assertCode(r2.wait(r2.send("CANCEL", target=r2y), 10,
                                others=got), "OK")
        self.assertEqual([(g.id, g.code) for g in got],
                         [(r2y, "ECANCELED")])
        rw = self.queued(w, "ACQUIRE", path=lk, mode="shared", timeout=600)
        self.assertWaits(w, rw)
        self.assertCode(r2.call("RELEASE", path=lk), "OK")
        self.assertCode(a.wait(ra, 10), "OK")
        self.assertCode(a.call("RELEASE", path=lk), "OK")
        self.assertCode(b.wait(rb, 10), "OK")
        self.assertCode(b.call("RELEASE", path=lk), "OK")
        self.assertCode(w.wait(rw, 10), "OK")



class SecondReview(DeadlockCase):
    """Attacks on the reduced queue edges, the owner set and the work
    bound."""

    def test_one_connections_waits_hide_a_cycle(self):
        # a holds X, b holds Y and waits for X; a's request for Y closes
        # the cycle a -> b -> a, found at the search's second step.  But
        # nobody (another user, one connection) has queued shared
        # requests for Y, one thread each, ahead of a's: a's step
        # reaches each of those owners, and each owner's expansion walks
        # every wait of its connection (owner_waits), not its own: n
        # threads cost n * n entries.  With 100 the cycle is refused;
        # with 600 (360,000 entries, past SEARCH_WORK_MAX, far below the
        # 262,144 waits DEADLOCK.md says a search looks at) the search
        # gives up and a and b wait for each other for ever.
        sd = self.shared()
        x, y = os.path.join(sd, "X"), os.path.join(sd, "Y")
        a, b = self.v2(), self.v2()
        n = self.nobody(hello=False)
        self.assertCode(n.call("HELLO", version=2), "OK")
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(b.call("ACQUIRE", path=y), "OK")
        self.queued(b, "ACQUIRE", path=x, timeout=600)

        def noise(first, last):
            rids = [n.send("ACQUIRE", path=y, mode="shared", thread=i,
                           timeout=600) for i in range(first, last)]
            got = []
            self.assertCode(n.wait(n.send("PING"), 120, others=got), "OK")
            self.assertEqual(got, [], "nobody's waits queued: %r" % rids[:1])
        noise(1, 101)
        self.assertCode(a.call("ACQUIRE", path=y, timeout=600), "EDEADLK",
                        "100 threads ahead: refused")
        noise(101, 601)
        rid = a.send("ACQUIRE", path=y, timeout=600)
        got = []
        self.assertCode(a.wait(a.send("PING"), 60, others=got), "OK")
        self.assertEqual([(g.id, g.code) for g in got], [(rid, "EDEADLK")],
                         "600 threads of one connection ahead: a and b "
                         "wait for each other for ever")


    def test_acquire_that_adopts_an_orphan_closes_a_cycle(self):
        # As Review.test_reclaim_that_closes_a_cycle, with an ACQUIRE in
        # place of the RECLAIM: an ACQUIRE of a lock whose holder is an
        # orphan of the asker's process (granted by the previous daemon,
        # which died before it replied) adopts it (lbd_orphan_adopt) and
        # is answered OK at once.  Owner 1 waits for y (owner 2's, who
        # waits for the orphan x: no cycle yet), then its ACQUIRE of x
        # adopts x: each waits for the other, and nothing looked (no
        # wait was queued, so no search).  DEADLOCK.md's "Not yet" names
        # RECLAIM only; the same gap is open to an ACQUIRE.
        x, y = self.path("x"), self.path("y")
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=x, thread=1), "OK")
        ty = b.call("ACQUIRE", path=y, thread=2).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        a2, b2 = self.v2(), self.v2()
        self.assertCode(b2.call("RECLAIM", path=y, token=ty, thread=2), "OK")
        rb = self.queued(b2, "ACQUIRE", path=x, thread=2, timeout=600)
        ra = self.queued(a2, "ACQUIRE", path=y, thread=1, timeout=600)
        got = []                # the refusal may come before the OK
        self.assertCode(a2.wait(a2.send("ACQUIRE", path=x, thread=1), 10,
                                others=got), "OK",
                        "x adopted by its owner's ACQUIRE")
        self.assertCode(a2.wait(a2.send("PING"), 10, others=got), "OK")
        self.assertCode(b2.wait(b2.send("PING"), 10, others=got), "OK")
        self.assertIn("EDEADLK", [g.code for g in got],
                      "both wait for ever: %r %r" % (ra, rb))


    def test_owners_second_upgrade_is_no_deadlock(self):
        # a and b read x; a waits to upgrade x (for b to stop reading)
        # and, pipelined, asks to upgrade x again.  No owner waits for
        # a: once b lets go, a's first UPGRADE is granted and its
        # second finds it the only holder.  lbd_upgrade refuses any
        # UPGRADE behind an UPGRADE at the head EDEADLK without asking
        # whose it is, and tells a cycle "pid P waits for x (to
        # upgrade), read by pid P; pid P waits for x ..." of one owner
        # that waits for itself.  It may be refused otherwise (or wait),
        # never as a deadlock.
        a, b = self.v2(), self.v2()
        x = self.path("x")
        self.assertCode(a.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.assertCode(b.call("ACQUIRE", path=x, mode="shared"), "OK")
        self.queued(a, "UPGRADE", path=x, timeout=600)
        rid = a.send("UPGRADE", path=x, timeout=600)
        got = []
        self.assertCode(a.wait(a.send("PING"), 10, others=got), "OK")
        self.assertNotIn((rid, "EDEADLK"), [(g.id, g.code) for g in got],
                         [g.fields.get("message") for g in got])


class ThirdReview(DeadlockCase):
    """Attacks on the recheck after a hold is given, on one owner's many
    waits, and on what the message tells beside a hidden lock."""

    def test_reclaim_refuses_the_wait_the_cycle_leaves_by(self):
        # As Review.test_reclaim_that_closes_a_cycle, but owner 1 also
        # waits for z (held by a third owner, outside any cycle) after
        # its wait for y.  Its RECLAIM of x closes the cycle 1 -> 2 -> 1
        # through its wait for y: refusing its newest wait (for z)
        # leaves the cycle closed, both waiting for ever.  The wait for
        # y (or owner 2's for x) must be refused; the wait for z waits.
        x, y, z = self.path("x"), self.path("y"), self.path("z")
        a, b = self.v2(), self.v2()
        tx = a.call("ACQUIRE", path=x, thread=1).fields["token"]
        ty = b.call("ACQUIRE", path=y, thread=2).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        a2, b2, c2 = self.v2(), self.v2(), self.v2()
        self.assertCode(c2.call("ACQUIRE", path=z, thread=3), "OK")
        self.assertCode(b2.call("RECLAIM", path=y, token=ty, thread=2), "OK")
        rb = self.queued(b2, "ACQUIRE", path=x, thread=2, timeout=600)
        ra = self.queued(a2, "ACQUIRE", path=y, thread=1, timeout=600)
        rz = self.queued(a2, "ACQUIRE", path=z, thread=1, timeout=600)
        got = []
        self.assertCode(a2.wait(a2.send("RECLAIM", path=x, token=tx,
                                         thread=1), 10, others=got), "OK")
        self.assertCode(a2.wait(a2.send("PING"), 10, others=got), "OK")
        self.assertCode(b2.wait(b2.send("PING"), 10, others=got), "OK")
        refused = [g.id for g in got if g.code == "EDEADLK"]
        self.assertEqual(len(refused), 1, got)
        self.assertIn(refused[0], (ra, rb) if refused[0] != rz else (),
                      "the wait outside the cycle refused: %r" % got)
        self.assertWaits(a2, rz)

    def test_own_artefact_adopted_closes_a_cycle(self):
        # The daemon's state is lost with it (its grant of x to owner 1
        # recorded nowhere), so x's artefact, naming owner 1, is held
        # outside the broker: owner 2 holds y and waits for x (the path
        # ends there), owner 1 waits for y (no cycle yet).  Owner 1's
        # ACQUIRE of x adopts its own artefact at once (no wait queued,
        # so no search), and now each waits for the other.  One of the
        # two waits must be refused EDEADLK.
        x, y = self.path("x"), self.path("y")
        a = self.v2()
        self.assertCode(a.call("ACQUIRE", path=x, thread=1), "OK")
        self.daemon.kill()
        for suffix in ("", "-wal", "-shm", "-journal", "-intents"):
            if os.path.exists(self.daemon.state + suffix):
                os.unlink(self.daemon.state + suffix)
        self.daemon.start()
        a2, b2 = self.v2(), self.v2()
        self.assertCode(b2.call("ACQUIRE", path=y, thread=2), "OK")
        rb = self.queued(b2, "ACQUIRE", path=x, thread=2, timeout=600)
        ra = self.queued(a2, "ACQUIRE", path=y, thread=1, timeout=600)
        got = []
        self.assertCode(a2.wait(a2.send("ACQUIRE", path=x, thread=1), 10,
                                others=got), "OK", "its own artefact")
        self.assertCode(a2.wait(a2.send("PING"), 10, others=got), "OK")
        self.assertCode(b2.wait(b2.send("PING"), 10, others=got), "OK")
        self.assertIn("EDEADLK", [g.code for g in got],
                      "both wait for ever: %r %r" % (ra, rb))

    def test_one_owners_many_waits_hide_no_cycle(self):
        # Owner a holds X and has 1,000 waits queued for L (held by q,
        # who waits for nothing), behind p's; p holds nothing of theirs
        # but waits, beside, for W, which c holds.  c's request for X
        # closes c -> a -> p -> c.  Each of a's waits walked every wait
        # of a queued ahead of it: 1,000 waits cost 500,000 entries,
        # past the search's bound, and it gave up: c and p waited for
        # each other for ever.
        x, lk, w = self.path("X"), self.path("L"), self.path("W")
        a, p, q, c = self.v2(), self.v2(), self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(q.call("ACQUIRE", path=lk), "OK")
        self.assertCode(c.call("ACQUIRE", path=w), "OK")
        self.queued(p, "ACQUIRE", path=lk, timeout=600)
        self.queued(p, "ACQUIRE", path=w, timeout=600)
        rids = [a.send("ACQUIRE", path=lk, timeout=600)
                for _ in range(1000)]
        got = []
        self.assertCode(a.wait(a.send("PING"), 120, others=got), "OK")
        self.assertEqual(got, [], "a's waits queued: %r" % rids[:1])
        r = c.call("ACQUIRE", path=x, timeout=600, _wait=60)
        self.assertCode(r, "EDEADLK")

    def test_message_names_no_owner_beside_a_hidden_lock(self):
        # As Review.test_message_names_no_lock_the_client_may_not_see,
        # root's owners being threads 11 and 22: thread 11 holds the
        # hidden lock and waits for y, thread 22 waits for the hidden
        # lock.  The links beside the hidden one named them ("held by
        # pid P thread 22", "pid P thread 11 waits for y"): who holds
        # and who waits for a lock nobody may not look at.
        hidden = os.path.join(self.dir, "private")
        os.mkdir(hidden, 0o700)
        secret = os.path.join(hidden, "secret-name")
        sd = self.shared()
        y, z = os.path.join(sd, "y"), os.path.join(sd, "z")
        r, n = self.v2(), self.v2_nobody()
        self.assertCode(r.call("ACQUIRE", path=secret, thread=11), "OK")
        self.assertCode(n.call("ACQUIRE", path=y), "OK")
        self.assertCode(r.call("ACQUIRE", path=z, thread=22), "OK")
        self.queued(r, "ACQUIRE", path=y, thread=11, timeout=600)
        self.queued(r, "ACQUIRE", path=secret, thread=22, timeout=600)
        got = n.call("ACQUIRE", path=z, timeout=600)
        self.assertCode(got, "EDEADLK")
        msg = got.fields["message"]
        self.assertNotIn("secret-name", msg)
        self.assertNotIn("thread 11", msg)
        self.assertNotIn("thread 22", msg)
        self.assertIn(y, msg)
        self.assertIn(z, msg)

    v2_nobody = Review.v2_nobody


class FourthReview(DeadlockCase):
    """Attacks on the search from the new wait alone, on the recheck
    after a hold is given, and on the waits it spares."""

    def test_reclaim_that_closes_two_cycles_breaks_both(self):
        # After a restart, owner 1 (thread 1) held x, an orphan now.
        # Owners 2 and 3 hold y2 and y3 and wait for x (the path ends
        # at the orphan); owner 1, over its new connection, waits for
        # y2 and, pipelined, for y3 (DEADLOCK.md: an owner with several
        # waits needs all of them).  Its RECLAIM of x closes two cycles,
        # 1 -> 2 -> 1 through its wait for y2 and 1 -> 3 -> 1 through
        # its wait for y3.  lbd_waits_recheck refuses the wait of the
        # first cycle it finds, and leaves the other closed: owner 1
        # waits for ever for owner 2 or 3, who waits for x.  Each cycle
        # must lose one of its waits.
        x, y2, y3 = self.path("x"), self.path("y2"), self.path("y3")
        a = self.v2()
        tx = a.call("ACQUIRE", path=x, thread=1).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        a2, b2, c2 = self.v2(), self.v2(), self.v2()
        self.assertCode(b2.call("ACQUIRE", path=y2, thread=2), "OK")
        self.assertCode(c2.call("ACQUIRE", path=y3, thread=3), "OK")
        rb = self.queued(b2, "ACQUIRE", path=x, thread=2, timeout=600)
        rc = self.queued(c2, "ACQUIRE", path=x, thread=3, timeout=600)
        r2 = self.queued(a2, "ACQUIRE", path=y2, thread=1, timeout=600)
        r3 = self.queued(a2, "ACQUIRE", path=y3, thread=1, timeout=600)
        got = []
        self.assertCode(a2.wait(a2.send("RECLAIM", path=x, token=tx,
                                         thread=1), 10, others=got), "OK")
        for c in (a2, b2, c2):
            self.assertCode(c.wait(c.send("PING"), 10, others=got), "OK")
        refused = [g.id for g in got if g.code == "EDEADLK"]
        self.assertTrue(r2 in refused or rb in refused,
                        "1 -> 2 -> 1 left closed: %r" % got)
        self.assertTrue(r3 in refused or rc in refused,
                        "1 -> 3 -> 1 left closed: %r" % got)

    def test_upgrade_at_the_head_closes_a_cycle_behind_it(self):
        # After a restart, x's holder of the previous run (thread 1,
        # shared) is an orphan and owner 2 (thread 2), its rider, has
        # ridden on again (RECLAIM).  Owner 3 holds m and asks to read
        # x: it waits (no reader joins an orphan's hold), for no one the
        # graph knows.  Owner 2 waits for m (for owner 3: no cycle),
        # then, pipelined, asks to UPGRADE x: its UPGRADE goes to the
        # head of x's queue, ahead of owner 3's shared wait, which now
        # waits for it (DEADLOCK.md: a shared ACQUIRE waits for every
        # waiter ahead of it that is not a shared ACQUIRE).  2 -> 3 -> 2:
        # once the orphan goes, owner 2 writes x and waits for m, owner
        # 3 waits to read x, for ever.  The UPGRADE closes the cycle and
        # must be refused EDEADLK; the search from it alone follows its
        # edges out (to the readers: none but the orphan) and never the
        # old wait that the edges it draws into its owner lead back to.
        # (The same two waits in the other order, the UPGRADE first, are
        # refused: the wait for m, EDEADLK, "thread 3 waits for x".)
        x, m = self.path("x"), self.path("m")
        a, b = self.v2(), self.v2()
        self.assertCode(a.call("ACQUIRE", path=x, mode="shared", thread=1),
                        "OK")
        tok = b.call("ACQUIRE", path=x, mode="shared",
                     thread=2).fields["token"]
        self.daemon.kill()
        self.daemon.start()
        b2, p = self.v2(), self.v2()
        self.assertCode(b2.call("RECLAIM", path=x, token=tok, thread=2),
                        "OK")
        self.assertCode(p.call("ACQUIRE", path=m, thread=3), "OK")
        rs = self.queued(p, "ACQUIRE", path=x, mode="shared", thread=3,
                         timeout=600)
        rm = self.queued(b2, "ACQUIRE", path=m, thread=2, timeout=600)
        ru = b2.send("UPGRADE", path=x, thread=2, timeout=600)
        got = []
        for c in (b2, p):
            self.assertCode(c.wait(c.send("PING"), 10, others=got), "OK")
        self.assertIn((ru, "EDEADLK"), [(g.id, g.code) for g in got],
                      "2 -> 3 -> 2 left closed: %r (waits %r %r)"
                      % (got, rs, rm))

    def test_orphan_handed_to_its_owners_wait_closes_a_cycle(self):
        # After a restart with x's sqlite database write-locked by
        # another process, owner 1's hold of x (thread 5) cannot be
        # looked at: held for it, unjudged.  Owner 2 (thread 99) holds
        # m and waits for x (for the orphan: the path ends); owner 1,
        # over its new connection, waits for m (for owner 2: no cycle)
        # and, pipelined, asks for x again, queued behind owner 2.  Once
        # the database is free the orphan is judged its own and handed
        # to that wait (reconcile.c orphan_to_waiter), past owner 2's
        # wait ahead of it, which now waits for owner 1: 1 -> 2 -> 1,
        # for ever.  A hold given with no search (DEADLOCK.md: a hold
        # given with no wait queued is searched from its owner's waits);
        # the wait for m (or owner 2's for x) must be refused EDEADLK.
        self.daemon.kill()
        self.daemon = Daemon(self.dir, config="grace = 600\n").start()
        x, m = self.path("x"), self.path("m")
        a = self.v2()
        a.call("ACQUIRE", path=x, method="sqlite", thread=5)
        self.daemon.kill()
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        busy = sqlite3.connect(db, isolation_level=None)
        busy.execute("BEGIN EXCLUSIVE")
        try:
            self.daemon.start()
            a2, b = self.v2(), self.v2()
            self.assertCode(b.call("ACQUIRE", path=m, thread=99), "OK")
            rb = self.queued(b, "ACQUIRE", path=x, method="sqlite",
                             thread=99, timeout=600)
            rm = self.queued(a2, "ACQUIRE", path=m, thread=5, timeout=600)
            rx = self.queued(a2, "ACQUIRE", path=x, method="sqlite",
                             thread=5, timeout=600)
        finally:
            busy.rollback()
            busy.close()
        ga, gb = [], []
        self.assertCode(a2.wait(rx, 20, others=ga), "OK",
                        self.daemon.logtext())
        self.assertCode(a2.wait(a2.send("PING"), 10, others=ga), "OK")
        self.assertCode(b.wait(b.send("PING"), 10, others=gb), "OK")
        self.assertTrue((rm, "EDEADLK") in [(g.id, g.code) for g in ga] or
                        (rb, "EDEADLK") in [(g.id, g.code) for g in gb],
                        "1 -> 2 -> 1 left closed: %r %r" % (ga, gb))

    def test_refusal_looks_at_every_lock_of_a_long_cycle(self):
        # Nobody, within the default limits, draws a ring of 2,000
        # owners (4 connections of 500 threads; owner i holds lock i and
        # waits for lock i+1) whose locks lie 1,900 directories deep.
        # The request that closes the ring costs the search a few
        # entries per owner, well under its bound; but the message it
        # is refused with looks, as nobody, at each of the 2,000 locks
        # (cycle_tell: may_look, an lstat of a 3,800-byte path, per
        # link), though an 8 KiB line has room for two such links: the
        # bound that DEADLOCK.md sets (a few milliseconds a request)
        # does not hold, and each refusal, sent again and again, holds
        # up every other client of the daemon.
        sd = self.shared()
        depth, n, per = 1900, 2000, 500
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                d = sd
                for _ in range(depth):
                    d = os.path.join(d, "d")
                    os.mkdir(d)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        self.deep.append(os.path.join(sd, "d"))
        deep = os.path.join(sd, *(["d"] * depth))
        self.assertTrue(os.path.isdir(deep))
        cs = Review.nobodies(self, n // per)
        owners = [(cs[i // per], i % per + 1) for i in range(n)]
        ps = [os.path.join(deep, "l%d" % i) for i in range(n)]

        def batch(reqs, code):
            by = {}
            for c, f in reqs:
                by.setdefault(id(c), (c, []))[1].append(f)
            for c, fs in by.values():
                for k in range(0, len(fs), 40):
                    got = []
                    for f in fs[k:k + 40]:
                        c.send("ACQUIRE", **f)
                    self.assertCode(c.wait(c.send("PING"), 600,
                                           others=got), "OK")
                    self.assertEqual([g.code for g in got],
                                     [code] * len(got))
                    self.assertEqual(len(got), len(fs[k:k + 40])
                                     if code != "-" else 0)
        batch([(c, dict(path=ps[i], thread=t, timeout=0))
               for i, (c, t) in enumerate(owners)], "OK")
        batch([(c, dict(path=ps[i + 1], thread=t, timeout=600))
               for i, (c, t) in enumerate(owners[:-1])], "-")
        last, lt = owners[-1]
        self.assertCode(last.call("ACQUIRE", path=ps[0], thread=lt,
                                  timeout=600, _wait=600), "EDEADLK")
        cpu = self.daemon.cpu_seconds()
        rids = [last.send("ACQUIRE", path=ps[0], thread=lt, timeout=600)
                for _ in range(5)]
        got = []
        self.assertCode(last.wait(last.send("PING"), 600, others=got), "OK")
        self.assertEqual([(g.id, g.code) for g in got],
                         [(rid, "EDEADLK") for rid in rids])
        cpu = self.daemon.cpu_seconds() - cpu
        print("5 refusals cost the daemon %.2f s of CPU" % cpu,
              file=sys.stderr)
        self.assertLess(cpu / 5, 0.05)

    def test_exclusive_wait_behind_its_owners_shared_one(self):
        # h holds x; owner o asks to read x and, pipelined, to write it:
        # both wait, the exclusive one behind o's shared one.  When h
        # lets go, o reads x, and its exclusive ACQUIRE now waits for
        # o's own read (DEADLOCK.md: an exclusive ACQUIRE waits for
        # every reader of L, and every waiter queued ahead of it): o
        # waits for itself, for ever, and p's shared request queued
        # behind waits with it.  The walk ahead passes o's own shared
        # wait (wait_edges) and no edge goes to an owner's own read, so
        # nothing refuses it, at its queueing or at the grant.  Asked
        # with o reading x already, the same ACQUIRE is refused at once
        # (EFAILED: a change of mode is UPGRADE's); queued, it must be
        # refused as well, EDEADLK (or EFAILED), never left waiting.
        h, o, p = self.v2(), self.v2(), self.v2()
        x = self.path("x")
        self.assertCode(h.call("ACQUIRE", path=x), "OK")
        rv = self.queued(o, "ACQUIRE", path=x, mode="shared", timeout=600)
        rw = o.send("ACQUIRE", path=x, timeout=600)
        got = []
        self.assertCode(o.wait(o.send("PING"), 10, others=got), "OK")
        self.queued(p, "ACQUIRE", path=x, mode="shared", timeout=600)
        self.assertCode(h.call("RELEASE", path=x), "OK")
        self.assertCode(o.wait(rv, 10, others=got), "OK")
        self.assertCode(o.wait(o.send("PING"), 10, others=got), "OK")
        self.assertIn((rw, True), [(g.id, g.code in ("EDEADLK", "EFAILED"))
                                   for g in got],
                      "o waits for its own read of x: %r" % got)

    def test_kept_wait_ahead_is_no_owner_to_wait_for(self):
        # h holds L, p holds Z.  o asks for L kept for process k
        # (ACQUIRE pid=: the hold, once granted, is k's, not o's) and
        # waits behind h; p's request for L waits behind o's.  Then o
        # asks for Z.  o holds nothing, now or once its kept ACQUIRE is
        # granted: nobody can wait for o to let go, and there is no
        # cycle (h lets go of L, k keeps it, its RELEASE pid= gives it
        # to p, p lets go of Z, o gets it).  wait_edges draws an edge
        # from p's wait to the owner of the kept ACQUIRE ahead of it,
        # (o), and o's request is refused EDEADLK: a false cycle, o
        # told it would deadlock with p.  It must wait.
        k = self.spawn("import time; time.sleep(600)")
        h, p, o = self.v2(), self.v2(), self.v2()
        lk, z = self.path("L"), self.path("Z")
        self.assertCode(h.call("ACQUIRE", path=lk), "OK")
        self.assertCode(p.call("ACQUIRE", path=z), "OK")
        rk = self.queued(o, "ACQUIRE", path=lk, pid=k.pid, timeout=600)
        rp = self.queued(p, "ACQUIRE", path=lk, timeout=600)
        rz = o.send("ACQUIRE", path=z, timeout=600)
        got = []
        self.assertCode(o.wait(o.send("PING"), 10, others=got), "OK")
        self.assertEqual(got, [], "o's request for Z refused")
        # And everyone is served in turn: no cycle was there.
        self.assertCode(h.call("RELEASE", path=lk), "OK")
        self.assertCode(o.wait(rk, 10), "OK")
        self.assertCode(o.call("RELEASE", path=lk, pid=k.pid), "OK")
        self.assertCode(p.wait(rp, 10), "OK")
        self.assertCode(p.call("RELEASE", path=z), "OK")
        self.assertCode(o.wait(rz, 10), "OK")

    def setUp(self):
        self.deep = []
        super().setUp()

    def tearDown(self):
        # Trees too deep for shutil.rmtree's recursion.
        for d in self.deep:
            subprocess.run(["rm", "-rf", d], check=False)
        super().tearDown()


if __name__ == "__main__":
    unittest.main(verbosity=2)
