#!/usr/bin/python3
"""Probe (a244934): requests pipelined before a close are handled after
it, replies dropped.  Does a closed connection's ACQUIRE leave a hold
behind?

1. nobody pipelines HELLO + 50 ACQUIREs (a sticky directory) and closes
   at once: every lock must be free soon after (LIST empty, no artefact).
2. root holds X; nobody pipelines ACQUIRE X timeout=60 (a wait) and
   ACQUIRE X pid=<its own live process> timeout=60 (a kept wait), and
   closes; root releases X: X must be free (the waits went with the
   connection), not granted to nobody's closed connection.
3. nobody pipelines ACQUIRE Y pid=<its own live process>, closes: Y is
   kept for that process (by design) and ends when the process exits.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from lbdaemon import DaemonCase, NOBODY, connect_as  # noqa: E402


def wait_for(cond, t=10):
    end = time.monotonic() + t
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


class EofPipelined(DaemonCase):
    def nobody_sleeper(self):
        def demote():
            os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
        p = subprocess.Popen(["sleep", "600"], preexec_fn=demote)
        self.procs.append(p)
        return p

    def send_and_close(self, lines):
        s, keeper, pid = connect_as(self.daemon.socket)
        s.sendall(("HELLO 1 version=1\n" + "".join(lines)).encode())
        s.close()
        keeper.close()
        os.waitpid(pid, 0)

    def test_plain_acquires_end(self):
        d = self.shared()
        self.send_and_close(["ACQUIRE %d path=%s/p%d timeout=0\n" %
                             (i + 2, d, i) for i in range(50)])
        root = self.client()
        self.assertTrue(wait_for(lambda: not os.listdir(d)), os.listdir(d))
        r = root.call("LIST")
        self.assertEqual(r.verb, "OK", r)

    def test_waits_go_with_the_connection(self):
        d = self.shared()
        x = os.path.join(d, "x")
        root = self.client()
        self.assertCode(root.call("ACQUIRE", path=x), "OK")
        sl = self.nobody_sleeper()
        self.send_and_close([
            "ACQUIRE 2 path=%s timeout=60\n" % x,
            "ACQUIRE 3 path=%s pid=%d thread=7 timeout=60\n" % (x, sl.pid)])
        time.sleep(0.5)
        self.assertCode(root.call("RELEASE", path=x), "OK")
        time.sleep(0.5)
        st = root.call("STATUS", path=x)
        self.assertEqual(st.fields.get("locked"), "0", st)

    def test_kept_acquire_is_kept_then_ends(self):
        d = self.shared()
        y = os.path.join(d, "y")
        sl = self.nobody_sleeper()
        self.send_and_close(["ACQUIRE 2 path=%s pid=%d timeout=0\n" %
                             (y, sl.pid)])
        root = self.client()
        self.assertTrue(wait_for(lambda: root.call("STATUS", path=y)
                                 .fields.get("locked") == "1"))
        sl.kill(); sl.wait()
        self.assertTrue(wait_for(lambda: root.call("STATUS", path=y)
                                 .fields.get("locked") == "0", 5))


if __name__ == "__main__":
    unittest.main(verbosity=2)
