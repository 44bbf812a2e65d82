"""cluster_review.py: a hostile review of cluster locks (docs/CLUSTER.md,
daemon/cohort.c), one test per finding, each asserting what the daemon
should do.  Two daemons on one machine stand in for two hosts (as
cluster.py's TwoHosts), one real etcd between them.

Skipped (exit 77, saying why) as cluster.py is: without etcd and etcdctl,
or with a daemon built without etcd.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import GRANTED, TTL, wait_for  # noqa: E402
from lbdaemon import Client, Daemon, NobodyClient, unique_name  # noqa: E402


def v2(daemon):
    """A version-2 session (shared locks, LOST lines) on daemon."""
    c = Client(daemon.socket, hello=False)
    r = c.call("HELLO", version=2)
    assert r.verb == "OK", r
    return c


def revision(etcd):
    """etcd's current revision (every put and delete adds one)."""
    req = urllib.request.Request(etcd.url + "/v3/kv/range",
                                 data=b'{"key":"AA=="}')
    with urllib.request.urlopen(req, timeout=5) as r:
        return int(json.load(r)["header"]["revision"])


def artefact_of(path, proc):
    """A link lock's artefact for path, made by hand as process proc
    (alive or not) holding it outside the broker would have made it."""
    u = unique_name(proc.pid, path + ".lock", "link")
    with open(u, "w"):
        pass
    os.link(u, path + ".lock")


def read_or_none(client, seconds):
    try:
        return client.read(seconds)
    except TimeoutError:
        return None


class Hosts(cluster.ClusterCase):
    """Daemon a (self.a, self.daemon) and daemon b (self.b), each with its
    own cluster_dir, one etcd; the lease TTL is the class's ttl.  The
    setup of cluster.TwoHosts, without its tests."""
    ttl = TTL

    def setUp(self):
        super().setUp()
        self.etcd.start()
        self.a = self.start_daemon(self.etcd.url, ttl=self.ttl)
        self.b = self.start_other("b")
        self.granted()
        wait_for("b's lease", lambda: GRANTED.search(self.b.logtext()),
                 self.ttl + 2.0)
        self.extra = []

    def tearDown(self):
        for c in self.extra:
            try:
                c.close()
            except OSError:
                pass
        try:
            if self.b.stop() not in (0, None):
                print(self.b.logtext(), file=sys.stderr)
        finally:
            super().tearDown()

    def start_other(self, name):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        os.makedirs(os.path.join(d, "cluster", "db"))
        daemon = Daemon(d, config="cluster_dir = %s/cluster\n"
                        "etcd_endpoints = %s\netcd_ttl = %d\n" % (
                            d, self.etcd.url, self.ttl))
        daemon.start()
        daemon.cluster = os.path.join(d, "cluster")
        return daemon

    def path(self, daemon, name="db/migrate"):
        """Lock name under daemon's cluster_dir."""
        return os.path.join(getattr(daemon, "cluster", self.cluster), name)

    def client(self, daemon):
        c = daemon.client(version=2)
        self.extra.append(c)
        return c

    stored = cluster.Restart.stored

    def lease_of_a(self):
        return GRANTED.search(self.a.logtext()).group(1)

    def b_may_take(self, seconds, name="db/migrate"):
        """Whether a try on b is granted (and released) within seconds;
        the last refusal otherwise."""
        cb = self.client(self.b)
        p = self.path(self.b, name)
        deadline = time.monotonic() + seconds
        while True:
            r = cb.call("ACQUIRE", path=p, timeout=0)
            if r.code == "OK":
                self.assertEqual(cb.call("RELEASE", path=p).code, "OK")
                return True, r
            if time.monotonic() > deadline:
                return False, r
            time.sleep(0.5)


