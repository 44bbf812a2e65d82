"""cluster_network.py: cluster locks across two lockbrokerd daemons (two
hosts, as in cluster_faults.py) when the network between one of them and
etcd misbehaves (docs/CLUSTER.md, "The lease", "Losing the lock").

Daemon A talks to etcd only through Proxy, a TCP relay on 127.0.0.1 run
by the test, each accepted connection relayed to etcd's client port;
daemon B talks to etcd directly.  The proxy is set at run time: a delay
added to each chunk one way (drawn between a least and a most, never
reordering a connection's bytes), "drop" (a black hole: it reads and
holds every byte, sends nothing and closes nothing; healed, it delivers
what it held, as TCP's retransmissions would), and "cut" (every
connection closed, its listening socket closed so that new connections
are refused; healed, it listens again on the same port).  etcd_ttl = 5.

- Delayed: 100 to 200 ms added each way on A's path; workers of both
  daemons increment a counter file under X: the count is exact, nobody
  is inside beside another, X went across the hosts, and A's lease is
  never declared lost.
- Dropped: A's path goes black mid-hold, just after a keepalive was
  acknowledged: A's version-2 holder is told LOST within the TTL, and
  before B's waiter is granted; B is granted only once A's lease has
  expired in etcd (not before the drop's start + TTL - 1 s); healed, A
  revokes the lost lease, is granted a new one, and takes X again once
  B releases it.
- Cut: A's path cut (closed, refused) for less than TTL/2 and healed:
  A's holder keeps X (no LOST within two TTLs, its lock file there), B
  not granted meanwhile; released, B is granted.  Cut once just after an
  acknowledged keepalive (one keepalive fails), and once a little before
  the next keepalive is due (two keepalives fail in a row).

Skipped (exit 77, saying why) as cluster.py is: without etcd and etcdctl,
or with a daemon built without etcd.
"""
import collections
import os
import random
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import PYTHON  # noqa: E402
from cluster import (ANEW, GRANTED, KEYS, TTL, free_port,  # noqa: E402
                     hexkey, skip_reason, wait_for)
from cluster_faults import ESCAPED, Host, TwoHosts, note  # noqa: E402

LOST = re.compile(r"etcd lease ([0-9a-f]+) lost, its deadline")
REQUEST = re.compile(rb"^(?:POST|GET|PUT|DELETE) (\S+) HTTP/1\.[01]\r\n")


def quiet_port():
    """A TCP port of 127.0.0.1 free now and outside the kernel's range of
    ephemeral ports, so that no outgoing connection takes it as its
    source port while the proxy, cut, does not listen on it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(w) for w in f.read().split())
    except (OSError, ValueError):
        return free_port()
    ranges = [r for r in ((10000, lo - 1), (hi + 1, 65535))
              if r[1] - r[0] > 1000]
    for _ in range(100):
        if not ranges:
            break
        port = random.randint(*random.choice(ranges))
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def reply_complete(buf):
    """Whether buf holds a whole HTTP/1.1 reply: its head, then its body
    to the end its length or its last (empty) chunk marks.  A reply is
    acknowledged by the daemon's HTTP client only once it is whole."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    fields = head.lower().split(b"\r\n")[1:]
    if b"transfer-encoding: chunked" in fields:
        while True:
            line, sep, rest = body.partition(b"\r\n")
            if not sep:
                return False
            size = int(line.split(b";")[0], 16)
            if size == 0:
                return rest.endswith(b"\r\n") and (rest == b"\r\n" or
                                                    b"\r\n\r\n" in rest)
            if len(rest) < size + 2:
                return False
            body = rest[size + 2:]
    for f in fields:
        if f.startswith(b"content-length:"):
            return len(body) >= int(f.split(b":")[1])
    return False


class Pipe:
    """One way of a relayed connection: what was read from src, each
    chunk with the time it is due at dst; None for src's end."""

    def __init__(self, link, src, dst, to_etcd):
        self.link, self.src, self.dst = link, src, dst
        self.to_etcd = to_etcd
        self.queue = collections.deque()    # (due, bytes or None)
        self.out = b""                      # a chunk partly sent
        self.whole = False                  # out ends a whole reply
        self.last_due = 0.0
        self.ended = False                  # src's end read
        self.done = False                   # src's end passed on


