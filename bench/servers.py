"""servers.py: the lock servers people use instead of lockbroker, measured
the way bench/lbbench measures lockbroker, and reported in its format
(see bench/bench.h):

    R METRIC REP P50_US P99_US N
    V METRIC REP VALUE UNIT

    servers.py KIND ready ADDR
    servers.py KIND cycle ADDR REPS SAMPLES
    servers.py KIND handoff ADDR REPS SAMPLES
    servers.py KIND throughput ADDR REPS SECONDS CLIENTS distinct|shared
    servers.py sockrtt REPS SAMPLES

KIND and ADDR (each server private, started by bench/run):
    pg      PostgreSQL advisory locks: pg_advisory_lock(key) and
            pg_advisory_unlock(key) with psycopg2 (python3-psycopg2) on one
            connection in autocommit mode; ADDR the directory of the
            server's Unix socket.  A waiter sleeps in the server's lock
            queue (FIFO), and is seen waiting in pg_locks (granted false).
    redis   redis-py's Lock (python3-redis): SET key token NX PX 10000 to
            acquire, the compare-and-delete Lua script (EVALSHA) to
            release; ADDR the server's Unix socket.  Redis has no queue: a
            waiter retries every 100 ms (the Lock's default sleep).
    etcd    etcd's lock API (v3lock) through its HTTP/JSON gateway, on one
            persistent HTTP/1.1 connection: a lease granted once per
            client (TTL 300 s), then /v3/lock/lock with it and
            /v3/lock/unlock; ADDR host:port.  A waiter's key (NAME/LEASE)
            is created at once and its request returns when every older
            key under NAME is gone (FIFO by creation).
    lb-local, lb-cluster-local, lb-cluster
            lockbroker's daemons, its protocol on one connection
            (ACQUIRE timeout=inf, RELEASE), to set a cluster lock beside a
            local one (LbLock below): a local lock; a cluster lock passed
            between two clients of one daemon; a cluster lock passed
            between the clients of two daemons (two hosts, one etcd).

STAGE is
    ready       waits until the server answers (10 s at most)
    cycle       uncontended acquire+release, in one process
                (peer.KIND.cycle)
    handoff     two processes pass the lock back and forth, the same game
                as lbbench's handoff (bench/handoff.c): the holder waits
                for the waiter's word that it is about to acquire, then
                until the server shows it waiting (pg: its backend in
                pg_locks, not granted; etcd: its key exists), notes the
                time and releases; the waiter notes the time its acquire
                returns (peer.KIND.handoff, and its mean as
                V peer.KIND.handoff.mean).  For redis, which cannot tell,
                the holder releases as bench/peers.py's does: SETTLE_S
                plus a uniformly random fraction of the poll interval
                after the waiter's word.
    throughput  CLIENTS processes, each with its own connection, take and
                release a lock (each its own: distinct; one for all:
                shared) for SECONDS: tput.KIND.MODE.CLIENTS (ops/s) and,
                for two clients or more, fair.KIND.MODE.CLIENTS.cv and
                .minmax, as lbbench's throughput stage.

sockrtt is the clients' own floor: a 64-byte message and its 64-byte
echo over a Unix socket pair between two Python processes, each end a
loop of os.write and os.read (peer.python.sockrtt; bench/lbbench's
floor.sockrtt is the same in C).

Run with Debian's /usr/bin/python3, where the client packages live.
"""
import base64
import http.client
import json
import math
import mmap
import os
import random
import socket
import struct
import sys
import time
import zlib

from peers import (SETTLE_S, hear, now_ns, play_pair, report,
                   report_handoff, say, time_cycles)

WARMUP_CYCLE = 100
WARMUP_HANDOFF = 10
QUEUED_WAIT_NS = 10 * 1000000000   # a waiter that never waits: broken
REDIS_SLEEP_S = 0.1                 # redis-py Lock's default retry sleep
REDIS_PX_S = 10                     # the hold's expiry (SET ... PX)
ETCD_TTL_S = 300                    # the client's lease
MAX_CLIENTS = 256


class PgLock:
    """pg_advisory_lock on a key derived from name, over one connection."""
    polls = False
    poll_s = 20e-6              # between two looks at pg_locks

    def __init__(self, addr, name):
        import psycopg2
        self.conn = psycopg2.connect(host=addr, user="bench",
                                     dbname="postgres")
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        self.key = zlib.crc32(name.encode())
        self.cur.execute("SELECT pg_backend_pid()")
        self.ident = self.cur.fetchone()[0]

    def acquire(self):
        self.cur.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        self.cur.fetchone()

    def release(self):
        self.cur.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        if not self.cur.fetchone()[0]:
            raise SystemExit("servers.py: pg: unlock of a lock not held")

    def queued(self, ident):
        """True when backend ident waits for an advisory lock."""
        self.cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = "
                         "'advisory' AND NOT granted AND pid = %s", (ident,))
        return self.cur.fetchone()[0] > 0

    def close(self):
        self.conn.close()


