"""exhaust.py: lockbrokerd under resource exhaustion.

Each test starts the built daemon in a private temporary directory (its own
socket and state database, see lbdaemon.py) and exhausts one resource:
its file descriptors (connections, and the processes kept holds are
watched for), its input buffer (a line of many megabytes), its
output queue (a client that never reads), the connections one user may
have, and the space for its state database (a small tmpfs: the test is
skipped, saying why, only where mounting is not permitted).  What each
test expects is in its docstring.  Bounds on time and CPU are generous:
they catch a hang or a spinning loop, not a slow machine.
"""
import errno
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import (NOBODY, PYTHON, WRAPPER, Client,  # noqa: E402
                      Daemon, DaemonCase, NobodyClient,
                      connect_many_as)

METHODS = ("link", "symlink", "mkdir", "pidfile", "sqlite")
# Under AddressSanitizer (a build with --enable-sanitizers), freed memory
# is held back in quarantine (256 MiB) and shadow memory comes on top: the
# daemon's peak memory is then no measure of what it keeps, and the
# bounds on it are not checked.
MEMORY_MEASURED = "address" not in os.environ.get("LB_SANITIZERS",
                                                  "").split(",")
# Under a wrapper (valgrind) the daemon's CPU time is the wrapper's: the
# work bounds that compare it with wall time are not checked there.
CPU_MEASURED = not WRAPPER


def artefact(path, method):
    """Where a lock's artefact is (the sqlite method has none of its own)."""
    return path if method == "pidfile" else path + ".lock"


