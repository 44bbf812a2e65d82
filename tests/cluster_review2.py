"""cluster_review2.py: a second hostile review of cluster locks
(docs/CLUSTER.md, daemon/cohort.c), one test per finding, each asserting
what the daemon should do.  Two daemons on one machine stand in for two
hosts (cluster_review.py's Hosts, or cluster_faults.py's with a 3-member
etcd), one real etcd between them.

- Tokens: a cluster token (etcd revision << 20 | count) judged by the
  local tokens' generation rule (token >> 32 < generation: a previous
  run's), so that in an etcd past revision 4096 * generation a rider of
  a shared cluster lock cannot reclaim it after a restart;
- HungMember: a key's watch has no timeout once connected: a member that
  hangs (or is cut off) holds a waiting key's watch for ever, the lock
  then this host's in etcd and nobody's here;
- TakenBack: the lease lost while a hold given back at a restart has its
  key taken back (TAKING): the hold is not told, stands without a key,
  and the other host is granted the lock beside it.

Skipped (exit 77, saying why) as cluster.py is: without etcd and etcdctl,
or with a daemon built without etcd.
"""
import base64
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import wait_for  # noqa: E402
from cluster_review import Hosts, revision  # noqa: E402
import cluster_faults  # noqa: E402
from cluster_faults import Host, stopped  # noqa: E402


