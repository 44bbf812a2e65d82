"""lbdaemon.py: drive the real lockbrokerd from Python tests.

Daemon starts the built daemon in a private directory with its own socket
and state database and waits until it answers a HELLO; Client speaks the
wire protocol (docs/PROTOCOL.md) over a Unix socket, a line at a time.
Every wait has a deadline, so a bug fails a test instead of hanging it.

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
import subprocess
import time
import urllib.parse

BUILDDIR = os.environ.get("LB_BUILDDIR", os.getcwd())
DAEMON = os.path.join(BUILDDIR, "daemon", "lockbrokerd")
WRAPPER = shlex.split(os.environ.get("LB_DAEMON_WRAPPER", ""))
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

    def __init__(self, path, hello=True, timeout=10.0):
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
            r = self.call("HELLO", version=1)
            assert r.verb == "OK", r

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

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops the daemon; returns its exit status (or -signal).  Under
        a wrapper, its error status raises AssertionError."""
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