def wait_for(what, cond, timeout=10.0):
    """Polls cond() until it is true; fails naming what after timeout."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("not within %g s: %s" % (timeout, what))
        time.sleep(0.02)


def connect(sock_path, timeout=10.0):
    """Opens a connection and says HELLO: ("ok", Client), or ("refused",
    what the daemon said or did) when it turns the connection away."""
    try:
        c = Client(sock_path, hello=False, timeout=timeout)
    except OSError as e:
        return "refused", "connect: %s" % e
    try:
        c.send_raw(b"HELLO 1 version=1\n")
    except OSError:
        pass                        # closed already; its ERR may be there
    try:
        r = c.read(timeout)
    except (OSError, EOFError) as e:
        c.close()
        return "refused", "closed: %r" % e
    if r.verb == "OK":
        return "ok", c
    c.close()
    return "refused", r


def nobody_connections(sock_path, n, timeout=10.0):
    """n connections that user nobody made, HELLO said, all from one
    child process that stays alive until the returned keeper socket is
    closed (then reap the returned pid).  Returns (keeper, pid,
    clients)."""
    socks, keeper, pid = connect_many_as(sock_path, n)
    clients = []
    for sock in socks:
        c = Client.__new__(Client)
        c.sock = sock
        c.sock.settimeout(timeout)
        c.buf, c.next_id = b"", 1
        clients.append(c)
    for c in clients:
        r = c.call("HELLO", version=1)
        assert r.verb == "OK", r
    return keeper, pid, clients


def inotify_watches(pid):
    """How many inotify watches process pid has (from /proc/PID/fdinfo)."""
    n = 0
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                n += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            pass
    return n


class ExhaustTest(DaemonCase):
    prefix = "lbexhaust."

    def assertServes(self, c, a, b, method):
        """c takes a lock of method, b waits for it, c's release hands it
        to b, b releases it: the whole life of a lock on two connections."""
        p = self.path("serve-" + method)
        self.assertCode(c.call("ACQUIRE", path=p, method=method,
                               timeout=0), "OK")
        rid = b.send("ACQUIRE", path=p, method=method, timeout=30)
        wait_for("the waiter is queued", lambda: c.call(
            "STATUS", path=p, method=method).fields["waiters"] == "1")
        self.assertCode(c.call("RELEASE", path=p, method=method), "OK")
        self.assertCode(b.wait(rid), "OK")
        self.assertCode(b.call("RELEASE", path=p, method=method), "OK")
        if method != "sqlite":
            self.assertFalse(os.path.lexists(artefact(p, method)))


class FdLimit(ExhaustTest):
    """The daemon at its file-descriptor limit (RLIMIT_NOFILE of 64).

    Expected: the daemon turns away the connections its descriptors cannot
    afford (ERR ELIMIT, or closed at once) and keeps enough descriptors for
    its own work, so that every connection it did accept is served in full:
    locks of every method taken, waited for, handed over and released.  It
    does not spin on a failing accept(2): with refused connections coming
    and then none, its CPU time stays far below the time that passed.  Once
    descriptors are free again, it accepts and serves new connections.
    """
    NOFILE = 64

    @staticmethod
    def preexec():
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (FdLimit.NOFILE, FdLimit.NOFILE))

    def fill(self):
        """Connects until the daemon refuses five times in a row."""
        accepted, refused, streak = [], [], 0
        while streak < 5 and len(accepted) < 4 * self.NOFILE:
            state, what = connect(self.daemon.socket)
            if state == "ok":
                accepted.append(what)
                self.clients.append(what)
                streak = 0
            else:
                refused.append(what)
                streak += 1
        return accepted, refused

    def test_accepted_connections_keep_working(self):
        accepted, refused = self.fill()
        self.assertLess(len(accepted), self.NOFILE)
        self.assertGreaterEqual(len(accepted), self.NOFILE // 4, refused)
        self.assertTrue(refused)
        for r in refused:
            if not isinstance(r, str):      # a reply, not a closed socket
                self.assertCode(r, "ELIMIT")
        for method in METHODS:
            self.assertServes(accepted[0], accepted[1], accepted[-1], method)
        self.assertCode(accepted[-1].call("PING"), "OK")

    def test_no_spin_and_recovery(self):
        accepted, refused = self.fill()
        stop = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < stop:       # refused ones keep coming
            state, what = connect(self.daemon.socket, timeout=2.0)
            self.assertEqual(state, "refused")
            n += 1
            time.sleep(0.005)
        cpu0, t0 = self.daemon.cpu_seconds(), time.monotonic()
        time.sleep(2.0)
        idle = self.daemon.cpu_seconds() - cpu0
        self.assertLess(idle, 0.5 * (time.monotonic() - t0),
                        "the daemon used %.2f s of CPU while idle at its "
                        "descriptor limit" % idle)
        for c in accepted[len(accepted) // 2:]:
            c.close()
        fresh = []

        def accepted_again():
            state, what = connect(self.daemon.socket)
            if state == "ok":
                fresh.append(what)
                self.clients.append(what)
            return state == "ok"
        wait_for("a new connection is accepted", accepted_again)
        fresh = fresh[0]
        self.assertServes(fresh, accepted[0], accepted[1], "link")


class Input(ExhaustTest):
    """Clients that send too much."""

    def test_line_of_many_megabytes(self):
        """A line of 64 MiB without a newline: ERR - code=ELIMIT once the
        first 8 KiB are in, and the connection closed.  The daemon neither
        buffers nor drains the rest: its peak memory grows by less than
        8 MiB and the sender is cut off long before it has sent it all.
        Other clients are served meanwhile and afterwards."""
        other = self.client()
        c = self.client()
        hwm = self.daemon.memory_kib("VmHWM")
        total = 64 << 20
        sent = [0]
        chunk = b"x" * (1 << 20)

        def send():
            c.sock.settimeout(30)
            try:
                c.sock.sendall(b"PING 2 ")
                while sent[0] < total:
                    c.sock.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass
        t = threading.Thread(target=send)
        t.start()
        r = c.read(timeout=20)
        self.assertEqual((r.verb, r.id, r.code), ("ERR", "-", "ELIMIT"), r)
        self.assertTrue(c.closed(timeout=20))
        t.join(30)
        self.assertFalse(t.is_alive(), "the sender is still sending")
        self.assertLess(sent[0], 16 << 20)
        if MEMORY_MEASURED:
            self.assertLess(self.daemon.memory_kib("VmHWM") - hwm, 8 << 10)
        self.assertCode(other.call("PING"), "OK")
        self.assertCode(self.client().call("PING"), "OK")

    def test_requests_without_reading_replies(self):
        """A client sends 5 MB of requests (400000 PINGs) and reads none of
        the replies.  Once 1 MiB of its replies waits (output_per_conn), the
        daemon stops reading from it: its memory stays bounded (the peak
        grows by less than 32 MiB) and, the client paused, it uses almost
        no CPU.  Another client is served at once meanwhile.  When the
        greedy client reads at last, every request has had exactly one
        reply, in order."""
        greedy = self.client()
        n = 400000
        hwm = self.daemon.memory_kib("VmHWM")
        payload = b"".join(b"PING %d\n" % i for i in range(2, n + 2))
        done = threading.Event()

        def send():
            greedy.sock.settimeout(None)
            try:
                greedy.sock.sendall(payload)
            finally:
                done.set()
        t = threading.Thread(target=send, daemon=True)
        t.start()
        wait_for("the daemon pauses the greedy client", lambda:
                 "not reading its replies; pausing" in
                 self.daemon.logtext(), timeout=20)
        self.assertFalse(done.is_set(), "the daemon took all 5 MB")
        other = self.client()
        t0 = time.monotonic()
        self.assertCode(other.call("PING"), "OK")
        self.assertCode(other.call("ACQUIRE", path=self.path()), "OK")
        self.assertLess(time.monotonic() - t0, 5)
        cpu0, t0 = self.daemon.cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        self.assertLess(self.daemon.cpu_seconds() - cpu0,
                        0.5 * (time.monotonic() - t0))
        if MEMORY_MEASURED:
            self.assertLess(self.daemon.memory_kib("VmHWM") - hwm, 32 << 10)
        # Now read everything.
        data = greedy.buf
        greedy.sock.settimeout(20)
        while data.count(b"\n") < n:
            chunk = greedy.sock.recv(1 << 20)
            self.assertTrue(chunk, "the daemon closed the greedy client")
            data += chunk
        lines = data.split(b"\n")
        self.assertEqual(lines[n], b"", "more replies than requests")
        expected = [b"OK %d" % i for i in range(2, n + 2)]
        self.assertEqual(lines[:n], expected)
        t.join(20)
        self.assertTrue(done.is_set())
        self.assertCode(other.call("RELEASE", path=self.path()), "OK")


class ListOutput(ExhaustTest):
    """LIST is sent as the client reads it, never built whole."""
    config = "output_per_conn = 65536\nconns_per_uid = 128\n"

    def deep_dir(self):
        """A directory whose path is about 2000 bytes long: each ITEM of
        a lock in it is about as long."""
        d = self.locks
        for i in range(8):
            d = os.path.join(d, chr(ord("a") + i) * 240)
        os.makedirs(d)
        return d

    def take(self, d, names):
        """Locks d/NAME for every name, over as many connections as
        holds_per_conn asks; the connections stay open."""
        c = None
        for i, name in enumerate(names):
            if i % 1000 == 0:
                c = self.client()
            self.assertCode(c.call("ACQUIRE", path=os.path.join(d, name)),
                            "OK")

    def read_list(self, c, rid, timeout=30, others=None):
        """The paths of a LIST's ITEMs, and its OK (replies to other
        requests go to others)."""
        paths = []
        while True:
            r = c.read(timeout)
            if r.id != rid:
                if others is not None:
                    others.append(r)
                continue
            if r.verb != "ITEM":
                return paths, r
            paths.append(r.fields["path"])

    def test_many_lists_not_read(self):
        """2000 locks with 2 KB paths (a LIST of 4 MB); 100 connections of
        one user each send LIST and read nothing.  The daemon's peak
        memory grows by less than 48 MiB (built whole, the LISTs took
        400 MB), another client is served meanwhile, and when the readers
        read at last each gets every lock exactly once, also those the
        table had before it grew while the LISTs were stalled."""
        d = self.deep_dir()
        names = ["%04d" % i for i in range(1500)]
        self.take(d, names)
        hwm = self.daemon.memory_kib("VmHWM")
        stalled = [self.client() for _ in range(100)]
        rids = [c.send("LIST") for c in stalled]
        other = self.client()
        self.assertCode(other.call("PING"), "OK")
        # The lock table grows (past 2048 locks) while the LISTs wait.
        more = ["%04d" % i for i in range(1500, 2600)]
        self.take(d, more)
        time.sleep(1.0)
        self.assertCode(other.call("PING"), "OK")
        if MEMORY_MEASURED:
            self.assertLess(self.daemon.memory_kib("VmHWM") - hwm, 48 << 10)
        for c, rid in list(zip(stalled, rids))[:3]:
            paths, ok = self.read_list(c, rid)
            self.assertCode(ok, "OK")
            self.assertEqual(int(ok.fields["count"]), len(paths))
            self.assertEqual(len(paths), len(set(paths)), "listed twice")
            self.assertLessEqual(
                {os.path.join(d, n) for n in names}, set(paths))
        c = self.client()
        rid = c.send("LIST")
        second = c.send("LIST")
        others = []
        paths, ok = self.read_list(c, rid, others=others)
        self.assertCode(ok, "OK")
        self.assertEqual([(r.id, r.code) for r in others],
                         [(second, "ELIMIT")])      # one LIST at a time
        self.assertEqual(sorted(paths), sorted(os.path.join(d, n)
                                               for n in names + more))
        # A stop ends the LISTs still being sent with ESHUTDOWN.
        for c in stalled[:-1]:
            c.close()
        self.daemon.proc.send_signal(signal.SIGTERM)
        c, rid = stalled[-1], rids[-1]
        paths, end = self.read_list(c, rid)
        self.assertCode(end, "ESHUTDOWN")
        self.assertLess(len(paths), len(names) + len(more))
        self.assertEqual(self.daemon.proc.wait(20), 0)

    def test_id_of_a_list_being_sent_is_in_use(self):
        """A LIST that is still being sent (its client does not read)
        owes its reply: a request with its id is refused with EID, and
        the LIST ends with its own one OK."""
        d = self.deep_dir()
        names = ["%04d" % i for i in range(300)]
        self.take(d, names)
        c = self.client()
        rid = c.send("LIST")
        time.sleep(0.5)             # the LIST stalls on c's full queue
        c.send_raw("PING %s\n" % rid)
        paths, refused, end = [], [], None
        while end is None:
            r = c.read(30)
            self.assertEqual(r.id, rid, r)
            if r.verb == "ITEM":
                paths.append(r.fields["path"])
            elif r.code == "EID":
                refused.append(r)
            else:
                end = r
        self.assertCode(end, "OK")
        self.assertEqual(int(end.fields["count"]), len(names))
        self.assertEqual(sorted(paths),
                         sorted(os.path.join(d, n) for n in names))
        self.assertEqual(len(refused), 1, refused)
        self.assertCode(c.call("PING"), "OK")


class OutputMemory(ExhaustTest):
    """nobody fills every connection conns_per_uid allows with replies it
    never reads: on each, LISTs of its locks, pipelined, so that one is
    being sent and the others are refused (ERR ELIMIT: one LIST at a time),
    a short reply to each short request, a few a loop iteration.

    Expected: the memory the daemon holds for them is what output_per_conn
    says, not a multiple of it (before, each loop iteration's few replies
    pinned a buffer of 4 KiB of their own, and the limit counted only
    their bytes: here about 40 MiB instead of 9).  The daemon's peak memory grows by less than
    conns_per_uid x (output_per_conn and an eighth, and 16 KiB for a reply
    and the request in flight) and 4 MiB for the allocator.  root is
    served meanwhile (PING, ACQUIRE, a whole LIST).  When nobody reads one
    connection at last, each request it sent has had exactly one final
    reply (OK or ELIMIT), and each LIST that went through listed every
    lock nobody may see (its own, and root's in a directory it may
    read)."""
    PER_UID = 128
    OUTPUT = 65536
    config = "output_per_conn = %d\nconns_per_uid = %d\n" % (OUTPUT,
                                                             PER_UID)
    BLOB = 200              # requests in each send

    def flood(self, conns, batch, rounds=None, until_log=None):
        """Sends batch LISTs at a time over each of conns, without
        blocking and without reading: rounds times, or (rounds None)
        until the daemon has taken no more from any of them for 1 s (and,
        with until_log, its log says until_log: a slow daemon, such as
        a sanitizer's, may take a second's rest before it pauses one).
        self.ids: for each, the ids sent (its last batch perhaps in part,
        the rest in self.pending)."""
        for c in conns:
            c.sock.setblocking(False)
        idle_since = time.monotonic()
        deadline = idle_since + 60
        while (rounds is None and (time.monotonic() - idle_since < 1.0
                                   or (until_log is not None and
                                       until_log not in
                                       self.daemon.logtext()))) \
                or (rounds is not None and rounds > 0):
            self.assertLess(time.monotonic(), deadline,
                            "the daemon kept reading a client that "
                            "does not read")
            for i, c in enumerate(conns):
                if self.pending[i]:
                    data, ids = self.pending[i], []
                else:
                    ids = list(range(self.next_id, self.next_id + batch))
                    self.next_id += batch
                    data = b"".join(b"LIST %d\n" % k for k in ids)
                try:
                    n = c.sock.send(data)
                except BlockingIOError:
                    continue
                self.ids[i] += ids
                self.pending[i] = data[n:]
                idle_since = time.monotonic()
            if rounds is None:
                time.sleep(0.05)
            else:
                rounds -= 1
        for c in conns:
            c.sock.setblocking(True)

    def test_replies_not_read(self):
        shared = self.shared()
        holder = self.nobody()
        mine = set()
        for i in range(100):
            p = os.path.join(shared, "n%03d-%s" % (i, "x" * 150))
            self.assertCode(holder.call("ACQUIRE", path=p, timeout=0),
                            "OK")
            mine.add(p)
        keeper, pid, conns = nobody_connections(self.daemon.socket,
                                                self.PER_UID - 1)
        self.clients += conns

        def reap():
            keeper.close()
            os.waitpid(pid, 0)
        self.addCleanup(reap)
        conns.append(holder)
        root = self.client()
        self.assertCode(root.call("ACQUIRE", path=self.path()), "OK")
        hwm = self.daemon.memory_kib("VmHWM")
        self.ids = [[] for _ in conns]
        self.pending = [b""] * len(conns)
        self.next_id = 100
        # A request at a time (a reply or two a loop iteration), then as
        # many as the daemon takes.
        self.flood(conns, 1, rounds=1500)
        self.flood(conns, self.BLOB,
                   until_log="not reading its replies; pausing")
        ids, pending = self.ids, self.pending
        self.assertIn("not reading its replies; pausing",
                      self.daemon.logtext())
        if MEMORY_MEASURED:
            bound = self.PER_UID * (self.OUTPUT * 9 // 8 + 16384) // 1024 \
                + 4096
            self.assertLess(self.daemon.memory_kib("VmHWM") - hwm, bound,
                            "KiB more at the daemon's peak")
        # root is served meanwhile.
        self.assertCode(root.call("PING"), "OK")
        other = self.path("other")
        self.assertCode(root.call("ACQUIRE", path=other, timeout=0), "OK")
        self.assertCode(root.call("RELEASE", path=other), "OK")
        rid = root.send("LIST")
        listed = set()
        while True:
            r = root.read(30)
            self.assertEqual(r.id, rid, r)
            if r.verb != "ITEM":
                break
            listed.add(r.fields["path"])
        self.assertCode(r, "OK")
        self.assertEqual(listed, mine | {self.path()})
        # nobody reads one connection at last (and sends the rest of its
        # last batch meanwhile).
        c = conns[-1]
        rest = threading.Thread(target=c.sock.sendall, args=(pending[-1],))
        c.sock.settimeout(30)
        rest.start()
        finals, items = {}, {}
        while len(finals) < len(ids[-1]):
            r = c.read(30)
            if r.verb == "ITEM":
                items.setdefault(r.id, []).append(r.fields["path"])
                continue
            self.assertNotIn(r.id, finals, "two final replies")
            finals[r.id] = r
        rest.join(30)
        self.assertEqual(sorted(int(k) for k in finals), ids[-1])
        lists = {k for k, r in finals.items() if r.verb == "OK"}
        self.assertTrue(lists)
        for k, r in finals.items():
            if r.verb == "OK":
                self.assertEqual(int(r.fields["count"]), len(items[k]))
                self.assertEqual(set(items[k]), mine | {self.path()})
            else:
                self.assertCode(r, "ELIMIT")
        self.assertEqual(set(items), lists)
        self.assertCode(root.call("RELEASE", path=self.path()), "OK")


class MemoryPerHold(ExhaustTest):
    """What a hold costs the daemon in memory, with a long path.

    Expected: 10,000 holds (10 connections of 1000, the default limits)
    of locks whose paths are about 3900 bytes long, over 10 directories,
    grow the daemon's resident set by less than the path's length plus
    2 KiB per hold (a hold keeps its path once; the names made from it,
    its lock file, directory and unique name, only for a step; the state
    database's cache is bounded).  Every hold is granted and shown held.
    """

    def test_rss_growth_per_long_path_hold(self):
        dirs = []
        for k in range(10):
            d = os.path.join(self.locks, "%d" % k)
            for i in range(15):
                d = os.path.join(d, chr(ord("a") + i) * 250)
            os.makedirs(d)
            dirs.append(d)
        pad = 3900 - len(dirs[0]) - 1 - 6
        paths = [os.path.join(dirs[i % 10], "%06d" % i + "x" * pad)
                 for i in range(10000)]
        plen = max(len(p) for p in paths)
        self.assertGreater(plen, 3800)
        conns = [self.client() for _ in range(10)]
        warm = self.client()
        self.assertCode(warm.call("ACQUIRE", path=self.path("warm")), "OK")
        rss = self.daemon.memory_kib()
        for k, c in enumerate(conns):
            mine = paths[k * 1000:(k + 1) * 1000]
            for lo in range(0, 1000, 250):
                c.send_raw("".join(
                    "ACQUIRE %d path=%s timeout=0\n" % (i + 2, p)
                    for i, p in enumerate(mine[lo:lo + 250], lo)))
                for _ in range(len(mine[lo:lo + 250])):
                    self.assertCode(c.read(60), "OK")
        growth = (self.daemon.memory_kib() - rss) * 1024
        for p in paths[::997]:
            r = warm.call("STATUS", path=p)
            self.assertEqual(r.fields.get("locked"), "1", r)
        if MEMORY_MEASURED and not WRAPPER:
            self.assertLess(growth / len(paths), plen + 2048,
                            "%d bytes per hold of a %d-byte path"
                            % (growth // len(paths), plen))


class SubordinateUids(ExhaustTest):
    """A user's subordinate uids (subuid(5): the uids it may run
    processes as in user namespaces of its own, a rootless container's)
    count in that user's budgets.  Here conns_per_uid is 3 and uids
    300000 to 300099 are nobody's.

    Expected: nobody's own connections and its subordinate uids'
    together get 3, the fourth of either is refused (ELIMIT naming
    conns_per_uid); a uid outside every range has 3 of its own.  Lines
    of the file that cannot be used are skipped and logged (malformed,
    a range holding uid 0, an unknown user).  Once the file changes, it
    is read again as connections come: a range added there puts its
    uids in their owner's budget.  Before, each subordinate uid had
    budgets of its own: a user with 65,536 of them had 65,537 times each
    limit.
    """
    PER_UID = 3

    def make_daemon(self):
        self.subuid = os.path.join(self.dir, "subuid")
        with open(self.subuid, "w") as f:
            f.write("# ranges\nnobody:300000:100\nnot a range\n"
                    "root:0:10\nno-such-user-here:400000:5\n")
        config = "conns_per_uid = %d\nsubordinate_uids = %s\n" % (
            self.PER_UID, self.subuid)
        return Daemon(self.dir, args=self.args, config=config,
                      preexec=self.preexec)

    def connect_as(self, uid):
        """One connection of uid's, kept until the test ends: "ok" when
        its HELLO is answered, else the daemon's first line."""
        socks, keeper, pid = connect_many_as(self.daemon.socket, 1, uid)

        def reap():
            keeper.close()
            os.waitpid(pid, 0)
        self.addCleanup(reap)
        s = socks[0]
        self.addCleanup(s.close)
        s.settimeout(10)
        try:
            s.sendall(b"HELLO 1 version=1\n")
        except OSError:
            pass                # refused and closed already
        line = s.makefile("rb").readline().decode()
        return "ok" if line.startswith("OK 1") else line

    def assertRefused(self, line):
        self.assertIn("ELIMIT", line)
        self.assertIn("conns_per_uid", line)

    def test_counted_in_the_owners_budget(self):
        self.assertEqual([self.connect_as(u) for u in
                          (NOBODY, 300000, 300099)], ["ok"] * 3)
        self.assertRefused(self.connect_as(300050))
        self.assertRefused(self.connect_as(NOBODY))
        self.assertEqual([self.connect_as(300100) for _ in range(3)],
                         ["ok"] * 3)
        self.assertRefused(self.connect_as(300100))
        log = self.daemon.logtext()
        for n in (3, 4, 5):
            self.assertIn("subuid: line %d skipped" % n, log)

    def test_read_again_when_changed(self):
        self.assertEqual([self.connect_as(NOBODY) for _ in range(3)],
                         ["ok"] * 3)
        self.assertEqual(self.connect_as(400000), "ok")
        with open(self.subuid + ".new", "w") as f:
            f.write("nobody:300000:100\nnobody:400000:1000\n")
        os.rename(self.subuid + ".new", self.subuid)
        uid, deadline = 400001, time.monotonic() + 30
        while True:
            line = self.connect_as(uid)
            if line != "ok":
                break
            self.assertLess(time.monotonic(), deadline, "uid %d's "
                            "connections still have budgets of their own"
                            % uid)
            uid += 1
            time.sleep(0.2)
        self.assertRefused(line)
        self.assertIn("read again: 2 ranges", self.daemon.logtext())


class ConnectionsPerUser(ExhaustTest):
    """Thousands of connections from one user, beyond conns_per_uid (256,
    its default).

    Expected: exactly 256 of them are accepted and served; each of the
    others gets ERR - code=ELIMIT naming conns_per_uid and is closed, so
    that the daemon's descriptors stay bounded.  Another user (nobody)
    still connects and takes a lock while they are open.  Once they
    close, the user is served again.
    """
    COUNT = 3000
    PER_UID = 256

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.COUNT + 256
        if soft < want:
            if hard != resource.RLIM_INFINITY and hard < want:
                self.skipTest("RLIMIT_NOFILE hard limit %d < %d" %
                              (hard, want))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE,
                            (soft, hard))
        super().setUp()

    def nobody_locks(self, path):
        script = textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(%r)
            f = s.makefile("rwb", buffering=0)
            f.write(b"HELLO 1 version=1\\nACQUIRE 2 path=%s timeout=0\\n")
            print(f.readline().decode().strip())
            print(f.readline().decode().strip())
        """) % (self.daemon.socket, path)

        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        p = subprocess.run([PYTHON, "-c", script], preexec_fn=demote,
                           capture_output=True, timeout=30)
        return p.stdout.decode().splitlines()

    def test_thousands_beyond_the_limit(self):
        base_fds = self.daemon.fd_count()
        accepted, refused = [], []
        for _ in range(self.COUNT):
            state, what = connect(self.daemon.socket)
            if state == "ok":
                accepted.append(what)
                self.clients.append(what)
            else:
                refused.append(what)
        self.assertEqual(len(accepted), self.PER_UID)
        self.assertEqual(len(refused), self.COUNT - self.PER_UID)
        for r in refused:
            self.assertFalse(isinstance(r, str), r)
            self.assertCode(r, "ELIMIT")
            self.assertIn("conns_per_uid", r.fields["message"])
        self.assertLess(self.daemon.fd_count(), base_fds + self.PER_UID +
                        32)
        shared = os.path.join(self.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        out = self.nobody_locks(os.path.join(shared, "n"))
        self.assertEqual(len(out), 2, out)
        self.assertTrue(out[0].startswith("OK 1 "), out)
        self.assertTrue(out[1].startswith("OK 2 token="), out)
        for c in accepted[1:]:
            self.assertCode(c.call("PING"), "OK")
        self.assertServes(accepted[0], accepted[1], accepted[2], "link")
        for c in accepted:
            c.close()
        self.clients = []
        wait_for("the user's connections are gone",
                 lambda: self.daemon.fd_count() <= base_fds + 2)
        self.assertCode(self.client().call("PING"), "OK")


class FullStateDatabase(ExhaustTest):
    """The state database on a full file system (a 1 MiB tmpfs).

    Expected: a grant that cannot be recorded is refused: the ACQUIRE gets
    ERR code=EINTERNAL with a message naming the state database, and its
    artefact is removed again (a waiter handed such a lock is refused the
    same way, and the lock is left free; so is a hold kept for another
    process, pid=).  Holds recorded earlier stay valid.  Once there is
    space again, grants work and are recorded, the database passes sqlite's
    integrity check and records exactly the holds that exist (no release
    lost, no refused grant kept), and a restarted daemon gives the holders
    their locks back (RECLAIM).
    """

    def setUp(self):
        self.mnt = None
        self.daemon = None
        d = tempfile.mkdtemp(prefix="lbexhaust.")
        mnt = os.path.join(d, "state")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700",
                            "lbexhaust", mnt], capture_output=True)
        if r.returncode != 0:
            shutil.rmtree(d)
            self.skipTest("cannot mount a tmpfs for the state database "
                          "(not permitted here): %s" %
                          r.stderr.decode().strip())
        self.mnt = mnt
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        self.addCleanup(self.unmount)
        self.filler = os.path.join(mnt, "filler")
        super().setUp()

    def unmount(self):
        if self.daemon is not None and self.daemon.proc.poll() is None:
            self.daemon.kill()
        for _ in range(50):
            if subprocess.run(["umount", self.mnt]).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("cannot unmount " + self.mnt)

    def make_daemon(self):
        d = Daemon(self.dir, config=self.config)
        d.state = os.path.join(self.mnt, "state.sqlite")
        return d

    def fill(self):
        """Fills the file system; returns how many bytes it took."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        n = 0
        try:
            for size in (65536, 4096, 512, 1):
                while True:
                    n += os.write(fd, b"\0" * size)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        return n

    def unfill(self):
        os.unlink(self.filler)

    def records(self):
        """The lock files the state database records, and its integrity."""
        db = sqlite3.connect("file:%s?mode=ro" % self.daemon.state,
                             uri=True)
        try:
            check = db.execute("PRAGMA integrity_check").fetchall()
            rows = db.execute("SELECT lock_file FROM holds").fetchall()
        finally:
            db.close()
        return check, sorted(r[0] for r in rows)

    def test_grants_refused_while_full(self):
        a, b, w = self.client(), self.client(), self.client()
        kept, handed = self.path("kept"), self.path("handed")
        token = a.call("ACQUIRE", path=kept).fields["token"]
        self.assertCode(a.call("ACQUIRE", path=handed), "OK")
        wid = w.send("ACQUIRE", path=handed, timeout=60)
        wait_for("w waits", lambda: a.call("STATUS", path=handed)
                 .fields["waiters"] == "1")
        self.assertGreater(self.fill(), 0)

        held = {kept + ".lock", handed + ".lock"}
        refusals = 0
        for i in range(20):
            p = self.path("n%d" % i)
            r = b.call("ACQUIRE", path=p, timeout=0)
            if r.code == "OK":
                held.add(p + ".lock")
                self.assertTrue(os.path.exists(p + ".lock"))
            else:
                self.assertCode(r, "EINTERNAL")
                self.assertIn("state database", r.fields["message"])
                self.assertFalse(os.path.lexists(p + ".lock"), r)
                refusals += 1
        self.assertGreater(refusals, 0, "every grant was taken as recorded")
        # A hold kept for another process (pid=): refused the same way.
        sleeper = subprocess.Popen(["sleep", "600"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        for_pid = self.path("for-pid")
        r = b.call("ACQUIRE", path=for_pid, pid=sleeper.pid, timeout=0)
        if r.code == "OK":
            held.add(for_pid + ".lock")
        else:
            self.assertCode(r, "EINTERNAL")
            self.assertFalse(os.path.lexists(for_pid + ".lock"))
        # A handoff that cannot be recorded: w is refused, and the lock is
        # left free.
        self.assertCode(a.call("RELEASE", path=handed), "OK")
        held.discard(handed + ".lock")
        r = w.wait(wid)
        if r.code == "OK":
            held.add(handed + ".lock")
        else:
            self.assertCode(r, "EINTERNAL")
            self.assertFalse(os.path.lexists(handed + ".lock"))
        # Nothing else on disk: each held link lock is its lock file and
        # its holder's unique file.
        names = os.listdir(self.locks)
        self.assertEqual(sorted(n for n in names if n.endswith(".lock")),
                         sorted(os.path.basename(h) for h in held))
        self.assertEqual(len(names), 2 * len(held), names)
        # The earlier hold is still a's.
        st = a.call("STATUS", path=kept)
        self.assertEqual((st.fields["mine"], st.fields["token"]),
                         ("1", token))

        self.unfill()
        after = self.path("after")
        self.assertCode(b.call("ACQUIRE", path=after, timeout=0), "OK")
        held.add(after + ".lock")
        if handed + ".lock" not in held:
            self.assertCode(w.call("ACQUIRE", path=handed, timeout=0), "OK")
            held.add(handed + ".lock")
        if for_pid + ".lock" not in held:
            self.assertCode(b.call("ACQUIRE", path=for_pid, pid=sleeper.pid,
                                   timeout=0), "OK")
            held.add(for_pid + ".lock")
        self.assertEqual(self.daemon.stop(), 0)
        check, rows = self.records()
        self.assertEqual(check, [("ok",)])
        self.assertEqual(rows, sorted(held))
        # The next daemon gives a its lock back.
        self.daemon.start()
        a2 = self.client()
        self.assertCode(a2.call("RECLAIM", path=kept, token=token), "OK")
        self.assertCode(a2.call("RELEASE", path=kept), "OK")

    def test_start_on_a_full_file_system(self):
        """A daemon that cannot take its new generation (a write) refuses
        to start, saying why; once there is space, the next one starts
        with a higher generation and the database is intact."""
        c = self.client()
        t1 = int(c.call("ACQUIRE", path=self.path()).fields["token"])
        self.assertEqual(self.daemon.stop(), 0)
        self.fill()
        self.daemon.start(wait=False)
        self.assertNotEqual(self.daemon.proc.wait(30), 0)
        self.assertRegex(self.daemon.logtext(),
                         r"state database .*state\.sqlite.*"
                         r"(full|No space left)")
        self.unfill()
        self.daemon.start()
        self.assertEqual(self.records()[0], [("ok",)])
        c2 = self.client()
        self.assertCode(c2.call("RECLAIM", path=self.path(), token=t1), "OK")
        self.assertCode(c2.call("RELEASE", path=self.path()), "OK")
        t2 = int(c2.call("ACQUIRE", path=self.path()).fields["token"])
        self.assertGreater(t2 >> 32, t1 >> 32)


class HoldsPerConnection(ExhaustTest):
    """holds_per_conn (4 here) bounds what one connection holds however
    its requests are combined: waits count as holds, since each may be
    granted later.

    Expected: nobody's connection queues 4 waits on locks root holds; its
    5th ACQUIRE gets ERR ELIMIT naming holds_per_conn.  When root's
    connection closes, the 4 waits are granted; the connection never holds
    more than 4 locks, and a further ACQUIRE, even of a free lock, is
    refused the same way.
    """
    config = "holds_per_conn = 4\nwaits_per_conn = 64\n"

    def test_waits_granted_later_stay_within_the_limit(self):
        d = self.shared()
        roots = [self.client(), self.client()]
        paths = [os.path.join(d, "l%d" % i) for i in range(8)]
        for i, p in enumerate(paths):
            self.assertCode(roots[i // 4].call("ACQUIRE", path=p,
                                               timeout=0), "OK")
        attacker = self.nobody()
        rids = [attacker.send("ACQUIRE", path=p, timeout=60) for p in paths]
        replies = {}
        pid = attacker.send("PING")
        while pid not in replies:
            r = attacker.read()
            replies[r.id] = r
        refused = [replies[i] for i in rids if i in replies]
        self.assertEqual(len(refused), 4, refused)
        for r in refused:
            self.assertCode(r, "ELIMIT")
            self.assertIn("holds_per_conn", r.fields["message"])
        for root in roots:
            root.close()
            self.clients.remove(root)
        granted = []
        for _ in range(4):
            r = attacker.read(20)
            self.assertCode(r, "OK")
            granted.append(r)
        extra = attacker.call("ACQUIRE", path=os.path.join(d, "free"),
                              timeout=0)
        self.assertCode(extra, "ELIMIT")
        self.assertIn("holds_per_conn", extra.fields["message"])
        # root's locks that nobody did not wait for end a turn at a time
        # after its connection closed.
        waited = [p for p, i in zip(paths, rids) if i not in replies]
        wait_for("root's other locks released", lambda: not any(
            os.path.lexists(p + ".lock") for p in paths
            if p not in waited))
        held = [p for p in paths if os.path.lexists(p + ".lock")]
        self.assertEqual(len(held), 4, held)
        with self.assertRaises((TimeoutError, socket.timeout)):
            attacker.read(0.5)      # nothing more is granted


class LocksPerUser(ExhaustTest):
    """locks_per_uid (6 here) bounds the locks one user holds (kept holds
    too) and waits for over all its connections.

    Expected: nobody holds 4 locks on one connection, and 1 hold and 1
    wait on another; its next ACQUIRE, on any connection, gets ERR
    ELIMIT naming locks_per_uid; a hold kept for its process (pid=)
    counts too, after its connection closed.  Root is not affected.
    """
    config = "locks_per_uid = 6\nholds_per_conn = 4\n"

    def test_holds_and_waits_of_one_user(self):
        d = self.shared()
        root = self.client()
        busy = os.path.join(d, "busy")
        self.assertCode(root.call("ACQUIRE", path=busy), "OK")
        a, b, c = self.nobody(), self.nobody(), self.nobody()
        for i in range(4):
            self.assertCode(a.call("ACQUIRE", path=os.path.join(
                d, "a%d" % i)), "OK")
        self.assertCode(b.call("ACQUIRE", path=os.path.join(d, "b0")), "OK")
        waiting = b.send("ACQUIRE", path=busy, timeout=60)
        wait_for("nobody waits", lambda: root.call(
            "STATUS", path=busy).fields["waiters"] == "1")
        for conn in (b, c):
            r = conn.call("ACQUIRE", path=os.path.join(d, "more"))
            self.assertCode(r, "ELIMIT")
            self.assertIn("locks_per_uid", r.fields["message"])
        others = []
        self.assertCode(b.wait(b.send("CANCEL", target=waiting),
                               others=others), "OK")
        if not others:
            others.append(b.read())
        self.assertCode(others[0], "ECANCELED")
        kept = c.call("ACQUIRE", path=os.path.join(d, "kept"), pid=c.pid)
        self.assertCode(kept, "OK")
        c.sock.close()      # the connection; its process stays
        wait_for("the daemon has closed the connection", lambda:
                 "pid %d uid %d: closed" % (c.pid, NOBODY) in
                 self.daemon.logtext())
        self.assertEqual(root.call("STATUS", path=os.path.join(
            d, "kept")).fields["holder_pid"], str(c.pid))
        r = b.call("ACQUIRE", path=os.path.join(d, "more"))
        self.assertCode(r, "ELIMIT")
        self.assertIn("locks_per_uid", r.fields["message"])
        self.assertCode(root.call("ACQUIRE", path=os.path.join(d, "r")),
                        "OK")


class LingeringPerUser(ExhaustTest):
    """locks_per_uid (2 here) counts the holds of the previous run that
    linger past the grace period for the user's live processes.

    Expected: nobody's process holds 2 locks; the daemon is killed and
    started again; once the grace period is over the holds linger (the
    process runs); another ACQUIRE of nobody's gets ERR ELIMIT naming
    locks_per_uid (else every restart would let the user hold
    locks_per_uid more, for as long as its processes run).
    """
    config = "locks_per_uid = 2\ngrace = 1\n"

    def test_lingering_holds_count(self):
        d = self.shared()
        a = self.nobody()
        x, y = os.path.join(d, "x"), os.path.join(d, "y")
        self.assertCode(a.call("ACQUIRE", path=x), "OK")
        self.assertCode(a.call("ACQUIRE", path=y), "OK")
        self.daemon.kill()
        self.daemon.start()
        wait_for("the holds linger", lambda: self.daemon.logtext().count(
            "not reclaimed within the grace") == 2)
        b = self.nobody()
        r = b.call("ACQUIRE", path=os.path.join(d, "more"))
        self.assertCode(r, "ELIMIT")
        self.assertIn("locks_per_uid", r.fields["message"])
        self.assertCode(self.client().call("ACQUIRE", path=x, timeout=0),
                        "EALREADY")


class ForeignWaits(ExhaustTest):
    """Many waits on locks held outside the broker (artefacts made
    directly, not through the daemon), all in one directory, with the
    default settings.

    Expected: the daemon's CPU time over 2 s of such waiting stays small
    (a work bound, generous: an event storm or a busy loop uses the whole
    2 s); waiters still get their locks once the outside holder removes
    the artefacts.
    """
    COUNT = 8192

    def wait_on_foreign(self, count, per_conn=1024):
        d = self.shared()
        paths = [os.path.join(d, "f%d" % i) for i in range(count)]
        for p in paths:
            with open(p + ".lock", "w"):
                pass
        conns = []
        for k in range(0, count, per_conn):
            c = self.nobody(timeout=60)
            for p in paths[k:k + per_conn]:
                c.send("ACQUIRE", path=p, timeout=3600)
            self.assertCode(c.wait(c.send("PING"), 60), "OK")
            conns.append(c)
        return paths, conns

    def test_cpu_bounded_and_waiters_served(self):
        paths, conns = self.wait_on_foreign(self.COUNT)
        time.sleep(0.5)
        before = self.daemon.cpu_seconds()
        time.sleep(2)
        used = self.daemon.cpu_seconds() - before
        if os.environ.get("LB_SHOW_CPU"):
            print("daemon CPU in 2 s: %.2f s" % used, file=sys.stderr)
        if CPU_MEASURED:
            self.assertLess(used, 0.5, "the daemon used %.2f s of CPU in "
                            "2 s with %d waits on locks held outside" %
                            (used, self.COUNT))
        for i in (0, 1023):
            os.unlink(paths[i] + ".lock")
        for i in (0, 1023):
            r = conns[0].read(30)
            self.assertCode(r, "OK")
            self.assertIn(r.id, ("2", "1025"))
        self.assertTrue(os.path.exists(paths[0] + ".lock"))


class ForeignWaitsWatched(ForeignWaits):
    """The same with the poll an hour apart: only the directory's watch
    can tell a waiter that the artefact is gone.

    Expected: the waiter whose artefact is removed gets its lock at once;
    the others keep waiting.
    """
    COUNT = 256
    config = "foreign_poll = 3600\n"

    def test_cpu_bounded_and_waiters_served(self):
        paths, conns = self.wait_on_foreign(self.COUNT)
        os.unlink(paths[7] + ".lock")
        r = conns[0].read(10)
        self.assertEqual((r.verb, r.id), ("OK", "9"), r)
        with self.assertRaises((TimeoutError, socket.timeout)):
            conns[0].read(0.5)


class ForeignWaitsPolled(ExhaustTest):
    """The same with no watches at all (watches = 0): the documented
    fallback is polling, never a failed wait.

    Expected: the waiter gets the lock once the artefact is gone, by the
    poll (foreign_poll = 0.2 s), and the daemon has no inotify watch.
    """
    config = "watches = 0\nforeign_poll = 0.2\n"

    def test_poll_serves_waiter(self):
        d = self.shared()
        base = inotify_watches(self.daemon.proc.pid)
        p = os.path.join(d, "f")
        with open(p + ".lock", "w"):
            pass
        c = self.nobody()
        rid = c.send("ACQUIRE", path=p, timeout=60)
        self.assertCode(c.wait(c.send("PING")), "OK")
        self.assertEqual(inotify_watches(self.daemon.proc.pid), base)
        os.unlink(p + ".lock")
        self.assertCode(c.wait(rid, 10), "OK")


class WatchesPerUser(ExhaustTest):
    """watches_per_uid (3 here): nobody waits on locks held outside in 10
    directories.

    Expected: the daemon watches at most 3 directories for nobody (its
    inotify watches, counted in /proc); root, waiting in 2 more, gets its
    own watches; every waiter, watched or polled, gets its lock once the
    artefact is gone.
    """
    config = "watches_per_uid = 3\nforeign_poll = 0.3\n"

    def test_watches_bounded_waits_served(self):
        base = inotify_watches(self.daemon.proc.pid)
        nob = self.nobody()
        paths = []
        for i in range(10):
            p = os.path.join(self.shared("d%d" % i), "f")
            with open(p + ".lock", "w"):
                pass
            paths.append((nob, nob.send("ACQUIRE", path=p, timeout=60), p))
        self.assertCode(nob.wait(nob.send("PING"), others=[]), "OK")
        self.assertLessEqual(inotify_watches(self.daemon.proc.pid),
                             base + 3)
        root = self.client()
        for i in range(2):
            p = os.path.join(self.shared("r%d" % i), "f")
            with open(p + ".lock", "w"):
                pass
            paths.append((root, root.send("ACQUIRE", path=p, timeout=60),
                          p))
        self.assertCode(root.wait(root.send("PING")), "OK")
        n = inotify_watches(self.daemon.proc.pid)
        self.assertLessEqual(n, base + 5)
        self.assertGreaterEqual(n, base + 2)
        for c, rid, p in paths:
            os.unlink(p + ".lock")
        for c in (nob, root):
            want = {rid for cc, rid, p in paths if cc is c}
            while want:
                r = c.read(10)
                self.assertCode(r, "OK")
                want.discard(r.id)


class WatchesInAll(ExhaustTest):
    """watches (4 here) bounds the directories watched in all: nobody
    waits in 10 directories.

    Expected: at most 4 inotify watches; every waiter gets its lock once
    the artefact is gone (the others by the poll).
    """
    config = "watches = 4\nforeign_poll = 0.3\n"

    def test_total_bounded_waits_served(self):
        base = inotify_watches(self.daemon.proc.pid)
        nob = self.nobody()
        waits = {}
        for i in range(10):
            p = os.path.join(self.shared("d%d" % i), "f")
            with open(p + ".lock", "w"):
                pass
            waits[nob.send("ACQUIRE", path=p, timeout=60)] = p
        self.assertCode(nob.wait(nob.send("PING"), others=[]), "OK")
        self.assertEqual(inotify_watches(self.daemon.proc.pid), base + 4)
        for p in waits.values():
            os.unlink(p + ".lock")
        while waits:
            r = nob.read(10)
            self.assertCode(r, "OK")
            del waits[r.id]


class SqliteWrites(ExhaustTest):
    """nobody waits on 2000 sqlite locks held outside the broker (rows of
    a lock database nobody may write), while the database is written
    without pause (each write may free any of them).

    Expected: root is still answered (a generous bound: a stalled daemon
    answers nothing within 10 s); a waiter gets its lock once its row is
    gone.
    """
    N = 2000

    def test_root_answered_waiter_served(self):
        d = self.shared()
        db = os.path.join(d, ".lockbroker.sqlite")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE locks (lock_file varchar(32), "
                    "unique_name varchar(32))")
        con.execute("CREATE TABLE other (x)")
        con.executemany("INSERT INTO locks VALUES (?, ?)", [
            (os.path.join(d, "f%d.lock" % i), "outsider")
            for i in range(self.N)])
        con.commit()
        os.chown(db, NOBODY, NOBODY)
        waiters = []
        for k in range(0, self.N, 1000):
            c = self.nobody(timeout=60)
            for i in range(k, k + 1000):
                c.send("ACQUIRE", path=os.path.join(d, "f%d" % i),
                       method="sqlite", timeout=3600)
            self.assertCode(c.wait(c.send("PING"), 60), "OK")
            waiters.append(c)
        stop = threading.Event()

        def write():
            w = sqlite3.connect(db, timeout=10)
            while not stop.is_set():
                w.execute("INSERT INTO other VALUES (1)")
                w.commit()
                time.sleep(0.001)
            w.close()
        t = threading.Thread(target=write)
        t.start()
        try:
            root = self.client()
            for _ in range(20):
                self.assertCode(root.call("PING"), "OK")
                time.sleep(0.05)
        finally:
            stop.set()
            t.join()
        con.execute("DELETE FROM locks WHERE lock_file = ?",
                    (os.path.join(d, "f7.lock"),))
        con.commit()
        r = waiters[0].read(30)
        self.assertEqual((r.verb, r.id), ("OK", "9"), r)


def nobody_sqlite(db, sql):
    """A process of user nobody that opens lock database db (read-only
    when it may not write it), runs sql (which begins a transaction and
    leaves it open), prints a line and keeps the transaction until its
    standard input closes."""
    script = textwrap.dedent("""\
        import os, sqlite3, sys
        db = sys.argv[1]
        uri = "file:%s%s" % (db, "" if os.access(db, os.W_OK) else "?mode=ro")
        con = sqlite3.connect(uri, uri=True, isolation_level=None)
        for stmt in sys.argv[2].split(";"):
            con.execute(stmt).fetchall()
        print("ready", flush=True)
        sys.stdin.read()
        con.rollback()
        """)

    def demote():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    p = subprocess.Popen([PYTHON, "-c", script, db, sql],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         preexec_fn=demote)
    line = p.stdout.readline()
    if line != b"ready\n":
        p.kill()
        p.wait()
        raise AssertionError("nobody could not begin %r on %s" % (sql, db))
    return p


def let_go(p):
    """Ends nobody_sqlite's process p, and its transaction with it."""
    p.stdin.close()
    p.wait()
    p.stdout.close()


class SqliteBusy(ExhaustTest):
    """A lock database kept busy by another user: nobody holds a write
    lock (BEGIN EXCLUSIVE) on the lock database of its own directory and
    pipelines requests about it; or nobody holds a read transaction on a
    lock database of root's that it may read.

    Expected: the daemon never waits on the database in its loop long
    enough to stall: root's PING on another connection is answered (a
    generous bound: the daemon waiting on each of those requests in turn
    answers nothing for many seconds); a RELEASE that meets the busy
    database is not lost: the lock stays held (no waiter is granted) until
    the row can be removed (or handed to the waiter, another process, who
    then gets it, even though the holder's connection closed meanwhile),
    and once released the row is gone and the lock is free.
    """

    def test_write_locked_database_does_not_stall(self):
        d = os.path.join(self.dir, "nobodys")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        paths = [os.path.join(d, "f%d" % i) for i in range(10)]
        n = self.nobody()
        for p in paths:
            self.assertCode(n.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "OK")
        holder = nobody_sqlite(os.path.join(d, ".lockbroker.sqlite"),
                               "BEGIN EXCLUSIVE")
        try:
            conns = [self.nobody(timeout=120) for _ in range(20)]
            for c in conns:
                c.send_raw("".join("STATUS %d path=%s-free method=sqlite\n"
                                   "BREAK %d path=%s method=sqlite\n"
                                   % (2 * i + 2, p, 2 * i + 3, p)
                                   for i, p in enumerate(paths[:5])))
            time.sleep(0.2)
            root = self.client()
            start = time.monotonic()
            self.assertCode(root.call("PING", _wait=60), "OK")
            self.assertLess(time.monotonic() - start, 2.0,
                            "root's PING waited on nobody's busy database")
        finally:
            let_go(holder)
        for c in conns:
            for _ in range(10):
                c.read(120)

    def test_release_meeting_a_reader_is_not_lost(self):
        a = self.client()
        p = self.path("r")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite",
                               timeout=0), "OK")
        self.assertEqual(os.stat(db).st_mode & 0o777, 0o644)
        reader = nobody_sqlite(db, "BEGIN; SELECT * FROM locks")
        try:
            rid = a.send("RELEASE", path=p, method="sqlite")
            time.sleep(1.0)
            early = []
            try:
                early.append(a.read(0.1))
            except (TimeoutError, socket.timeout):
                pass
            for r in early:
                self.assertEqual((r.id, r.verb), (rid, "OK"), r)
            c = self.client()
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            c.close()
        finally:
            let_go(reader)
        if not early:
            self.assertCode(a.wait(rid, 10), "OK")

        def released():
            r = a.call("STATUS", path=p, method="sqlite")
            return r.verb == "OK" and r.fields["locked"] == "0"
        wait_for("the lock is free", released)
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        rows = con.execute("SELECT * FROM locks").fetchall()
        con.close()
        self.assertEqual(rows, [])

    def test_handoff_meeting_a_reader_is_not_lost(self):
        a = self.client()
        b = NobodyClient(self.daemon.socket, uid=0)     # another process
        self.clients.append(b)
        p = self.path("h")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        self.assertCode(a.call("ACQUIRE", path=p, method="sqlite",
                               timeout=0), "OK")
        wid = b.send("ACQUIRE", path=p, method="sqlite", timeout=60)
        wait_for("b waits", lambda: a.call(
            "STATUS", path=p, method="sqlite").fields["waiters"] == "1")
        c = self.client()
        reader = nobody_sqlite(db, "BEGIN; SELECT * FROM locks")
        try:
            rid = a.send("RELEASE", path=p, method="sqlite")
            time.sleep(0.2)
            start = time.monotonic()
            self.assertCode(c.call("PING", _wait=30), "OK")
            self.assertLess(time.monotonic() - start, 2.0,
                            "the handoff waited on the busy database")
            time.sleep(1.0)
            early = []
            try:
                early.append(a.read(0.1))
            except (TimeoutError, socket.timeout):
                pass
            for r in early:
                self.assertEqual((r.id, r.verb), (rid, "OK"), r)
            with self.assertRaises((TimeoutError, socket.timeout),
                                   msg="the waiter was granted while the "
                                   "database was busy"):
                b.read(0.1)
            a.close()           # and the holder goes away meanwhile
            self.clients.remove(a)
        finally:
            let_go(reader)
        self.assertCode(b.wait(wid, 10), "OK")
        r = c.call("STATUS", path=p, method="sqlite")
        self.assertEqual((r.fields["locked"], r.fields["holder_pid"]),
                         ("1", str(b.pid)), r)
        self.assertCode(b.call("RELEASE", path=p, method="sqlite"), "OK")
        self.assertEqual(c.call("STATUS", path=p, method="sqlite")
                         .fields["locked"], "0")
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        rows = con.execute("SELECT * FROM locks").fetchall()
        con.close()
        self.assertEqual(rows, [])

