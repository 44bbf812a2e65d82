"""lbdaemon.py: drive the real lockbrokerd from Python tests.

Daemon starts the built daemon in a private directory with its own socket
and state database and waits until it answers a HELLO; Client speaks the
wire protocol (docs/PROTOCOL.md) over a Unix socket, a line at a time;
NobodyClient is a Client whose connection another user (nobody) made;
DaemonCase is the base class of the suites' tests: a private directory, a
daemon in it, and the clients and processes a test made, all ended after
it.  Every wait has a deadline, so a bug fails a test instead of hanging
it.

LB_DAEMON_WRAPPER, when set, is a command the daemon runs under (split
like a shell would), e.g. "valgrind --error-exitcode=99 --leak-check=full
--errors-for-leak-kinds=definite -q".  When it names --error-exitcode=N,
a daemon that stops with status N fails the test with its log.
"""
import os
import re
import shlex
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
DAEMON = os.path.join(BUILDDIR, "daemon", "lockbrokerd")
WRAPPER = shlex.split(os.environ.get("LB_DAEMON_WRAPPER", ""))
PYTHON = os.environ.get("PYTHON3", "/usr/bin/python3")
NOBODY = 65534
WRAPPER_ERROR = next((int(m.group(1)) for m in
                      (re.fullmatch(r"--error-exitcode=(\d+)", w)
                       for w in WRAPPER) if m), None)


def encode(value):
    """Percent-encode a field value as the protocol wants."""
    return urllib.parse.quote(str(value), safe="/._~+:,@-")


def decode_fields(words):
    """key=value words of a reply, decoded, as a dict."""
    out = {}
    for w in words:
        k, _, v = w.partition("=")
        out[k] = urllib.parse.unquote(v)
    return out


class Reply:
    def __init__(self, line):
        self.line = line
        words = line.rstrip("\n").split(" ")
        self.verb = words[0]
        self.id = words[1] if len(words) > 1 else None
        self.fields = decode_fields(words[2:])

    @property
    def code(self):
        return self.fields.get("code") if self.verb == "ERR" else "OK"

    def __repr__(self):
        return "Reply(%r)" % self.line