def bump_revision(etcd, at_least, threads=8):
    """Puts throwaway keys (outside the locks' prefix) until etcd's
    revision is at least at_least, as a long-lived cluster's is (every
    write of every client adds one)."""
    host = etcd.url.split("//", 1)[1]
    need = at_least - revision(etcd)
    if need <= 0:
        return

    def run(k, n):
        c = http.client.HTTPConnection(host, timeout=10)
        body = json.dumps({"key": base64.b64encode(
            b"/elsewhere/%d" % k).decode(), "value": "eA=="})
        for _ in range(n):
            c.request("POST", "/v3/kv/put", body)
            c.getresponse().read()
        c.close()
    ts = [threading.Thread(target=run, args=(k, need // threads + 1))
          for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert revision(etcd) >= at_least


def last_lease(daemon):
    """The lease the daemon's log names granted last (hex)."""
    return cluster.GRANTED.findall(daemon.logtext())[-1][0]


def generation(daemon):
    """The daemon's generation, as its last start logged it."""
    import re
    return int(re.findall(r"generation (\d+)\)", daemon.logtext())[-1])


class Tokens(Hosts):
    def test_a_rider_reclaims_its_shared_hold_in_a_long_lived_cluster(
            self):
        # A cluster lock's token is etcd's revision << 20 | a count; the
        # daemon's restart code tells a previous run's shared hold from
        # this run's by token >> 32 < its generation (readers.c,
        # reconcile.c), a local token's layout.  In an etcd whose
        # revision is past 4096 * generation (any cluster in use: one
        # write adds one), a previous run's cluster hold looks like this
        # run's: its rider's RECLAIM, with the lease and key kept, is
        # refused ENOENT, and the rider has lost a lock that nobody took.
        # (The same RECLAIM is granted in a fresh etcd.)
        self.a.stop()
        self.a.start()          # generation 2 at least, 3 at the restart
        bump_revision(self.etcd, 4096 * (generation(self.a) + 2))
        pa = self.path(self.a)
        h, r = self.client(self.a), self.client(self.a)
        g = h.call("ACQUIRE", path=pa, timeout=0, mode="shared")
        self.assertEqual(g.code, "OK", g)
        j = r.call("ACQUIRE", path=pa, timeout=0, mode="shared", thread=7)
        self.assertEqual(j.code, "OK", j)
        token = g.fields["token"]
        self.assertEqual(j.fields["token"], token)
        lease = last_lease(self.a)
        self.stored(lease)
        self.a.kill()
        h.close()
        r.close()
        self.a.start()
        self.logged(r"etcd lease %s of the previous run kept" % lease)
        h, r = self.client(self.a), self.client(self.a)
        back = h.call("RECLAIM", path=pa, token=token, mode="shared")
        self.assertEqual(back.code, "OK", back)
        rider = r.call("RECLAIM", path=pa, token=token, mode="shared",
                       thread=7)
        self.assertEqual(rider.code, "OK", "the rider's RECLAIM (token %s, "
                         "generation %d): %r" % (token, generation(self.a),
                                                 rider))


class HungMember(cluster_faults.TwoHosts):
    start_members = cluster_faults.ThreeMembers.start_members

    def test_a_wait_is_granted_when_the_member_it_watches_through_hangs(
            self):
        # A 3-member etcd; A is given member m0 first, B the two others.
        # B holds X; A's client waits, so A's key watches B's key through
        # m0 (its lease's endpoint when the take started).  m0 then hangs
        # (SIGSTOP, as a member cut off by the network: its connections
        # stay open).  A's lease goes on through the next member, so A
        # keeps its place; but its watch is a stream with no timeout once
        # connected (etcdhttp.c), on a member that says nothing any more.
        # B releases: A's key is the first under the prefix, the lock
        # A's in etcd's eyes, and every other host waits behind it; A
        # never learns it, and grants nothing until its waiter's timeout
        # (60 s here) deletes the key.  The wait should be granted within
        # a few TTLs of B's release, as it is when the member dies.
        self.start_members()
        m0, m1, m2 = self.members
        self.a = Host(self.dir, "A", ",".join(m.url for m in (m0, m1, m2)))
        self.b = Host(self.dir, "B", ",".join(m.url for m in (m1, m2)))
        for h in (self.a, self.b):
            self.hosts.append(h)
            h.daemon.start()
            h.granted()
        holder = self.hold(self.b)
        _, rid, lines = self.waiter(self.a, timeout=60)
        wait_for("A's key behind B's", lambda: len(self.keys(m1)) == 2, 5.0)
        m0.proc.send_signal(signal.SIGSTOP)
        wait_for("m0 stopped", lambda: stopped(m0.proc.pid), 5.0)
        time.sleep(1.0)
        self.assertEqual(holder.call("RELEASE", path=self.b.path).code,
                         "OK")
        released = time.monotonic()

        def answer():
            return lines.first("OK", rid) or lines.first("ERR", rid)
        try:
            g = wait_for("A's ACQUIRE answered", answer, 4 * cluster.TTL)
        except AssertionError:
            self.fail("A's waiter not granted within %d s of B's release "
                      "(m0 hung); the keys under X's prefix: %r" % (
                          4 * cluster.TTL, self.keys(m1)))
        self.assertEqual(g[1].code, "OK", (g, time.monotonic() - released))


class Blackhole(threading.Thread):
    """A TCP proxy on 127.0.0.1 in front of etcd: it forwards every byte
    until, once armed, it sees a lock transaction (POST /v3/kv/txn) go
    by; from then on, until opened, it forwards nothing either way (its
    connections stay open, as a network that drops packets)."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target = target
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.url = "http://127.0.0.1:%d" % self.srv.getsockname()[1]
        self.armed = self.shut = False
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            s = socket.create_connection(self.target)
            threading.Thread(target=self.pipe, args=(c, s, True),
                             daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, False),
                             daemon=True).start()

    def pipe(self, a, b, up):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                for x in (a, b):
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if up and self.armed and b"POST /v3/kv/txn" in data:
                self.shut = True
            if self.shut:
                continue
            try:
                b.sendall(data)
            except OSError:
                return


class TakenBack(Hosts):
    ttl = 2

    def start_daemon(self, endpoints, ttl=2):
        # a talks to etcd through the proxy.
        host, port = self.etcd.url.split("//", 1)[1].split(":")
        self.proxy = Blackhole((host, int(port)))
        return Hosts.start_daemon(self, self.proxy.url, ttl=ttl)

    def test_a_hold_taken_back_is_lost_with_the_lease_during_its_take(self):
        # a's client holds X.  a is killed and started again within the
        # TTL: the lease is kept, and X's key is taken back (a lock
        # transaction, TAKING) for the hold given back.  The network to
        # etcd then drops everything from that transaction on: the lease
        # is lost (its deadline passes) before the transaction's own
        # timeout.  lbd_cohorts_lease tells the holders of HELD cohorts
        # only: the taking one goes IDLE, its hold given back stands,
        # and no key is ever taken for it (IDLE, nobody waiting).  Once
        # etcd is reachable again, b takes X while a's client holds it.
        ca = self.client(self.a)
        pa = self.path(self.a)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        token = r.fields["token"]
        lease = last_lease(self.a)
        self.stored(lease)
        self.a.kill()
        ca.close()
        self.proxy.armed = True
        self.a.start()
        self.logged(r"etcd lease %s of the previous run kept" % lease, 10.0)
        wait_for("the take back's transaction dropped",
                 lambda: self.proxy.shut, 5.0)
        self.logged(r"etcd lease %s lost" % lease, 10.0)
        time.sleep(1.0)
        self.proxy.shut = False
        self.proxy.armed = False
        self.logged(r"granted anew", 15.0)
        ca = self.client(self.a)
        back = ca.call("RECLAIM", path=pa, token=token)
        ok, rb = self.b_may_take(3 * self.ttl)
        self.assertFalse(back.code == "OK" and ok,
                         "a gave its client's hold back (%r) after its "
                         "lease was lost, and b was granted the lock: %r" %
                         (back, rb) + "\n" + "\n".join(
                             x for x in self.a.logtext().splitlines()
                             if "etcd" in x or "lost" in x))


if __name__ == "__main__":
    why = cluster.skip_reason()
    if why is not None:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