class Link:
    """One accepted connection and its connection to etcd."""

    def __init__(self, number, client, upstream):
        self.number = number
        self.client, self.upstream = client, upstream
        self.up = Pipe(self, client, upstream, True)
        self.down = Pipe(self, upstream, client, False)
        self.reply = b""        # the reply passed back so far


class Proxy:
    """A TCP relay from 127.0.0.1:port to etcd's client port, run by one
    thread on a selector; set from other threads (delay, drop, cut,
    heal), each change made by that thread before the call returns.  It
    notes each HTTP request it relays towards etcd (the time its first
    chunk was read, the connection, the path) and each time the last
    chunk of a reply was passed back to the daemon (the reply whole)."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = quiet_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.sel = selectors.DefaultSelector()
        self.mode = "relay"             # relay, drop or cut
        self.delay = (0.0, 0.0)         # seconds, each chunk, one way
        self.links = {}                 # socket -> Link
        self.numbers = 0
        self.events = []                # (time, "request", link, path)
        self.guard = threading.Lock()   # events and commands
        self.commands = collections.deque()
        self.listener = None
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.listen()
        self.halt = False
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    # --- run-time settings, from the test's thread ---

    def command(self, fn):
        done = threading.Event()
        with self.guard:
            self.commands.append((fn, done))
        self.wake_w.send(b"x")
        if not done.wait(10):
            raise AssertionError("the proxy did not answer: %r" %
                                 (self.error,))

    def set_delay(self, least_ms, most_ms):
        def fn():
            self.delay = (least_ms / 1000.0, most_ms / 1000.0)
        self.command(fn)

    def drop(self):
        def fn():
            self.mode = "drop"
        self.command(fn)

    def cut(self):
        def fn():
            self.mode = "cut"
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
            for link in set(self.links.values()):
                self.close_link(link)
        self.command(fn)

    def heal(self):
        def fn():
            if self.listener is None:
                self.listen()
            self.mode = "relay"
        self.command(fn)

    def close(self):
        self.halt = True
        self.wake_w.send(b"x")
        self.thread.join(10)
        self.sel.close()
        self.wake_r.close()
        self.wake_w.close()

    # --- what it saw ---

    def seen(self):
        with self.guard:
            return list(self.events)

    def requests(self, path, after=0.0):
        """The times of the requests for path read after a time."""
        return [e[0] for e in self.seen() if e[1] == "request" and
                e[3] == path and e[0] > after]

    def acknowledged(self, path, after):
        """The first request for path read after a time whose reply has
        been passed back (on its connection, after it): (the request's
        time, the reply's), or None."""
        events = self.seen()
        for i, e in enumerate(events):
            if e[1] != "request" or e[3] != path or e[0] <= after:
                continue
            for f in events[i + 1:]:
                if f[2] == e[2] and f[1] == "request":
                    break
                if f[2] == e[2] and f[1] == "reply":
                    return e[0], f[0]
        return None

    # --- the proxy's thread ---

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, "listen")

    def note(self, kind, link, path=None):
        with self.guard:
            self.events.append((time.monotonic(), kind, link.number, path))

    def accept(self):
        try:
            client, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.numbers += 1
        link = Link(self.numbers, client, upstream)
        self.links[client] = link
        self.links[upstream] = link
        self.sel.register(client, selectors.EVENT_READ, "sock")
        self.sel.register(upstream, selectors.EVENT_READ, "sock")

    def close_link(self, link):
        for s in (link.client, link.upstream):
            if self.links.pop(s, None) is not None:
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()

    def due(self, pipe, now):
        least, most = self.delay
        d = random.uniform(least, most) if most > 0 else 0.0
        pipe.last_due = max(pipe.last_due, now + d)
        return pipe.last_due

    def read(self, s):
        link = self.links.get(s)
        if link is None:
            return
        pipe = link.up if s is link.client else link.down
        if pipe.ended:
            return
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        now = time.monotonic()
        if not data:
            pipe.ended = True
            self.watch(s, link)
            pipe.queue.append((self.due(pipe, now), None))
            return
        if pipe.to_etcd:
            m = REQUEST.match(data)
            if m is not None:
                link.reply = b""
                self.note("request", link, m.group(1).decode())
        pipe.queue.append((self.due(pipe, now), data))

    def watch(self, s, link):
        """Sets what the selector waits for on s: reading until its end
        was read; writing while a chunk to it is partly sent."""
        if s not in self.links:
            return
        mine_in = link.up if s is link.client else link.down
        mine_out = link.down if s is link.client else link.up
        ev = 0 if mine_in.ended else selectors.EVENT_READ
        if mine_out.out:
            ev |= selectors.EVENT_WRITE
        try:
            if ev:
                self.sel.modify(s, ev, "sock")
            else:
                self.sel.unregister(s)
        except KeyError:
            if ev:
                self.sel.register(s, ev, "sock")

    def flush(self, pipe, now):
        """Sends what is due on pipe; the time the next chunk is due, or
        None."""
        link = pipe.link
        while True:
            if pipe.out:
                try:
                    n = pipe.dst.send(pipe.out)
                except (BlockingIOError, InterruptedError):
                    self.watch(pipe.dst, link)
                    return None
                except OSError:
                    self.close_link(link)
                    return None
                pipe.out = pipe.out[n:]
                if pipe.out:
                    self.watch(pipe.dst, link)
                    return None
                if pipe.whole:
                    pipe.whole = False
                    self.note("reply", link)
                self.watch(pipe.dst, link)
            if not pipe.queue:
                return None
            due, data = pipe.queue[0]
            if due > now:
                return due
            pipe.queue.popleft()
            if data is None:
                pipe.done = True
                try:
                    pipe.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                other = link.down if pipe is link.up else link.up
                if other.done:
                    self.close_link(link)
                return None
            if not pipe.to_etcd:
                link.reply += data
                pipe.whole = reply_complete(link.reply)
            pipe.out = data

    def run(self):
        try:
            self.loop()
        except BaseException as e:  # noqa: BLE001 (told by command)
            self.error = e
            raise

    def loop(self):
        timeout = None
        while not self.halt:
            for key, mask in self.sel.select(timeout):
                if key.data == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                elif key.data == "listen":
                    if self.listener is not None:
                        self.accept()
                elif mask & selectors.EVENT_READ:
                    self.read(key.fileobj)      # writable: flushed below
            while True:
                with self.guard:
                    if not self.commands:
                        break
                    fn, done = self.commands.popleft()
                fn()
                done.set()
            timeout = None
            if self.mode != "relay":
                continue        # dropped: held; cut: nothing left
            now = time.monotonic()
            for link in set(self.links.values()):
                for pipe in (link.up, link.down):
                    if link.client not in self.links:
                        break
                    due = self.flush(pipe, now)
                    if due is not None:
                        wait = max(0.0, due - now)
                        timeout = wait if timeout is None else \
                            min(timeout, wait)
        for link in set(self.links.values()):
            self.close_link(link)
        if self.listener is not None:
            self.listener.close()


