"""cluster.py: lockbrokerd runs its etcd lease and takes cluster locks
through it (docs/CLUSTER.md), against a real single-node etcd that the
test starts on free ports of 127.0.0.1 in a temporary directory, and
looks at with etcdctl.

With cluster_dir and etcd_endpoints set, the daemon is granted one lease
at its start, keeps it alive, logs it, takes a cluster lock's key on it
(etcd's lock layout, deleted at the release), and revokes it at its
stop (etcd hung, the stop waits no longer than the
revoke's timeout); etcd down, it serves its local locks all the same,
logs why it has no lease, and stops at once; etcd killed, it declares
the lease lost within its TTL, and once etcd is back it revokes the lost
lease and is granted a new one.  Two daemons (two hosts): a cluster
lock excludes across them, is handed from one to the other, its tokens
growing across both, a counter kept exact by clients of both; etcdctl
lock excluded and excluding.

Skipped (exit 77, saying why) without etcd and etcdctl (etcd-server,
etcd-client), or with a daemon built without etcd.
"""
import ctypes
import json
import os
import random
import re
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
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import Daemon  # noqa: E402

# A sanitizer build's library cannot be loaded into Python with ctypes
# (its runtime must come first): those parts are left to the plain build.
SANITIZED = bool(os.environ.get("LB_SANITIZERS"))

ETCD = os.environ.get("ETCD") or "/usr/bin/etcd"
ETCDCTL = os.environ.get("ETCDCTL") or "/usr/bin/etcdctl"
TTL = 5
KEYS = "/lockbroker/locks/"     # etcd_prefix's default, and its "/"
GRANTED = re.compile(r"etcd lease ([0-9a-f]+) granted \(TTL (\d+) s\)")
ANEW = re.compile(r"etcd lease ([0-9a-f]+) granted anew \(TTL (\d+) s\); "
                  r"the lost lease ([0-9a-f]+) is revoked or gone")


