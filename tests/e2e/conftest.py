"""tlsfwd end-to-end harness: real binaries, real sockets, loopback only.

Fixtures
    pki          session-scoped throwaway PKI (pki.TestPki): ca, other_ca, server,
                 server_noip, server_expired, server_other, client, client_other,
                 client_expired, client_encrypted (each has .cert and .key)
    tf           per-test harness (Harness): starts daemons, sinks, helper
                 processes and sockets, and tears all of them down; every daemon
                 still running at teardown gets SIGTERM and must exit 0
    tunnel       tf + a raw TCP sink + tlsfwd-server + tlsfwd-client (Tunnel)
    node_sender  path of tests/node/send.js, `npm ci` done if node_modules is missing

Environment
    TLSFWD_BUILD     directory holding tlsfwd-client and tlsfwd-server (default ./build)
    TLSFWD_SCALE     float multiplying the big transfer sizes (default 1.0)
    TLSFWD_VALGRIND  1: run the daemons under valgrind; every wait is 10x longer

Helpers for the tests (import them: `from conftest import ...`)
    MiB, scaled(), wait_time(), free_port(), fmt_addr(), connect(), recv_exact(),
    send_and_expect(), exchange(), wait_closed(), Endpoint, run_endpoints(),
    Background, pair_endpoints(), assert_delivered()
"""

import hashlib
import json
import os
import random
import re
import resource
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from signal import SIGTERM   # not `import signal`: Daemon.signal() would shadow it

import pytest

from fwdsink import ForwardSink
from pki import TestPki

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = Path(os.environ.get("TLSFWD_BUILD") or ROOT / "build")
SCALE = float(os.environ.get("TLSFWD_SCALE") or 1.0)
VALGRIND = os.environ.get("TLSFWD_VALGRIND") == "1"
SLOW = 10.0 if VALGRIND else 1.0

MiB = 1 << 20
KiB = 1 << 10


def scaled(nbytes, minimum=MiB):
    """A big transfer size, multiplied by TLSFWD_SCALE (never below `minimum`)."""
    return max(minimum, int(nbytes * SCALE))


def wait_time(seconds):
    """A generous wait, stretched under valgrind."""
    return seconds * SLOW


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_raise_nofile()   # inherited by the daemons, which need it for the slow-peer test


# ---------------------------------------------------------------------------
# addresses and sockets