def list_items(c):
    """The ITEM lines of a LIST on c, as replies."""
    rid = c.send("LIST")
    items = []
    while True:
        r = c.wait(rid)
        if r.verb != "ITEM":
            assert r.verb == "OK", r
            return items
        items.append(r)


class SqliteBusyRestart(ExhaustTest):
    """A RELEASE of a sqlite lock meets its database busy (nobody keeps a
    read transaction open on it), is answered OK and leaves the hold
    releasing; the daemon then restarts (stopped, or killed) while the
    database is still busy.  The grace period is long, so that an orphan
    of the previous run would stay held for the whole test.

    Expected: the restarted daemon never takes the hold for its former
    holder's again, alive as the holder is: STATUS (with pid= for a kept
    hold) says mine=0, STATUS and LIST show the lock held only as
    releasing=1, the former holder's ACQUIRE is not granted the old hold
    back; and once the database is free, the row is removed and another
    client gets the lock, long before the grace period ends.
    """

    config = "grace = 600\n"

    def releasing_hold(self, kept_pid=None):
        """Takes lock "k" (sqlite; kept for kept_pid, else the test
        connection's), keeps its database busy and releases it: (path,
        token, the reader to let go)."""
        p = self.path("k")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        pid = {} if kept_pid is None else {"pid": kept_pid}
        a = self.client()
        r = a.call("ACQUIRE", path=p, method="sqlite", timeout=0, **pid)
        self.assertCode(r, "OK")
        reader = nobody_sqlite(db, "BEGIN; SELECT * FROM locks")
        self.assertCode(a.call("RELEASE", path=p, method="sqlite", **pid),
                        "OK")
        s = a.call("STATUS", path=p, method="sqlite", **pid)
        self.assertEqual((s.fields["locked"], s.fields["mine"],
                          s.fields.get("releasing")), ("1", "0", "1"), s)
        return p, r.fields["token"], reader

    def assertNotHeldBy(self, c, p, pid, kept):
        """Neither STATUS (c's, or with pid= for a kept hold) nor LIST
        shows p held by pid, but as releasing at most."""
        s = c.call("STATUS", path=p, method="sqlite",
                   **({"pid": pid} if kept else {}))
        self.assertEqual(s.verb, "OK", s)
        self.assertEqual(s.fields["mine"], "0", s)
        items = [it for it in list_items(c) if it.fields["path"] == p]
        for r in [s] + items:
            if r.fields.get("holder_pid") == str(pid):
                self.assertEqual(r.fields.get("releasing"), "1", r)

    def assertReleased(self, p, reader, kept_pid):
        """Once reader lets go, another client gets p; no row is left but
        the new holder's."""
        let_go(reader)
        b = self.nobody(uid=0)          # another process
        self.assertCode(b.call("ACQUIRE", path=p, method="sqlite",
                               timeout=30, _wait=40), "OK")
        c = self.client()
        self.assertNotHeldBy(c, p, kept_pid or os.getpid(), kept_pid)
        self.assertCode(b.call("RELEASE", path=p, method="sqlite"), "OK")
        self.assertEqual(c.call("STATUS", path=p, method="sqlite")
                         .fields["locked"], "0")
        db = os.path.join(self.locks, ".lockbroker.sqlite")
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        rows = con.execute("SELECT * FROM locks").fetchall()
        con.close()
        self.assertEqual(rows, [])

    def test_kept_hold_released_before_a_restart(self):
        holder = subprocess.Popen(["sleep", "600"])
        reader = None
        try:
            p, token, reader = self.releasing_hold(kept_pid=holder.pid)
            self.assertEqual(self.daemon.stop(), 0)
            self.daemon.start()
            c = self.client()
            self.assertNotHeldBy(c, p, holder.pid, True)
            self.assertCode(c.call("RELEASE", path=p, method="sqlite",
                                   pid=holder.pid), "ENOTMINE")
            self.assertReleased(p, reader, holder.pid)
            reader = None
        finally:
            if reader is not None:
                let_go(reader)
            holder.kill()
            holder.wait()

    def test_connection_hold_released_before_a_kill(self):
        reader = None
        try:
            p, token, reader = self.releasing_hold()
            self.daemon.kill()
            self.daemon.start()
            c = self.client()   # the former holder's process and thread
            self.assertNotHeldBy(c, p, os.getpid(), False)
            self.assertCode(c.call("RECLAIM", path=p, method="sqlite",
                                   token=token), "ENOENT")
            self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                                   timeout=0), "EALREADY")
            self.assertNotHeldBy(c, p, os.getpid(), False)
            self.assertReleased(p, reader, None)
            reader = None
        finally:
            if reader is not None:
                let_go(reader)


    def test_release_of_a_database_written_at_the_restart(self):
        """The same when the database is write-locked at the restart
        (BEGIN EXCLUSIVE, in nobody's directory): the restarted daemon
        cannot even read whose the row is; it still releases the hold
        once it can."""
        d = os.path.join(self.dir, "nobodys")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        p = os.path.join(d, "k")
        n = self.nobody()
        self.assertCode(n.call("ACQUIRE", path=p, method="sqlite",
                               timeout=0), "OK")
        writer = nobody_sqlite(os.path.join(d, ".lockbroker.sqlite"),
                               "BEGIN EXCLUSIVE")
        try:
            self.assertCode(n.call("RELEASE", path=p, method="sqlite"),
                            "OK")
            self.daemon.kill()
            self.daemon.start()
            c = self.nobody()
            s = c.call("STATUS", path=p, method="sqlite")
            self.assertEqual((s.verb, s.fields.get("locked"),
                              s.fields.get("releasing")),
                             ("OK", "1", "1"), s)
        finally:
            let_go(writer)
        self.assertCode(c.call("ACQUIRE", path=p, method="sqlite",
                               timeout=30, _wait=40), "OK")
        self.assertCode(c.call("RELEASE", path=p, method="sqlite"), "OK")
        self.assertEqual(c.call("STATUS", path=p, method="sqlite")
                         .fields["locked"], "0")


