"""tlsfwd fault suite harness: the e2e harness (tests/e2e/conftest.py), plus
network namespaces, a partition switch, a sink process that can be killed, and
two forward-protocol senders that keep score.

Topology (one per test, made and removed by the `rig` fixture):

    namespace C (tffPIDc)                        namespace S (tffPIDs)
    sender -> tlsfwd-client 127.0.0.1:24224      tlsfwd-server 10.213.0.2:24284
              --server 10.213.0.2:24284  ----->      --upstream 127.0.0.1:24224 -> fwdsink.py
              veth tffPIDa 10.213.0.1/30   veth tffPIDb 10.213.0.2/30

Nothing is added to the root namespace: the addresses exist only inside the
two namespaces, and the partition is an nft table inside S that drops
everything on its veth end.  Deleting the namespaces removes the veth pair and
the rules; namespaces left by a killed run (tffPID? whose PID is gone) are
removed when the next run starts.

Needs root (ip netns, nft).  Not meant for valgrind.
"""

import ctypes
import errno
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest

HERE = Path(__file__).resolve().parent
E2E = HERE.parent / "e2e"

# tests/e2e/conftest.py under another module name (this file is `conftest`),
# with tests/e2e on the path for its own imports (fwdsink, pki).
sys.path.insert(0, str(E2E))
_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
sys.modules["e2e_conftest"] = e2e
_spec.loader.exec_module(e2e)

# The e2e fixtures and report hook, re-exported so that pytest finds them here.
pki = e2e.pki
tf = e2e.tf
pytest_runtest_makereport = e2e.pytest_runtest_makereport
wait_time = e2e.wait_time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

CLIENT_PORT = 24224      # tlsfwd-client's listener, in C
SERVER_PORT = 24284      # tlsfwd-server's listener, in S
SINK_PORT = 24224        # fwdsink.py, on S's loopback


def sh(*cmd, input=None):
    """Run a command (ip, nft) to completion; AssertionError with its output if it fails."""
    r = subprocess.run([str(c) for c in cmd], input=input, capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): "
                             f"{r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


# ---------------------------------------------------------------------------
# namespaces

class Netns:
    """A named network namespace with its loopback up."""

    def __init__(self, name):
        self.name = name
        sh("ip", "netns", "add", name)
        self.prefix = ["ip", "netns", "exec", name]
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def call(self, fn, *args, **kw):
        """fn(*args) on a thread that first joined this namespace (setns is
        per thread): sockets it creates live here, and stay usable from any
        thread.  Returns fn's result or raises its exception."""
        out = {}

        def run():
            try:
                with open(f"/run/netns/{self.name}") as f:
                    if _libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns {self.name}: {os.strerror(err)}")
                out["value"] = fn(*args, **kw)
            except BaseException as e:          # re-raised in the caller
                out["error"] = e

        t = threading.Thread(target=run, name=f"in-{self.name}", daemon=True)
        t.start()
        t.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    def connect(self, addr, timeout=None):
        """A TCP connection to addr made from inside this namespace (refusal raises)."""
        return self.call(e2e.connect, addr, timeout)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def _remove_stale_namespaces():
    """Namespaces tffPID[cs] of runs that are gone (a SIGKILLed pytest)."""
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        m = re.match(r"(tff(\d+)[cs])\b", line)
        if m and not Path(f"/proc/{m.group(2)}").exists():
            subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)