# A worker: says it is ready, then N times: takes X through the daemon's
# socket, increments the counter file under it (read, 20 ms, write),
# checking that nobody else is inside meanwhile (an exclusive marker
# file), writes its host's tag in the order file, releases X, and pauses
# 50 to 250 ms (often nobody waits for X on its host then, and the key
# goes: X crosses the hosts often).
WORKER = r"""
import os, random, sys, time
sys.path.insert(0, %(tests)r)
from lbdaemon import Client
c = Client(%(socket)r, version=2)
print("ready", flush=True)
for i in range(%(n)d):
    r = c.call("ACQUIRE", path=%(path)r, timeout=60, _wait=70)
    if r.code != "OK":
        print("ACQUIRE %%d: %%r" %% (i, r), flush=True)
        sys.exit(1)
    try:
        fd = os.open(%(inside)r, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        print("two inside at once at %%d" %% i, flush=True)
        sys.exit(1)
    with open(%(counter)r) as f:
        v = int(f.read())
    time.sleep(0.02)
    with open(%(counter)r + ".new", "w") as f:
        f.write("%%d\n" %% (v + 1))
    os.rename(%(counter)r + ".new", %(counter)r)
    with open(%(order)r, "a") as f:
        f.write(%(tag)r)
    os.close(fd)
    os.unlink(%(inside)r)
    r = c.call("RELEASE", path=%(path)r)
    if r.code != "OK":
        print("RELEASE %%d: %%r" %% (i, r), flush=True)
        sys.exit(1)
    time.sleep(random.uniform(0.05, 0.25))
print("done", flush=True)
"""

KEEPALIVE = "/v3/lease/keepalive"