def sqlite_rows(db):
    """The rows of lock database db (read-only; waits for a writer), or
    None when they cannot be read now: a read-only connection that finds
    a journal to roll back first (a writer's transaction ended without
    its commit) may not do it ("attempt to write a readonly database"),
    and the next writer's connection will.  A caller that waits for rows
    (wait_for) looks again; one left so for good still times out."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute("SELECT * FROM locks").fetchall()
    except sqlite3.OperationalError as e:
        if "readonly" not in str(e):
            raise
        return None
    finally:
        con.close()


class SqliteBusyReleasing(ExhaustTest):
    """Many releasing holds: nobody holds N sqlite locks in its own
    directory, keeps that lock database busy (a read transaction) and
    RELEASEs them all, so that every hold is left releasing; root's own
    hold, in another database that nobody keeps busy for a while, is left
    releasing too.

    Expected: the daemon's CPU time over 2 s of this stays small (a work
    bound, generous: retrying each hold on its own, opening the database
    for each, uses most of the 2 s); root's PING, HELLO and ACQUIRE on
    another path are answered (a generous bound, 10 s); root's hold ends
    once its database is free, while nobody's is still busy; no releasing
    hold is ever shown free, nor granted to another, while its row is
    there; once nobody's database is free, every hold ends: the rows are
    gone and each lock can be taken again.
    """
    N = 2000

    def test_bounded_fair_and_none_lost(self):
        d = os.path.join(self.dir, "nob")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        db = os.path.join(d, ".lockbroker.sqlite")
        paths = [os.path.join(d, "l%d" % i) for i in range(self.N)]
        conns = [self.nobody(timeout=120) for _ in range(0, self.N, 1000)]

        def pipeline(verb, extra=""):
            for k, c in enumerate(conns):
                c.send_raw("".join("%s %d path=%s method=sqlite%s\n" %
                                   (verb, i + 10, paths[i], extra)
                                   for i in range(k * 1000, min(
                                       self.N, k * 1000 + 1000))))
            deadline = time.monotonic() + 60
            try:
                for k, c in enumerate(conns):
                    for _ in range(min(self.N, k * 1000 + 1000) - k * 1000):
                        self.assertCode(c.read(max(0.1, deadline -
                                                   time.monotonic())), "OK")
            except (TimeoutError, socket.timeout):
                self.fail("nobody's %d %ss were not all answered within "
                          "60 s" % (self.N, verb))
        pipeline("ACQUIRE", " timeout=0")
        self.assertEqual(len(sqlite_rows(db)), self.N)
        root = self.client(timeout=60)
        rp = self.path("root")
        rdb = os.path.join(self.locks, ".lockbroker.sqlite")
        self.assertCode(root.call("ACQUIRE", path=rp, method="sqlite",
                                  timeout=0), "OK")
        reader = nobody_sqlite(db, "BEGIN; SELECT * FROM locks")
        rreader = nobody_sqlite(rdb, "BEGIN; SELECT * FROM locks")
        try:
            pipeline("RELEASE")
            self.assertCode(root.call("RELEASE", path=rp, method="sqlite"),
                            "OK")
            time.sleep(1)
            # Releasing: still held, to everyone.
            for p in (paths[0], paths[-1], rp):
                r = root.call("STATUS", path=p, method="sqlite", _wait=60)
                self.assertEqual(r.fields.get("locked"), "1", r)
                self.assertCode(root.call("ACQUIRE", path=p,
                                          method="sqlite", timeout=0,
                                          _wait=60), "EALREADY")
            before = self.daemon.cpu_seconds()
            time.sleep(2)
            used = self.daemon.cpu_seconds() - before
            if os.environ.get("LB_SHOW_CPU"):
                print("daemon CPU in 2 s: %.2f s" % used, file=sys.stderr)
            if CPU_MEASURED:
                self.assertLess(used, 0.5, "the daemon used %.2f s of CPU "
                                "in 2 s with %d holds releasing on a busy "
                                "database" % (used, self.N))
            start = time.monotonic()
            other = self.client(timeout=60)     # HELLO
            self.assertCode(other.call("PING", _wait=60), "OK")
            os.mkdir(os.path.join(self.dir, "free"))
            op = os.path.join(self.dir, "free", "other")
            self.assertCode(other.call("ACQUIRE", path=op, method="sqlite",
                                       timeout=0, _wait=60), "OK")
            self.assertLess(time.monotonic() - start, 10.0,
                            "root waited on nobody's releasing holds")
            self.assertCode(other.call("RELEASE", path=op,
                                       method="sqlite"), "OK")
            let_go(rreader)
            rreader = None
            wait_for("root's releasing hold ends", lambda: root.call(
                "STATUS", path=rp, method="sqlite", _wait=60)
                .fields.get("locked") == "0", 10)
            self.assertEqual(sqlite_rows(rdb), [])
            # nobody's database is still busy: nothing of it ended.
            self.assertEqual(root.call("STATUS", path=paths[1],
                                       method="sqlite").fields["locked"],
                             "1")
        finally:
            if rreader is not None:
                let_go(rreader)
            let_go(reader)
        wait_for("every releasing hold ends",
                 lambda: sqlite_rows(db) == [], 120)
        for p in paths[:3] + paths[-3:]:
            self.assertEqual(root.call("STATUS", path=p, method="sqlite")
                             .fields["locked"], "0")
            self.assertCode(conns[0].call("ACQUIRE", path=p,
                                          method="sqlite", timeout=0), "OK")
            self.assertCode(conns[0].call("RELEASE", path=p,
                                          method="sqlite"), "OK")
        for p in paths[::self.N // 20]:
            self.assertEqual(root.call("STATUS", path=p, method="sqlite")
                             .fields["locked"], "0")


class Turns(ExhaustTest):
    """nobody pipelines thousands of requests over several connections
    (the daemon serves each connection a turn at a time).

    Expected: every request is answered, once, and as it should be (a
    lock is released only after it was granted, so the requests were
    handled in order); root is answered meanwhile; nothing is lost when a
    connection is throttled in the middle of its buffered requests.
    """
    N = 5000

    def test_pipelined_floods_are_answered_in_order(self):
        d = self.shared()
        # The floods are sent by threads while this one reads the
        # replies: a sender that waited for all of its flood to be taken
        # before reading would wait on the daemon's back-pressure (it
        # stops reading a connection whose replies are not read), which
        # only the sockets' buffers would then keep from a standstill.
        # The timeouts bound a hang (a slow sanitizer build on a loaded
        # machine takes minutes), they judge no speed.
        floods = [self.nobody(timeout=600) for _ in range(4)]
        senders = []
        sent = []
        for k, c in enumerate(floods):
            lines = []
            for i in range(self.N):
                p = os.path.join(d, "t%d-%d" % (k, i % 50))
                if (i // 50) % 2 == 0:
                    lines.append("ACQUIRE %d path=%s timeout=0\n" %
                                 (i + 2, p))
                else:
                    lines.append("RELEASE %d path=%s\n" % (i + 2, p))

            def send(c=c, data="".join(lines)):
                c.send_raw(data)
                sent.append(c)

            senders.append(threading.Thread(target=send, daemon=True))
            senders[-1].start()
        root = self.client()
        self.assertCode(root.call("PING", _wait=600), "OK")
        for c in floods:
            ids = set()
            for i in range(self.N):
                r = c.read(600)
                self.assertCode(r, "OK")
                ids.add(int(r.id))
            self.assertEqual(ids, set(range(2, self.N + 2)))
        for t in senders:
            t.join(600)
        self.assertEqual(len(sent), len(floods))


def replies_so_far(c):
    """How many reply lines c's connection has been sent up to now
    (read without waiting; they stay in c's buffer)."""
    timeout = c.sock.gettimeout()
    c.sock.setblocking(False)
    try:
        while True:
            try:
                chunk = c.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                break
            c.buf += chunk
    finally:
        c.sock.settimeout(timeout)
    return c.buf.count(b"\n")


class UserTurns(ExhaustTest):
    """One user's turn in a loop iteration is bounded over all its
    connections: when its requests have taken their time (turn_us, 50
    microseconds by default), not even one more request of any of its
    connections is handled in that iteration.  nobody's requests here
    are slow on purpose: each STATUS meets nobody's own lock database
    write-locked (BEGIN EXCLUSIVE) and waits for it (about 2 ms), so each
    takes a turn of its own.

    Expected: root's PING, sent 20 ms after nobody's 60 connections each
    queued one such request, is answered before 40 of them are.  Before,
    every connection of a user had at least one request handled in each
    iteration, whatever its user's turn: 60 requests (120 ms) before
    root's.
    """

    def busy(self):
        d = os.path.join(self.dir, "nobodys")
        os.mkdir(d)
        os.chown(d, NOBODY, NOBODY)
        n = self.nobody()
        self.assertCode(n.call("ACQUIRE", path=os.path.join(d, "held"),
                               method="sqlite", timeout=0), "OK")
        holder = nobody_sqlite(os.path.join(d, ".lockbroker.sqlite"),
                               "BEGIN EXCLUSIVE")
        self.addCleanup(let_go, holder)
        return d

    def status(self, d, i):
        return "STATUS %d path=%s/f%d method=sqlite\n" % (i + 2, d, i)

    def answered_before_root(self, conns):
        root = self.client()
        self.assertCode(root.call("PING"), "OK")
        time.sleep(0.02)
        for c in conns:
            c.send_raw(c.flood)
        time.sleep(0.02)
        self.assertCode(root.call("PING", _wait=60), "OK")
        before = sum(replies_so_far(c) for c in conns)
        for c in conns:
            for _ in range(c.expect):
                c.read(120)
        return before

    def test_many_connections(self):
        d = self.busy()
        conns = [self.nobody(timeout=120) for _ in range(60)]
        for k, c in enumerate(conns):
            c.flood = self.status(d, k)
            c.expect = 1
        before = self.answered_before_root(conns)
        self.assertLess(before, 40, "nobody's requests answered before "
                        "root's PING")


class TurnSetting(ExhaustTest):
    """turn_us = 0: a loop iteration handles one request of a user (over
    all its connections), then the others' requests.  nobody pipelines 50
    ACQUIREs on one connection and root sends one ACQUIRE, both while the
    daemon is stopped (SIGSTOP), so that it finds both at once when it
    goes on.

    Expected: at most one of nobody's grants comes before root's (fencing
    tokens grow with each grant).  A turn_us beyond its range (0 to
    100000 microseconds) is refused at start, naming the key and the
    range.

    Closed connections' holds are released a turn at a time too (one a
    turn here), and the closed connections take turns: nobody's
    connection closes holding 3000 locks, then root's closes holding one,
    which root waits for on a third connection, with nobody's first lock
    (released last).  Expected: root's lock is handed over first, without
    waiting for all of nobody's holds to be released.

    The same for holds kept for a process (ACQUIRE pid=) when it exits:
    nobody keeps 3000 locks for one of its processes and one lock for
    another; root waits for that one and for the first of the 3000
    (released last).  The first process is killed, and once its holds
    have begun to be released, the second.  Expected: root's waits are
    granted the second process's lock first (before, the exit of a
    process ended all of its holds in one go).
    """
    config = "turn_us = 0\nholds_per_conn = 4000\n"
    N = 50

    def test_one_request_a_turn(self):
        d = self.shared()
        n = self.nobody(timeout=60)
        root = self.client()
        flood = "".join("ACQUIRE %d path=%s/n%d timeout=0\n" %
                        (i + 2, d, i) for i in range(self.N))
        pid = self.daemon.proc.pid
        self.daemon.pause()
        try:
            n.send_raw(flood)
            rid = root.send("ACQUIRE", path=self.path("r"), timeout=0)
        finally:
            os.kill(pid, signal.SIGCONT)
        r = root.wait(rid, 60)
        self.assertCode(r, "OK")
        mine = int(r.fields["token"])
        theirs = []
        for _ in range(self.N):
            r = n.read(60)
            self.assertCode(r, "OK")
            theirs.append(int(r.fields["token"]))
        before = sorted(t for t in theirs if t < mine)
        self.assertLessEqual(len(before), 1, "nobody's grants before "
                             "root's: %d of %d" % (len(before), self.N))

    def test_closed_connections_take_turns(self):
        d = self.shared()
        a = self.nobody(timeout=60)
        paths = [os.path.join(d, "a%d" % i) for i in range(3000)]
        a.send_raw("".join("ACQUIRE %d path=%s timeout=0\n" % (i + 2, p)
                           for i, p in enumerate(paths)))
        for _ in paths:
            self.assertCode(a.read(60), "OK")
        b = self.client()
        x = self.path("x")
        self.assertCode(b.call("ACQUIRE", path=x, timeout=0), "OK")
        w = self.client()
        last = w.send("ACQUIRE", path=paths[0], timeout=60)
        mine = w.send("ACQUIRE", path=x, timeout=60)
        self.assertCode(w.call("PING"), "OK")       # both queued
        a.close()
        self.clients.remove(a)
        # Once this PING is answered the daemon has read a's end: a's
        # holds are released from then on, b's after a's turn.
        self.assertCode(w.call("PING"), "OK")
        b.close()
        self.clients.remove(b)
        r = w.read(60)
        self.assertEqual(r.id, mine, "nobody's last lock was handed over "
                         "before root's: %s" % (r,))
        self.assertCode(r, "OK")
        self.assertCode(w.wait(last, 60), "OK")

    def test_exited_processes_take_turns(self):
        d = self.shared()
        first, second = sleepers(self, 2)
        n = self.nobody(timeout=60)
        paths = [os.path.join(d, "k%d" % i) for i in range(3000)]
        n.send_raw("".join("ACQUIRE %d path=%s pid=%d\n" %
                           (i + 2, p, first.pid)
                           for i, p in enumerate(paths)))
        for _ in paths:
            self.assertCode(n.read(60), "OK")
        x = os.path.join(d, "x")
        self.assertCode(n.call("ACQUIRE", path=x, pid=second.pid), "OK")
        w = self.client()
        last = w.send("ACQUIRE", path=paths[0], timeout=120)
        mine = w.send("ACQUIRE", path=x, timeout=120)
        self.assertCode(w.call("PING"), "OK")       # both queued
        self.assertEqual(w.call("STATUS", path=paths[0])
                         .fields["holder_pid"], str(first.pid))
        first.kill()
        first.wait()
        # The lock kept last is released first: its artefact gone, the
        # daemon has seen the exit and is releasing the process's holds.
        wait_for("the first process's holds are being released",
                 lambda: not os.path.lexists(paths[-1] + ".lock"), 30)
        second.kill()
        second.wait()
        r = w.read(120)
        self.assertEqual(r.id, mine, "all the holds of the process that "
                         "exited first were released before the second "
                         "one's: %s" % (r,))
        self.assertCode(r, "OK")
        # The rest stay held by the exited process until each is released.
        self.assertEqual(w.call("STATUS", path=paths[1])
                         .fields["holder_pid"], str(first.pid))
        self.assertCode(w.call("ACQUIRE", path=paths[1], timeout=0),
                        "EALREADY")
        self.assertCode(w.wait(last, 120), "OK")
        wait_for("every kept hold ends", lambda: not any(
            os.path.lexists(p + ".lock") for p in paths[1:]), 60)

    def test_out_of_range_refused_at_start(self):
        self.assertRefusedAtStart(["turn_us = 100001", "turn_us = -1",
                                   "turn_us = 0.1"], "from 0 to 100000")


class AcceptTurns(ExhaustTest):
    """Accepting connections takes turns too: about turn_us of it per
    loop iteration (one at least), then the iteration's other work.
    While the daemon is stopped (SIGSTOP), nobody queues 300 connections
    on the listener, each sending HELLO, then root sends a request on its
    open connection; the daemon goes on.  Before, it accepted every
    connection waiting (libuv accepts until none is left, and a user who
    connects and closes in a loop keeps some waiting for ever: root's
    PING then waited for seconds).

    Expected: in the daemon's log, which follows the order the daemon
    does things in, root's request (a bad one, which is logged) comes
    before the 100th of nobody's connections is accepted or refused.
    """
    N = 300

    def test_root_is_served_between_accepts(self):
        root = self.client()
        self.assertCode(root.call("PING"), "OK")
        pid = self.daemon.proc.pid
        self.daemon.pause()
        try:
            socks, keeper, child = connect_many_as(self.daemon.socket,
                                                   self.N)
            for s in socks:
                s.sendall(b"HELLO 1 version=1\n")
            rid = root.send("NOSUCHVERB")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.addCleanup(os.waitpid, child, 0)
        self.addCleanup(keeper.close)
        for s in socks:
            self.addCleanup(s.close)
        self.assertCode(root.wait(rid, 60), "EVERB")
        self.assertCode(root.call("PING", _wait=60), "OK")
        lines = self.daemon.logtext().splitlines()
        mark = next(i for i, line in enumerate(lines)
                    if "pid %d: EVERB" % os.getpid() in line)
        before = sum(1 for line in lines[:mark]
                     if "uid %d" % NOBODY in line and
                     ("connected" in line or "refused" in line))
        self.assertLess(before, 100, "nobody's connections accepted "
                        "before root's request was read")


class ClosingWithManyHolds(ExhaustTest):
    """A connection closes holding 3000 locks (released a turn at a
    time), while others wait for some of them and ask for others.

    Expected: each waiter gets its lock; a lock of the closed connection
    is never granted to two; at the end every artefact is gone and the
    daemon holds nothing.
    """
    config = "holds_per_conn = 4000\n"

    def test_release_of_many_holds(self):
        d = self.shared()
        a = self.client()
        paths = [os.path.join(d, "h%d" % i) for i in range(3000)]
        a.send_raw("".join("ACQUIRE %d path=%s timeout=0\n" % (i + 2, p)
                           for i, p in enumerate(paths)))
        for i in range(len(paths)):
            self.assertCode(a.read(60), "OK")
        waiters = []
        for p in paths[::300]:
            w = self.nobody()
            waiters.append((w, w.send("ACQUIRE", path=p, timeout=60), p))
        for w, rid, p in waiters:
            self.assertCode(w.wait(w.send("PING")), "OK")
        a.close()
        self.clients.remove(a)
        b = self.client()
        for w, rid, p in waiters:
            self.assertCode(w.wait(rid, 30), "OK")
            r = b.call("ACQUIRE", path=p, timeout=0)
            self.assertCode(r, "EALREADY")
        for w, rid, p in waiters:
            self.assertCode(w.call("RELEASE", path=p), "OK")
        wait_for("every artefact is gone", lambda: not any(
            n.endswith(".lock") for n in os.listdir(d)), 60)
        self.assertEqual([n for n in os.listdir(d)], [])

    def hold_many(self, d, n=3000):
        """A root client holding n locks in d (pipelined), and their
        paths."""
        a = self.client()
        paths = [os.path.join(d, "h%d" % i) for i in range(n)]
        a.send_raw("".join("ACQUIRE %d path=%s timeout=0\n" % (i + 2, p)
                           for i, p in enumerate(paths)))
        for _ in paths:
            self.assertCode(a.read(60), "OK")
        return a, paths

    def test_waiters_in_order_while_others_served(self):
        """Three waiters queued on each of three of the closed
        connection's locks (its oldest, one between, its newest) get each
        lock in the order they asked; another client's ACQUIRE and
        RELEASE of a lock of its own are answered after the first of the
        holds has ended and before the last has (the release takes turns
        with other work)."""
        d = self.shared()
        a, paths = self.hold_many(d)
        queued = [paths[0], paths[1500], paths[-1]]
        free = [p for p in paths if p not in queued]
        ws = [self.nobody() for _ in range(3)]
        rids = {}
        for p in queued:
            for w in ws:
                rids[(w, p)] = w.send("ACQUIRE", path=p, timeout=60)
                # Answered once its ACQUIRE is queued (read before it).
                self.assertCode(w.wait(w.send("PING")), "OK")
        o = self.client()
        own = os.path.join(d, "own")

        def left():
            return sum(os.path.lexists(p + ".lock") for p in free)

        a.close()
        self.clients.remove(a)
        served = 0
        while True:
            before = left()
            self.assertCode(o.call("ACQUIRE", path=own, timeout=30), "OK")
            self.assertCode(o.call("RELEASE", path=own), "OK")
            after = left()
            if before < len(free) and after > 0:
                served += 1
            if after == 0:
                break
        self.assertGreater(served, 0, "no request of another client was "
                           "answered while the holds were being released")
        got = {w: [] for w in ws}

        def reply(w, rid):
            for r in got[w]:
                if r.id == rid:
                    got[w].remove(r)
                    return r
            return w.wait(rid, 60, others=got[w])

        for p in queued:
            for i, w in enumerate(ws):
                self.assertCode(reply(w, rids[(w, p)]), "OK")
                for later in ws[i + 1:]:
                    later.wait(later.send("PING"), 10, others=got[later])
                    self.assertNotIn(rids[(later, p)],
                                     [r.id for r in got[later]],
                                     "%s granted to a later waiter while "
                                     "an earlier one held it" % p)
                self.assertCode(w.call("RELEASE", path=p, _wait=30), "OK")
        wait_for("every artefact is gone", lambda: not any(
            n.endswith(".lock") for n in os.listdir(d)), 60)

    def test_break_while_released(self):
        """Root breaks every lock of the closed connection while its
        holds are being released: each hold ends once (broken, or
        released in its turn), the daemon goes on serving, and nothing is
        left."""
        d = self.shared()
        a, paths = self.hold_many(d)
        b = self.client()
        a.close()
        self.clients.remove(a)
        self.assertCode(b.call("PING"), "OK")
        b.send_raw("".join("BREAK %d path=%s\n" % (i + 2, p)
                           for i, p in enumerate(reversed(paths))))
        broken = 0
        for _ in paths:
            r = b.read(60)
            self.assertCode(r, "OK")
            broken += r.fields["broken"] == "1"
        wait_for("every artefact is gone", lambda: not any(
            n.endswith(".lock") for n in os.listdir(d)), 60)
        self.assertEqual(os.listdir(d), [])
        for p in paths[::100]:
            self.assertEqual(b.call("STATUS", path=p).fields["mine"], "0")
            self.assertCode(b.call("ACQUIRE", path=p, timeout=0), "OK")
            self.assertCode(b.call("RELEASE", path=p), "OK")
        self.assertCode(b.call("PING"), "OK")



class KilledWhileClosingWithManyHolds(ExhaustTest):
    """The daemon is killed (SIGKILL) while it ends the 3000 holds of a
    connection that closed, some ended and some not, and started again on
    the same state database.  The holder is nobody's process, which exits
    with its connection: the restarted daemon releases what is left at
    once (a live holder's holds would linger, held for it).

    Expected: nothing is lost and no lock is left: the waiters, asking
    again, get their locks (a lock of the closed connection at most once
    at a time: nobody else gets one while a waiter holds it); every other
    lock file is gone; the state database keeps no hold once they
    release; and the unique file of a hold whose release the kill cut
    between its two unlinks (the lock file's, then its unique file's) is
    removed by the restarted daemon, its holder being gone.
    """
    config = "holds_per_conn = 4000\ngrace = 2\n"

    def test_killed_mid_release(self):
        d = self.shared()
        a = self.nobody(timeout=60)
        paths = [os.path.join(d, "h%d" % i) for i in range(3000)]
        a.send_raw("".join("ACQUIRE %d path=%s timeout=0\n" % (i + 2, p)
                           for i, p in enumerate(paths)))
        for _ in paths:
            self.assertCode(a.read(60), "OK")
        queued = [paths[0], paths[1500], paths[-1]]
        w = self.nobody()
        for p in queued:
            w.send("ACQUIRE", path=p, timeout=60)
        self.assertCode(w.wait(w.send("PING")), "OK")

        def left():
            return sum(n.endswith(".lock") for n in os.listdir(d))

        a.close()
        self.clients.remove(a)
        deadline = time.monotonic() + 60
        while left() > 2990:    # no sleep: the release may be quick
            self.assertLess(time.monotonic(), deadline,
                            "the release did not begin")
        self.daemon.kill()
        remaining = left()
        self.assertGreater(remaining, 0, "the release ended before the "
                           "daemon was killed")
        self.clients.remove(w)
        w.close()
        self.daemon.start()
        w2 = self.nobody(timeout=60)
        rids = [w2.send("ACQUIRE", path=p, timeout=60) for p in queued]
        replies = [w2.read(60) for _ in rids]
        for r in replies:
            self.assertCode(r, "OK")
        self.assertEqual(sorted(r.id for r in replies), sorted(rids))
        b = self.client()
        for p in queued:
            self.assertEqual(w2.call("STATUS", path=p).fields["mine"], "1")
            self.assertCode(b.call("ACQUIRE", path=p, timeout=0),
                            "EALREADY")
        others = [p for p in paths if p not in queued]
        wait_for("every other artefact is gone", lambda: not any(
            os.path.lexists(p + ".lock") for p in others), 60)
        for p in queued:
            self.assertCode(w2.call("RELEASE", path=p), "OK")
        # Nothing is left: a release the kill cut between its two unlinks
        # left its unique file, which the restarted daemon removes (its
        # holder is gone).
        self.assertEqual(os.listdir(d), [])
        db = sqlite3.connect(self.daemon.state)
        try:
            n = db.execute("SELECT count(*) FROM holds").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, 0, "holds still recorded")