class Restart(Hosts):
    def test_a_killed_daemons_waiting_key_does_not_block_the_other_host(self):
        # b holds; a's client waits, so a's key waits behind b's in etcd.
        # a is killed and started again within the TTL: it keeps its
        # lease alive, and with it that key, which nobody on a waits for
        # any more.  Once b releases, the lock is free everywhere: b's
        # next try must be granted.  It is refused forever instead ("held
        # by another host"), a's key first under the prefix.
        ca, cb = self.client(self.a), self.client(self.b)
        pa, pb = self.path(self.a), self.path(self.b)
        self.stored(self.lease_of_a())
        self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=0).code, "OK")
        ca.send("ACQUIRE", path=pa, timeout=120)
        wait_for("a's key beside b's", lambda: len(self.keys()) == 2, 5.0)
        self.a.kill()
        self.a.start()
        self.logged(r"etcd lease %s of the previous run kept" %
                    self.lease_of_a())
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        ok, r = self.b_may_take(2 * self.ttl)
        self.assertTrue(ok, "b refused a free lock %.0f s after its "
                        "release: %r; keys left: %r" % (2 * self.ttl, r,
                                                        self.keys()))

    def test_holds_taken_back_after_the_lease_expired_exclude_the_other_host(
            self):
        # a holds db/migrate for a client and db/kept kept for a process
        # (pid=); a is killed, its lease expires, b takes both locks.
        # Started again, a has a new lease and no key for either lock, yet
        # it gives the client's hold back (ACQUIRE by its process: OK, the
        # old token) and keeps the kept hold (a kept ACQUIRE: OK): each
        # lock held on both hosts at once.
        ca = self.client(self.a)
        pa, pk = self.path(self.a), self.path(self.a, "db/kept")
        r0 = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r0.code, "OK", r0)
        r = ca.call("ACQUIRE", path=pk, timeout=0, pid=os.getpid())
        self.assertEqual(r.code, "OK", r)
        lease = self.lease_of_a()
        self.a.kill()
        ca.close()
        wait_for("a's lease expired", lambda: lease not in self.etcd.leases(),
                 self.ttl + 5.0)
        cb = self.client(self.b)
        rb = cb.call("ACQUIRE", path=self.path(self.b), timeout=0)
        self.assertEqual(rb.code, "OK", rb)
        rk = cb.call("ACQUIRE", path=self.path(self.b, "db/kept"), timeout=0)
        self.assertEqual(rk.code, "OK", rk)
        self.a.start()
        self.logged(r"the previous run's lease %s is gone" % lease)
        ca = self.client(self.a)
        back = ca.call("ACQUIRE", path=pa, timeout=0)
        kept = ca.call("ACQUIRE", path=pk, timeout=0, pid=os.getpid())
        self.assertEqual([back.code != "OK", kept.code != "OK"], [True, True],
                         "granted on a while b holds (b's tokens %s, %s): "
                         "%r, %r" % (rb.fields["token"], rk.fields["token"],
                                     back, kept))

    def test_a_clean_restart_never_lets_both_hosts_hold(self):
        # a's client holds; b's client waits.  a stops (SIGTERM) and
        # starts again, as a package upgrade does.  Its stop revokes the
        # lease, so b's waiter is granted at once; but the hold is kept
        # for the next run, and a gives it back to its client when it
        # asks (ACQUIRE by its process: OK): both hold the lock.
        ca, cb = self.client(self.a), self.client(self.b)
        pa, pb = self.path(self.a), self.path(self.b)
        self.assertEqual(ca.call("ACQUIRE", path=pa, timeout=0).code, "OK")
        rid = cb.send("ACQUIRE", path=pb, timeout=60)
        time.sleep(0.5)
        self.assertEqual(self.a.stop(), 0)
        rb = read_or_none(cb, 3.0)
        self.a.start()
        ca = self.client(self.a)
        back = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertFalse(rb is not None and rb.id == rid and rb.code == "OK"
                         and back.code == "OK",
                         "b granted %r at a's stop, and a gave its client "
                         "the lock back: %r" % (rb, back))

    def test_fencing_tokens_grow_after_a_restart_with_the_lease_kept(self):
        # a's client holds (token T); a is killed and started again within
        # the TTL, keeping its lease and so the lock's key.  The client
        # takes its hold back and releases it; the key stays in etcd
        # (nobody on a deletes it), and the next grant on a re-takes that
        # very key: its create revision again, its grant count from 1,
        # token T again.  Every later grant's token must be greater.
        ca = self.client(self.a)
        pa = self.path(self.a)
        self.stored(self.lease_of_a())
        r1 = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r1.code, "OK", r1)
        self.a.kill()
        ca.close()
        self.a.start()
        self.logged(r"etcd lease %s of the previous run kept" %
                    self.lease_of_a())
        ca = self.client(self.a)
        back = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(back.code, "OK", back)
        self.assertEqual(ca.call("RELEASE", path=pa).code, "OK")
        cn = self.client(self.a)
        r2 = cn.call("ACQUIRE", path=pa, timeout=5)
        self.assertEqual(r2.code, "OK", r2)
        self.assertGreater(int(r2.fields["token"]), int(r1.fields["token"]),
                           "a token given again: %r after %r" % (r2, r1))
        self.assertEqual(cn.call("RELEASE", path=pa).code, "OK")


