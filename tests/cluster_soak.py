"""cluster_soak.py: a long run of cluster locks under faults, by hand
(not in make check):

    LB_BUILDDIR=$PWD /usr/bin/python3 ../tests/cluster_soak.py [MINUTES]

One etcd, two daemons standing in for two hosts (cluster.py's
TwoHostsCase), four workers a daemon (each a thread of this process,
an owner of its own) taking one cluster lock in turn.  Under the lock a
worker makes a marker file with O_EXCL (two holders at once would
collide), checks the counter file's last token against its own (a
fencing check: the counter keeps the greatest token written, and a
lower one is refused and counted) and adds one.  Meanwhile, every 5 to 15 s, one fault at random: daemon A
killed (SIGKILL) and started again, daemon B stopped (SIGTERM) and
started again, etcd stopped (SIGSTOP) for 2 to 7 s.  At the end: no
marker ever collided, and the counter equals the writes the workers
made (the fenced ones aside).  Exit status 0
when all held, 1 with the first thing that did not.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from lbdaemon import Client  # noqa: E402

WORKERS = 4


class Soak(cluster.TwoHostsCase):
    minutes = 10.0

    def worker(self, daemon, tid, stop, stats, errors):
        """Takes the lock in turn till stop, as thread tid of this
        process (an owner of its own); its writes in stats."""
        while not stop.is_set():
            try:
                c = Client(daemon.socket, hello=False, timeout=60)
                c.call("HELLO", version=2)
            except (OSError, EOFError, AssertionError):
                time.sleep(0.2)     # the daemon restarting
                continue
            try:
                while not stop.is_set():
                    p = self.path(daemon)
                    r = c.call("ACQUIRE", _wait=40.0, path=p, timeout=30,
                               thread=tid)
                    if r.verb == "ERR":
                        continue    # timed out, lost, no lease: again
                    self.critical(int(r.fields["token"]), stats, errors)
                    c.call("RELEASE", path=p, thread=tid)
            except (OSError, EOFError, TimeoutError, AssertionError):
                pass                # the daemon went: connect again
            finally:
                c.close()

    def critical(self, token, stats, errors):
        marker = os.path.join(self.dir, "inside")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            errors.append("two holders at once (token %d)" % token)
            return
        try:
            with open(self.counter) as f:
                n, last = (int(x) for x in f.read().split())
            if token < last:
                stats["fenced"] += 1    # a late holder: its write refused
            else:
                time.sleep(0.001)
                with open(self.counter, "w") as f:
                    f.write("%d %d" % (n + 1, token))
                stats["writes"] += 1
        finally:
            os.close(fd)
            os.unlink(marker)

    def fault(self):
        what = random.choice(["kill-a", "term-b", "stop-etcd"])
        if what == "kill-a":
            self.a.kill()
            self.a.start()
        elif what == "term-b":
            self.b.stop()
            self.b.start()
        else:
            self.etcd.proc.send_signal(signal.SIGSTOP)
            time.sleep(random.uniform(2, 7))
            self.etcd.proc.send_signal(signal.SIGCONT)
        return what

    def test_soak(self):
        with open(self.counter, "w") as f:
            f.write("0 0")
        stop, errors = threading.Event(), []
        stats = {"writes": 0, "fenced": 0}
        threads = [threading.Thread(target=self.worker, args=(
            d, 1 + i, stop, stats, errors)) for d in (self.a, self.b)
            for i in range(WORKERS)]
        for t in threads:
            t.start()
        faults = []
        end = time.monotonic() + self.minutes * 60
        try:
            while time.monotonic() < end and not errors:
                time.sleep(random.uniform(5, 15))
                faults.append(self.fault())
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        with open(self.counter) as f:
            n, _ = (int(x) for x in f.read().split())
        print("soak: %.1f min, %d faults (%s), %d writes, %d fenced" % (
            self.minutes, len(faults), ", ".join(
                "%s %d" % (k, faults.count(k)) for k in sorted(set(faults))),
            stats["writes"], stats["fenced"]), file=sys.stderr)
        self.assertEqual(errors, [])
        self.assertEqual(n, stats["writes"])
        self.assertGreater(stats["writes"], 0)


if __name__ == "__main__":
    why = cluster.skip_reason()
    if why is not None:
        print("skipped: " + why)
        sys.exit(77)
    if len(sys.argv) > 1:
        Soak.minutes = float(sys.argv.pop(1))
    unittest.main(verbosity=2)
