#!/usr/bin/env python3
"""review_cluster_client.py: a hostile review of the cluster locks' client
side (56ad81b, 2034074): lb_get_cluster / lockbroker status, the lost hook
(lb_set_lost_hook) and the in-process fallback's guard (the sign
CLUSTER_DIR/.lockbroker-cluster, client/clusterguard.c).

Each test asserts the correct behaviour and failed on the build it was
written against (each is fixed since); the comment above each says what
went wrong and where.
The TwoHosts and EtcdDown tests need etcd (skipped without it, as
tests/cluster.py); the others need only the daemon.

Run from the build directory:
    LB_BUILDDIR=$PWD /usr/bin/python3 ../tests/review_cluster_client.py
"""
import glob
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import DaemonCase, Daemon, NOBODY, PYTHON  # noqa: E402
from cluster import (ClusterCase, TwoHostsCase, ETCD, ETCDCTL,  # noqa: E402
                     free_port)

BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(BUILDDIR, ".libs", "liblockbroker.so")
TOOL = os.path.join(BUILDDIR, "tools", "lockbroker")
EX_UNAVAILABLE = 69
HAVE_ETCD = os.access(ETCD, os.X_OK) and os.access(ETCDCTL, os.X_OK)

# The ctypes preamble of the child programs below.
PREAMBLE = textwrap.dedent("""
    import ctypes, sys, threading, time
    lib = ctypes.CDLL(%r)
    lib.lb_lock_new.restype = ctypes.c_void_p
    lib.lb_lock_new.argtypes = [ctypes.c_char_p, ctypes.c_uint]
    lib.lb_acquire.argtypes = [ctypes.c_void_p, ctypes.c_double]
    lib.lb_is_locked.argtypes = [ctypes.c_void_p]
    lib.lb_acquire_start.argtypes = [ctypes.c_void_p, ctypes.c_double]
    lib.lb_acquire_finish.argtypes = [ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.c_double)]
    lib.lb_lock_error.restype = ctypes.c_char_p
    lib.lb_lock_error.argtypes = [ctypes.c_void_p]
    LB_BROKER = 0x40
    def say(*words):
        print(*words, flush=True)
    """ % LIB)


def tool(*args, socket=None, user=None, env=None):
    """The command lockbroker (LOCKBROKER_SOCKET socket; by default one
    where no daemon answers), as nobody when user: the completed
    process."""
    def demote():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    e = dict(os.environ, LOCKBROKER_SOCKET=socket or "/nonexistent/sock")
    e.pop("LOCKBROKER_TRANSPORT", None)
    e.update(env or {})
    return subprocess.run([TOOL] + list(args), env=e, text=True,
                          capture_output=True, timeout=60,
                          preexec_fn=demote if user else None)


class ClusterDirCase(DaemonCase):
    """A daemon with cluster_dir (no etcd: its cluster locks are refused
    through it, and its sign is made, which is what these tests need)."""
    sticky = False

    def make_daemon(self):
        self.cluster = os.path.join(self.locks, "cluster")
        os.mkdir(self.cluster)
        if self.sticky:
            os.chmod(self.cluster, 0o1777)
        self.before_start()
        return Daemon(self.dir, config="cluster_dir = %s\n" % self.cluster)

    def before_start(self):
        pass

    def child(self, body, *args, env=None):
        """A Python child running PREAMBLE + body with args, stdin and
        stdout pipes (text), against the test's daemon."""
        p = subprocess.Popen(
            [PYTHON, "-c", PREAMBLE + textwrap.dedent(body)] + list(args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket,
                     **(env or {})))
        self.procs.append(p)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.stdin.close)
        return p