class ThroughProxy(TwoHosts):
    """A talks to etcd through a Proxy, B directly."""

    def setUp(self):
        super().setUp()
        self.proxy = None

    def tearDown(self):
        try:
            if self.proxy is not None:
                self.proxy.heal()
        finally:
            try:
                super().tearDown()
            finally:
                if self.proxy is not None:
                    self.proxy.close()

    def start(self, delay_ms=(0, 0)):
        self.etcd = self.start_etcd()
        self.proxy = Proxy(self.etcd.port)
        self.proxy.set_delay(*delay_ms)
        self.a = Host(self.dir, "A", self.proxy.url)
        self.b = Host(self.dir, "B", self.etcd.url)
        for h in (self.a, self.b):
            self.hosts.append(h)
            h.daemon.start()
        self.lease_a = self.a.granted()
        self.lease_b = self.b.granted()
        self.ttl_a = int(GRANTED.search(self.a.log()).group(2))
        self.assertEqual(self.ttl_a, TTL)
        self.assertIn(self.proxy.url, self.a.log())

    def acknowledged_keepalive(self):
        """Waits for a keepalive of A's sent from now on and acknowledged
        (its reply passed back to A): (the time the proxy read the
        request, the time it passed the reply on)."""
        after = time.monotonic()
        return wait_for("a keepalive of A's acknowledged through the "
                        "proxy", lambda: self.proxy.acknowledged(
                            KEEPALIVE, after), TTL)

    def lost_lines(self, lines):
        return [x for x in lines.got if x[1].verb == "LOST"]