def free_port():
    """A TCP port of 127.0.0.1 free now (bound and let go), outside the
    kernel's range of ephemeral ports where it can: a port the kernel
    picked would be as likely its next pick for an outgoing connection
    (the daemons' and clients' to etcd, many at once under make -j) before
    etcd binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(w) for w in f.read().split())
        ranges = [r for r in ((10000, lo - 1), (hi + 1, 65535))
                  if r[1] - r[0] > 1000]
    except (OSError, ValueError):
        ranges = []
    for _ in range(100 if ranges else 0):
        port = random.randint(*random.choice(ranges))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hexkey(lease):
    """A lease's id as a lock key ends with it: hex, no leading zeros
    (etcd's own layout), where the log writes 16 digits."""
    return "%x" % int(lease, 16)


def wait_for(what, check, seconds):
    """check()'s first true value within seconds; fails saying what."""
    deadline = time.monotonic() + seconds
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not within %.1f s: %s" % (seconds, what))
        time.sleep(0.05)


class Etcd:
    """One etcd member on 127.0.0.1, its data and log in directory d."""

    def __init__(self, d):
        self.dir = d
        self.port, self.peer_port = free_port(), free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        """Starts it (again, on its data) and waits until it serves a
        read through raft's leader (20 s at most).  Its first start on
        ports another process took meanwhile (it exits at once): again on
        new ones, five times at most."""
        for tries in range(5):
            first = not os.path.isdir(os.path.join(self.dir, "data"))
            try:
                return self.launch_and_wait()
            except AssertionError as e:
                if not first or "etcd exited" not in str(e) or tries == 4:
                    raise
                shutil.rmtree(os.path.join(self.dir, "data"),
                              ignore_errors=True)
                self.port, self.peer_port = free_port(), free_port()
                self.url = "http://127.0.0.1:%d" % self.port

    def launch_and_wait(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        with open(os.path.join(self.dir, "etcd.log"), "a") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", "t",
                 "--data-dir", os.path.join(self.dir, "data"),
                 "--listen-client-urls", self.url,
                 "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer,
                 "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", "t=" + peer,
                 "--log-level", "warn"], stdout=log, stderr=log)
        wait_for("etcd answering on " + self.url, self.answers, 20)

    def answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("etcd exited with %s; see %s" %
                                 (self.proc.returncode, self.dir))
        try:
            req = urllib.request.Request(self.url + "/v3/kv/range",
                                         data=b'{"key":"AA=="}')
            with urllib.request.urlopen(req, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def ctl(self, *args):
        """etcdctl's output for args; fails on its error."""
        env = dict(os.environ, ETCDCTL_API="3")
        p = subprocess.run([ETCDCTL, "--endpoints", self.url] + list(args),
                           env=env, capture_output=True, text=True,
                           timeout=10)
        if p.returncode != 0:
            raise AssertionError("etcdctl %s: %s" % (" ".join(args),
                                                     p.stderr))
        return p.stdout

    def leases(self):
        """The leases etcd has, in hex (etcdctl lease list)."""
        return self.ctl("lease", "list").split()[3:]

    def remaining(self, lease):
        """The lease's remaining TTL in seconds (-1: etcd has it not)."""
        return json.loads(self.ctl("lease", "timetolive", lease, "-w",
                                   "json"))["ttl"]


class ClusterCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lbcluster.")
        os.chmod(self.dir, 0o755)
        self.cluster = os.path.join(self.dir, "cluster")
        self.locks = os.path.join(self.dir, "locks")
        os.mkdir(self.cluster)
        os.mkdir(os.path.join(self.cluster, "db"))
        os.mkdir(self.locks)
        os.mkdir(os.path.join(self.dir, "etcd"))
        self.etcd = Etcd(os.path.join(self.dir, "etcd"))
        self.daemon = None

    def tearDown(self):
        try:
            if self.daemon is not None and \
                    self.daemon.stop() not in (0, None):
                print(self.daemon.logtext(), file=sys.stderr)
        finally:
            self.etcd.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_daemon(self, endpoints, ttl=TTL):
        os.mkdir(os.path.join(self.dir, "daemon"))
        self.daemon = Daemon(
            os.path.join(self.dir, "daemon"),
            config="cluster_dir = %s\netcd_endpoints = %s\netcd_ttl = %d\n"
            % (self.cluster, endpoints, ttl))
        self.daemon.start()
        return self.daemon

    def logged(self, pattern, seconds=TTL + 2.0):
        """pattern's first match in the daemon's log, within seconds."""
        rx = re.compile(pattern)
        return wait_for("%r in the daemon's log:\n%s" % (
            pattern, self.daemon.logtext()),
            lambda: rx.search(self.daemon.logtext()), seconds)

    def granted(self):
        """The lease the daemon logs granted: (id in hex, TTL)."""
        m = self.logged(GRANTED.pattern)
        return m.group(1), int(m.group(2))

    def local_lock_served(self):
        c = self.daemon.client(version=2)
        p = os.path.join(self.locks, "local")
        self.assertEqual(c.call("ACQUIRE", path=p, timeout=0).code, "OK")
        self.assertTrue(os.path.exists(p + ".lock"))
        self.assertEqual(c.call("RELEASE", path=p).code, "OK")
        self.assertFalse(os.path.exists(p + ".lock"))
        c.close()

    def cluster_refusal(self):
        """The message of a cluster lock's try (ACQUIRE timeout=0),
        refused EFAILED: the daemon has no lease to take its key on."""
        c = self.daemon.client(version=2)
        p = os.path.join(self.cluster, "db", "migrate")
        r = c.call("ACQUIRE", path=p, timeout=0)
        c.close()
        self.assertEqual(r.code, "EFAILED", r)
        self.assertFalse(os.path.exists(p + ".lock"))
        msg = r.fields["message"]
        self.assertIn("%s is a cluster lock, and this lockbrokerd cannot "
                      "ask etcd for it now: " % p, msg)
        return msg

    def keys(self, name="db%2Fmigrate"):
        """The keys of lock name (escaped) in etcd: {key: value}."""
        out = self.etcd.ctl("get", "--prefix", KEYS + name + "/").split(
            "\n")
        return dict(zip(out[0:-1:2], out[1::2]))

    def cluster_lock_taken(self, lease):
        """A cluster lock's try is granted on lease (hex): its key in
        etcd, named by the lease, its value naming the daemon; the local
        artefact made; the release deletes both."""
        c = self.daemon.client(version=2)
        p = os.path.join(self.cluster, "db", "migrate")
        r = c.call("ACQUIRE", path=p, timeout=0)
        self.assertEqual(r.code, "OK", r)
        self.assertTrue(os.path.exists(p + ".lock"))
        keys = self.keys()
        self.assertEqual(list(keys), [KEYS + "db%2Fmigrate/" + hexkey(lease)])
        self.assertIn("lockbrokerd host=%s pid=%d path=%s" % (
            socket.gethostname(), self.daemon.proc.pid, p),
            list(keys.values())[0])
        self.assertEqual(c.call("RELEASE", path=p).code, "OK")
        self.assertFalse(os.path.exists(p + ".lock"))
        wait_for("the key deleted", lambda: self.keys() == {}, 5.0)
        c.close()

    def stop_promptly(self):
        """SIGTERM: the daemon exits 0 within a few seconds (its revoke's
        timeout is under a third of the TTL)."""
        t0 = time.monotonic()
        self.assertEqual(self.daemon.stop(), 0, self.daemon.logtext())
        took = time.monotonic() - t0
        self.assertLess(took, TTL / 3 + 2.0, "the stop took %.1f s" % took)
        return took


class Lease(ClusterCase):
    def test_granted_kept_named_and_revoked_at_stop(self):
        self.etcd.start()
        self.start_daemon(self.etcd.url)
        lease, ttl = self.granted()
        self.assertEqual(ttl, TTL)
        self.assertEqual(self.etcd.leases(), [lease])
        # Kept alive across more than two TTLs: etcd's remaining TTL
        # never runs out.
        end = time.monotonic() + 2 * TTL + 1
        while time.monotonic() < end:
            left = self.etcd.remaining(lease)
            self.assertGreater(left, 0, "the lease ran out in etcd")
            time.sleep(0.5)
        self.assertEqual(self.etcd.leases(), [lease])
        self.assertNotIn("lost", self.daemon.logtext())
        # Local locks as ever; a cluster lock taken on the lease.
        self.local_lock_served()
        self.cluster_lock_taken(lease)
        # The stop revokes it: gone well before it could have expired.
        left = self.etcd.remaining(lease)
        t0 = time.monotonic()
        self.stop_promptly()
        self.assertEqual(self.etcd.leases(), [], "not revoked at the stop")
        self.assertLess(time.monotonic() - t0, left - 0.5,
                        "too slow to tell a revoke from an expiry")
        self.assertIn("etcd lease %s: revoking it" % lease,
                      self.daemon.logtext())


class EtcdDown(ClusterCase):
    def test_serves_local_locks_and_says_why_there_is_no_lease(self):
        endpoint = "http://127.0.0.1:%d" % free_port()  # nobody listens
        self.start_daemon(endpoint)
        self.logged(r"<4>\S+ etcd: lease grant at %s: \S.*" %
                    re.escape(endpoint))
        self.local_lock_served()
        msg = self.cluster_refusal()
        self.assertIn("it has no etcd lease yet: lease grant at %s: " %
                      endpoint, msg)
        self.assertNotIn("granted", self.daemon.logtext())
        # Each try (one a TTL/3) fails alike: logged once, not each time.
        time.sleep(TTL)
        tries = re.findall(r"<4>\S+ etcd: lease grant at %s: " %
                           re.escape(endpoint), self.daemon.logtext())
        self.assertEqual(len(tries), 1, self.daemon.logtext())
        self.stop_promptly()


class EtcdKilled(ClusterCase):
    def test_lost_then_revoked_and_granted_anew(self):
        self.etcd.start()
        self.start_daemon(self.etcd.url)
        old, _ = self.granted()
        self.assertEqual(self.etcd.leases(), [old])
        self.etcd.kill()
        t0 = time.monotonic()
        self.logged(r"etcd lease %s lost, its deadline" % old)
        self.assertLess(time.monotonic() - t0, TTL + 0.5,
                        "the loss was not logged within the TTL")
        self.assertIn("no etcd lease since lease %s was lost" % old,
                      self.cluster_refusal())
        self.local_lock_served()
        # etcd back on its data restores the old lease with a fresh TTL:
        # the daemon revokes it, then is granted a new one.
        self.etcd.start()
        m = self.logged(ANEW.pattern, 3 * TTL)
        new = m.group(1)
        self.assertEqual(m.group(3), old)
        self.assertNotEqual(new, old)
        self.assertEqual(self.etcd.leases(), [new])
        self.cluster_lock_taken(new)
        self.stop_promptly()
        self.assertEqual(self.etcd.leases(), [])


class Restart(ClusterCase):
    def stored(self, lease):
        """Waits until the state database keeps lease (hex) as the
        daemon's: its grant's iteration committed."""
        def kept():
            db = sqlite3.connect("file:%s?mode=ro" % self.daemon.state,
                                 uri=True, timeout=5)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = "
                                 "'etcd_lease'").fetchone()
            finally:
                db.close()
            return row is not None and row[0] == int(lease, 16)
        wait_for("lease %s kept in %s" % (lease, self.daemon.state), kept,
                 5.0)

    def test_killed_daemon_keeps_its_lease(self):
        # The lease's id is kept in the state database: a daemon killed
        # and started again keeps the same lease alive (its keys would
        # live on with it), past its TTL; a clean stop revokes it, and
        # the next start asks for a new one.
        self.etcd.start()
        self.start_daemon(self.etcd.url)
        lease, _ = self.granted()
        self.stored(lease)
        self.daemon.kill()
        self.daemon.start()
        m = self.logged(r"etcd lease %s of the previous run kept "
                        r"\(TTL (\d+) s\)" % lease)
        self.assertEqual(int(m.group(1)), TTL)
        time.sleep(TTL + 1)
        self.assertEqual(self.etcd.leases(), [lease])
        self.assertGreater(self.etcd.remaining(lease), 0)
        self.assertEqual(len(GRANTED.findall(self.daemon.logtext())), 1)
        self.cluster_lock_taken(lease)
        self.stop_promptly()
        self.assertEqual(self.etcd.leases(), [])
        self.daemon.start()
        wait_for("a second grant:\n" + self.daemon.logtext(),
                 lambda: len(GRANTED.findall(self.daemon.logtext())) == 2,
                 TTL + 2.0)
        new = GRANTED.findall(self.daemon.logtext())[1][0]
        self.assertNotEqual(new, lease)
        self.assertNotIn("previous run", self.daemon.logtext().split(
            "granted (TTL")[-1])
        self.assertEqual(self.etcd.leases(), [new])

    def test_expired_lease_replaced(self):
        # Killed, and started again once its lease expired in etcd: a
        # new lease, the log naming the old one gone.
        self.etcd.start()
        self.start_daemon(self.etcd.url)
        lease, _ = self.granted()
        self.stored(lease)
        self.daemon.kill()
        wait_for("the lease to expire", lambda: self.etcd.leases() == [],
                 TTL + 5.0)
        self.daemon.start()
        m = self.logged(r"etcd lease ([0-9a-f]+) granted \(TTL \d+ s\); "
                        r"the previous run's lease %s is gone" % lease)
        self.assertNotEqual(m.group(1), lease)
        self.assertEqual(self.etcd.leases(), [m.group(1)])