class Guard(ClusterDirCase):
    # lb_acquire_start (AUTO) sent to a daemon that then goes away: the
    # rest of the wait goes on in-process, and the cluster lock is TAKEN
    # on this host alone, the sign notwithstanding.  The guard is checked
    # in lb_acquire_start only when the start itself falls back; the
    # fallback that comes later, in async_look (client/lock.c: "The rest
    # of the timeout in-process, from now", then async_local_try), skips
    # lb__cluster_guard.  (lb_acquire in the same case is refused: its
    # acquire_in checks the guard after broker_acquire_owned's
    # LB__FALLBACK.)  Fix: call lb__cluster_guard in async_look when
    # lb__broker_acquire_look returns LB__FALLBACK on an AUTO handle (and
    # settle with its LB_EFAILED), or better, in async_local_try.
    @unittest.skipIf(os.environ.get("LB_SANITIZERS"), "loads the library "
                     "into Python with ctypes: a sanitizer build's cannot be")
    def test_async_acquire_fallback_after_daemon_loss_refused(self):
        p = os.path.join(self.cluster, "x")
        c = self.child("""
            other = lib.lb_lock_new(sys.argv[2].encode(), 0)
            say("connected", lib.lb_is_locked(other))
            sys.stdin.readline()            # the daemon is stopped now
            lock = lib.lb_lock_new(sys.argv[1].encode(), 0)     # AUTO
            r = lib.lb_acquire_start(lock, 10.0)
            say("started", r)
            sys.stdin.readline()            # the daemon is killed now
            again = ctypes.c_double()
            end = time.monotonic() + 20
            while r == 1 and time.monotonic() < end:
                time.sleep(0.05)
                r = lib.lb_acquire_finish(lock, ctypes.byref(again))
            say("finished", r, lib.lb_lock_error(lock).decode())
            """, p, os.path.join(self.locks, "other"))
        self.assertEqual(c.stdout.readline().split(), ["connected", "0"])
        self.daemon.pause()             # the ACQUIRE goes out, unanswered
        c.stdin.write("\n")
        c.stdin.flush()
        self.assertEqual(c.stdout.readline().split(), ["started", "1"])
        self.daemon.kill()              # AUTO: in-process after 1 s
        c.stdin.write("\n")
        c.stdin.flush()
        line = c.stdout.readline()
        self.assertTrue(line.startswith("finished "), line)
        self.assertFalse(os.path.exists(p + ".lock"),
                         "the cluster lock was taken on this host alone: "
                         + line)
        self.assertEqual(line.split()[1], "-5", line)       # LB_EFAILED
        self.assertIn("is a cluster lock", line)


class PlantedSign(ClusterDirCase):
    """cluster_dir is a shared, sticky world-writable lock directory (as
    lock directories for every user are); user nobody makes
    .lockbroker-cluster there before the daemon's first start."""
    sticky = True

    def before_start(self):
        sign = os.path.join(self.cluster, ".lockbroker-cluster")
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                with open(sign, "w") as f:
                    f.write("mine\n")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        self.assertEqual(os.lstat(sign).st_uid, NOBODY)

    # A hostile local user disables the guard for everybody else: the
    # daemon (root) finds nobody's file in its place (EEXIST), knows the
    # library does not count it ("is not a regular file of this daemon's
    # user or root: the library does not count it", logged), and leaves
    # it; every other user's AUTO fallback then takes cluster locks on
    # this host alone (daemon/clusterdir.c, lbd_cluster_dir_sign: warns
    # and returns; client/clusterguard.c counts only root's or the
    # caller's own file).  Fix: the daemon, which may (root), replaces an
    # entry it would not count: it writes its sign to a temporary name in
    # cluster_dir (O_EXCL) and renames it over the planted one (rename
    # replaces a file, a symlink or a fifo; an empty directory with
    # RENAME_EXCHANGE/rmdir), then checks the result with lstat.
    def test_sign_planted_by_another_user_is_replaced(self):
        sign = os.path.join(self.cluster, ".lockbroker-cluster")
        st = os.lstat(sign)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertIn(st.st_uid, (0, os.geteuid()),
                      "the sign is still nobody's: " + self.daemon.logtext())
        # And the point of it: with the daemon stopped, root's lock under
        # cluster_dir is refused, not taken on this host alone.
        self.daemon.stop()
        p = os.path.join(self.cluster, "x")
        r = tool("lock", "-n", p, "--", "true")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("is a cluster lock", r.stderr)