class Client:
    """One connection to the daemon."""

    def __init__(self, path, hello=True, timeout=10.0, version=1):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.next_id = 1
        if hello:
            r = self.call("HELLO", version=version)
            assert r.verb == "OK", r

    @classmethod
    def of_socket(cls, sock, timeout=10.0):
        """A Client over sock, connected already (no HELLO sent)."""
        c = cls.__new__(cls)
        c.sock = sock
        c.sock.settimeout(timeout)
        c.buf = b""
        c.next_id = 1
        return c

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send(self, verb, **fields):
        rid = self.next_id
        self.next_id += 1
        words = [verb, str(rid)]
        words += ["%s=%s" % (k, encode(v)) for k, v in fields.items()]
        self.send_raw(" ".join(words) + "\n")
        return str(rid)

    def read(self, timeout=10.0):
        """The next reply line; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1f s" % timeout)
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the daemon")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return Reply(line.decode())

    def wait(self, rid, timeout=10.0, others=None):
        """The reply to request rid; replies to other ids go to others."""
        while True:
            r = self.read(timeout)
            if r.id == rid:
                return r
            if others is None:
                raise AssertionError("unexpected reply %r" % r)
            others.append(r)

    def call(self, verb, _wait=10.0, **fields):
        """Sends a request and returns its reply (within _wait s)."""
        return self.wait(self.send(verb, **fields), _wait)

    def closed(self, timeout=5.0):
        """True when the daemon has closed this connection."""
        try:
            while True:
                self.read(timeout)
        except EOFError:
            return True
        except (TimeoutError, socket.timeout):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


class Daemon:
    """lockbrokerd in directory d, with its own socket and state."""

    def __init__(self, d, args=(), config=None, env=None, preexec=None):
        self.dir = d
        self.socket = os.path.join(d, "sock")
        self.state = os.path.join(d, "state.sqlite")
        self.log = os.path.join(d, "daemon.log")
        self.args = list(args)
        if config is not None:
            self.config = os.path.join(d, "lockbrokerd.conf")
            with open(self.config, "w") as f:
                f.write(config)
            self.args += ["--config", self.config]
        self.env = env
        self.preexec = preexec      # run in the child before exec
        self.proc = None

    def start(self, wait=True):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            WRAPPER + [DAEMON, "--socket", self.socket, "--state",
                       self.state, "--debug"] + self.args,
            stdout=logf, stderr=logf, env=self.env, preexec_fn=self.preexec)
        logf.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("lockbrokerd exited with %s:\n%s" %
                                   (self.proc.returncode, self.logtext()))
            c = None
            try:
                c = Client(self.socket, timeout=2.0)
                return
            except (OSError, AssertionError, EOFError):
                time.sleep(0.02)
            finally:
                if c is not None:
                    c.close()
        raise RuntimeError("lockbrokerd not ready:\n" + self.logtext())

    def logtext(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def client(self, **kw):
        return Client(self.socket, **kw)

    def pause(self):
        """Stops the daemon (SIGSTOP) and returns once it is stopped: a
        signal is delivered some time after kill(2) returns."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while True:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the daemon did not stop")
            time.sleep(0.001)

    def cpu_seconds(self):
        """User and system CPU time the daemon has used, in seconds."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kib(self, key="VmRSS"):
        """A memory figure of the daemon from /proc/PID/status, in KiB
        (VmRSS: now; VmHWM: the peak so far)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def fd_count(self):
        """How many file descriptors the daemon has open."""
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def stop(self, sig=signal.SIGTERM, timeout=60.0):
        """Stops the daemon; returns its exit status (or -signal).  Under
        a wrapper, its error status raises AssertionError.  timeout bounds
        a hang, it is no speed check: a daemon under a sanitizer or
        valgrind on a loaded machine has taken over 15 s to exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("lockbrokerd did not stop on %s:\n%s"
                                     % (sig, self.logtext()))
        if WRAPPER_ERROR is not None and \
                self.proc.returncode == WRAPPER_ERROR:
            raise AssertionError("lockbrokerd under %s found errors:\n%s"
                                 % (WRAPPER[0], self.logtext()))
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)


def boot_id8():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return "".join(c for c in f.read() if c in "0123456789abcdef")[:8]


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def fnv1a(text):
    h = 2166136261
    for c in text.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h


def unique_name(pid, lock_file, method, tid=0):
    """The unique name lockbroker gives the owner (pid, tid) of lock_file
    (lockfs/owner.c): a path for link and mkdir, a base name for symlink."""
    host = socket.gethostname()
    t = "-%08x" % tid if tid else ""
    tail = "%d~%s.%s.%08x" % (pid, start_time(pid), boot_id8() or "0",
                              fnv1a(lock_file))
    if method == "symlink":
        return "%s%s.%s" % (host, t, tail)
    if method == "mkdir":
        return "%s/%s.%s%s" % (lock_file, host, t, tail)
    return "%s/%s%s.%s" % (os.path.dirname(lock_file), host, t, tail)


def connect_many_as(sock_path, n, uid=NOBODY):
    """n sockets connected to sock_path by one child process of user uid
    (the daemon sees uid as the peer), the socket that keeps that child
    alive until it is closed, and the child's pid: (socks, keeper, pid)."""
    keeper, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
                if fd > 2 and fd != theirs.fileno():
                    try:            # not the test's connections
                        os.close(fd)
                    except OSError:
                        pass
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            socks = []
            for _ in range(n):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock_path)
                socks.append(s)
            for i in range(0, n, 200):
                socket.send_fds(theirs, [b"s"],
                                [s.fileno() for s in socks[i:i + 200]])
            for s in socks:
                s.close()
            theirs.recv(1)          # until the test closes it
        finally:
            os._exit(0)
    theirs.close()
    socks = []
    while len(socks) < n:
        _, fds, _, _ = socket.recv_fds(keeper, 1, 200)
        socks += [socket.socket(fileno=fd) for fd in fds]
    return socks, keeper, pid