class EtcdBlip(Hosts):
    # A TTL long enough for the lease to outlive etcd's restart.
    ttl = 20

    def test_a_failed_delete_does_not_leave_the_key_blocking_the_other_host(
            self):
        # a's client holds, and releases while etcd is down for a moment:
        # the key's delete fails ("it ends with its lease").  But the
        # lease does not end: a keeps it alive once etcd is back, and the
        # key with it, which nobody on a holds or waits for.  b's tries
        # of the free lock must be granted once etcd is back; they are
        # refused for as long as a runs.
        ca = self.client(self.a)
        pa = self.path(self.a)
        self.assertEqual(ca.call("ACQUIRE", path=pa, timeout=0).code, "OK")
        self.etcd.kill()
        self.assertEqual(ca.call("RELEASE", path=pa).code, "OK")
        self.logged(r"the delete at .*it ends with its lease", 10.0)
        self.etcd.start()
        ok, r = self.b_may_take(15.0)
        self.assertNotIn("lost", self.a.logtext())
        self.assertTrue(ok, "b refused a free lock 15 s after etcd came "
                        "back: %r; keys left: %r" % (r, self.keys()))


class Fairness(Hosts):
    def test_overlapping_readers_give_the_lock_up_within_the_bound(self):
        # a's readers overlap (each new one joins before the last leaves)
        # while b's client waits.  A host's clients wait for at most 16
        # holds of another's in a row (docs/CLUSTER.md); but a reader's
        # join is no handoff to the bound, and the artefact goes from
        # reader to reader without a grant: a never gives the key up, and
        # b waits for as long as a's readers keep coming (40 here).
        pa, pb = self.path(self.a), self.path(self.b)
        readers = [v2(self.a)]
        self.extra.append(readers[0])
        r = readers[0].call("ACQUIRE", path=pa, timeout=0, mode="shared")
        self.assertEqual(r.code, "OK", r)
        cb = self.client(self.b)
        rid = cb.send("ACQUIRE", path=pb, timeout=120)
        time.sleep(1.0)
        admitted, granted = 0, None
        for _ in range(40):
            c = v2(self.a)
            self.extra.append(c)
            r = c.call("ACQUIRE", path=pa, timeout=0, mode="shared")
            if r.code != "OK":
                break
            admitted += 1
            readers.append(c)
            old = readers.pop(0)
            self.assertEqual(old.call("RELEASE", path=pa).code, "OK")
            granted = read_or_none(cb, 0.1)
            if granted is not None:
                break
        for c in readers:
            c.call("RELEASE", path=pa)
        if granted is None:
            granted = read_or_none(cb, 10.0)
        self.assertIsNotNone(granted)
        self.assertEqual((granted.id, granted.code), (rid, "OK"), granted)
        self.assertLessEqual(admitted, 16, "a admitted %d readers while b "
                             "waited" % admitted)