class EtcdHung(ClusterCase):
    def hang_etcd(self):
        self.etcd.proc.send_signal(signal.SIGSTOP)   # answers nothing
        # A signal is delivered some time after kill(2) returns: until
        # etcd is stopped, it may still answer the revoke at once.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % self.etcd.proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    break
            time.sleep(0.01)

    def test_stop_bounded_by_the_revokes_timeout(self):
        self.etcd.start()
        self.start_daemon(self.etcd.url)
        lease, _ = self.granted()
        self.hang_etcd()
        try:
            # It waits for the revoke's end: its timeout, 1.5 s (nine
            # tenths of a third of the TTL).
            self.assertGreater(self.stop_promptly(), 1.0)
            self.assertIn("etcd lease %s: revoking it" % lease,
                          self.daemon.logtext())
        finally:
            self.etcd.proc.send_signal(signal.SIGCONT)

    def test_stop_bounded_whatever_the_ttl(self):
        # The longest TTL: a third of it would hold the stop 18 minutes;
        # the revoke at the stop is waited for 3 s at most.
        self.etcd.start()
        self.start_daemon(self.etcd.url, ttl=3600)
        m = self.logged(GRANTED.pattern)
        self.assertEqual(int(m.group(2)), 3600)
        self.hang_etcd()
        try:
            t0 = time.monotonic()
            self.assertEqual(self.daemon.stop(), 0, self.daemon.logtext())
            took = time.monotonic() - t0
            self.assertGreater(took, 2.0)
            self.assertLess(took, 3.0 + 5.0, "the stop took %.1f s" % took)
        finally:
            self.etcd.proc.send_signal(signal.SIGCONT)


class TwoHostsCase(ClusterCase):
    """Two daemons on one machine stand in for two hosts: each its own
    socket, state and cluster_dir (the same lock name below each), one
    etcd between them."""

    def setUp(self):
        super().setUp()
        self.etcd.start()
        self.a = self.start_daemon(self.etcd.url)
        self.b = self.start_other("b")
        self.granted()
        wait_for("b's lease", lambda: GRANTED.search(self.b.logtext()),
                 TTL + 2.0)
        self.counter = os.path.join(self.dir, "counter")

    def tearDown(self):
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
                            d, self.etcd.url, TTL))
        daemon.start()
        daemon.cluster = os.path.join(d, "cluster")
        return daemon

    def path(self, daemon):
        """Lock db/migrate under daemon's cluster_dir."""
        return os.path.join(getattr(daemon, "cluster", self.cluster), "db",
                            "migrate")


