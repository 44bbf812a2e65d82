#!/usr/bin/python3
"""Load: nobody's processes each loop: connect, pipeline HELLO and as many
ACQUIREs of fresh locks as fit in the daemon's 8 KiB input buffer, close
at once without reading (a244934: the daemon still handles them after
the close, replies dropped, then releases the holds).  Measures root's
PING and ACQUIRE+RELEASE round trips (p50/p99) idle and under the load,
the daemon's RSS, and, after the load stops, that every lock is free and
no hold is left (LIST empty, directory empty).

    /usr/bin/python3 repro/eof_churn.py [seconds] [procs]
"""
import os
import socket
import statistics
import sys
import tempfile
import time
import multiprocessing

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from lbdaemon import Daemon, NOBODY  # noqa: E402

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 5
PROCS = int(sys.argv[2]) if len(sys.argv) > 2 else 8


def measure(c, d, n=400):
    ping, acq = [], []
    def call(what, *a, **kw):
        t = time.perf_counter()
        r = c.call(*a, _wait=120, **kw)
        el = time.perf_counter() - t
        if el > 1:
            print("root's %s took %.1f s: %r" % (what, el, r), flush=True)
        return r
    for i in range(n):
        t = time.perf_counter()
        assert call("PING", "PING").verb == "OK"
        ping.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = call("ACQUIRE", "ACQUIRE", path=d + "/root", timeout=5)
        assert r.verb == "OK", r
        assert call("RELEASE", "RELEASE", path=d + "/root").verb == "OK"
        acq.append(time.perf_counter() - t)
        time.sleep(0.002)
    q = lambda v, p: sorted(v)[int(len(v) * p)] * 1e6
    return q(ping, .5), q(ping, .99), q(acq, .5), q(acq, .99)


def attacker(sock, d, k, running, count):
    os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
    n = 0
    while running.value:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sock)
        except OSError:
            time.sleep(0.001)
            continue
        lines = ["HELLO 1 version=1\n"]
        size = len(lines[0])
        i = 0
        while True:
            line = "ACQUIRE %d path=%s/e%d-%d-%d timeout=0\n" % (
                i + 2, d, k, n, i)
            if size + len(line) > 8000:
                break
            lines.append(line)
            size += len(line)
            i += 1
        try:
            s.sendall("".join(lines).encode())
        except OSError:
            pass                # refused (conns_per_uid): closed
        s.close()
        n += 1
        with count.get_lock():
            count.value += i


def main():
    top = tempfile.mkdtemp(prefix="lbeof.")
    os.chmod(top, 0o755)
    d = os.path.join(top, "locks")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    dm = Daemon(top, args=[]).start()
    from lbdaemon import Client
    c = Client(dm.socket)
    idle = measure(c, d)
    print("idle       PING p50 %.0f p99 %.0f us; ACQ+REL p50 %.0f p99 %.0f us"
          % idle)
    running = multiprocessing.Value("i", 1)
    count = multiprocessing.Value("q", 0)
    ps = [multiprocessing.Process(target=attacker, args=(dm.socket, d, k,
                                                         running, count))
          for k in range(PROCS)]
    for p in ps:
        p.start()
    time.sleep(1)
    cpu0, t0 = dm.cpu_seconds(), time.monotonic()
    under = measure(c, d, int(SECS * 100))
    conn_t = []
    for i in range(30):
        t = time.perf_counter()
        c2 = Client(dm.socket, timeout=None)
        conn_t.append(time.perf_counter() - t)
        c2.close()
    conn_t.sort()
    print("root's connect+HELLO under the load: p50 %.1f ms, max %.1f ms"
          % (conn_t[15] * 1e3, conn_t[-1] * 1e3))
    rss = [dm.memory_kib()]
    for i in range(int(SECS)):
        time.sleep(1)
        rss.append(dm.memory_kib())
    print("RSS each second after the measure (KiB):", rss)
    cpu = (dm.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    print("eof-churn  PING p50 %.0f (%.1fx) p99 %.0f (%.1fx) us; ACQ+REL "
          "p50 %.0f (%.1fx) p99 %.0f (%.1fx) us; daemon CPU %.0f%%; RSS "
          "%d KiB; nobody sent %d ACQUIREs" % (
              under[0], under[0] / idle[0], under[1], under[1] / idle[1],
              under[2], under[2] / idle[2], under[3], under[3] / idle[3],
              cpu * 100, dm.memory_kib(), count.value))
    running.value = 0
    for p in ps:
        p.join()
    t = time.monotonic()
    while True:
        left = [n for n in os.listdir(d)]
        if not left or time.monotonic() - t > 30:
            break
        time.sleep(0.1)
    print("after: %.1f s to drain, %d artefacts left, peak RSS %d KiB, "
          "RSS now %d KiB" % (time.monotonic() - t, len(left),
                              dm.memory_kib("VmHWM"), dm.memory_kib()))
    c.close()
    dm.stop()
    os.system("rm -rf " + top)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