def connect_as(sock_path, uid=NOBODY):
    """One socket connected by a child process of user uid (see
    connect_many_as): (sock, keeper, pid)."""
    socks, keeper, pid = connect_many_as(sock_path, 1, uid)
    return socks[0], keeper, pid


class NobodyClient(Client):
    """A connection that user nobody (or uid) made: a child process drops
    to nobody, connects, hands the socket over and stays alive (the daemon
    reads the peer's process at each grant) until closed."""

    def __init__(self, sock_path, hello=True, timeout=10.0, uid=NOBODY,
                 version=1):
        self.sock, self.keeper, self.pid = connect_as(sock_path, uid)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        if hello:
            r = self.call("HELLO", version=version)
            assert r.verb == "OK", r

    def close(self):
        super().close()
        if self.keeper is not None:
            self.keeper.close()
            os.waitpid(self.pid, 0)
            self.keeper = None


class DaemonCase(unittest.TestCase):
    """A test with its own daemon: in setUp a private directory (self.dir,
    mode 0755, with an empty self.locks for lock paths) and a daemon in it
    (self.daemon, with the class's config text, preexec and args); in
    tearDown every client and process the test made through these methods
    is ended, the daemon stopped (its log shown when it did not stop
    cleanly) and the directory removed."""
    config = None           # lockbrokerd.conf text, or None
    preexec = None          # run in the daemon's process before exec
    args = ()               # more daemon arguments
    prefix = "lbtest."      # of the temporary directory

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        os.chmod(self.dir, 0o755)
        self.locks = os.path.join(self.dir, "locks")
        os.mkdir(self.locks)
        self.clients = []
        self.procs = []
        self.daemon = self.make_daemon()
        try:
            self.daemon.start()
        except BaseException:
            # tearDown does not run when setUp fails: the daemon (if it
            # runs, not ready) and the directory go here.
            try:
                self.daemon.kill()
            finally:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def make_daemon(self):
        return Daemon(self.dir, args=self.args, config=self.config,
                      preexec=self.preexec)

    def tearDown(self):
        for c in self.clients:
            c.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        status = self.daemon.stop()
        if status not in (0, None, -signal.SIGKILL):
            print(self.daemon.logtext(), file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, **kw):
        """A connection of the test's own user, closed after the test."""
        c = self.daemon.client(**kw)
        self.clients.append(c)
        return c

    def nobody(self, **kw):
        """A connection of user nobody's, closed after the test."""
        c = NobodyClient(self.daemon.socket, **kw)
        self.clients.append(c)
        return c

    def path(self, name="a"):
        """A lock path in the test's lock directory."""
        return os.path.join(self.locks, name)

    def shared(self, name="shared"):
        """A sticky world-writable directory, for nobody's locks."""
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        os.chmod(d, 0o1777)
        return d

    def spawn(self, script, user=None):
        """Runs the Python script in a child (as nobody when user is
        "nobody"), its stdout a pipe; killed after the test."""
        def demote():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        p = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE,
                             preexec_fn=demote if user == "nobody" else None)
        self.procs.append(p)
        return p

    def assertCode(self, reply, code, why=None):
        self.assertEqual(reply.code, code, (reply, why) if why else reply)

    def assertRefusedAtStart(self, lines, *words):
        """Starts a daemon for each configuration line, each in a
        directory of its own; each must exit with 1, its log naming the
        line's key ("bad value for KEY") and every one of words."""
        for line in lines:
            sub = tempfile.mkdtemp(dir=self.dir)
            d = Daemon(sub, config=line + "\n")
            d.start(wait=False)
            self.assertEqual(d.proc.wait(10), 1, line)
            text = d.logtext()
            self.assertIn("bad value for %s" % line.split()[0], text, line)
            for w in words:
                self.assertIn(w, text, line)