class DirectoryLockedForGood(ExhaustTest):
    """nobody holds flock(2) on a directory it may read (a shared one),
    for good, while root's holds there are handed to waiters: every
    handoff would wait for the directory's lock (the library's wait is
    0.2 s), in the daemon's one thread.

    Expected: the daemon never waits for it (one try): each lock still
    goes to its waiter (released, then granted: no atomic handoff), and
    the 100 of them take nowhere near 100 waits (a generous bound, 10 s,
    against 20 s of waits).
    """
    N = 100

    def test_handoffs_do_not_wait_for_the_directory(self):
        d = self.shared()
        flocker = self.spawn(textwrap.dedent("""
            import fcntl, os, time
            fd = os.open(%r, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(600)
        """) % d, user="nobody")
        self.assertEqual(flocker.stdout.readline(), b"locked\n")
        a, b = self.client(), self.client()
        paths = [os.path.join(d, "l%d" % i) for i in range(self.N)]
        for p in paths:
            self.assertCode(a.call("ACQUIRE", path=p, timeout=0), "OK")
        rids = [b.send("ACQUIRE", path=p, timeout=120) for p in paths]
        self.assertCode(b.wait(b.send("PING")), "OK")   # all queued
        start = time.monotonic()
        a.close()
        self.clients.remove(a)
        granted = [b.read(120) for _ in rids]   # in the order served
        took = time.monotonic() - start
        for r in granted:
            self.assertCode(r, "OK")
        self.assertEqual(sorted(r.id for r in granted), sorted(rids))
        self.assertLess(took, 10.0, "%d handoffs took %.1f s: each waited "
                        "for the directory's lock" % (self.N, took))
        for p in paths:
            self.assertEqual(b.call("STATUS", path=p).fields["mine"], "1")
            self.assertCode(b.call("RELEASE", path=p), "OK")