class LostHook(DaemonCase):
    # lb_set_lost_hook(NULL) (or a new hook) does not take effect for
    # losses already queued: tell_queue (client/holds.c) records the hook
    # and arg set when the hold was lost, and lb__holds_tell calls that
    # one later, from the reader thread, after lb_set_lost_hook has
    # returned.  A program that removes its hook and then frees its arg
    # (or unloads the module that has the hook) has the old hook called
    # with a freed arg: a use after free it cannot avoid, since nothing
    # tells it when the reader is done.  Here two holds are lost at once
    # (the daemon restarted on a new state database: neither is given
    # back); the hook is still running for the first when the owner
    # removes it, and it is called for the second after the removal
    # returned.  Fix: lb__holds_tell reads reg.hook/hook_arg under
    # lb__conn.mu for each loss as it calls it (drop struct tell's
    # hook/arg), and lb_set_lost_hook waits (on a counter and
    # lb__conn.changed) until no call of the previous hook is under way,
    # unless called from the hook itself.
    @unittest.skipIf(os.environ.get("LB_SANITIZERS"), "loads the library "
                     "into Python with ctypes: a sanitizer build's cannot be")
    def test_removed_hook_not_called_after_removal_returns(self):
        paths = [self.path("l1"), self.path("l2")]
        body = """
            HOOK = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_void_p)
            lib.lb_set_lost_hook.argtypes = [HOOK, ctypes.c_void_p]
            st = {"removed": False, "calls": 0, "late": []}
            go = threading.Event()
            def told(path, why, arg):
                st["calls"] += 1
                if st["removed"]:
                    st["late"].append(path.decode())
                if st["calls"] == 1:
                    go.wait(3)      # a slow hook (bounded for the test)
            hook = HOOK(told)
            lib.lb_set_lost_hook(hook, None)
            locks = [lib.lb_lock_new(p.encode(), LB_BROKER)
                     for p in sys.argv[1:]]
            say("held", *[lib.lb_acquire(l, 10.0) for l in locks])
            end = time.monotonic() + 40
            while st["calls"] == 0 and time.monotonic() < end:
                time.sleep(0.01)
            lib.lb_set_lost_hook(ctypes.cast(None, HOOK), None)
            st["removed"] = True
            go.set()
            time.sleep(2)
            say("calls", st["calls"], "late", *st["late"])
            """
        p = subprocess.Popen(
            [PYTHON, "-c", PREAMBLE + textwrap.dedent(body)] + paths,
            stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, LOCKBROKER_SOCKET=self.daemon.socket))
        self.procs.append(p)
        self.addCleanup(p.stdout.close)
        self.assertEqual(p.stdout.readline().split(), ["held", "0", "0"])
        self.daemon.kill()
        for f in glob.glob(self.daemon.state + "*"):
            os.unlink(f)
        self.daemon.start()
        line = p.stdout.readline().split()
        self.assertEqual(line[:2], ["calls", line[1]], line)
        self.assertGreaterEqual(int(line[1]), 1, line)
        self.assertEqual(line[3:], [], "the removed hook was called after "
                         "lb_set_lost_hook(NULL) returned: %s" % line)


class StatusNoDaemon(ClusterDirCase):
    # lockbroker status of a cluster lock with no daemon answering (AUTO)
    # reads this host's lock file only and says "not locked" (exit 1),
    # while the library itself refuses to take that very lock in-process
    # because another host may hold it (the sign).  Its own contract is
    # "EX_UNAVAILABLE when it cannot tell" (tools/status.c, cmd_status:
    # lb_get_cluster is asked only when h.broker; lb_get_holder's
    # in-process view never looks for the sign).  Fix: in cmd_status,
    # when the daemon was not asked and lb__cluster_guard-like logic finds
    # the sign above the path, print that it cannot tell (a cluster lock,
    # no daemon) and exit EX_UNAVAILABLE; unless held here.
    def test_status_of_cluster_lock_without_daemon_cannot_tell(self):
        self.daemon.stop()
        p = os.path.join(self.cluster, "x")
        self.assertEqual(tool("lock", "-n", p, "--", "true").returncode != 0,
                         True)          # the library: refused
        r = tool("status", p)
        self.assertNotIn("not locked", r.stdout, r)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r)