class Delayed(ThroughProxy):
    WORKERS = 4         # two a host
    ROUNDS = 10

    def test_exclusion_under_delay_and_the_lease_kept(self):
        self.start(delay_ms=(100, 200))
        counter = os.path.join(self.dir, "counter")
        order = os.path.join(self.dir, "order")
        with open(counter, "w") as f:
            f.write("0\n")
        open(order, "w").close()
        # A starting hold on A: every worker queues behind it, B's key
        # behind A's in etcd, before any of them is granted.
        starter = self.hold(self.a)
        t0 = time.monotonic()
        hosts = [self.a, self.b] * (self.WORKERS // 2)
        for h in hosts:
            self.procs.append(subprocess.Popen(
                [PYTHON, "-c", WORKER % {
                    "tests": os.path.dirname(os.path.abspath(__file__)),
                    "socket": h.daemon.socket, "path": h.path,
                    "n": self.ROUNDS, "counter": counter, "order": order,
                    "tag": h.tag, "inside": os.path.join(self.dir,
                                                         "inside")}],
                stdout=subprocess.PIPE, text=True))
        for p in self.procs:
            self.assertEqual(p.stdout.readline(), "ready\n")
        wait_for("B's key behind A's", lambda: len(self.keys(self.etcd))
                 == 2, 10.0)
        time.sleep(0.3)     # A's workers' requests queued behind it
        self.assertEqual(starter.call("RELEASE", path=self.a.path).code,
                         "OK")
        for p in self.procs:
            out, _ = p.communicate(timeout=90)
            self.assertEqual((p.returncode, out), (0, "done\n"),
                             self.a.log())
        self.procs = []
        took = time.monotonic() - t0
        with open(counter) as f:
            self.assertEqual(int(f.read()), self.WORKERS * self.ROUNDS)
        with open(order) as f:
            seq = f.read()
        self.assertEqual(sorted(seq), sorted("AB" * (self.WORKERS *
                                                      self.ROUNDS // 2)))
        # X went across the hosts: a host's key, once held, is given up
        # after 16 local handoffs at most, behind the other's waiting key,
        # so A's 20 grants came in two turns at least, B's between.
        switches = sum(1 for x, y in zip(seq, seq[1:]) if x != y)
        self.assertGreaterEqual(switches, 2, seq)
        # A's lock keys and keepalives went through the delaying proxy,
        # and its lease was never lost.
        self.assertGreater(len(self.proxy.requests("/v3/kv/txn")), 0)
        sent, acked = self.proxy.acknowledged(KEEPALIVE, 0.0)
        self.assertGreaterEqual(acked - sent, 0.2, "a keepalive's round "
                                "trip through the proxy took %.3f s" % (
                                    acked - sent))
        for h in (self.a, self.b):
            self.assertNotIn("lost", h.log(), "daemon %s" % h.tag)
        self.assertEqual(GRANTED.findall(self.a.log()),
                         [(self.lease_a, str(TTL))])
        wait_for("no key left", lambda: self.keys(self.etcd) == [], 10.0)
        note("%d grants in %.1f s with 100-200 ms each way on A's path; "
             "X went across the hosts %d times: %s" % (
                 len(seq), took, switches, seq))


class Dropped(ThroughProxy):
    def test_lost_before_the_other_host_is_granted_then_recovered(self):
        self.start()
        holder = self.hold(self.a)
        told = self.lines(holder)
        # The moment B's grant is read: A's lock file, A's lease in etcd.
        _, rid, lines = self.waiter(self.b, hook=lambda r: (
            os.path.exists(self.a.lockfile),
            self.lease_a in self.etcd.leases()), timeout=60)
        self.assertWaiting(lines, 1.0, "B granted X while A holds it")
        wait_for("B's key behind A's", lambda: len(self.keys(self.etcd))
                 == 2, 5.0)
        # A black hole on A's path just after a keepalive's reply: etcd
        # renewed the lease when that keepalive reached it, after `sent`.
        sent, acked = self.acknowledged_keepalive()
        self.proxy.drop()
        t0 = time.monotonic()
        note("dropped %.3f s after the keepalive's reply was passed on" %
             (t0 - acked))
        lost = wait_for("LOST told to A's holder", lambda: told.first(
            "LOST"), TTL + 2.0)
        note("LOST told %.2f s after the drop's start" % (lost[0] - t0))
        self.assertLessEqual(lost[0] - t0, TTL,
                             "LOST came %.2f s after the drop's start" %
                             (lost[0] - t0))
        self.assertGreater(lost[0] - sent, TTL - 1.0,
                           "LOST came %.2f s after the last acknowledged "
                           "keepalive, before its deadline could be near" %
                           (lost[0] - sent))
        r = lost[1]
        self.assertEqual(r.id, "-")
        self.assertEqual(r.fields["path"], self.a.path)
        self.assertIn("etcd lease %s was lost" % self.lease_a,
                      r.fields.get("message", ""))
        self.assertFalse(os.path.exists(self.a.lockfile),
                         "A's lock file left after LOST")
        g = wait_for("B's ACQUIRE answered", lambda: lines.first(
            "OK", rid) or lines.first("ERR", rid), 3 * TTL)
        self.assertEqual(g[1].code, "OK", g[1])
        note("B granted X %.2f s after the drop's start" % (g[0] - t0))
        self.assertLess(lost[0], g[0], "B granted X before A's holder "
                        "was told LOST")
        self.assertGreaterEqual(
            g[0] - t0, TTL - 1.0, "B granted X %.2f s after the drop's "
            "start, before A's lease could have expired" % (g[0] - t0))
        file_there, lease_there = g[2]
        self.assertFalse(file_there, "A's lock file was there when B was "
                         "granted X")
        self.assertFalse(lease_there, "A's lease was still in etcd when B "
                         "was granted X")
        self.assertTrue(os.path.exists(self.b.lockfile))
        self.assertIn(told.call("RELEASE", path=self.a.path).code,
                      ("ENOTLOCKED", "ENOTMINE"))
        self.assertIsNotNone(LOST.search(self.a.log()))
        # Healed: A revokes the lost lease (gone by now) and is granted a
        # new one; its new ACQUIRE of X waits for B's release.
        self.proxy.heal()
        healed = time.monotonic()
        m = wait_for("A's new lease:\n" + self.a.log(), lambda: ANEW.search(
            self.a.log()), 3 * TTL)
        new = m.group(1)
        note("A granted a new lease %.2f s after the heal" % (
            time.monotonic() - healed))
        self.assertEqual(m.group(3), self.lease_a)
        self.assertNotEqual(new, self.lease_a)
        self.assertIn(new, self.etcd.leases())
        _, rid2, again = self.waiter(self.a, hook=lambda r: os.path.exists(
            self.b.lockfile), timeout=30)
        self.assertWaiting(again, 1.5, "A granted X while B holds it")
        released = time.monotonic()
        self.assertEqual(lines.call("RELEASE", path=self.b.path).code, "OK")
        g2 = wait_for("A's new ACQUIRE answered", lambda: again.first(
            "OK", rid2) or again.first("ERR", rid2), 10.0)
        self.assertEqual(g2[1].code, "OK", (g2[1], self.a.log()))
        note("A granted X again %.2f s after B's release" % (
            g2[0] - released))
        self.assertFalse(g2[2], "B's lock file was there when A was granted")
        self.assertTrue(os.path.exists(self.a.lockfile))
        self.assertEqual([k for k, _ in self.keys(self.etcd)],
                         [KEYS + ESCAPED + "/" + hexkey(new)])
        self.assertEqual(len(self.lost_lines(told)), 1)
        self.assertEqual(again.call("RELEASE", path=self.a.path).code, "OK")


class Cut(ThroughProxy):
    CUT = 2.3           # seconds, under TTL/2

    def cut_and_heal(self, start):
        """A holds X and B waits; A's path is cut at `start` (a monotonic
        time) for CUT s, then healed: for two TTLs from the cut, no LOST,
        A's lock file there, B not granted; then A releases and B is
        granted."""
        self.assertLess(self.CUT, TTL / 2.0)
        holder = self.hold(self.a)
        told = self.lines(holder)
        _, rid, lines = self.waiter(self.b, hook=lambda r: os.path.exists(
            self.a.lockfile), timeout=60)
        self.assertWaiting(lines, 1.0, "B granted X while A holds it")
        wait_for("B's key behind A's", lambda: len(self.keys(self.etcd))
                 == 2, 5.0)
        sent, acked = self.acknowledged_keepalive()
        at = start(sent, acked)
        time.sleep(max(0.0, at - time.monotonic()))
        self.proxy.cut()
        t0 = time.monotonic()
        note("cut %.3f s after a keepalive was read (%.3f s after its "
             "reply)" % (t0 - sent, t0 - acked))
        time.sleep(max(0.0, t0 + self.CUT - time.monotonic()))
        self.proxy.heal()
        healed = time.monotonic()
        note("healed after %.2f s" % (healed - t0))
        # The cut refused A's keepalives; none was read meanwhile.
        self.assertEqual([t for t in self.proxy.requests(KEEPALIVE, t0)
                          if t < healed], [])
        while time.monotonic() < t0 + 2 * TTL:
            lost = told.first("LOST")
            if lost is not None:
                self.fail("A's holder told LOST %.2f s after the cut's "
                          "start (%.2f s after the heal): %r\n%s" % (
                              lost[0] - t0, lost[0] - healed, lost[1],
                              self.lease_log()))
            self.assertEqual(lines.got, [], "B granted X while A holds it")
            self.assertTrue(os.path.exists(self.a.lockfile))
            time.sleep(0.1)
        self.assertIsNone(LOST.search(self.a.log()), self.lease_log())
        self.assertRegex(self.a.log(), r"etcd: lease %s keepalive at %s: " %
                         (self.lease_a, re.escape(self.proxy.url)))
        after = self.proxy.requests(KEEPALIVE, healed)
        self.assertTrue(after, "no keepalive of A's after the heal")
        note("A's first keepalive after the heal read %.2f s after it" %
             (after[0] - healed))
        released = time.monotonic()
        self.assertEqual(told.call("RELEASE", path=self.a.path).code, "OK")
        g = wait_for("B's ACQUIRE answered", lambda: lines.first(
            "OK", rid) or lines.first("ERR", rid), 10.0)
        self.assertEqual(g[1].code, "OK", g[1])
        self.assertFalse(g[2], "A's lock file was there when B was granted")
        note("B granted X %.2f s after A's release" % (g[0] - released))
        self.assertEqual(len(self.lost_lines(told)), 0)

    def lease_log(self):
        return "\n".join(line for line in self.a.log().split("\n")
                         if "etcd" in line or "lost" in line)

    def test_cut_after_a_keepalive_then_healed_keeps_the_lock(self):
        # Cut at once after a keepalive's reply: the next keepalive (a
        # third of the TTL later) is refused, the one after goes through.
        self.start()
        self.cut_and_heal(lambda sent, acked: acked)

    def test_cut_across_two_keepalives_then_healed_keeps_the_lock(self):
        # Cut a little before the next keepalive is due (a third of the
        # TTL after the last one), for less than half the TTL: the two
        # next keepalives are refused; the outage is shorter than the
        # TTL, and the lease must be kept alive once it ends.
        self.start()
        period = TTL / 3.0
        self.cut_and_heal(lambda sent, acked: sent + period - 0.3)


if __name__ == "__main__":
    why = skip_reason()
    if why is not None:
        print("skipped: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