class BusyDatabaseAtStart(ExhaustTest):
    """nobody holds N sqlite locks in its own directory and keeps their
    lock database busy (a write transaction) while the daemon restarts:
    reconcile looks at each recorded hold before the daemon listens.

    Expected: the daemon does not wait for the busy database at each look
    (the holds stay held for nobody, judged again later): it is ready
    about as soon as with the database free (a generous bound: twice that
    and 1 s more; waiting 2 ms a look, 1000 holds took several seconds).
    """
    N = 1000

    def restart_time(self):
        t = time.monotonic()
        self.daemon.stop()
        self.daemon.start(wait=True)
        return time.monotonic() - t

    def test_start_does_not_wait_for_each_hold(self):
        d = self.shared()
        conns = [self.nobody(timeout=60) for _ in range(2)]
        for i in range(self.N):
            conns[i % 2].send("ACQUIRE", path=os.path.join(d, "l%d" % i),
                              method="sqlite")
        for i in range(self.N):
            self.assertCode(conns[i % 2].read(60), "OK")
        free = self.restart_time()
        writer = nobody_sqlite(os.path.join(d, ".lockbroker.sqlite"),
                               "BEGIN EXCLUSIVE")
        try:
            busy = self.restart_time()
        finally:
            let_go(writer)
        self.assertLess(busy, 2 * free + 1.0, "the restart took %.1f s "
                        "with the database busy, %.1f s with it free" %
                        (busy, free))
        c = self.client()
        self.assertEqual(c.call("STATUS", path=os.path.join(d, "l0"),
                                method="sqlite").fields["locked"], "1")