class Net:
    """Namespaces C and S joined by a veth pair, and the partition switch."""

    TABLE = "tlsfwd_faults"

    def __init__(self):
        _remove_stale_namespaces()
        tag = f"tff{os.getpid()}"
        # Fixed addresses: they exist only inside this pair of namespaces, so
        # concurrent runs (other pids, other namespaces) cannot collide.
        self.c_addr, self.s_addr = "10.213.0.1", "10.213.0.2"
        self.c_dev, self.s_dev = tag + "a", tag + "b"
        self.namespaces = []
        try:
            self.c = self._ns(tag + "c")
            self.s = self._ns(tag + "s")
            sh("ip", "-n", self.c.name, "link", "add", self.c_dev, "type", "veth",
               "peer", "name", self.s_dev, "netns", self.s.name)
            for ns, dev, addr in ((self.c, self.c_dev, self.c_addr),
                                  (self.s, self.s_dev, self.s_addr)):
                sh("ip", "-n", ns.name, "addr", "add", f"{addr}/30", "dev", dev)
                sh("ip", "-n", ns.name, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise
        self.partitioned = False

    def _ns(self, name):
        subprocess.run(["ip", "netns", "del", name], capture_output=True)   # a leftover
        ns = Netns(name)
        self.namespaces.append(ns)
        return ns

    def partition(self):
        """Drop every packet in and out of S's veth end (both directions, silently:
        no RST, no ICMP), as a cut cable or a dead switch would."""
        sh(*self.s.prefix, "nft", "-f", "-", input=f"""
table inet {self.TABLE} {{
  chain in {{
    type filter hook input priority filter; policy accept;
    iifname "{self.s_dev}" drop
  }}
  chain out {{
    type filter hook output priority filter; policy accept;
    oifname "{self.s_dev}" drop
  }}
}}
""")
        self.partitioned = True

    def heal(self):
        if self.partitioned:
            sh(*self.s.prefix, "nft", "delete", "table", "inet", self.TABLE)
            self.partitioned = False

    def close(self):
        for ns in self.namespaces:
            ns.delete()
        self.namespaces = []


# ---------------------------------------------------------------------------
# processes in a namespace

def ns_daemon(tf, ns, prog, name, **opts):
    """Start a tlsfwd daemon inside `ns` (`ip netns exec` execs it in place,
    so its pid is the daemon's) and wait for `listening`.  It joins the
    harness: at teardown it gets SIGTERM and must exit 0, unless the test
    reaped it (Daemon.wait_exit after a SIGKILL)."""
    orig = e2e.daemon_command
    e2e.daemon_command = lambda p, a, vg: ns.prefix + orig(p, a, vg)
    try:
        d = e2e.Daemon(prog, e2e.flags(opts), tf.tmp, name, listen=opts.get("listen"))
    finally:
        e2e.daemon_command = orig
    tf.daemons.append(d)
    return d.wait_listening()


class SinkProc:
    """tests/e2e/fwdsink.py as its own process in `ns` (so it can be SIGKILLed
    or SIGSTOPped like Fluentd), answering acks, printing each event to a file
    that survives restarts.  It prints (and flushes) an event before it sends
    the ack that covers it, so an acked event is always in the file."""

    _LINE = re.compile(r" (\S+): \{.*\"seq\":(\d+)")

    def __init__(self, tf, ns, port=SINK_PORT, name="sink"):
        self.tf = tf
        self.ns = ns
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.events_path = tf.tmp / f"{name}.events"
        self.log_path = tf.tmp / f"{name}.stderr"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        with open(self.events_path, "ab") as out, open(self.log_path, "ab") as err:
            self.proc = self.tf.popen(
                [*self.ns.prefix, sys.executable, "-u", E2E / "fwdsink.py",
                 "--listen", self.address, "--print"], stdout=out, stderr=err)
        want = self.starts
        deadline = time.monotonic() + wait_time(15)
        while self.log_path.read_text(errors="replace").count("fwdsink: listening") < want:
            assert self.proc.poll() is None, f"fwdsink exited: {self.log_path.read_text()}"
            assert time.monotonic() < deadline, \
                f"fwdsink did not listen: {self.log_path.read_text()}"
            time.sleep(0.02)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def kill(self):
        """SIGKILL, as the OOM killer would; its sockets close (FIN, or RST
        where unread bytes were waiting)."""
        self.proc.kill()
        self.proc.wait(10)

    def seqs(self, tag):
        """Every seq the sink recorded for `tag` (a list: duplicates stay)."""
        out = []
        for line in self.events_path.read_text(errors="replace").splitlines():
            m = self._LINE.search(line)
            if m and m.group(1) == tag:
                out.append(int(m.group(2)))
        return out


# ---------------------------------------------------------------------------
# senders

def _failure(op, e):
    """'write: ECONNRESET' -- what the sender saw, for the summaries."""
    if isinstance(e, socket.timeout):
        return f"{op}: timeout"
    return f"{op}: {errno.errorcode.get(e.errno, e.errno)}"


def _event(seq):
    return {"seq": seq, "message": f"event {seq}", "pad": "x" * (seq % 61)}


class SenderThread:
    """What both senders share: a thread running _run() until stop(), the
    exception it died of (fatal), and bounded waits that fail if it died."""

    def __init__(self, name):
        self.fatal = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _guarded(self):
        try:
            self._run()
        except BaseException as e:
            self.fatal = e

    def _wait(self, done, timeout, what):
        """Poll done() until true; AssertionError naming `what` at timeout."""
        deadline = time.monotonic() + (timeout or wait_time(30))
        while not done():
            assert self._thread.is_alive(), f"sender died: {self.fatal!r}"
            assert time.monotonic() < deadline, f"{what()}: {self.summary()}"
            time.sleep(0.01)

    def _join(self, timeout, what):
        """Ask the thread to stop and wait for it; re-raise what it died of."""
        self._stop.set()
        self._thread.join(timeout or wait_time(60))
        assert not self._thread.is_alive(), f"{what}: {self.summary()}"
        if self.fatal is not None:
            raise self.fatal


class AckSender(SenderThread):
    """At-least-once sender, as fluent-logger with require_ack_response does it:
    Forward-mode chunks of `per_chunk` events, each with option {"chunk": id};
    a chunk is done when {"ack": id} comes back.  An error, EOF or ack timeout
    before the ack closes the connection, and the same chunk is sent again on a
    new one (after a short back-off; refused connects are retried too).
    Generates chunks until stop(), then finishes the current one.  Runs on
    its own thread; sockets are made in namespace `ns`."""

    def __init__(self, ns, addr, tag="acked", per_chunk=50, pace=0.005, ack_timeout=10):
        super().__init__("ack-sender")
        self.ns = ns
        self.addr = addr
        self.tag = tag
        self.per_chunk = per_chunk
        self.pace = pace
        self.ack_timeout = ack_timeout
        self.acked = 0            # events acknowledged
        self.sent_chunks = 0      # chunk transmissions, retries included
        self.retries = 0          # attempts that got no ack
        self.connects = 0
        self.failures = {}        # what the sender saw: kind -> count
        self._sock = None
        self._unpacker = None

    def _saw(self, kind):
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send_chunk(self, chunk_id, payload):
        """True once the chunk is acked on the current connection."""
        if self._sock is None:
            try:
                self._sock = self.ns.connect(self.addr, timeout=5)
            except OSError as e:
                self._saw(_failure("connect", e))
                return False
            self.connects += 1
            self._unpacker = msgpack.Unpacker(raw=False)
        s = self._sock
        op = "write"
        try:
            s.settimeout(self.ack_timeout)
            s.sendall(payload)
            self.sent_chunks += 1
            op = "read"
            deadline = time.monotonic() + self.ack_timeout
            while True:
                for obj in self._unpacker:
                    if isinstance(obj, dict) and obj.get("ack") == chunk_id:
                        return True
                    raise AssertionError(f"unexpected answer {obj!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                s.settimeout(left)
                data = s.recv(65536)
                if not data:
                    self._saw("read: EOF before the ack")
                    break
                self._unpacker.feed(data)
        except OSError as e:
            self._saw(_failure(op, e))
        self._drop()
        return False

    def _run(self):
        seq = 0
        try:
            while not self._stop.is_set():
                chunk_id = os.urandom(16).hex()
                entries = [[int(time.time()), _event(s)] for s in range(seq, seq + self.per_chunk)]
                payload = msgpack.packb([self.tag, entries, {"chunk": chunk_id,
                                                             "size": len(entries)}])
                backoff = 0.02
                while not self._send_chunk(chunk_id, payload):
                    self.retries += 1
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 0.5)
                seq += self.per_chunk
                self.acked = seq
                if self.pace:
                    time.sleep(self.pace)
        finally:
            self._drop()

    def wait_acked(self, count, timeout=None):
        """Wait until at least `count` events are acked."""
        self._wait(lambda: self.acked >= count, timeout,
                   lambda: f"only {self.acked} of {count} events acked")

    def stop(self, timeout=None):
        """Stop after the current chunk is acked; AssertionError if it is not by timeout."""
        self._join(timeout, "sender still retrying")
        return self.acked

    def summary(self):
        return (f"acked={self.acked} chunks_sent={self.sent_chunks} retries={self.retries} "
                f"connects={self.connects} failures={self.failures}")


class Conn:
    """One connection of a PlainSender: its events and how it ended."""

    def __init__(self, first, burst):
        self.first = first
        self.last = first            # one past the last seq written (fully or in part)
        self.burst = burst
        self.outcome = None          # "ok" (clean EOF after the half-close) or what failed

    def seqs(self):
        return range(self.first, self.last)


class PlainSender(SenderThread):
    """A sender without acks, checking the only thing it can: each connection
    writes `per_conn` Message events, half-closes and reads to the end.  A
    clean EOF after the half-close means "delivered" to it; anything else
    (connect refused or reset, a write, shutdown or read failing, nothing
    within `timeout`) is a failure it saw, and it would send those events
    again.  Connections alternate: paced (writes of `per_write` events,
    `pace` seconds apart) and, with burst=True, a burst (every event in one
    write, half-close at once, as a logger flushing its buffer does).  Loops
    until stop(); on its own thread, sockets made in `ns`.

    inject(fault) runs `fault` on the sender's thread in the middle of its
    next paced connection, with half of its writes still to come: a process
    killed there has the sender writing on after its death, so the loss is
    one the tunnel can report (a sink killed between reading bytes and
    recording them, just before a connection's last write, is a loss no
    sender without acks can learn of, whatever the tunnel does)."""

    def __init__(self, ns, addr, tag="plain", per_conn=200, per_write=10, pace=0.003,
                 burst=True, timeout=30):
        super().__init__("plain-sender")
        self.ns = ns
        self.addr = addr
        self.tag = tag
        self.per_conn = per_conn
        self.per_write = per_write
        self.pace = pace
        self.burst = burst
        self.timeout = timeout
        self.seq = 0
        self.conns = []
        self._fault = None
        self._fault_done = threading.Event()

    def one(self, burst=False):
        """Run one connection now (on the caller's thread); return its Conn."""
        c = Conn(self.seq, burst)
        self.conns.append(c)
        try:
            s = self.ns.connect(self.addr, timeout=5)
        except OSError as e:
            c.outcome = _failure("connect", e)
            return c
        op = "write"
        try:
            s.settimeout(self.timeout)
            end = self.seq + self.per_conn
            step = self.per_conn if burst else self.per_write
            while self.seq < end:
                halfway = self.seq - c.first >= self.per_conn // 2
                if not burst and halfway and self._fault is not None:
                    fault, self._fault = self._fault, None
                    fault()
                    self._fault_done.set()
                n = min(step, end - self.seq)
                data = b"".join(msgpack.packb([self.tag, int(time.time()), _event(q)])
                                for q in range(self.seq, self.seq + n))
                self.seq += n
                c.last = self.seq
                s.sendall(data)
                if not burst and self.pace:
                    time.sleep(self.pace)
            op = "shutdown"
            s.shutdown(socket.SHUT_WR)
            op = "read"
            while True:
                if not s.recv(65536):
                    c.outcome = "ok"
                    break
        except OSError as e:
            c.outcome = _failure(op, e)
        finally:
            s.close()
        return c

    def _run(self):
        n = 0
        while not self._stop.is_set():
            n += 1
            if self.one(burst=self.burst and n % 2 == 0).outcome != "ok":
                time.sleep(0.01)

    def inject(self, fault, timeout=None):
        """Run fault() mid-way through the next paced connection; return once it ran."""
        self._fault_done.clear()
        self._fault = fault
        if not self._fault_done.wait(timeout or wait_time(30)):
            self._fault = None
            raise AssertionError(f"no paced connection to inject into: {self.summary()}")

    def wait_conns(self, count, outcome="ok", timeout=None):
        """Wait until `count` more connections ended with `outcome` than now."""
        want = sum(c.outcome == outcome for c in self.conns) + count
        self._wait(lambda: sum(c.outcome == outcome for c in list(self.conns)) >= want,
                   timeout, lambda: f"no {outcome} connection")

    def stop(self, timeout=None):
        self._join(timeout, "sender stuck")

    def summary(self):
        kinds = {}
        for c in self.conns:
            kinds[c.outcome] = kinds.get(c.outcome, 0) + 1
        return f"{len(self.conns)} connections: {kinds}"


def assert_all_delivered(sink, sender):
    """Every event an AckSender had acked is at the sink (duplicates allowed)."""
    got = set(sink.seqs(sender.tag))
    missing = [s for s in range(sender.acked) if s not in got]
    assert not missing, (f"{len(missing)} acked events never arrived (first {missing[:10]}); "
                         f"sender: {sender.summary()}")


def assert_no_silent_loss(sink, sender):
    """Every connection that ended with a clean EOF after the half-close
    delivered all its events: a loss must show as a failure to the sender."""
    got = set(sink.seqs(sender.tag))
    silent = []
    for c in sender.conns:
        if c.outcome == "ok":
            lost = [s for s in c.seqs() if s not in got]
            if lost:
                silent.append(f"{'burst' if c.burst else 'paced'} connection, events "
                              f"{c.first}..{c.last - 1}: {len(lost)} lost, "
                              f"yet the sender read a clean EOF")
    assert not silent, (f"{len(silent)} connections lost events silently "
                        f"({sender.summary()}):\n  " + "\n  ".join(silent[:10]))


# ---------------------------------------------------------------------------
# the rig

class Rig:
    """sender -> tlsfwd-client (C) -> veth -> tlsfwd-server (S) -> fwdsink.py (S)."""

    def __init__(self, net, tf):
        self.net = net
        self.tf = tf
        self.sink = SinkProc(tf, net.s).start()
        self.servers = 0
        self.server = self.start_server()
        self.client = ns_daemon(
            tf, net.c, "tlsfwd-client", "client", listen=f"127.0.0.1:{CLIENT_PORT}",
            server=f"{net.s_addr}:{SERVER_PORT}", server_name="localhost",
            ca=tf.pki.ca.cert, cert=tf.pki.client.cert, key=tf.pki.client.key,
            connect_timeout=3, workers=1, log_level="info")
        self.address = self.client.address
        self._stopped = set()

    def start_server(self):
        self.servers += 1
        return ns_daemon(
            self.tf, self.net.s, "tlsfwd-server", f"server-{self.servers}",
            listen=f"{self.net.s_addr}:{SERVER_PORT}", upstream=self.sink.address,
            ca=self.tf.pki.ca.cert, cert=self.tf.pki.server.cert, key=self.tf.pki.server.key,
            connect_timeout=3, workers=1, log_level="info")

    def kill_server(self):
        """SIGKILL tlsfwd-server (reaped: teardown no longer expects exit 0)."""
        self.server.signal(signal.SIGKILL)
        self.server.wait_exit(wait_time(10))

    def restart_server(self):
        self.server = self.start_server()

    def pid(self, which):
        return {"client": self.client.pid, "server": self.server.pid, "sink": self.sink.pid}[which]

    def stop(self, which):
        """SIGSTOP one process; the rig SIGCONTs it at teardown if the test did not."""
        pid = self.pid(which)
        os.kill(pid, signal.SIGSTOP)
        self._stopped.add(pid)

    def cont(self, which):
        pid = self.pid(which)
        os.kill(pid, signal.SIGCONT)
        self._stopped.discard(pid)

    def close(self):
        self.net.heal()
        for pid in self._stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def root():
    if os.geteuid() != 0:
        pytest.fail("the fault suite needs root (ip netns, nft)", pytrace=False)
    for tool in ("ip", "nft"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(f"{tool} is not installed (scripts/deps.sh installs it)", pytrace=False)


@pytest.fixture
def net(root):
    n = Net()
    try:
        yield n
    finally:
        n.close()


@pytest.fixture
def rig(net, tf):
    # net before tf: torn down after it, so the daemons and the sink are gone
    # (SIGTERM, exit 0) before their namespaces are deleted.
    r = Rig(net, tf)
    try:
        yield r
    finally:
        r.close()
