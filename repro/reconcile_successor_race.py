#!/usr/bin/python3
"""Attack: the directory identity check of reconcile (same_dir) and the
steps that follow it (lockfs_i_am_locking, reconcile_successor ->
lockfs_break_stale) each resolve the lock's path anew.  nobody, who may
write the parent X of root's lock directory X/d, exchanges X/d with a
symlink to R, a root-only directory holding a file "victim" whose first
line names a dead pid, while the daemon starts.  When same_dir sees the
real X/d and the later steps see R, the daemon removes R/victim as root
("removed the artefact of pid ..., who is gone").

Run as root from the build tree.  Exit 1 when R/victim was removed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from lbdaemon import DaemonCase  # noqa: E402
import unittest  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "60"))
EXCHANGER = r"""
import ctypes
libc = ctypes.CDLL(None)
print("go", flush=True)
while True:
    libc.renameat2(-100, %r, -100, %r, 2)    # RENAME_EXCHANGE
"""


class ReconcileSuccessorRace(DaemonCase):
    def test_attack(self):
        x = os.path.join(self.dir, "shared")
        os.mkdir(x)
        os.chmod(x, 0o777)
        d = os.path.join(x, "d")
        os.mkdir(d)
        os.chmod(d, 0o777)
        r = os.path.join(self.dir, "rootonly")
        os.mkdir(r, 0o700)
        victim = os.path.join(r, "victim")
        s = os.path.join(x, "s")
        os.symlink(r, s)
        p = os.path.join(d, "victim")
        for rnd in range(ROUNDS):
            with open(victim, "w") as f:
                f.write("999999\n")
            if os.path.islink(d):
                os.rename(d, x + "/t"); os.rename(s, d); os.rename(x + "/t", s)
                os.rename(d, x + "/t"); os.rename(s, d); os.rename(x + "/t", s)
            if os.path.islink(d):
                raise AssertionError("orientation")
            c = self.client()
            rep = c.call("ACQUIRE", path=p, method="pidfile", timeout=0)
            if rep.code == "EALREADY":     # forgotten: its pid file stays
                os.unlink(p)
                rep = c.call("ACQUIRE", path=p, method="pidfile", timeout=0)
            self.assertCode(rep, "OK")
            self.daemon.kill()
            c.close()
            e = self.spawn(EXCHANGER % (os.fsencode(d), os.fsencode(s)),
                           user="nobody")
            e.stdout.readline()
            self.daemon.start()
            e.kill(); e.wait()
            if os.path.islink(d):
                os.rename(d, x + "/t"); os.rename(s, d); os.rename(x + "/t", s)
            if not os.path.exists(victim):
                print("round %d: root's %s removed" % (rnd, victim))
                print([l for l in self.daemon.logtext().splitlines()
                       if "who is gone" in l][:2])
                self.fail("reconcile removed a root-only file through "
                          "nobody's directory swap")
        print("held over %d restarts" % ROUNDS)


if __name__ == "__main__":
    unittest.main()