class TwoHosts(TwoHostsCase):
    def test_excluded_and_handed_on_across_daemons(self):
        ca, cb = self.a.client(version=2), self.b.client(version=2)
        pa, pb = self.path(self.a), self.path(self.b)
        ra = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(ra.code, "OK", ra)
        # B's try: refused, naming another host; nothing made on B's side.
        r = cb.call("ACQUIRE", path=pb, timeout=0)
        self.assertEqual(r.code, "EALREADY", r)
        self.assertIn("held by another host", r.fields["message"])
        self.assertFalse(os.path.exists(pb + ".lock"))
        # B's wait: granted once A releases, not before.
        rid = cb.send("ACQUIRE", path=pb, timeout=20)
        with self.assertRaises(TimeoutError):
            cb.read(1.0)
        self.assertFalse(os.path.exists(pb + ".lock"))
        self.assertEqual(len(self.keys()), 2, self.keys())
        self.assertEqual(ca.call("RELEASE", path=pa).code, "OK")
        rb = cb.wait(rid, 10.0)
        self.assertEqual(rb.code, "OK", rb)
        self.assertTrue(os.path.exists(pb + ".lock"))
        self.assertFalse(os.path.exists(pa + ".lock"))
        # Fencing tokens grow across the hosts (etcd's revision).
        self.assertGreater(int(rb.fields["token"]), int(ra.fields["token"]))
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        wait_for("no key left", lambda: self.keys() == {}, 5.0)
        ca.close()
        cb.close()

    def v2(self, daemon):
        c = daemon.client(hello=False)
        self.assertEqual(c.call("HELLO", version=2).code, "OK")
        return c

    def test_status_shows_etcd_holder_and_waiters(self):
        ca, cb, sa = self.a.client(version=2), self.b.client(version=2), self.v2(self.a)
        pa, pb = self.path(self.a), self.path(self.b)
        lease_a = hexkey(GRANTED.search(self.a.logtext()).group(1))
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        rid = cb.send("ACQUIRE", path=pb, timeout=30)
        wait_for("b's key", lambda: len(self.keys()) == 2, 5.0)
        # A's side: held here, A's key first; B's key the one waiter.
        st = sa.call("STATUS", path=pa).fields
        self.assertNotIn("cluster_error", st)
        self.assertEqual(st["cluster_state"], "held")
        self.assertEqual(st["cluster_key"], KEYS + "db%2Fmigrate/" + lease_a)
        self.assertIn("lockbrokerd host=", st["cluster_holder"])
        self.assertIn("path=" + pa, st["cluster_holder"])
        self.assertEqual(st["cluster_waiters"], "1")
        self.assertEqual(int(st["cluster_revision"]),
                         int(r.fields["token"]) >> 20)
        # B's side: its key waits; held by A's; no other host waits.
        sb = self.v2(self.b)
        st = sb.call("STATUS", path=pb).fields
        self.assertEqual(st["cluster_state"], "waiting")
        self.assertTrue(st["cluster_key"].startswith(KEYS + "db%2Fmigrate/"))
        self.assertNotEqual(st["cluster_key"], KEYS + "db%2Fmigrate/" +
                            lease_a)
        self.assertIn("path=" + pa, st["cluster_holder"])
        self.assertEqual(st["cluster_waiters"], "0")
        # A version-1 session sees the local side only.
        c1 = self.a.client()
        self.assertNotIn("cluster_state", c1.call("STATUS", path=pa).fields)
        c1.close()
        self.assertEqual(ca.call("RELEASE", path=pa).code, "OK")
        self.assertEqual(cb.wait(rid, 10.0).code, "OK")
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        for c in (ca, cb, sa, sb):
            c.close()

    def revision(self):
        """etcd's revision now (each put and delete adds one)."""
        req = urllib.request.Request(self.etcd.url + "/v3/kv/range",
                                     data=b'{"key":"AA=="}')
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(json.load(r)["header"]["revision"])

    def test_local_handoffs_keep_the_key_till_another_host_waits(self):
        # Two clients of A pass the lock back and forth: past the bound
        # of 16 handoffs, with no other host waiting, A keeps its key (no
        # etcd write); once B waits, B is granted within 16 more.
        c = [self.a.client(version=2), self.a.client(version=2)]
        st = self.v2(self.a)
        pa, pb = self.path(self.a), self.path(self.b)
        self.assertEqual(c[0].call("ACQUIRE", path=pa, timeout=0).code, "OK")
        holder, before = 0, self.revision()
        for _ in range(40):
            w = 1 - holder
            rid = c[w].send("ACQUIRE", path=pa, timeout=20)
            wait_for("the waiter queued", lambda: st.call(
                "STATUS", path=pa).fields.get("waiters") == "1", 5.0)
            self.assertEqual(c[holder].call("RELEASE", path=pa).code, "OK")
            self.assertEqual(c[w].wait(rid, 10.0).code, "OK")
            holder = w
        self.assertEqual(self.revision(), before, "etcd written to while "
                         "no other host waited")
        cb = self.b.client(version=2)
        rid = cb.send("ACQUIRE", path=pb, timeout=60)
        wait_for("b's key", lambda: len(self.keys()) == 2, 5.0)
        for n in range(1, 18):
            w = 1 - holder
            rid_w = c[w].send("ACQUIRE", path=pa, timeout=60)
            wait_for("the waiter queued", lambda: st.call(
                "STATUS", path=pa).fields.get("waiters") == "1", 5.0)
            self.assertEqual(c[holder].call("RELEASE", path=pa).code, "OK")
            try:
                r = cb.read(1.0)
            except TimeoutError:
                self.assertEqual(c[w].wait(rid_w, 10.0).code, "OK")
                holder = w
                continue
            self.assertEqual((r.id, r.code), (rid, "OK"), r)
            break
        else:
            self.fail("b not granted after 17 handoffs on a")
        self.assertLessEqual(n, 17)
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        self.assertEqual(c[w].wait(rid_w, 10.0).code, "OK")
        self.assertEqual(c[w].call("RELEASE", path=pa).code, "OK")
        for x in c + [cb, st]:
            x.close()

    def test_command_and_python_package(self):
        # The command and the Python package take a cluster lock through
        # the daemon (their library speaks version 3), as any lock.
        tool = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                            "tools", "lockbroker")
        pa, pb = self.path(self.a), self.path(self.b)
        env = dict(os.environ, LOCKBROKER_SOCKET=self.a.socket,
                   LOCKBROKER_TRANSPORT="broker")
        holder = subprocess.Popen([tool, "lock", pa, "--", "sleep", "3"],
                                  env=env)
        try:
            wait_for("the command's key", lambda: len(self.keys()) == 1,
                     5.0)
            cb = self.b.client(version=2)
            r = cb.call("ACQUIRE", path=pb, timeout=0)
            self.assertEqual(r.code, "EALREADY", r)
            self.assertEqual(holder.wait(10), 0)
            wait_for("no key left", lambda: self.keys() == {}, 5.0)
        finally:
            holder.kill()
            holder.wait()
        inplace = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                               "python", "inplace")
        if not os.path.isdir(inplace):
            return      # configure --disable-python
        code = ("import lockbroker, sys\n"
                "l = lockbroker.LockFile(sys.argv[1])\n"
                "l.acquire(timeout=10)\n"
                "print(l.i_am_locking(), flush=True)\n"
                "sys.stdin.readline()\n"
                "l.release()\n")
        py = subprocess.Popen(["/usr/bin/python3", "-c", code, pb],
                              env=dict(os.environ, PYTHONPATH=inplace,
                                       LOCKBROKER_SOCKET=self.b.socket,
                                       LOCKBROKER_TRANSPORT="broker"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        try:
            self.assertEqual(py.stdout.readline().strip(), "True")
            ca = self.a.client(version=2)
            r = ca.call("ACQUIRE", path=pa, timeout=0)
            self.assertEqual(r.code, "EALREADY", r)
            py.stdin.write("\n")
            py.stdin.flush()
            self.assertEqual(py.wait(10), 0)
            self.assertEqual(ca.call("ACQUIRE", path=pa, timeout=5).code,
                             "OK")
            ca.close()
        finally:
            py.kill()
            py.wait()
            py.stdin.close()
            py.stdout.close()

    def test_python_holder_learns_that_it_lost_the_lock(self):
        # The package's holder of a cluster lock, its daemon's lease
        # revoked from outside: the holder is told, i_am_locking says so,
        # and its release says the lock is not its own any more (the
        # reason naming the lease); the other daemon is granted.
        inplace = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                               "python", "inplace")
        if not os.path.isdir(inplace):
            return      # configure --disable-python
        pa, pb = self.path(self.a), self.path(self.b)
        code = ("import lockbroker, sys\n"
                "l = lockbroker.LockFile(sys.argv[1])\n"
                "l.acquire(timeout=10)\n"
                "print(l.i_am_locking(), flush=True)\n"
                "sys.stdin.readline()\n"
                "try:\n"
                "    print(l.i_am_locking(), flush=True)\n"
                "except lockbroker.UnlockError as e:\n"
                "    print(type(e).__name__, e, flush=True)\n"
                "print(l.i_am_locking(), flush=True)\n"
                "try:\n"
                "    l.release()\n"
                "    print('released', flush=True)\n"
                "except lockbroker.UnlockError as e:\n"
                "    print(type(e).__name__, flush=True)\n")
        py = subprocess.Popen(["/usr/bin/python3", "-c", code, pa],
                              env=dict(os.environ, PYTHONPATH=inplace,
                                       LOCKBROKER_SOCKET=self.a.socket,
                                       LOCKBROKER_TRANSPORT="broker"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        try:
            self.assertEqual(py.stdout.readline().strip(), "True")
            cb = self.b.client(version=2)
            rid = cb.send("ACQUIRE", path=pb, timeout=30)
            lease = GRANTED.search(self.a.logtext()).group(1)
            self.etcd.ctl("lease", "revoke", lease)
            self.logged(r"lost it: the daemon's etcd lease %s" % lease, 10.0)
            self.assertEqual(cb.wait(rid, 10.0).code, "OK")
            py.stdin.write("\n")
            py.stdin.flush()
            told = py.stdout.readline()     # the next call: the loss
            self.assertTrue(told.startswith("NotLocked"), told)
            self.assertIn("lease %s was lost" % lease, told)
            self.assertEqual(py.stdout.readline().strip(), "False")
            self.assertEqual(py.stdout.readline().strip(), "NotLocked")
            self.assertEqual(py.wait(10), 0)
            self.assertFalse(os.path.exists(pa + ".lock"))
            self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
            cb.close()
        finally:
            py.kill()
            py.wait()
            py.stdin.close()
            py.stdout.close()

    def test_python_cluster_and_lost_hook(self):
        # The package's cluster() and set_lost_hook(): a holder of a
        # cluster lock sees its key held, with the revision of its
        # fencing token, and None for a lock of its host alone; its
        # daemon's lease revoked from outside, its hook is told (on the
        # package's thread, while the main thread is blocked in a read)
        # before it calls the library again; a forked child's hook too.
        inplace = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                               "python", "inplace")
        if not os.path.isdir(inplace):
            return      # configure --disable-python
        pa, pb = self.path(self.a), self.path(self.b)
        here = os.path.join(os.path.dirname(self.a.socket), "here")
        code = textwrap.dedent("""
            import os, sys, threading
            import lockbroker
            def hook(path, why):
                print("hook", os.getpid() == me, path, why, flush=True)
            me = os.getpid()
            lockbroker.set_lost_hook(hook)
            lock = lockbroker.LockFile(sys.argv[1])
            lock.acquire(timeout=10)
            c = lock.cluster()
            print("cluster", c.state, c.key.startswith(sys.argv[3]),
                  c.revision == lock.fencing_token() >> 20, c.waiters,
                  c.error, flush=True)
            print("local", lockbroker.LockFile(sys.argv[2]).cluster(),
                  flush=True)
            try:
                lockbroker.set_lost_hook(42)
            except TypeError as e:
                print("TypeError", e, flush=True)
            told = threading.Event()
            if os.fork() == 0:              # its own lock, its own hook
                def hook(path, why):
                    print("child hook", path, why, flush=True)
                    told.set()
                lockbroker.set_lost_hook(hook)
                mine = lockbroker.LockFile(sys.argv[1] + "-child")
                mine.acquire(timeout=10)
                print("child held", flush=True)
                os._exit(0 if told.wait(30) else 1)
            sys.stdin.readline()            # blocked: the hook is told
            try:
                lock.release()
            except lockbroker.NotLocked:
                print("release NotLocked", flush=True)
            """)
        py = subprocess.Popen(["/usr/bin/python3", "-c", code, pa, here,
                               KEYS + "db%2Fmigrate/"],
                              env=dict(os.environ, PYTHONPATH=inplace,
                                       LOCKBROKER_SOCKET=self.a.socket,
                                       LOCKBROKER_TRANSPORT="broker"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        try:
            self.assertEqual(py.stdout.readline().split(),
                             ["cluster", "held", "True", "True", "0",
                              "None"])
            self.assertEqual(py.stdout.readline().strip(), "local None")
            self.assertTrue(py.stdout.readline().startswith(
                "TypeError set_lost_hook: fn must be callable or None"))
            self.assertEqual(py.stdout.readline().strip(), "child held")
            lease = GRANTED.search(self.a.logtext()).group(1)
            self.etcd.ctl("lease", "revoke", lease)
            told = sorted(py.stdout.readline() for _ in range(2))
            self.assertTrue(told[0].startswith("child hook %s-child " % pa),
                            told)
            self.assertTrue(told[1].startswith("hook True %s " % pa), told)
            for line in told:
                self.assertIn("lease %s was lost" % lease, line)
            py.stdin.write("\n")
            py.stdin.flush()
            self.assertEqual(py.stdout.readline().strip(),
                             "release NotLocked")
            self.assertEqual(py.wait(10), 0)
            cb = self.b.client(version=2)
            self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=10).code,
                             "OK")
            cb.close()
        finally:
            py.kill()
            py.wait()
            py.stdin.close()
            py.stdout.close()

    def lockbroker(self, daemon, *args):
        """The command lockbroker run against daemon: (exit, stdout)."""
        tool = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                            "tools", "lockbroker")
        r = subprocess.run([tool] + list(args), capture_output=True,
                           text=True, timeout=30,
                           env=dict(os.environ,
                                    LOCKBROKER_SOCKET=daemon.socket,
                                    LOCKBROKER_TRANSPORT="broker"))
        return r.returncode, r.stdout

    def library_sees_the_other_host(self, pa, pb, rev):
        """lb_get_cluster, through ctypes, on B's lock pb while A holds
        pa (its key's revision rev): waiting behind A's key; and 0 for a
        lock of B's host alone."""
        lib = ctypes.CDLL(os.path.join(os.environ.get(
            "LB_BUILDDIR", os.getcwd()), ".libs", "liblockbroker.so"))

        class Cluster(ctypes.Structure):
            _fields_ = [("cluster", ctypes.c_int),
                        ("state", ctypes.c_char * 16),
                        ("key", ctypes.c_char * 512),
                        ("holder", ctypes.c_char * 256),
                        ("revision", ctypes.c_uint64),
                        ("waiters", ctypes.c_uint),
                        ("error", ctypes.c_char * 256),
                        ("reserved", ctypes.c_int * 8)]
        lib.lb_lock_new.restype = ctypes.c_void_p
        lib.lb_lock_new.argtypes = [ctypes.c_char_p, ctypes.c_uint]
        lib.lb_get_cluster.argtypes = [ctypes.c_void_p,
                                       ctypes.POINTER(Cluster)]
        lib.lb_lock_free.argtypes = [ctypes.c_void_p]
        os.environ["LOCKBROKER_SOCKET"] = self.b.socket
        self.addCleanup(os.environ.pop, "LOCKBROKER_SOCKET", None)
        lock = lib.lb_lock_new(pb.encode(), 0x40)       # LB_BROKER
        c = Cluster()
        self.assertEqual(lib.lb_get_cluster(lock, ctypes.byref(c)), 1)
        self.assertEqual((c.cluster, c.state), (1, b"waiting"))
        self.assertTrue(c.key.startswith((KEYS + "db%2Fmigrate/").encode()))
        self.assertIn(("path=%s" % pa).encode(), c.holder)
        self.assertEqual((c.revision, c.waiters, c.error), (rev, 0, b""))
        lib.lb_lock_free(lock)
        here = os.path.join(os.path.dirname(self.b.socket), "here")
        local = lib.lb_lock_new(here.encode(), 0x40)    # LB_BROKER
        self.assertEqual(lib.lb_get_cluster(local, ctypes.byref(c)), 0)
        self.assertEqual((c.cluster, c.state), (0, b""))
        lib.lb_lock_free(local)

    def test_status_command_and_library_show_the_other_host(self):
        # lockbroker status and lb_get_cluster show etcd's side: the
        # holding host's key and revision, the other hosts waiting; a
        # lock held by another host is held for the command (exit 0).
        pa, pb = self.path(self.a), self.path(self.b)
        ca = self.a.client(version=2)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        rev = int(r.fields["token"]) >> 20
        code, out = self.lockbroker(self.b, "status", pb)
        self.assertEqual(code, 0, out)
        self.assertIn("%s: locked by another host" % pb, out)
        self.assertIn("  cluster:   idle\n", out)
        self.assertIn("path=%s" % pa, out)
        self.assertIn("  revision:  %d\n" % rev, out)
        self.assertIn("  other hosts waiting: 0\n", out)
        cb = self.b.client(version=2)
        rid = cb.send("ACQUIRE", path=pb, timeout=30)
        wait_for("b's key", lambda: len(self.keys()) == 2, 5.0)
        code, out = self.lockbroker(self.a, "status", pa)
        self.assertEqual(code, 0, out)
        self.assertIn("%s: locked\n" % pa, out)
        self.assertIn("  cluster:   held\n", out)
        self.assertIn("  other hosts waiting: 1\n", out)
        # lockbroker list: each daemon's side.
        for d, p, state, cluster in ((self.a, pa, "held", "held"),
                                     (self.b, pb, None, "waiting")):
            code, out = self.lockbroker(d, "list", "--json")
            self.assertEqual(code, 0, out)
            locks = json.loads(out)["locks"]
            self.assertEqual([(x["path"], x["state"], x["cluster"])
                              for x in locks], [(p, state, cluster)])
        code, out = self.lockbroker(self.b, "list")
        self.assertRegex(out, r"(?m)^%s .* waited for, cluster waiting$"
                         % re.escape(pb))
        if not SANITIZED:               # the library, through ctypes
            self.library_sees_the_other_host(pa, pb, rev)
        self.assertEqual(ca.call("RELEASE", path=pa).code, "OK")
        self.assertEqual(cb.wait(rid, 10.0).code, "OK")
        cb.close()
        ca.close()

    @unittest.skipIf(SANITIZED, "loads the library into Python with "
                     "ctypes: a sanitizer build's cannot be")
    def test_lost_hook_told_before_the_next_call(self):
        # A C holder of a cluster lock with a lost hook set: its daemon's
        # lease revoked from outside, the hook is called with the lock's
        # path and the reason, before the holder calls the library again.
        pa, pb = self.path(self.a), self.path(self.b)
        lib = os.path.join(os.environ.get("LB_BUILDDIR", os.getcwd()),
                           ".libs", "liblockbroker.so")
        code = textwrap.dedent("""
            import ctypes, sys
            lib = ctypes.CDLL(%r)
            HOOK = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_void_p)
            def told(path, why, arg):
                print("hook", path.decode(), why.decode(), flush=True)
            hook = HOOK(told)
            lib.lb_set_lost_hook(hook, None)
            lib.lb_lock_new.restype = ctypes.c_void_p
            lib.lb_lock_new.argtypes = [ctypes.c_char_p, ctypes.c_uint]
            lib.lb_acquire.argtypes = [ctypes.c_void_p, ctypes.c_double]
            lib.lb_i_am_locking.argtypes = [ctypes.c_void_p]
            lock = lib.lb_lock_new(sys.argv[1].encode(), 0x40)   # LB_BROKER
            print(lib.lb_acquire(lock, 10.0), flush=True)
            sys.stdin.readline()
            print("next call", lib.lb_i_am_locking(lock), flush=True)
            """ % lib)
        py = subprocess.Popen(["/usr/bin/python3", "-c", code, pa],
                              env=dict(os.environ,
                                       LOCKBROKER_SOCKET=self.a.socket),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        try:
            self.assertEqual(py.stdout.readline().strip(), "0")
            lease = GRANTED.search(self.a.logtext()).group(1)
            self.etcd.ctl("lease", "revoke", lease)
            told = py.stdout.readline()         # no call made meanwhile
            self.assertTrue(told.startswith("hook %s " % pa), told)
            self.assertIn("lease %s was lost" % lease, told)
            py.stdin.write("\n")
            py.stdin.flush()
            self.assertTrue(py.stdout.readline().startswith("next call"))
            self.assertEqual(py.wait(10), 0)
            cb = self.b.client(version=2)
            self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=10).code,
                             "OK")
            cb.close()
        finally:
            py.kill()
            py.wait()
            py.stdin.close()
            py.stdout.close()

    def worker(self, daemon, rounds, grants, errors):
        """rounds of: the lock, the counter read, a pause, the counter
        written + 1, the release; each grant's (count seen, token)."""
        try:
            c = daemon.client(version=2)
            p = self.path(daemon)
            for _ in range(rounds):
                r = c.call("ACQUIRE", _wait=60.0, path=p, timeout=60)
                if r.code != "OK":
                    errors.append(repr(r))
                    return
                with open(self.counter) as f:
                    n = int(f.read())
                time.sleep(0.002)
                with open(self.counter, "w") as f:
                    f.write(str(n + 1))
                grants.append((n, int(r.fields["token"])))
                r = c.call("RELEASE", path=p)
                if r.code != "OK":
                    errors.append(repr(r))
                    return
            c.close()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(repr(e))

    def test_exact_counter_under_clients_of_both(self):
        import threading
        with open(self.counter, "w") as f:
            f.write("0")
        grants, errors, threads = [], [], []
        rounds = 25
        for daemon in (self.a, self.b, self.a, self.b, self.a, self.b):
            t = threading.Thread(target=self.worker,
                                 args=(daemon, rounds, grants, errors))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(240)
        self.assertEqual(errors, [])
        with open(self.counter) as f:
            self.assertEqual(int(f.read()), 6 * rounds)
        # Each grant saw the count its predecessor left, and its token is
        # greater than every earlier grant's, whichever daemon gave it.
        grants.sort()
        self.assertEqual([n for n, _ in grants], list(range(6 * rounds)))
        tokens = [t for _, t in grants]
        self.assertEqual(tokens, sorted(set(tokens)))
        wait_for("no key left", lambda: self.keys() == {}, 5.0)

    def test_etcdctl_lock_excluded_and_excluding(self):
        name = KEYS + "db%2Fmigrate"
        env = dict(os.environ, ETCDCTL_API="3")
        ctl = subprocess.Popen([ETCDCTL, "--endpoints", self.etcd.url,
                                "lock", name], env=env,
                               stdout=subprocess.PIPE, text=True)
        try:
            self.assertTrue(ctl.stdout.readline().startswith(name + "/"))
            c = self.a.client(version=2)
            p = self.path(self.a)
            r = c.call("ACQUIRE", path=p, timeout=0)
            self.assertEqual(r.code, "EALREADY", r)
            rid = c.send("ACQUIRE", path=p, timeout=20)
            with self.assertRaises(TimeoutError):
                c.read(1.0)
            ctl.terminate()
            ctl.wait(10)
            ctl.stdout.close()
            self.assertEqual(c.wait(rid, 10.0).code, "OK")
            # Held by the daemon: etcdctl lock waits until the release.
            ctl = subprocess.Popen([ETCDCTL, "--endpoints", self.etcd.url,
                                    "lock", name], env=env,
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(1.5)
            self.assertEqual(len(self.keys()), 2, self.keys())
            self.assertIsNone(ctl.poll())
            import select
            self.assertEqual(select.select([ctl.stdout], [], [], 0)[0], [])
            self.assertEqual(c.call("RELEASE", path=p).code, "OK")
            ready = select.select([ctl.stdout], [], [], 10)[0]
            self.assertEqual(ready, [ctl.stdout])
            self.assertTrue(ctl.stdout.readline().startswith(name + "/"))
            c.close()
        finally:
            ctl.kill()
            ctl.wait()
            ctl.stdout.close()


class RestartHolds(TwoHostsCase):
    """A daemon killed while its clients hold and wait for cluster locks,
    and started again: its lease kept alive, the held locks' keys are
    taken back and the others deleted; its lease gone, the holds given
    back from the state database are lost."""

    def lease_of(self, daemon):
        return GRANTED.search(daemon.logtext()).group(1)

    def test_keys_taken_back_and_a_waiting_key_deleted(self):
        ca, cb, cw = self.a.client(version=2), self.b.client(version=2), self.a.client(version=2)
        pa, pb = self.path(self.a), self.path(self.b)
        ya, yb = pa + "-y", pb + "-y"
        lease = self.lease_of(self.a)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        token = r.fields["token"]
        self.assertEqual(cb.call("ACQUIRE", path=yb, timeout=0).code, "OK")
        cw.send("ACQUIRE", path=ya, timeout=60)     # A's key for y waits
        wait_for("a's key for y", lambda: len(self.keys("db%2Fmigrate-y"))
                 == 2, 5.0)
        Restart.stored(self, lease)
        self.daemon.kill()
        ca.close()
        cw.close()
        self.daemon.start()
        self.logged(r"etcd lease %s of the previous run kept" % lease)
        # The held lock's key is A's still; the waiting one is deleted.
        self.logged(r"key \S+db%%2Fmigrate-y/%s of the previous run, held "
                    r"by nobody here: deleted" % hexkey(lease))
        self.assertEqual(list(self.keys()),
                         [KEYS + "db%2Fmigrate/" + hexkey(lease)])
        self.assertEqual(len(self.keys("db%2Fmigrate-y")), 1)
        c2 = self.a.client(version=2)
        r = c2.call("RECLAIM", path=pa, token=token)
        self.assertEqual(r.code, "OK", r)
        self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=0).code,
                         "EALREADY")
        # B's y released: nobody holds it, and B takes it again at once.
        self.assertEqual(cb.call("RELEASE", path=yb).code, "OK")
        self.assertEqual(cb.call("ACQUIRE", path=yb, timeout=0).code, "OK")
        self.assertEqual(cb.call("RELEASE", path=yb).code, "OK")
        # A's release hands the lock to B's wait.
        rid = cb.send("ACQUIRE", path=pb, timeout=20)
        self.assertEqual(c2.call("RELEASE", path=pa).code, "OK")
        self.assertEqual(cb.wait(rid, 10.0).code, "OK")
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        wait_for("no key left", lambda: self.keys() == {}, 5.0)
        c2.close()
        cb.close()

    def test_lease_gone_holds_lost(self):
        ca, cb = self.a.client(version=2), self.b.client(version=2)
        pa, pb = self.path(self.a), self.path(self.b)
        lease = self.lease_of(self.a)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        token = r.fields["token"]
        Restart.stored(self, lease)
        self.daemon.kill()
        ca.close()
        # Not B's before A's lease has run out; B's after.
        self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=0).code,
                         "EALREADY")
        r = cb.call("ACQUIRE", _wait=3 * TTL, path=pb, timeout=3 * TTL)
        self.assertEqual(r.code, "OK", r)
        self.daemon.start()
        # Its deadline, as A kept it, passed before the start: lost at
        # once, etcd not asked.
        self.logged(r"the previous run's etcd lease %s had passed its "
                    r"deadline \(the previous run's last acknowledged "
                    r"keepalive \+ the TTL\) at this start, and with it "
                    r"the cluster lock" % lease)
        self.assertFalse(os.path.exists(pa + ".lock"))
        ca = self.a.client(version=2)
        r = ca.call("RECLAIM", path=pa, token=token)
        self.assertEqual(r.code, "ENOENT", r)
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        ca.close()
        cb.close()

    def test_etcd_silent_at_restart_holds_lost_by_the_deadline(self):
        # A killed while it holds a cluster lock, etcd hung first (no
        # keepalive of A's lease is acknowledged after the hang), and A
        # started again half a TTL later, etcd still hung.  The previous
        # lease's deadline (its last acknowledged keepalive + the TTL)
        # lies before the hang + the TTL, when etcd may expire it and give
        # the lock to another host: the holds A gives back must be judged
        # lost by then, as a running daemon's would be, not a TTL after
        # the restart.
        ca = self.a.client(version=2)
        pa = self.path(self.a)
        lease = self.lease_of(self.a)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        token = r.fields["token"]
        Restart.stored(self, lease)
        EtcdHung.hang_etcd(self)
        hung = time.monotonic()
        try:
            self.daemon.kill()
            ca.close()
            time.sleep(TTL / 2)
            self.daemon.start()
            self.logged(r"lost it: the previous run's etcd lease %s could "
                        r"not be asked of etcd before its deadline" % lease)
            told = time.monotonic()
            self.assertLessEqual(told - hung, TTL, "the holds given back "
                                 "were judged %.1f s after the hang" %
                                 (told - hung))
            self.assertRegex(self.daemon.logtext(), r"the previous run's "
                             r"lease %s: its deadline \d+\.\d s (from now|ago) "
                             r"\(its last acknowledged keepalive" % lease)
            self.assertFalse(os.path.exists(pa + ".lock"))
            ca = self.a.client(version=2)
            self.assertEqual(ca.call("RECLAIM", path=pa, token=token).code,
                             "ENOENT")
            ca.close()
        finally:
            self.etcd.proc.send_signal(signal.SIGCONT)

    def test_clean_stop_frees_the_lock_and_loses_the_hold(self):
        # A clean stop revokes the lease: the other host may take the
        # lock at once, and the next run ends the hold it gives back.
        ca, cb = self.a.client(version=2), self.b.client(version=2)
        pa, pb = self.path(self.a), self.path(self.b)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        token = r.fields["token"]
        self.assertEqual(self.daemon.stop(), 0)
        ca.close()
        self.assertTrue(os.path.exists(pa + ".lock"))   # for its holder
        self.assertEqual(cb.call("ACQUIRE", path=pb, timeout=0).code, "OK")
        self.daemon.start()
        self.logged(r"lost it: the previous run kept no etcd lease")
        self.assertFalse(os.path.exists(pa + ".lock"))
        ca = self.a.client(version=2)
        self.assertEqual(ca.call("RECLAIM", path=pa, token=token).code,
                         "ENOENT")
        self.assertEqual(cb.call("RELEASE", path=pb).code, "OK")
        ca.close()
        cb.close()


def skip_reason():
    """Why this suite cannot run here, or None."""
    for name, prog, pkg in (("etcd", ETCD, "etcd-server"),
                            ("etcdctl", ETCDCTL, "etcd-client")):
        if not os.access(prog, os.X_OK):
            return "%s (%s) is not installed (no %s)" % (name, pkg, prog)
    d = tempfile.mkdtemp(prefix="lbcluster.")
    try:
        os.mkdir(os.path.join(d, "cluster"))
        daemon = Daemon(d, config="cluster_dir = %s/cluster\n" % d).start()
        try:
            c = daemon.client(version=2)
            r = c.call("ACQUIRE", path=d + "/cluster/x", timeout=0)
            c.close()
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if "built without" in r.fields.get("message", ""):
        return "lockbrokerd is built without etcd (configure --with-etcd)"
    return None


if __name__ == "__main__":
    why = skip_reason()
    if why is not None:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