_handed_out = set()


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now (bind port 0, read it, close), never
    the same one twice in this process, so a "dead" address picked by a test
    cannot become a daemon's listen address a moment later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def fmt_addr(host, port=None):
    """('127.0.0.1', 5) -> '127.0.0.1:5'; ('::1', 5) -> '[::1]:5'. Accepts a sockaddr."""
    if port is None:
        host, port = host[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def listening(port):
    """Whether a TCP socket of this network namespace listens on port
    (/proc/net/tcp and tcp6: local address ...:PORT in state 0A, LISTEN)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and int(local.rpartition(":")[2], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def connect(addr, timeout=None, allow_reset=False):
    """A TCP connection to 'host:port', bound first so getsockname() is known
    even when the daemon resets it during connect() (allow_reset=True returns
    the reset socket instead of raising)."""
    host, port = split_addr(addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout or wait_time(10))
    try:
        s.bind((host, 0))
        s.connect((host, port))
    except ConnectionResetError:
        if allow_reset:
            return s
        s.close()
        raise
    except BaseException:
        s.close()
        raise
    return s


def recv_exact(sock, n, timeout=None):
    """Read exactly n bytes; AssertionError on EOF or timeout."""
    sock.settimeout(timeout or wait_time(15))
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except socket.timeout:
            raise AssertionError(f"timed out after {len(buf)} of {n} bytes") from None
        if not chunk:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def send_and_expect(src, dst, data):
    """src sends data (from a thread, so a big message cannot deadlock against
    full buffers); dst must receive exactly it."""
    t = threading.Thread(target=src.sendall, args=(data,), daemon=True)
    t.start()
    try:
        assert recv_exact(dst, len(data)) == data
    finally:
        t.join(wait_time(15))


def exchange(a, b, size=1000):
    """A round trip of random bytes a -> b -> a."""
    send_and_expect(a, b, os.urandom(size))
    send_and_expect(b, a, os.urandom(size))


def wait_closed(sock, timeout):
    """True if the peer closed (EOF or reset) within timeout; data read is discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


# ---------------------------------------------------------------------------
# byte streams that can be checked end to end

_POOL_SIZE = 8 * MiB
_pool = None


def _pattern_chunks(total, seed, chunk):
    """`total` pseudo-random bytes as memoryviews cut from a random pool at
    seeded offsets: free to produce, and any loss, duplication or reordering of
    chunks changes the SHA-256."""
    global _pool
    if _pool is None:
        _pool = memoryview(os.urandom(_POOL_SIZE))
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(chunk, left)
        off = rng.randrange(0, _POOL_SIZE - n)
        yield _pool[off:off + n]
        left -= n


class Endpoint:
    """One socket of a transfer: sends `nbytes` (None: until finish()) then
    shuts its write side down, and reads until EOF.  Keeps a count and a SHA-256
    of both directions.

    after_eof: send only once EOF was read (request, then response).
    pace: seconds between chunks (a trickle that stays in progress).
    """

    _seeds = iter(range(1, 1 << 62))

    def __init__(self, sock, nbytes, *, after_eof=False, pace=None, chunk=256 * KiB,
                 name="endpoint"):
        self.sock = sock
        self.name = name
        self.nbytes = nbytes
        self.after_eof = after_eof
        self.pace = pace
        self.sent = 0
        self.received = 0
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()
        self.eof = False
        self.write_done = False
        self.error = None
        self._finish = threading.Event()
        self._chunks = _pattern_chunks(nbytes if nbytes is not None else 1 << 62,
                                       next(self._seeds), chunk)
        self._pending = None
        self._next_send = 0.0
        self._buf = bytearray(256 * KiB)

    def finish(self):
        """Stop an open-ended (nbytes=None) endpoint after its current chunk."""
        self._finish.set()

    @property
    def done(self):
        return (self.write_done and self.eof) or self.error is not None

    def wants_write(self, now):
        if self.write_done or self.error or (self.after_eof and not self.eof):
            return False
        return self._pending is not None or self.pace is None or now >= self._next_send

    def next_wakeup(self):
        if self.pace is None or self.write_done or self._pending is not None:
            return None
        return self._next_send

    def on_writable(self, now):
        if self._pending is None:
            chunk = None if (self.nbytes is None and self._finish.is_set()) else next(self._chunks, None)
            if chunk is None:
                self._shut_write()
                return
            self.sent_hash.update(chunk)
            self._pending = chunk
        try:
            n = self.sock.send(self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.error = f"send: {e!r}"
            return
        self.sent += n
        self._pending = self._pending[n:] if n < len(self._pending) else None
        if self._pending is None and self.pace is not None:
            self._next_send = now + self.pace

    def _shut_write(self):
        self.write_done = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = f"shutdown: {e!r}"

    def on_readable(self):
        try:
            n = self.sock.recv_into(self._buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.error = f"recv: {e!r}"
            return
        if n == 0:
            self.eof = True
        else:
            self.received += n
            self.recv_hash.update(memoryview(self._buf)[:n])

    def progress(self):
        return (f"{self.name}: sent {self.sent}/{self.nbytes} write_done={self.write_done} "
                f"received {self.received} eof={self.eof} error={self.error}")


def run_endpoints(endpoints, timeout=None, stall=None):
    """Drive endpoints with one selector until all are done.

    timeout: AssertionError if not all done by then (progress of each in the message).
    stall: instead return quietly once no byte moved for `stall` seconds.
    """
    timeout = timeout or wait_time(60)
    sel = selectors.DefaultSelector()
    masks = {}
    for ep in endpoints:
        ep.sock.setblocking(False)
    start = last_progress = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            active = [ep for ep in endpoints if not ep.done]
            if not active:
                return
            if now - start > timeout:
                raise AssertionError("transfer timed out:\n  " +
                                     "\n  ".join(ep.progress() for ep in endpoints))
            if stall is not None and now - last_progress > stall:
                return
            wake = now + 0.2
            for ep in endpoints:
                mask = 0
                if not ep.done:
                    mask = (0 if ep.eof else selectors.EVENT_READ) | \
                           (selectors.EVENT_WRITE if ep.wants_write(now) else 0)
                    if ep.next_wakeup() is not None:
                        wake = min(wake, ep.next_wakeup())
                old = masks.get(ep, 0)
                if mask != old:
                    if old and mask:
                        sel.modify(ep.sock, mask, ep)
                    elif mask:
                        sel.register(ep.sock, mask, ep)
                    else:
                        sel.unregister(ep.sock)
                    masks[ep] = mask
            before = sum(ep.sent + ep.received for ep in endpoints)
            for key, ev in sel.select(max(0.0, wake - time.monotonic())):
                ep = key.data
                if ev & selectors.EVENT_READ:
                    ep.on_readable()
                if ev & selectors.EVENT_WRITE and not ep.done:
                    ep.on_writable(time.monotonic())
            if sum(ep.sent + ep.received for ep in endpoints) != before:
                last_progress = time.monotonic()
    finally:
        sel.close()
        for ep in endpoints:
            if ep.sock.fileno() >= 0:
                ep.sock.setblocking(True)


def assert_delivered(a, b):
    """Everything a sent reached b, and everything b sent reached a, byte-exact."""
    for src, dst in ((a, b), (b, a)):
        assert src.error is None, src.progress()
        assert dst.error is None, dst.progress()
        assert dst.eof, f"{dst.name} saw no EOF: {dst.progress()}"
        assert (dst.received, dst.recv_hash.hexdigest()) == (src.sent, src.sent_hash.hexdigest()), \
            f"{src.name} -> {dst.name}: sent {src.sent} bytes, {dst.received} arrived" \
            + (" (same count, different bytes)" if dst.received == src.sent else "")


def pair_endpoints(app_sock, sink_sock, up, down, **kw):
    """Endpoints for an app socket (sends `up` bytes) and its sink side (sends `down`)."""
    return (Endpoint(app_sock, up, name="app", **kw),
            Endpoint(sink_sock, down, name="sink", **kw))


class Background:
    """run_endpoints in a thread: a transfer that is in progress while the test
    does something else.  check() finishes open-ended endpoints, joins and
    asserts byte-exact delivery."""

    def __init__(self, app_sock, sink_sock, *, pace=0.01, chunk=16 * KiB):
        self.app, self.sink = pair_endpoints(app_sock, sink_sock, None, None,
                                             pace=pace, chunk=chunk)
        self._exc = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="transfer")
        self._thread.start()

    def _run(self):
        try:
            run_endpoints([self.app, self.sink], timeout=wait_time(300))
        except BaseException as e:   # reported by check()
            self._exc = e

    @property
    def moved(self):
        return self.app.received + self.sink.received

    def wait_moving(self, nbytes=256 * KiB, timeout=None):
        deadline = time.monotonic() + (timeout or wait_time(15))
        while self.moved < nbytes:
            assert time.monotonic() < deadline, "background transfer is not moving: " + \
                self.app.progress() + "; " + self.sink.progress()
            assert self._thread.is_alive(), f"background transfer ended: {self._exc!r}"
            time.sleep(0.02)

    def check(self, timeout=None):
        self.app.finish()
        self.sink.finish()
        self._thread.join(timeout or wait_time(60))
        assert not self._thread.is_alive(), "background transfer did not finish: " + \
            self.app.progress() + "; " + self.sink.progress()
        if self._exc:
            raise self._exc
        assert_delivered(self.app, self.sink)
        return self.app.sent + self.sink.sent


# ---------------------------------------------------------------------------
# logs

_LOGFMT_FIELD = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def parse_log_line(line):
    """A logfmt or JSON log line -> dict of str; {} for anything else."""
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
    fields = {}
    for key, value in _LOGFMT_FIELD.findall(line):
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        fields[key] = value
    return fields


class Daemon:
    """A tlsfwd daemon process; stderr (the log) goes to a file in tmp_path."""

    def __init__(self, prog, args, workdir, name, env=None, listen=None):
        self.prog = prog
        self.name = name
        self.args = list(args)
        self.address = listen
        self.log_path = workdir / f"{name}.stderr"
        self.out_path = workdir / f"{name}.stdout"
        self.vg_path = workdir / f"{name}.valgrind"
        self.reaped = False
        self.expect_denied = False      # a test makes it call what the sandbox denies
        cmd = daemon_command(prog, self.args, self.vg_path)
        full_env = dict(os.environ, **(env or {}))
        with open(self.log_path, "wb") as err, open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=full_env, start_new_session=True)
        self.pid = self.proc.pid

    # -- logs --
    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def records(self):
        return [r for r in map(parse_log_line, self.log_text().splitlines()) if r]

    def warnings(self, **match):
        """Warn-level records whose fields equal every key=value in `match`,
        but the one about running as root without --user: the suite runs as
        root (test_sandbox.py checks that line)."""
        return [r for r in self.records() if r.get("level") in ("warn", "warning")
                and not r.get("msg", "").startswith("running as root")
                and all(r.get(k) == str(v) for k, v in match.items())]

    def describe(self, lines=40):
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        text = f"{self.name} (pid {self.pid}) {' '.join(self.args)}\n--- stderr tail ---\n{tail}"
        if self.vg_path.exists():
            text += "\n--- valgrind ---\n" + self.vg_path.read_text(errors="replace")[-4000:]
        return text

    def wait_for(self, predicate, timeout=None, what="a log line"):
        """Wait until some log record satisfies predicate; return it."""
        deadline = time.monotonic() + (timeout or wait_time(15))
        while True:
            for r in self.records():
                if predicate(r):
                    return r
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) "
                                     f"while waiting for {what}\n{self.describe()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.describe()}")
            time.sleep(0.05)

    def wait_warning(self, timeout=None, **match):
        desc = " ".join(f"{k}={v}" for k, v in match.items())
        return self.wait_for(lambda r: r.get("level") in ("warn", "warning")
                             and all(r.get(k) == str(v) for k, v in match.items()),
                             timeout, f"a warn line with {desc}")

    def wait_listening(self):
        self.wait_for(lambda r: r.get("msg") == "listening", wait_time(20), "msg=listening")
        return self

    def wait_listeners_closed(self, timeout=None):
        """Wait until no socket listens on the daemon's --listen port any more
        (after "stopping", each worker closes its listener; no line says so)."""
        port = split_addr(self.address)[1]
        deadline = time.monotonic() + (timeout or wait_time(15))
        while listening(port):
            assert time.monotonic() < deadline, \
                f"{self.name} still listens on {self.address}\n{self.describe()}"
            time.sleep(0.02)

    # -- process --
    @property
    def running(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self.name}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=None):
        """Wait for the process to exit by itself; return its status."""
        try:
            rc = self.proc.wait(timeout or wait_time(30))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit\n{self.describe()}") from None
        self.reaped = True
        return rc

    def stop(self, sig=SIGTERM, timeout=None):
        """Signal it and wait; return the exit status (killed after timeout)."""
        if self.running:
            self.signal(sig)
        try:
            return self.wait_exit(timeout)
        finally:
            if self.running:
                self.proc.kill()
                self.proc.wait()


