#!/usr/bin/python3
"""starve.py: how much one user's load slows another user down.

Starts the built lockbrokerd (as root, with its default limits unless
--config says otherwise) in a temporary directory, and measures root's
PING and ACQUIRE+RELEASE round trips on one connection: first idle, then
while user nobody runs each attack below, all in one run, so that the
ratios (under attack / idle) compare like with like:

    foreign-waits  nobody waits on --waits locks held outside the broker
                   (artefacts it made itself) in one directory
    foreign-dirs   the same spread over --dirs directories (watches run
                   out: the rest is polled)
    holds-churn    nobody's connections each take as many locks as the
                   limits let them, close, and start again
    kept-holds     nobody keeps a hold (pid=) for each of --procs of its
                   `sleep` processes: beyond pidfds_per_uid they are
                   looked at once a second each
    releasing      nobody takes --releasing sqlite locks in its own
                   directory, keeps that lock database busy (a read
                   transaction) and releases them all: each hold is left
                   releasing, retried until the database is free
    releasing-dbs  the same spread over --rdirs directories (a lock
                   database each, all kept busy)

Prints one line per (attack, request): p50 and p99 in microseconds, and
their ratios to the idle figures, plus the daemon's CPU share during the
attack.  A benchmark, not a test: it exits non-zero only when it cannot
run (not root, no daemon), never because a figure is poor.

    bench/starve.py [--waits N] [--dirs N] [--procs N] [--releasing N]
                    [--rdirs N] [--samples N] [--quick] [--config FILE]
                    [--loads NAME,...]

--loads runs only the loads named (idle is always measured first), e.g.
--loads holds-churn.  For holds-churn the line also gives how many of
nobody's ACQUIREs were answered a second while root was measured (its
own progress).

Run from the build directory (or set LB_BUILDDIR), after `make`, as root.
"""
import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tests"))
from lbdaemon import connect_as  # noqa: E402

NOBODY = 65534
BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
DAEMON = os.path.join(BUILDDIR, "daemon", "lockbrokerd")


class Conn:
    """A wire-protocol connection (docs/PROTOCOL.md), a line at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.rid = 1
        self.call("HELLO", "version=1")

    def send(self, verb, *fields):
        self.rid += 1
        self.sock.sendall(("%s %d %s\n" % (verb, self.rid,
                                           " ".join(fields))).encode())
        return self.rid

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the daemon closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def call(self, verb, *fields):
        rid = self.send(verb, *fields)
        while True:
            words = self.line().split(" ")
            if words[1] == str(rid):
                return words

    def close(self):
        self.sock.close()


class Nobody:
    """One connection of nobody's."""

    def __init__(self, path):
        sock, self.keeper, self.pid = connect_as(path)
        self.conn = Conn(sock)

    def close(self):
        self.conn.close()
        self.keeper.close()
        os.waitpid(self.pid, 0)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def measure(root, lock, samples):
    """root's PING and ACQUIRE+RELEASE round trips, in microseconds."""
    ping, acq = [], []
    for _ in range(samples):
        t = time.perf_counter()
        root.call("PING")
        ping.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        root.call("ACQUIRE", "path=" + lock, "timeout=0")
        root.call("RELEASE", "path=" + lock)
        acq.append((time.perf_counter() - t) * 1e6)
        time.sleep(0.002)
    return {"PING": ping, "ACQUIRE+RELEASE": acq}


def foreign_waits(sock, top, n, ndirs, per_conn=1024):
    """nobody waits on n locks held outside, in ndirs directories."""
    dirs = []
    os.mkdir(top)
    os.chmod(top, 0o755)
    for i in range(ndirs):
        d = os.path.join(top, "dir%d" % i)
        os.mkdir(d)
        os.chmod(d, 0o1777)
        dirs.append(d)
    paths = [os.path.join(dirs[i % ndirs], "f%d" % i) for i in range(n)]
    for p in paths:
        with open(p + ".lock", "w"):
            pass
        os.chown(p + ".lock", NOBODY, NOBODY)
    conns = []
    for k in range(0, n, per_conn):
        c = Nobody(sock)
        for p in paths[k:k + per_conn]:
            c.conn.send("ACQUIRE", "path=" + p, "timeout=3600")
        c.conn.call("PING")
        conns.append(c)

    def stop():
        for c in conns:
            c.close()
    return stop