class UnjudgedAtGraceEnd(ExhaustTest):
    """nobody holds N sqlite locks in its own directory and keeps their
    lock database busy (a write transaction) over a restart: every hold
    stays unjudged (held for nobody's connection's process, which does
    not reclaim it); the grace period ends while that process runs (the
    holds linger, held for it), then the process exits: each hold is
    looked at and its release tried, the database still busy.

    Expected: the daemon never waits for the busy database in those steps
    (its releasing queues try again), and ends the holds a turn at a
    time: root's PINGs around their end are answered within a generous
    bound (2 s; waiting for the database once per hold, 2000 holds
    stalled the daemon for several seconds); the locks stay held,
    releasing, until the database is free, then all are released.
    """
    N = 2000
    config = "grace = 3\n"

    def test_grace_end_does_not_stall(self):
        d = self.shared()
        db = os.path.join(d, ".lockbroker.sqlite")
        conns = [self.nobody(timeout=60) for _ in range(2)]
        paths = [os.path.join(d, "l%d" % i) for i in range(self.N)]
        for i, p in enumerate(paths):
            conns[i % 2].send("ACQUIRE", path=p, method="sqlite")
        for i in range(self.N):
            self.assertCode(conns[i % 2].read(60), "OK")
        writer = nobody_sqlite(db, "BEGIN EXCLUSIVE")
        try:
            self.daemon.stop()
            self.daemon.start()
            root = self.client()
            wait_for("the grace period ends", lambda: "its process runs"
                     in self.daemon.logtext(), 60)
            for c in conns:
                c.close()               # the holds' process exits
            worst, end = 0.0, time.monotonic() + 6
            while time.monotonic() < end:
                t = time.monotonic()
                self.assertCode(root.call("PING", _wait=120), "OK")
                worst = max(worst, time.monotonic() - t)
                time.sleep(0.02)
            if os.environ.get("LB_SHOW_PING"):
                print("worst PING %.3f s" % worst, file=sys.stderr)
            self.assertLess(worst, 2.0, "root's PING waited %.1f s while "
                            "%d unjudged holds ended" % (worst, self.N))
            self.assertIn("its process exited", self.daemon.logtext())
        finally:
            let_go(writer)
        wait_for("every hold is released", lambda: sqlite_rows(db) == [],
                 60)
        for p in (paths[0], paths[-1]):
            self.assertEqual(root.call("STATUS", path=p, method="sqlite")
                             .fields["locked"], "0")