class OutsideTheBroker(Hosts):
    def test_a_try_of_a_lock_held_outside_is_answered_at_once(self):
        # A cluster lock held outside the broker (its artefact made by a
        # live process itself).  A local lock's try is answered EALREADY
        # at once; a cluster lock's try waits for its key's take, then
        # finds the artefact, and stays queued: it is answered after 6 s,
        # EFAILED "etcd did not say within 6 s whether another host holds
        # it" (etcd did say: the key was held), and the key is held for
        # those 6 s, the lock taken from every other host meanwhile.
        holder = subprocess.Popen(["sleep", "60"])
        try:
            pa = self.path(self.a)
            artefact_of(pa, holder)
            c = self.client(self.a)
            t0 = time.monotonic()
            r = c.call("ACQUIRE", _wait=20.0, path=pa, timeout=0)
            took = time.monotonic() - t0
            self.assertEqual(r.code, "EALREADY", r)
            self.assertLess(took, 3.0)
        finally:
            holder.kill()
            holder.wait()

    def test_stale_1_breaks_a_dead_holders_artefact(self):
        # ACQUIRE stale=1 breaks the artefact of a holder that is provably
        # dead and takes the lock (docs/PROTOCOL.md): so it does for a
        # local lock.  A cluster lock's request is queued for its key's
        # take without its stale=1 (lock.c cluster_wait), so the dead
        # holder's artefact is never broken: the try is answered EFAILED
        # after 6 s, a wait times out, the artefact stays.
        dead = subprocess.Popen(["sleep", "60"])
        pa = self.path(self.a)
        artefact_of(pa, dead)
        dead.kill()
        dead.wait()
        c = self.client(self.a)
        r = c.call("ACQUIRE", _wait=20.0, path=pa, timeout=0, stale=1)
        w = c.call("ACQUIRE", _wait=20.0, path=pa, timeout=5, stale=1) \
            if r.code != "OK" else r
        self.assertEqual((r.code, w.code), ("OK", "OK"), (r, w))


class Lost(Hosts):
    def test_a_version_1_holder_learns_that_it_lost_the_lock(self):
        # Every local holder of a cluster lock learns that it is lost
        # (docs/CLUSTER.md, "Losing the lock").  The LOST line is version
        # 2's, and a version-1 session is sent nothing: its hold ends in
        # silence, its connection stays open, and its client goes on as
        # the holder while b's holds the lock.  (Told somehow -- its
        # connection closed, say -- or refused cluster locks at all.)
        ca = self.client(self.a)            # HELLO version=1
        pa = self.path(self.a)
        r0 = ca.call("ACQUIRE", path=pa, timeout=0)
        if r0.code != "OK":
            return                          # refused: nothing to lose
        cb = self.client(self.b)
        rid = cb.send("ACQUIRE", path=self.path(self.b), timeout=60)
        self.etcd.ctl("lease", "revoke", self.lease_of_a())
        rb = cb.wait(rid, 10.0)
        self.assertEqual(rb.code, "OK", rb)
        self.logged(r"lost it: the daemon's etcd lease", 10.0)
        try:
            told = ca.read(3.0)
        except TimeoutError:
            told = None
        except (EOFError, ConnectionResetError):
            told = "closed"
        self.assertIsNotNone(told, "a's version-1 holder (token %s) was "
                             "told nothing; b holds with token %s" % (
                                 r0.fields["token"], rb.fields["token"]))