class RedisLock:
    """redis-py's Lock: SET NX PX, compare-and-delete release."""
    polls = True
    ident = 0

    def __init__(self, addr, name):
        import redis
        self.r = redis.Redis(unix_socket_path=addr)
        self.r.ping()
        self.lock = self.r.lock(name, timeout=REDIS_PX_S,
                                sleep=REDIS_SLEEP_S)

    def acquire(self):
        self.lock.acquire()

    def release(self):
        self.lock.release()

    def close(self):
        self.r.close()


def b64(data):
    return base64.b64encode(data).decode()


class EtcdLock:
    """etcd's v3lock through the gateway, one persistent connection."""
    polls = False
    poll_s = 1e-3               # between two looks (a range, the metrics)

    def __init__(self, addr, name):
        host, _, port = addr.rpartition(":")
        self.http = http.client.HTTPConnection(host, int(port))
        self.name = name.encode()
        self.ident = int(self.call("/v3/lease/grant",
                                   {"TTL": ETCD_TTL_S})["ID"])
        self.key = None

    def call(self, path, body):
        self.http.request("POST", path, json.dumps(body),
                          {"Content-Type": "application/json"})
        r = self.http.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit("servers.py: etcd %s: %d %s"
                             % (path, r.status, data[:200]))
        return json.loads(data)

    def acquire(self):
        self.key = self.call("/v3/lock/lock", {
            "name": b64(self.name), "lease": str(self.ident)})["key"]

    def release(self):
        self.call("/v3/lock/unlock", {"key": self.key})
        self.key = None

    def queued(self, ident, watch_only=False):
        """True when the key of lease ident's lock request exists and the
        server watches the key before it, in sync: the server's metrics
        count a watcher (the only one) and no unsynced (slow) one.  With
        watch_only, the watch alone."""
        key = self.name + b"/" + (b"%x" % (ident or 0))
        if not watch_only:
            r = self.call("/v3/kv/range", {"key": b64(key),
                                           "count_only": True})
            if int(r.get("count", 0)) == 0:
                return False
        self.http.request("GET", "/metrics")
        r = self.http.getresponse()
        m = {}
        for line in r.read().decode().splitlines():
            w = line.split()
            if len(w) == 2 and w[0] in ("etcd_debugging_mvcc_watcher_total",
                                        "etcd_debugging_mvcc_slow_watcher_total"):
                m[w[0]] = float(w[1])
        if "etcd_debugging_mvcc_watcher_total" not in m:
            return True         # an etcd without these: the key alone
        return (m["etcd_debugging_mvcc_watcher_total"] >= 1 and
                m.get("etcd_debugging_mvcc_slow_watcher_total", 1) == 0)

    def close(self):
        self.call("/v3/lease/revoke", {"ID": str(self.ident)})
        self.http.close()


class LbLock:
    """lockbroker's own protocol over its daemon's Unix socket, one
    connection, to compare a cluster lock (docs/CLUSTER.md) with a local
    one in one game.  ADDR is SOCK,DIR: the lock DIR/name through the
    daemon at SOCK (lb-local: DIR outside its cluster_dir; lb-cluster-
    local: under it, both sides clients of one daemon); or
    SOCK_A,DIR_A,SOCK_B,DIR_B,ETCD (lb-cluster): side 0 a client of
    daemon A, side 1 of daemon B, two hosts with one etcd at ETCD
    (host:port), the lock's etcd name the same for both."""
    polls = False
    poll_s = 1e-4               # between two looks at the waiter

    def __init__(self, addr, name, side=0):
        a = addr.split(",")
        pairs = [(a[i], a[i + 1]) for i in range(0, len(a) - 1, 2)]
        sock, d = pairs[side % len(pairs)]
        self.etcd = EtcdLock.__new__(EtcdLock) if len(a) % 2 else None
        if self.etcd is not None:
            host, _, port = a[-1].rpartition(":")
            self.etcd.http = http.client.HTTPConnection(host, int(port))
            self.etcd.name = ("/lockbroker/locks/" + name).encode()
        self.path = os.path.join(d, name)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.ident = os.getpid()
        self.call("HELLO", "version=2")

    def call(self, verb, *fields):
        self.n += 1
        self.s.sendall(("%s %d %s\n" % (verb, self.n, " ".join(fields)))
                       .encode())
        line = self.f.readline().decode()
        w = line.split()
        if len(w) < 2 or w[0] != "OK" or w[1] != str(self.n):
            raise SystemExit("servers.py: lockbroker %s: %s" % (verb, line))
        return dict(x.split("=", 1) for x in w[2:] if "=" in x)

    def acquire(self):
        self.call("ACQUIRE", "path=" + self.path, "timeout=inf")

    def release(self):
        self.call("RELEASE", "path=" + self.path)

    def queued(self, ident):
        """True when the other side waits: across hosts, its daemon's
        key exists beside ours and etcd watches in sync (as for etcd's
        own lock); on one daemon, it is in the lock's queue."""
        if self.etcd is not None:
            r = self.etcd.call("/v3/kv/range", {
                "key": b64(self.etcd.name + b"/"),
                "range_end": b64(self.etcd.name + b"0"),
                "count_only": True})
            return int(r.get("count", 0)) >= 2 and \
                EtcdLock.queued(self.etcd, None, watch_only=True)
        return int(self.call("STATUS", "path=" + self.path)
                   .get("waiters", "0")) >= 1

    def close(self):
        self.f.close()
        self.s.close()
        if self.etcd is not None:
            self.etcd.http.close()