def daemon_command(prog, args, vg_log):
    binary = BUILD / prog
    if not binary.exists():
        pytest.fail(f"{binary} does not exist (build it, or set TLSFWD_BUILD)", pytrace=False)
    cmd = [str(binary), *map(str, args)]
    if VALGRIND and "--sandbox" not in cmd and "--no-sandbox" not in cmd:
        # valgrind (3.19) runs the guest's system calls itself and has no
        # landlock_* or seccomp(2): it answers ENOSYS, and a filter would
        # bind valgrind's own calls.  The sandbox is tested without it.
        cmd.append("--no-sandbox")
    if VALGRIND:
        cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite", f"--log-file={vg_log}", *cmd]
    return cmd


def flags(opts):
    """{'max_conns': 5, 'server': [a, b], 'check': True} -> ['--max-conns', '5', ...]."""
    out = []
    for key, value in opts.items():
        name = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(name)
        elif isinstance(value, (list, tuple)):
            for v in value:
                out += [name, str(v)]
        else:
            out += [name, str(value)]
    return out


class RssSampler:
    """Samples VmRSS (KiB) of daemons every 20 ms in a thread, from creation
    until stop(): .base (at the start), .peak, and growth() = peak - base."""

    def __init__(self, daemons):
        self.daemons = daemons
        self.base = {d.name: d.rss_kib() for d in daemons}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.02):
            for d in self.daemons:
                if d.running:
                    self.peak[d.name] = max(self.peak[d.name], d.rss_kib())

    def stop(self):
        self._stop.set()
        self._thread.join()

    def growth(self):
        return {name: self.peak[name] - self.base[name] for name in self.base}