@unittest.skipUnless(HAVE_ETCD, "etcd and etcdctl needed")
class StatusEtcdDown(ClusterCase):
    # lockbroker status of a cluster lock when the daemon cannot ask etcd
    # (no lease: etcd down, unreachable, silent) prints "PATH: not
    # locked" and exits 1 (EXIT_NOT_LOCKED), with "etcd: <why>" below:
    # it cannot tell whether another host holds it, and its contract is
    # EX_UNAVAILABLE then.  tools/status.c, cmd_status: held_elsewhere()
    # looks only at c.revision, which is 0 when c.error is set, and the
    # r == 0 branch then says "not locked".  A script that runs
    # `lockbroker status P || do_it_anyway` is told the lock is free.
    # Fix: in cmd_status, a cluster lock with c.error[0] != '\0' and no
    # local holder prints "PATH: cannot tell (etcd: ...)" on stderr and
    # returns EX_UNAVAILABLE.
    def test_status_says_cannot_tell_without_etcd(self):
        endpoint = "http://127.0.0.1:%d" % free_port()  # nobody listens
        self.start_daemon(endpoint)
        self.logged(r"etcd: lease grant at %s" % re.escape(endpoint))
        p = os.path.join(self.cluster, "db", "migrate")
        r = tool("status", p, socket=self.daemon.socket,
                 env={"LOCKBROKER_TRANSPORT": "broker"})
        self.assertIn("etcd:", r.stdout, r)     # it knows it cannot tell
        self.assertNotIn("not locked", r.stdout, r)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r)


@unittest.skipUnless(HAVE_ETCD, "etcd and etcdctl needed")
class StatusLongKey(TwoHostsCase):
    # A cluster lock whose etcd key is over 1023 bytes (a name of ~1 KiB
    # under cluster_dir: '/' is escaped as %2F, three bytes) is taken by
    # host A; on host B, `lockbroker status` says "not locked" (exit 1)
    # while B's own ACQUIRE of it is refused.  B's STATUS cannot read the
    # holding key: on_status_first (daemon/cohort.c) reads it into
    # key[1024] and lbd_etcd_parse_first/range_first fails "a key that is
    # not base64, or too long", so cluster_error is all STATUS says; and
    # cmd_status (tools/status.c) takes that for "not locked" (see
    # StatusEtcdDown).  The holder's key can be any length a path allows
    # (PATH_MAX plus escaping).  Fix: size on_status_first's key to what
    # lbd_cluster_prefix can make (PATH_MAX * 3 + the prefix + the lease),
    # or ask etcd with keys_only/limit and compare only the revision; and
    # fix cmd_status as above.
    def test_status_of_long_name_held_by_other_host(self):
        name = "/".join("d%03d" % i + "x" * 60 for i in range(18))
        pa = os.path.join(self.cluster, name, "lock")
        pb = os.path.join(self.b.cluster, name, "lock")
        os.makedirs(os.path.dirname(pa))
        os.makedirs(os.path.dirname(pb))
        ca = self.a.client(version=2)
        self.addCleanup(ca.close)
        r = ca.call("ACQUIRE", path=pa, timeout=0)
        self.assertEqual(r.code, "OK", r)
        cb = self.b.client(version=2)
        self.addCleanup(cb.close)
        self.assertNotEqual(cb.call("ACQUIRE", path=pb, timeout=0).code,
                            "OK")           # B knows it is held
        r = tool("status", pb, socket=self.b.socket,
                 env={"LOCKBROKER_TRANSPORT": "broker"})
        self.assertNotIn("not locked", r.stdout, r)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("locked by another host", r.stdout, r)


class ManPage(unittest.TestCase):
    # docs/lockbroker.1, STATUS OUTPUT: the two new quoted status lines
    # have form-feed bytes (0x0c) where the font escapes' "\f" should
    # be (a "\f" written through a string that took it for an escape):
    # ".RB \(dq <FF>Ipath<FF>B:\ not\ locked \(dq", which `man lockbroker`
    # renders as `IpatB: not locked"` and `IpatB: locked by another
    # host"`.  Fix: `.RB \(dq \fIpath\fB:\ not\ locked \(dq` as the lines
    # above it have (and no control bytes in docs/).
    def test_status_output_quotes_render(self):
        page = os.path.join(SRCDIR, "docs", "lockbroker.1")
        with open(page) as f:
            text = f.read()
        bad = [n + 1 for n, line in enumerate(text.split("\n"))
               if "\f" in line]
        self.assertEqual(bad, [], "form feeds on these lines")
        if shutil.which("nroff"):
            out = subprocess.run(["nroff", "-man", page],
                                 capture_output=True, text=True).stdout
            out = re.sub(r".\x08", "", out)
            self.assertNotIn("IpatB", out)


if __name__ == "__main__":
    unittest.main()