KINDS = {"pg": PgLock, "redis": RedisLock, "etcd": EtcdLock,
         "lb-local": LbLock, "lb-cluster-local": LbLock,
         "lb-cluster": LbLock}
MODULES = {"pg": "psycopg2", "redis": "redis"}


def ready(kind, addr):
    """Waits until the server answers a client."""
    deadline = time.monotonic() + 10
    while True:
        try:
            KINDS[kind](addr, "ready").close()
            return
        except (OSError, SystemExit, Exception) as e:
            if time.monotonic() > deadline:
                raise SystemExit("servers.py: %s at %s does not answer: %s"
                                 % (kind, addr, e))
            time.sleep(0.1)


def cycle(kind, addr, reps, samples):
    lock = KINDS[kind](addr, "peer-%s-cycle" % kind)
    time_cycles(kind, lock, reps, samples)
    lock.close()


def play(side, kind, addr, rfd, wfd, shared, rounds):
    """One side of the handoff game; side 0 holds first.  Shared slots:
    0 the release time t0, 1 and 2 each side's identity at the server,
    3 + k the waiter's sample of round k."""
    lock = (KINDS[kind](addr, "peer-%s-handoff" % kind, side)
            if KINDS[kind] is LbLock else
            KINDS[kind](addr, "peer-%s-handoff" % kind))
    struct.pack_into("q", shared, 8 * (1 + side), lock.ident)
    if side == 0:
        lock.acquire()
        say(wfd, b"R")
    else:
        hear(rfd, b"R")
    for k in range(rounds):
        if k % 2 == side:
            hear(rfd, b"W")     # the waiter wrote its identity before
            other = struct.unpack_from("q", shared, 8 * (2 - side))[0]
            if lock.polls:
                time.sleep(SETTLE_S + random.uniform(0, REDIS_SLEEP_S))
            else:
                start = now_ns()
                while not lock.queued(other):
                    if now_ns() - start > QUEUED_WAIT_NS:
                        raise SystemExit("servers.py: %s handoff: the "
                                         "waiter never waits" % kind)
                    time.sleep(lock.poll_s)
            struct.pack_into("Q", shared, 0, now_ns())
            lock.release()
            hear(rfd, b"G")
        else:
            say(wfd, b"W")
            lock.acquire()
            t1 = now_ns()
            t0 = struct.unpack_from("Q", shared, 0)[0]
            struct.pack_into("Q", shared, 8 * (3 + k), t1 - t0)
            say(wfd, b"G")
    if rounds % 2 == side:
        lock.release()
    lock.close()


def handoff(kind, addr, reps, samples):
    warmup = 2 if KINDS[kind].polls else WARMUP_HANDOFF
    rounds = samples + warmup
    shared = mmap.mmap(-1, 8 * (rounds + 3))    # MAP_SHARED: the child's too
    for rep in range(reps):
        play_pair(lambda side, rfd, wfd: play(side, kind, addr, rfd, wfd,
                                              shared, rounds),
                  shared, "servers.py")
        out = [struct.unpack_from("Q", shared, 8 * (3 + k))[0]
               for k in range(warmup, rounds)]
        report_handoff(kind, rep, out)