# ---------------------------------------------------------------------------
# sinks

class TcpSink:
    """A plain TCP listener standing in for Fluentd: the test accepts and
    drives each upstream connection itself."""

    def __init__(self, harness, host="127.0.0.1"):
        self._harness = harness
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.bind((host, 0))
        self.lsock.listen(1024)
        self.address = fmt_addr(self.lsock.getsockname())

    def accept(self, timeout=None):
        """The next upstream connection (AssertionError if none arrives)."""
        self.lsock.settimeout(timeout or wait_time(15))
        try:
            sock, _ = self.lsock.accept()
        except socket.timeout:
            raise AssertionError(f"no upstream connection to {self.address}") from None
        sock.settimeout(wait_time(15))
        return self._harness.track(sock)

    def pending(self, wait):
        """True if a connection is waiting to be accepted within `wait` seconds."""
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ)
        try:
            return bool(sel.select(wait))
        finally:
            sel.close()

    def close(self):
        self.lsock.close()


class TlsEchoServer:
    """A Python ssl server requiring a client certificate; records the SNI and
    the client certificate's subject, then echoes.  Listens on the same port
    on 127.0.0.1 and ::1, so `localhost` works whichever address comes first."""

    def __init__(self, pki, identity, maximum_version=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if maximum_version is not None:
            ctx.maximum_version = maximum_version
        ctx.load_cert_chain(identity.cert, identity.key)
        ctx.load_verify_locations(pki.ca.cert)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.sni_callback = self._sni
        self.ctx = ctx
        self.sni = []
        self.subjects = []
        self.errors = []
        self.lsocks = []
        for _ in range(20):
            port = free_port()
            try:
                self.lsocks = [self._listen(socket.AF_INET, "127.0.0.1", port)]
                self.lsocks.append(self._listen(socket.AF_INET6, "::1", port))
                break
            except OSError:
                for ls in self.lsocks:
                    ls.close()
        self.port = port
        for ls in self.lsocks:
            threading.Thread(target=self._serve, args=(ls,), daemon=True).start()

    @staticmethod
    def _listen(family, host, port):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            s.listen(16)
        except OSError:
            s.close()
            raise
        return s

    def _sni(self, sslsock, name, ctx):
        self.sni.append(name)

    def _serve(self, lsock):
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.subjects.append(dict(x[0] for x in tls.getpeercert()["subject"]))
                while data := tls.recv(65536):
                    tls.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self.errors.append(e)

    def close(self):
        for ls in self.lsocks:
            try:
                ls.shutdown(socket.SHUT_RDWR)     # wakes the accepting thread
            except OSError:
                pass
            ls.close()


# ---------------------------------------------------------------------------
# the per-test harness

class Harness:
    def __init__(self, tmp_path, pki):
        self.tmp = tmp_path
        self.pki = pki
        self.daemons = []
        self._socks = []
        self._procs = []
        self._closers = []

    # -- resources torn down by close() --
    def track(self, sock):
        self._socks.append(sock)
        return sock

    def connect(self, addr, timeout=None, allow_reset=False):
        """A tracked TCP connection to addr (a Daemon, a sink or 'host:port')."""
        addr = getattr(addr, "address", addr)
        return self.track(connect(addr, timeout, allow_reset))

    def closing(self, helper):
        """A helper (sink, listener, relay) whose close() runs at teardown."""
        self._closers.append(helper.close)
        return helper

    def tcp_sink(self, host="127.0.0.1"):
        return self.closing(TcpSink(self, host))

    def fwd_sink(self, **kw):
        return self.closing(ForwardSink(**kw).start())

    def tls_server(self, identity, maximum_version=None):
        return self.closing(TlsEchoServer(self.pki, identity, maximum_version))

    def popen(self, cmd, **kw):
        """A helper process (openssl, stunnel, node) killed at teardown."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(c) for c in cmd], start_new_session=True, **kw)
        self._procs.append(p)
        return p

    def file(self, name, text):
        path = self.tmp / name
        path.write_text(text)
        return path

    def stunnel(self, service, name="tlsfwd-e2e"):
        """stunnel4 in the foreground with one service (a dict of its options);
        waits until it is configured, returns the process."""
        conf = self.file(f"{name}.conf", "foreground = yes\npid =\nsyslog = no\ndebug = 5\n\n"
                         f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in service.items()))
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as f:
            p = self.popen(["stunnel4", conf], stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_time(15)
        while b"Configuration successful" not in log.read_bytes():
            assert p.poll() is None, f"stunnel4 exited {p.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"stunnel4 did not start:\n{log.read_text()}"
            time.sleep(0.05)
        return p

    # -- daemons --
    def _start(self, prog, opts, wait, env, name):
        name = name or f"{prog}-{sum(d.prog == prog for d in self.daemons) + 1}"
        d = Daemon(prog, flags(opts), self.tmp, name, env=env, listen=opts.get("listen"))
        self.daemons.append(d)
        return d.wait_listening() if wait else d

    def server(self, upstream, *, identity=None, wait=True, env=None, name=None, **opts):
        """Start tlsfwd-server relaying to `upstream` (a sink, a Daemon or 'host:port').
        Options are the long flag names with '_' for '-'; None drops a default."""
        identity = identity or self.pki.server
        base = dict(listen=f"127.0.0.1:{free_port()}",
                    upstream=getattr(upstream, "address", upstream),
                    ca=self.pki.ca.cert, cert=identity.cert, key=identity.key,
                    workers=2, log_level="info")
        return self._start("tlsfwd-server", {**base, **opts}, wait, env, name)

    def client(self, server, *, identity=None, wait=True, env=None, name=None, **opts):
        """Start tlsfwd-client forwarding to `server` (a Daemon, 'host:port' or a list)."""
        identity = identity or self.pki.client
        servers = server if isinstance(server, (list, tuple)) else [server]
        base = dict(listen=f"127.0.0.1:{free_port()}",
                    server=[getattr(s, "address", s) for s in servers],
                    ca=self.pki.ca.cert, cert=identity.cert, key=identity.key,
                    workers=2, log_level="info")
        return self._start("tlsfwd-client", {**base, **opts}, wait, env, name)

    def run(self, prog, *args, env=None, timeout=None):
        """Run a daemon binary to completion (--check, --version, startup errors)."""
        cmd = daemon_command(prog, args, self.tmp / f"{prog}-run.valgrind")
        return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, **(env or {})),
                              timeout=timeout or wait_time(30))

    # -- teardown --
    def close(self):
        """Close every socket, helper and sink first, so no connection keeps a
        daemon draining; then SIGTERM the daemons, each of which must exit 0."""
        problems = []
        for s in self._socks:
            s.close()
        for close in self._closers:    # also resets connections left in a sink's backlog
            close()
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        for p in self._procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        live = [d for d in self.daemons if not d.reaped]
        for d in live:
            if d.running:
                d.signal(SIGTERM)
        for d in live:
            try:
                rc = d.wait_exit(wait_time(30))
            except AssertionError as e:
                d.proc.kill()
                d.proc.wait()
                problems.append(f"{d.name} did not exit on SIGTERM at teardown\n{e}")
                continue
            if rc != 0:
                problems.append(f"{d.name} exited {rc} at teardown (expected 0 after SIGTERM)\n"
                                f"{d.describe()}")
        for d in self.daemons:      # the seccomp allow-list missed a call the daemon made
            if "denied by the sandbox" in d.log_text() and not d.expect_denied:
                problems.append(f"{d.name} made a system call the sandbox denies\n{d.describe()}")
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


class Tunnel:
    """app -> tlsfwd-client -> mTLS -> tlsfwd-server -> sink, all on loopback."""

    def __init__(self, tf, sink=None, server_opts=None, client_opts=None):
        self.tf = tf
        self.sink = sink or tf.tcp_sink()
        self.server = tf.server(self.sink, **(server_opts or {}))
        self.client = tf.client(self.server, **(client_opts or {}))

    def open(self):
        """An app connection through the tunnel and the sink's end of it."""
        app = self.tf.connect(self.client)
        return app, self.sink.accept()


# ---------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.tlsfwd_failed = report.failed


@pytest.fixture
def tf(request, tmp_path, pki):
    h = Harness(tmp_path, pki)
    try:
        yield h
    finally:
        if getattr(request.node, "tlsfwd_failed", False):
            for d in h.daemons:        # shown under "Captured stdout teardown"
                print(f"\n=== {d.describe(lines=60)}")
        h.close()


@pytest.fixture
def tunnel(tf):
    return Tunnel(tf)


_npm_lock = threading.Lock()


@pytest.fixture(scope="session")
def node_sender():
    """tests/node/send.js, with its node_modules installed (`npm ci`) if missing."""
    node_dir = ROOT / "tests" / "node"
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/deps.sh installs it)", pytrace=False)
    with _npm_lock:
        if not (node_dir / "node_modules" / "@fluent-org" / "logger").is_dir():
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                               cwd=node_dir, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                pytest.fail(f"npm ci in {node_dir} failed:\n{r.stdout}\n{r.stderr}",
                            pytrace=False)
    return node_dir / "send.js"
