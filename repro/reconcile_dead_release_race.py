#!/usr/bin/python3
"""Attack: at start, the hold of a holder that has gone is released
(orphan_end -> lbd_hold_end -> lockfs_release: is it the holder's?
then unlink, each by path).  nobody, who may write the parent X of root's
lock directory X/d, exchanges X/d with a symlink to R, a root-only
directory with a file "victim" (any content), while the daemon starts:
when the check sees the real X/d and the unlink sees R, root's R/victim
is removed.

Run as root from the build tree.  Exit 1 when R/victim was removed.
"""
import os
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from lbdaemon import DaemonCase, PYTHON  # noqa: E402
import unittest  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "100"))
METHOD = os.environ.get("METHOD", "pidfile")
EXCHANGER = r"""
import ctypes
libc = ctypes.CDLL(None)
print("go", flush=True)
while True:
    libc.renameat2(-100, %r, -100, %r, 2)    # RENAME_EXCHANGE
"""
HOLDER = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_UNIX)
    s.connect(%r)
    f = s.makefile("rwb", buffering=0)
    f.write(b"HELLO 1 version=1\\nACQUIRE 2 path=%s method=%s timeout=0\\n")
    f.readline()
    print(f.readline().decode().strip(), flush=True)
    time.sleep(600)
""")


class ReconcileDeadRelease(DaemonCase):
    def test_attack(self):
        x = os.path.join(self.dir, "shared")
        os.mkdir(x)
        os.chmod(x, 0o777)
        d = os.path.join(x, "d")
        os.mkdir(d)
        os.chmod(d, 0o777)
        r = os.path.join(self.dir, "rootonly")
        os.mkdir(r, 0o700)
        name = "victim" if METHOD == "pidfile" else "victim.lock"
        victim = os.path.join(r, name)
        s = os.path.join(x, "s")
        os.symlink(r, s)
        p = os.path.join(d, "victim")

        def straighten():
            if os.path.islink(d):
                os.rename(d, x + "/t"); os.rename(s, d)
                os.rename(x + "/t", s)
        for rnd in range(ROUNDS):
            with open(victim, "w") as f:
                f.write("precious\n")
            straighten()
            h = subprocess.Popen([PYTHON, "-c", HOLDER % (
                self.daemon.socket, p, METHOD)], stdout=subprocess.PIPE)
            line = h.stdout.readline().decode()
            assert line.startswith("OK"), line
            self.daemon.kill()
            h.kill(); h.wait()
            e = self.spawn(EXCHANGER % (os.fsencode(d), os.fsencode(s)),
                           user="nobody")
            e.stdout.readline()
            self.daemon.start()
            e.kill(); e.wait()
            straighten()
            if not os.path.exists(victim):
                print("round %d: root's %s removed" % (rnd, victim))
                self.fail("a dead holder's release at start removed a "
                          "root-only file through nobody's swap")
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))
        print("held over %d restarts" % ROUNDS)


if __name__ == "__main__":
    unittest.main()