def replies_ready(conn):
    """Takes the reply lines conn's socket holds now, without waiting,
    into conn's buffer; how many lines were taken out of it."""
    conn.sock.setblocking(False)
    try:
        while True:
            chunk = conn.sock.recv(65536)
            if not chunk:
                break
            conn.buf += chunk
    except (BlockingIOError, InterruptedError):
        pass
    finally:
        conn.sock.setblocking(True)
    n = conn.buf.count(b"\n")
    conn.buf = conn.buf[conn.buf.rfind(b"\n") + 1:]
    return n


def holds_churn(sock, top, nconns, per_conn, done):
    """nobody's connections take per_conn locks each, close, again: each
    in a process of its own (in threads of this one, they would take the
    interpreter's lock from the thread that measures root's requests);
    done[0]() tells how many ACQUIREs were answered so far."""
    d = os.path.join(top, "churn")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    ctx = multiprocessing.get_context("fork")
    count = ctx.Value("q", 0)
    running = ctx.Value("i", 1)

    def one(k):
        while running.value:
            c = Nobody(sock)
            # Sent 64 at a time, the replies so far counted in between
            # (the socket's buffer keeps the daemon's side as deep).
            for i in range(0, per_conn, 64):
                lines = []
                for j in range(i, min(per_conn, i + 64)):
                    c.conn.rid += 1
                    lines.append("ACQUIRE %d path=%s/c%d-%d timeout=0\n"
                                 % (c.conn.rid, d, k, j))
                c.conn.sock.sendall("".join(lines).encode())
                n = replies_ready(c.conn)
                with count.get_lock():
                    count.value += n
            rid = c.conn.send("PING")
            while c.conn.line().split(" ")[1] != str(rid):
                with count.get_lock():
                    count.value += 1
            c.close()
    procs = [ctx.Process(target=one, args=(k,), daemon=True)
             for k in range(nconns)]
    for p in procs:
        p.start()
    done[0] = lambda: count.value
    time.sleep(1)

    def stop():
        running.value = 0
        for p in procs:
            p.join(30)
    return stop


def kept_holds(sock, top, n):
    """nobody keeps a hold for each of n of its processes."""
    d = os.path.join(top, "kept")
    os.mkdir(d)
    os.chmod(d, 0o1777)

    def demote():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    procs = [subprocess.Popen(["sleep", "3600"], preexec_fn=demote,
                              close_fds=True) for _ in range(n)]
    c = Nobody(sock)
    for i, p in enumerate(procs):
        c.conn.send("ACQUIRE", "path=%s/k%d" % (d, i), "pid=%d" % p.pid)
    c.conn.call("PING")

    def stop():
        for p in procs:
            p.kill()
            p.wait()
        c.close()
    return stop


BUSY_READER = """
import sqlite3, sys
cons = []
for db in sys.argv[1:]:
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                          isolation_level=None)
    con.execute("BEGIN")
    con.execute("SELECT * FROM locks").fetchall()
    cons.append(con)
print("ready", flush=True)
sys.stdin.read()
"""