class GraceEndAmongKeptHolds(ExhaustTest):
    """nobody holds N locks over a connection (its process stays alive
    but never reclaims them) and then keeps K locks for one of its
    processes (ACQUIRE pid=), across a restart: the N are orphans, the K
    kept holds, and the kept ones come first in the daemon's list of the
    previous run's holds.  Root waits for every orphan's lock, all
    queued before the grace period ends (a minute under valgrind);
    turn_us = 0 (one orphan ended per loop iteration).  The grace period
    ends while the orphans' process runs (they linger, held for it),
    then that process exits.

    Expected: every orphan's lock goes to root's waits, each once; root's
    PING on another connection, sent once the first has come, is
    answered while others are still to come (their end takes turns);
    every kept hold stays its process's (artefact there, STATUS naming
    its pid), and all of them end when that process exits.  Before, each
    orphan's end looked for the next one from the list's head, past
    every kept hold (N times K steps).
    """
    N = 2000
    K = 5000
    config = ("grace = %d\nturn_us = 0\nholds_per_conn = 6000\n"
              "waits_per_conn = 6000\n" % (60 if WRAPPER else 5))

    def test_orphans_end_kept_holds_stay(self):
        # In 100 directories: a restart looks through a recorded hold's
        # directory for handoff temporaries, once per hold.
        dirs = [self.shared("d%d" % i) for i in range(100)]
        orphans = [os.path.join(dirs[i % 100], "o%d" % i)
                   for i in range(self.N)]
        kept = [os.path.join(dirs[i % 100], "k%d" % i)
                for i in range(self.K)]
        keeper = sleepers(self, 1)[0]
        o = self.nobody(timeout=120)
        o.send_raw("".join("ACQUIRE %d path=%s\n" % (i + 2, p)
                           for i, p in enumerate(orphans)))
        for _ in orphans:
            self.assertCode(o.read(120), "OK")
        n = self.nobody(timeout=120)
        n.send_raw("".join("ACQUIRE %d path=%s pid=%d\n" %
                           (i + 2, p, keeper.pid)
                           for i, p in enumerate(kept)))
        for _ in kept:
            self.assertCode(n.read(120), "OK")
        self.daemon.stop()
        self.daemon.start()
        w = self.client(timeout=300)
        root = self.client(timeout=120)
        rids = {w.send("ACQUIRE", path=p, timeout=600): p for p in orphans}
        queued = w.send("PING")
        self.assertEqual(w.read(300).id, queued,
                         "an orphan ended before all waits were queued")
        wait_for("the grace period ends", lambda: "its process runs"
                 in self.daemon.logtext(), 300)
        o.close()                       # the orphans' process exits
        replies = [w.read(300)]
        cpu = self.daemon.cpu_seconds()
        self.assertCode(root.call("PING"), "OK")
        pending = self.N - 1 - replies_so_far(w)
        self.assertGreater(pending, 0, "root's PING was answered only "
                           "after all %d orphans had ended" % self.N)
        while len(replies) < self.N:
            replies.append(w.read(300))
        if os.environ.get("LB_SHOW_CPU"):
            print("daemon CPU for the grace end: %.2f s" %
                  (self.daemon.cpu_seconds() - cpu), file=sys.stderr)
        for r in replies:
            self.assertCode(r, "OK")
        self.assertEqual(sorted(r.id for r in replies), sorted(rids))
        self.assertIn("not reclaimed within the grace period",
                      self.daemon.logtext())
        self.assertEqual([p for p in kept
                          if not os.path.lexists(p + ".lock")], [])
        for p in (kept[0], kept[-1]):
            self.assertEqual(w.call("STATUS", path=p)
                             .fields["holder_pid"], str(keeper.pid))
        keeper.kill()
        keeper.wait()
        wait_for("every kept hold ends with its process", lambda: not any(
            os.path.lexists(p + ".lock") for p in kept), 120)


def nobody_sleeper():
    """A `sleep` process of user nobody, for holds kept for it (pid=)."""
    def demote():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return subprocess.Popen(["sleep", "600"], preexec_fn=demote,
                            close_fds=True)


class KeptHoldsOfOneProcess(ExhaustTest):
    """Many holds kept for one process (ACQUIRE pid=): the daemon watches
    that process once, with one descriptor, whatever the number of holds.

    Expected: nobody, on one connection, takes 300 locks kept for one of
    its `sleep` processes; the daemon's open descriptors grow by a few at
    most (not one per hold).  When the process exits, every one of the
    holds ends, and the descriptors are back to what they were.
    """
    N = 300
    config = "locks_per_uid = 1000\n"

    def test_one_descriptor_per_process(self):
        d = self.shared()
        proc = nobody_sleeper()
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        a = self.nobody()
        root = self.client()
        before = self.daemon.fd_count()
        paths = [os.path.join(d, "k%d" % i) for i in range(self.N)]
        for p in paths:
            self.assertCode(a.call("ACQUIRE", path=p, pid=proc.pid), "OK")
        during = self.daemon.fd_count()
        self.assertLessEqual(during - before, 4,
                             "%d kept holds for one process took %d "
                             "descriptors" % (self.N, during - before))
        self.assertEqual(root.call("STATUS", path=paths[-1])
                         .fields["holder_pid"], str(proc.pid))
        proc.kill()
        proc.wait()
        wait_for("every kept hold ends with its process", lambda: not any(
            os.path.lexists(p + ".lock") for p in paths), timeout=30)
        for p in (paths[0], paths[-1]):
            self.assertEqual(root.call("STATUS", path=p).fields["locked"],
                             "0")
        wait_for("the descriptors are back", lambda:
                 self.daemon.fd_count() <= before)


def sleepers(test, n, of_nobody=True):
    """n `sleep` processes (of nobody, or of root), killed and reaped at
    the test's end."""
    procs = [nobody_sleeper() if of_nobody else
             subprocess.Popen(["sleep", "600"], close_fds=True)
             for _ in range(n)]

    def reap():
        for p in procs:
            p.kill()
            p.wait()
    test.addCleanup(reap)
    return procs


def lock_held(client, path):
    """Whether path (link method) is held, as client's STATUS says."""
    return client.call("STATUS", path=path).fields["locked"] == "1"


class KeptHoldsAtFdLimit(ExhaustTest):
    """Kept holds for many processes at the daemon's descriptor limit
    (RLIMIT_NOFILE of 64): a watched process takes a descriptor (a pidfd)
    only while pidfds fill at most half of the descriptor budget; the
    other half is the connections'.

    Expected: nobody asks for holds kept for 60 of its processes, one
    each, more than the budget could give pidfds: every one is granted
    (never ELIMIT, never EFAILED), and so is a second hold kept for a
    process already watched.  Root, connecting anew afterwards, is
    answered HELLO on each of four new connections and ACQUIREs a plain
    lock, of every method.  The processes beyond the pidfds' share are
    still watched: killing the last one (and the first) ends its kept hold
    while the others stay held.  When all exit, every hold ends and a new
    kept hold is granted.
    """
    NOFILE = 64
    PROCS = 60

    @staticmethod
    def preexec():
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (KeptHoldsAtFdLimit.NOFILE,
                            KeptHoldsAtFdLimit.NOFILE))

    def test_granted_root_connects_and_is_served(self):
        d = self.shared()
        a = self.nobody()
        procs = sleepers(self, self.PROCS)
        paths = [os.path.join(d, "k%d" % i) for i in range(self.PROCS)]
        for proc, p in zip(procs, paths):
            self.assertCode(a.call("ACQUIRE", path=p, pid=proc.pid), "OK")
        self.assertCode(a.call("ACQUIRE", path=os.path.join(d, "again"),
                               pid=procs[0].pid), "OK")
        self.assertLess(self.daemon.fd_count(), self.NOFILE)
        roots = []
        for _ in range(4):
            state, c = connect(self.daemon.socket)
            self.assertEqual(state, "ok", "root's new connection: %s" % (c,))
            self.clients.append(c)
            roots.append(c)
        root = roots[-1]
        for method in METHODS:
            p = self.path("root-" + method)
            r = root.call("ACQUIRE", path=p, method=method, timeout=0)
            self.assertCode(r, "OK")
            self.assertCode(root.call("RELEASE", path=p, method=method),
                            "OK")
        for i in (-1, 0):
            procs[i].kill()
            procs[i].wait()
            wait_for("the hold kept for process %d ends with it" % i,
                     lambda: not lock_held(root, paths[i]), timeout=30)
        self.assertTrue(lock_held(root, paths[self.PROCS // 2]))
        for proc in procs:
            proc.kill()
            proc.wait()
        wait_for("the kept holds end with their processes", lambda: not any(
            os.path.lexists(p + ".lock") for p in paths), timeout=30)
        late = nobody_sleeper()
        self.addCleanup(late.wait)
        self.addCleanup(late.kill)
        self.assertCode(a.call("ACQUIRE", path=os.path.join(d, "late"),
                               pid=late.pid), "OK")


class PidfdsPerUser(ExhaustTest):
    """pidfds_per_uid (4 here): nobody keeps holds for 12 of its
    processes, one each.

    Expected: every ACQUIRE is granted; the daemon's descriptors grow by
    at most 4 (the pidfds nobody may have; a few more allowed for work in
    progress), not 12; root's hold kept for a process of its own still
    gets a watch of its own (its user's bound is its own).  The processes
    beyond the bound are watched all the same: killing the last one
    (watched without a descriptor) ends its hold within seconds, and the
    first one's likewise, while the others stay held.  Root connects,
    says HELLO and takes a lock meanwhile.  When all exit, the
    descriptors are back to what they were.
    """
    BOUND = 4
    PROCS = 12
    config = "pidfds_per_uid = %d\n" % BOUND

    def test_beyond_the_bound_watched_without_descriptors(self):
        d = self.shared()
        a = self.nobody()
        root = self.client()
        procs = sleepers(self, self.PROCS)
        paths = [os.path.join(d, "k%d" % i) for i in range(self.PROCS)]
        before = self.daemon.fd_count()
        for proc, p in zip(procs, paths):
            self.assertCode(a.call("ACQUIRE", path=p, pid=proc.pid), "OK")
        during = self.daemon.fd_count()
        self.assertLessEqual(during - before, self.BOUND + 1,
                             "%d processes watched for nobody took %d "
                             "descriptors" % (self.PROCS, during - before))
        mine = sleepers(self, 1, of_nobody=False)[0]
        self.assertCode(root.call("ACQUIRE", path=self.path("root-kept"),
                                  pid=mine.pid), "OK")
        if during > before:         # pidfds given (not under valgrind)
            self.assertEqual(self.daemon.fd_count(), during + 1,
                             "root's process got no pidfd of its own")
        state, c = connect(self.daemon.socket)
        self.assertEqual(state, "ok", "root's new connection: %s" % (c,))
        self.clients.append(c)
        self.assertCode(c.call("ACQUIRE", path=self.path("root"),
                               timeout=0), "OK")
        for i in (-1, 0):
            procs[i].kill()
            procs[i].wait()
            wait_for("the hold kept for process %d ends with it" % i,
                     lambda: not lock_held(root, paths[i]), timeout=30)
        self.assertTrue(lock_held(root, paths[self.PROCS // 2]))
        for proc in procs + [mine]:
            proc.kill()
            proc.wait()
        wait_for("the kept holds end with their processes", lambda: not any(
            os.path.lexists(p + ".lock") for p in paths), timeout=30)
        c.close()
        self.clients.remove(c)
        wait_for("the descriptors are back", lambda:
                 self.daemon.fd_count() <= before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