class Nobody(Hosts):
    def test_the_method_refusal_tells_nobody_nothing(self):
        # Where nobody may not look, every answer is "cannot look at it",
        # whether the lock is held or not (docs/PROTOCOL.md).  A cluster
        # lock held by root in a private directory: nobody's ACQUIRE with
        # another method is answered "... is a cluster lock taken with
        # method link on this host", telling it that the lock is in use.
        priv = os.path.join(self.cluster, "private")
        os.mkdir(priv, 0o700)
        p = os.path.join(priv, "x")
        n = NobodyClient(self.a.socket, version=2)
        self.extra.append(n)
        free = n.call("ACQUIRE", path=p, timeout=0, method="mkdir")
        self.assertIn("cannot look at it", free.fields.get("message", ""))
        c = self.client(self.a)
        self.assertEqual(c.call("ACQUIRE", path=p, timeout=0).code, "OK")
        held = n.call("ACQUIRE", path=p, timeout=0, method="mkdir")
        self.assertEqual((held.code, held.fields.get("message")),
                         (free.code, free.fields.get("message")), held)

    def test_a_try_that_cannot_be_granted_does_not_block_the_other_host(
            self):
        # A root directory under cluster_dir that nobody may read but not
        # write.  nobody's try of a lock there can never be granted (it
        # cannot create the lock file), yet a takes the lock's etcd key
        # for it before it finds that out, and deletes it after: two etcd
        # writes a try, and meanwhile the lock looks held to every other
        # host.  b's tries of that free lock are refused "held by another
        # host" while nobody keeps trying.
        ro = os.path.join(self.cluster, "ro")
        os.mkdir(ro, 0o755)
        os.makedirs(os.path.join(self.b.cluster, "ro"))
        pa = os.path.join(ro, "x")
        n = NobodyClient(self.a.socket, version=2)
        self.extra.append(n)
        before = revision(self.etcd)
        r = n.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "EFAILED", r)
        time.sleep(0.5)
        writes = revision(self.etcd) - before
        stop = time.monotonic() + 3.0
        codes = {}

        def nobody_tries():
            while time.monotonic() < stop:
                x = n.call("ACQUIRE", path=pa, timeout=0)
                codes[x.code] = codes.get(x.code, 0) + 1
        t = threading.Thread(target=nobody_tries)
        t.start()
        cb = self.client(self.b)
        pb = os.path.join(self.b.cluster, "ro", "x")
        refused, tries, last = 0, 0, None
        try:
            while time.monotonic() < stop:
                x = cb.call("ACQUIRE", path=pb, timeout=0)
                tries += 1
                if x.code == "OK":
                    self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
                else:
                    refused += 1
                    last = x
        finally:
            t.join(30)
        self.assertEqual(refused, 0, "b refused %d of %d tries of a free "
                         "lock (the last: %r) while nobody on a tried it %r; "
                         "one refused try of nobody's made %d etcd writes" % (
                             refused, tries, last, codes, writes))

    def test_cluster_waits_do_not_exhaust_the_daemons_descriptors(self):
        # Every cluster wait behind another host's key holds an HTTP
        # stream to etcd open (its watch): a descriptor that neither the
        # daemon's descriptor budget (main.c fd_budget: connections and
        # a reserve of 32) nor any per-user limit counts.  nobody waits
        # for 600 locks that b holds, on one connection (within
        # waits_per_conn and locks_per_uid): a, with 512 descriptors,
        # can then accept no connection and take no lock key for anybody.
        # (With the default limits the same needs locks_per_uid = 16384
        # waits against a limit raised to conns + 32.)
        many = os.path.join(self.cluster, "many")
        os.mkdir(many)
        os.makedirs(os.path.join(self.b.cluster, "many"))
        cb = self.client(self.b)
        for i in range(600):
            r = cb.call("ACQUIRE", path=os.path.join(
                self.b.cluster, "many", "l%d" % i), timeout=0)
            self.assertEqual(r.code, "OK", r)
        n = NobodyClient(self.a.socket, version=2)
        self.extra.append(n)
        for i in range(600):
            n.send("ACQUIRE", path=os.path.join(many, "l%d" % i),
                   timeout=600)
        time.sleep(5.0)
        try:
            c = self.client(self.a)
            r = c.call("ACQUIRE", path=os.path.join(self.locks, "x"),
                       timeout=0)
        except OSError as e:
            r = e
        self.assertEqual(getattr(r, "code", None), "OK",
                         "root's local lock on a: %r (a has %d descriptors "
                         "open)" % (r, self.a.fd_count()))

    def start_daemon(self, endpoints, ttl=TTL):
        # a runs with 512 descriptors (for the descriptors' test; the
        # others never come near it).
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))
        os.mkdir(os.path.join(self.dir, "daemon"))
        self.daemon = Daemon(
            os.path.join(self.dir, "daemon"),
            config="cluster_dir = %s\netcd_endpoints = %s\netcd_ttl = %d\n"
            % (self.cluster, endpoints, ttl), preexec=limit)
        self.daemon.start()
        return self.daemon


if __name__ == "__main__":
    why = cluster.skip_reason()
    if why is not None:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