def demote():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def releasing(sock, top, n, ndirs, per_conn=1000):
    """nobody holds n sqlite locks in ndirs directories of its own, keeps
    their lock databases busy (a read transaction each) and releases
    them all: every hold is left releasing."""
    os.mkdir(top)
    os.chmod(top, 0o755)
    dirs = []
    for i in range(ndirs):
        d = os.path.join(top, "dir%d" % i)
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        dirs.append(d)
    paths = [os.path.join(dirs[i % ndirs], "r%d" % i) for i in range(n)]
    conns = [Nobody(sock) for _ in range(0, n, per_conn)]

    def pipeline(verb, extra):
        for k, c in enumerate(conns):
            for p in paths[k * per_conn:(k + 1) * per_conn]:
                c.conn.send(verb, "path=" + p, "method=sqlite", *extra)
        for k, c in enumerate(conns):
            for _ in paths[k * per_conn:(k + 1) * per_conn]:
                c.conn.line()
    pipeline("ACQUIRE", ["timeout=0"])
    python = os.environ.get("PYTHON3", "/usr/bin/python3")
    reader = subprocess.Popen(
        [python, "-c", BUSY_READER] +
        [os.path.join(d, ".lockbroker.sqlite") for d in dirs],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=demote)
    reader.stdout.readline()
    pipeline("RELEASE", [])

    def stop():
        reader.stdin.close()
        reader.wait()
        # Every hold ends once the databases are free (before the next
        # load is measured).
        for p in (paths[0], paths[-1]):
            while conns[0].conn.call("STATUS", "path=" + p,
                                     "method=sqlite").count("locked=0") == 0:
                time.sleep(0.05)
        for c in conns:
            c.close()
    return stop


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--waits", type=int, default=8192)
    ap.add_argument("--dirs", type=int, default=2048)
    ap.add_argument("--procs", type=int, default=4096)
    ap.add_argument("--releasing", type=int, default=4000)
    ap.add_argument("--rdirs", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--config")
    ap.add_argument("--loads", help="comma-separated: foreign-waits, "
                    "foreign-dirs, holds-churn, kept-holds, releasing, "
                    "releasing-dbs (default: all)")
    a = ap.parse_args()
    if a.quick:
        a.waits, a.dirs, a.procs, a.samples = 1024, 64, 512, 100
        a.releasing, a.rdirs = 500, 32
    if os.geteuid() != 0:
        sys.exit("starve.py: run as root (the attacker is user nobody)")
    if not os.access(DAEMON, os.X_OK):
        sys.exit("starve.py: no %s: run make first" % DAEMON)
    top = tempfile.mkdtemp(prefix="lbstarve.")
    os.chmod(top, 0o755)
    sock = os.path.join(top, "sock")
    args = [DAEMON, "--socket", sock, "--state",
            os.path.join(top, "state.sqlite")]
    if a.config:
        args += ["--config", a.config]
    log = open(os.path.join(top, "log"), "w")
    daemon = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        root = Conn(s)
        lock = os.path.join(top, "root-lock")
        attacks = [
            ("idle", "idle", None),
            ("foreign-waits", "foreign-waits %d, 1 dir" % a.waits,
             lambda: foreign_waits(sock, os.path.join(top, "fw"), a.waits,
                                   1)),
            ("foreign-dirs", "foreign-waits %d, %d dirs" % (a.waits, a.dirs),
             lambda: foreign_waits(sock, os.path.join(top, "fd"), a.waits,
                                   a.dirs)),
            ("holds-churn", "holds-churn 8 conns x 1024",
             lambda: holds_churn(sock, top, 8, 1024, done)),
            ("kept-holds", "kept-holds %d processes" % a.procs,
             lambda: kept_holds(sock, top, a.procs)),
            ("releasing", "releasing %d, 1 db" % a.releasing,
             lambda: releasing(sock, os.path.join(top, "rl"), a.releasing,
                               1)),
            ("releasing-dbs", "releasing %d, %d dbs" % (a.releasing, a.rdirs),
             lambda: releasing(sock, os.path.join(top, "rd"), a.releasing,
                               a.rdirs)),
        ]
        keep = ["idle"] + (a.loads.split(",") if a.loads else
                           [k for k, _, _ in attacks])
        for k in keep:
            if k not in [key for key, _, _ in attacks]:
                sys.exit("starve.py: no load %s" % k)
        attacks = [(n, f) for k, n, f in attacks if k in keep]
        done = [lambda: 0]
        measure(root, lock, 100)       # warm-up, not counted
        idle = None
        print("%-32s %-16s %9s %9s %7s %7s %6s" % (
            "load (user nobody)", "root's request", "p50 us", "p99 us",
            "p50 x", "p99 x", "cpu"))
        for name, start in attacks:
            if start is not None:
                stop = start()
                time.sleep(1)
            cpu0, t0, done0 = cpu_seconds(daemon.pid), time.monotonic(), \
                done[0]()
            res = measure(root, lock, a.samples)
            elapsed = time.monotonic() - t0
            cpu = (cpu_seconds(daemon.pid) - cpu0) / elapsed
            ops = (done[0]() - done0) / elapsed
            if start is not None:
                stop()
            if idle is None:
                idle = res
            for req, xs in res.items():
                p50, p99 = percentile(xs, 50), percentile(xs, 99)
                print("%-32s %-16s %9.0f %9.0f %7.2f %7.2f %5.0f%%%s" % (
                    name, req, p50, p99, p50 / percentile(idle[req], 50),
                    p99 / percentile(idle[req], 99), cpu * 100,
                    "  nobody %.0f ACQUIREs/s" % ops if ops else ""))
            sys.stdout.flush()
        root.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        log.close()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