def client(i, kind, addr, name, ready_fd, go_fd, shared):
    """One client of a throughput run (a child: never returns)."""
    status = 1
    try:
        lock = KINDS[kind](addr, name)
        lock.acquire()          # the connection's first use, not counted
        lock.release()
        os.write(ready_fd, b"r")
        if os.read(go_fd, 1) != b"":
            raise SystemExit("servers.py: throughput: start signal lost")
        end = struct.unpack_from("Q", shared, 0)[0]
        n = 0
        while now_ns() < end:
            lock.acquire()
            lock.release()
            n += 1
        struct.pack_into("Q", shared, 8 * (1 + i), n)
        lock.close()
        status = 0
    finally:
        os._exit(status)


def throughput(kind, addr, reps, seconds, k, mode):
    if not 1 <= k <= MAX_CLIENTS or mode not in ("distinct", "shared"):
        raise SystemExit("servers.py: throughput: 1 to %d clients, "
                         "distinct or shared" % MAX_CLIENTS)
    shared = mmap.mmap(-1, 8 * (MAX_CLIENTS + 1))
    for rep in range(reps):
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pids = []
        for i in range(k):
            name = ("tput-%s-shared" % kind if mode == "shared"
                    else "tput-%s-%d" % (kind, i))
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                os.close(go_w)
                client(i, kind, addr, name, ready_w, go_r, shared)
            pids.append(pid)
        os.close(ready_w)
        os.close(go_r)
        for i in range(k):
            if os.read(ready_r, 1) != b"r":
                raise SystemExit("servers.py: throughput: a client failed "
                                 "to start")
        struct.pack_into("Q", shared, 0, now_ns() + int(seconds * 1e9))
        os.close(go_w)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            if status != 0:
                raise SystemExit("servers.py: throughput: a client failed")
        os.close(ready_r)
        counts = [struct.unpack_from("Q", shared, 8 * (1 + i))[0]
                  for i in range(k)]
        total = sum(counts)
        print("V tput.%s.%s.%d %d %.6g ops/s"
              % (kind, mode, k, rep, total / seconds), flush=True)
        if k < 2:
            continue
        mean = total / k
        sd = math.sqrt(sum((c - mean) ** 2 for c in counts) / k)
        print("V fair.%s.%s.%d.cv %d %.6g ratio"
              % (kind, mode, k, rep, sd / mean if mean else 0), flush=True)
        print("V fair.%s.%s.%d.minmax %d %.6g ratio"
              % (kind, mode, k, rep,
                 min(counts) / max(counts) if max(counts) else 0),
              flush=True)


def sockrtt(reps, samples):
    msg = b"x" * 63 + b"\n"

    def read_full(fd):
        got = b""
        while len(got) < len(msg):
            part = os.read(fd, len(msg) - len(got))
            if not part:
                return None
            got += part
        return got
    for rep in range(reps):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child = os.fork()
        if child == 0:
            a.close()
            while read_full(b.fileno()) is not None:
                os.write(b.fileno(), msg)
            os._exit(0)
        b.close()
        out = []
        for i in range(-WARMUP_CYCLE, samples):
            t0 = now_ns()
            os.write(a.fileno(), msg)
            if read_full(a.fileno()) is None:
                raise SystemExit("servers.py: sockrtt: the echo is gone")
            if i >= 0:
                out.append(now_ns() - t0)
        a.close()
        os.waitpid(child, 0)
        report("peer.python.sockrtt", rep, out)


def main(argv):
    usage = ("usage: servers.py pg|redis|etcd ready ADDR\n"
             "       servers.py pg|redis|etcd cycle|handoff ADDR REPS "
             "SAMPLES\n"
             "       servers.py pg|redis|etcd throughput ADDR REPS SECONDS "
             "CLIENTS distinct|shared\n"
             "       servers.py sockrtt REPS SAMPLES")
    if len(argv) == 4 and argv[1] == "sockrtt":
        sockrtt(int(argv[2]), int(argv[3]))
        return
    if len(argv) < 4 or argv[1] not in KINDS:
        raise SystemExit(usage)
    kind, stage, addr = argv[1], argv[2], argv[3]
    if kind in MODULES:         # once, before any fork
        __import__(MODULES[kind])
    if stage == "ready" and len(argv) == 4:
        ready(kind, addr)
    elif stage in ("cycle", "handoff") and len(argv) == 6:
        (cycle if stage == "cycle" else handoff)(kind, addr, int(argv[4]),
                                                 int(argv[5]))
    elif stage == "throughput" and len(argv) == 8:
        throughput(kind, addr, int(argv[4]), float(argv[5]), int(argv[6]),
                   argv[7])
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main(sys.argv)
