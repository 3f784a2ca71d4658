"""systemd integration (issue 14 §2): the daemons speak sd_notify(3)'s
datagram protocol to a fake NOTIFY_SOCKET the test binds (a path and an
abstract name): READY=1 once the listener accepts, RELOADING=1 (with
MONOTONIC_USEC=) and READY=1 around a SIGHUP reload, good or bad, STOPPING=1
at SIGTERM, STATUS= with the connection counts, WATCHDOG=1 at half of
WATCHDOG_USEC while every worker's loop runs, and none while one is stuck.
The unit files under deploy/systemd pass `systemd-analyze verify`."""

import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from signal import SIGHUP, SIGTERM

import pytest

from conftest import ROOT, connect, daemon_command, flags, free_port, wait_time

ROLES = ("tlsfwd-server", "tlsfwd-client")
SLOWDOWN = wait_time(1)     # 10 under valgrind


class FakeNotify:
    """An AF_UNIX datagram socket standing in for systemd's notification
    socket: .env is what a daemon's NOTIFY_SOCKET should be; every datagram
    received is kept with its arrival time (time.monotonic())."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir = None
        if abstract:
            name = f"tlsfwd-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self._dir = tempfile.mkdtemp(prefix="tlsfwd-notify-")   # short: sun_path is 108 bytes
            path = os.path.join(self._dir, "notify")
            self.sock.bind(path)
            self.env = path
        self.msgs = []          # [(time, text)]
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.msgs.append((time.monotonic(), data.decode()))

    def messages(self, since=0.0):
        with self._lock:
            return [(t, m) for t, m in self.msgs if t >= since]

    def wait(self, predicate, timeout=None, since=0.0, what="a notification"):
        """The first message (time, text) after `since` that predicate(text) accepts."""
        deadline = time.monotonic() + (timeout or wait_time(15))
        while True:
            for t, m in self.messages(since):
                if predicate(m):
                    return t, m
            assert time.monotonic() < deadline, \
                f"timed out waiting for {what}; got {self.messages(since)!r}"
            time.sleep(0.02)

    def pings(self, since=0.0, until=None):
        return [t for t, m in self.messages(since)
                if "WATCHDOG=1" in m.split("\n") and (until is None or t <= until)]

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def fields(msg):
    return dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)


def has(key, value=None):
    """A predicate: the message assigns key (the value, if given)."""
    return lambda m: key in fields(m) and (value is None or fields(m)[key] == value)


@pytest.fixture
def notify():
    n = FakeNotify()
    yield n
    n.close()


def start(tf, role, notify_env, name=None, **opts):
    """The daemon of `role` with NOTIFY_SOCKET and maybe WATCHDOG_* in its
    environment (the client gets a tlsfwd-server of its own)."""
    opts.setdefault("drain_timeout", 1)    # a probe's connection does not hold up the stop
    if role == "tlsfwd-server":
        return tf.server(tf.tcp_sink(), env=notify_env, name=name, **opts)
    server = tf.server(tf.tcp_sink(), name="upstream-server", drain_timeout=1)
    return tf.client(server, env=notify_env, name=name, **opts)


def accepts(addr):
    try:
        connect(addr, timeout=wait_time(5)).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
@pytest.mark.parametrize("role", ROLES)
def test_ready_reload_stopping(tf, tmp_path, role, abstract):
    n = FakeNotify(abstract)
    tf.closing(n)
    # Own copies of the certificate, so a reload can be made to fail.
    cert = tmp_path / "cert.pem"
    ident = tf.pki.server if role == "tlsfwd-server" else tf.pki.client
    shutil.copy(ident.cert, cert)
    d = start(tf, role, {"NOTIFY_SOCKET": n.env}, wait=False, cert=cert)
    _, ready = n.wait(has("READY", "1"), what="READY=1")
    assert accepts(d.address), "READY=1 sent before the listener accepts"
    assert fields(ready)["STATUS"].startswith("accepting; connections: 0 active"), ready
    d.wait_listening()

    # A good reload: RELOADING=1 with the monotonic clock, then READY=1.
    t0 = time.monotonic()
    d.signal(SIGHUP)
    t_rel, rel = n.wait(has("RELOADING", "1"), since=t0, what="RELOADING=1")
    usec = int(fields(rel)["MONOTONIC_USEC"])
    assert abs(usec / 1e6 - time.monotonic()) < wait_time(5), rel
    _, back = n.wait(has("READY", "1"), since=t_rel, what="READY=1 after the reload")
    assert "reload failed" not in back, back
    d.wait_for(lambda r: r.get("msg", "").startswith("reloaded"), what="msg=reloaded")

    # A bad one: the certificate is junk.  Still READY=1 after it (the old
    # configuration serves), with STATUS= saying it failed.
    cert.write_text("not a certificate\n")
    t0 = time.monotonic()
    d.signal(SIGHUP)
    t_rel, _ = n.wait(has("RELOADING", "1"), since=t0, what="RELOADING=1 (bad reload)")
    _, back = n.wait(has("READY", "1"), since=t_rel, what="READY=1 after the failed reload")
    assert "the last reload failed" in fields(back)["STATUS"], back
    assert accepts(d.address)

    # SIGTERM: STOPPING=1, then a clean exit.
    t0 = time.monotonic()
    d.signal(SIGTERM)
    _, stop = n.wait(has("STOPPING", "1"), since=t0, what="STOPPING=1")
    assert fields(stop)["STATUS"].startswith("stopping"), stop
    assert d.wait_exit() == 0
    assert not [m for _, m in n.messages() if "READY=1" in m.split("\n")
                and fields(m).get("STATUS", "").startswith("stopping")]


@pytest.mark.parametrize("role", ROLES)
def test_status_counts_connections(tf, notify, role):
    d = start(tf, role, {"NOTIFY_SOCKET": notify.env})
    notify.wait(has("READY", "1"))
    held = [tf.connect(d) for _ in range(3)]
    t0 = time.monotonic()
    _, m = notify.wait(lambda m: "connections: 3 active, 3 accepted" in m, since=t0,
                       what="STATUS= with 3 active connections")
    assert set(fields(m)) == {"STATUS"}, m
    for s in held:
        s.close()
    notify.wait(lambda m: "connections: 0 active, 3 accepted" in m, since=t0,
                what="STATUS= with none active")
    # Sent when it changes, not every tick.
    statuses = [m for _, m in notify.messages() if m.startswith("STATUS=")]
    assert len(statuses) == len(set(statuses)), statuses


@pytest.mark.parametrize("role", ROLES)
def test_watchdog_pings_at_half_the_interval(tf, notify, role):
    interval = 1.0
    d = start(tf, role, {"NOTIFY_SOCKET": notify.env,
                         "WATCHDOG_USEC": str(int(interval * 1e6)),
                         "WATCHDOG_PID": ""})      # empty: as if unset
    t0, _ = notify.wait(has("READY", "1"))
    time.sleep(wait_time(4))
    pings = notify.pings(since=t0)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 6, pings
    gaps.sort()
    assert 0.35 <= gaps[len(gaps) // 2] <= 0.65 * SLOWDOWN, gaps   # half the interval
    assert max(gaps) < interval * SLOWDOWN, gaps     # never late enough for systemd to act
    assert d.running



@pytest.mark.parametrize("role", ROLES)
def test_watchdog_not_for_another_pid(tf, notify, role):
    """WATCHDOG_PID names another process (systemd's, for a wrapper): no pings."""
    start(tf, role, {"NOTIFY_SOCKET": notify.env, "WATCHDOG_USEC": "200000",
                     "WATCHDOG_PID": "1"})
    notify.wait(has("READY", "1"))
    time.sleep(wait_time(1))
    assert notify.pings() == []


class PipeLog:
    """A daemon's stderr as a pipe the test drains in a thread, and can stop
    draining and fill, so the next log line a thread writes blocks it."""

    def __init__(self):
        self.r, self.w = os.pipe()
        self.data = bytearray()
        self.draining = threading.Event()
        self.draining.set()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            if not self.draining.wait(0.1):
                continue
            ready, _, _ = select.select([self.r], [], [], 0.1)
            if ready:
                chunk = os.read(self.r, 65536)
                if not chunk:
                    return
                self.data += chunk

    def block(self):
        """Stop draining; fill the pipe with newlines: the next write waits."""
        self.draining.clear()
        time.sleep(0.3)     # the reader is parked
        # A file description of our own: O_NONBLOCK on the daemon's would
        # make its write fail instead of wait.
        fd = os.open(f"/proc/self/fd/{self.w}", os.O_WRONLY | os.O_NONBLOCK)
        try:
            for size in (4096, 1):
                try:
                    while True:
                        os.write(fd, b"\n" * size)
                except BlockingIOError:
                    pass
        finally:
            os.close(fd)

    def unblock(self):
        self.draining.set()

    def text(self):
        return bytes(self.data).decode(errors="replace")

    def close(self):
        self._stop = True
        self.draining.set()
        self._thread.join()
        os.close(self.r)
        os.close(self.w)


@pytest.mark.parametrize("role", ROLES)
def test_watchdog_stops_while_a_worker_is_stuck(tf, notify, role):
    """A worker blocked (here in write(2) of a log line, its stderr a pipe
    nobody reads: a real way for a worker to hang) stops the pings, while
    the main loop still runs (STATUS= says a worker's loop is not running);
    once it runs again the pings resume and a warning says for how long.
    The line: the server's refusal of a sender that is not TLS; the client's
    failed connect to a server that is not there (--accept-while-unreachable)."""
    log = PipeLog()
    tf.closing(log)
    listen = f"127.0.0.1:{free_port()}"
    if role == "tlsfwd-server":
        opts = dict(upstream=tf.tcp_sink().address, cert=tf.pki.server.cert,
                    key=tf.pki.server.key)
    else:
        opts = dict(server=f"127.0.0.1:{free_port()}", accept_while_unreachable=True,
                    cert=tf.pki.client.cert, key=tf.pki.client.key)
    opts.update(listen=listen, ca=tf.pki.ca.cert, workers=2, log_level="info")
    env = dict(os.environ, NOTIFY_SOCKET=notify.env, WATCHDOG_USEC="1000000")
    proc = subprocess.Popen(daemon_command(role, flags(opts), tf.tmp / "vg"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log.w, env=env, start_new_session=True)
    try:
        t0, _ = notify.wait(has("READY", "1"))
        notify.wait(lambda m: len(notify.pings(t0)) >= 3, what="three pings")

        log.block()
        junk = connect(listen)
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n")     # the worker logs a refusal
        t_block = time.monotonic()
        notify.wait(lambda m: "event loop is not running" in m, since=t_block,
                            timeout=wait_time(5), what="STATUS= naming the stuck worker")
        quiet_from = t_block + 1.0 * SLOWDOWN    # a ping already under way may still come
        time.sleep(wait_time(3))
        assert notify.pings(since=quiet_from) == [], "pinged while a worker was stuck"
        assert proc.poll() is None

        t_free = time.monotonic()
        log.unblock()
        notify.wait(lambda m: len(notify.pings(t_free)) >= 2, timeout=wait_time(5),
                    what="pings again")
        notify.wait(lambda m: "event loop" not in m and m.startswith("STATUS="),
                    since=t_free, what="STATUS= without the stuck worker")
        deadline = time.monotonic() + wait_time(5)
        while "a worker's event loop did not run" not in log.text():
            assert time.monotonic() < deadline, log.text()[-2000:]
            time.sleep(0.05)
        junk.close()
    finally:
        log.unblock()
        if proc.poll() is None:
            proc.send_signal(SIGTERM)
        rc = proc.wait(wait_time(30))
    assert rc == 0, log.text()[-2000:]


# ---------------------------------------------------------------------------
# the unit files

UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def test_unit_files_exist():
    assert {u.name for u in UNITS} >= {"tlsfwd-client.service", "tlsfwd-server.service"}


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(tmp_path, unit):
    """`systemd-analyze verify` is clean: exit 0 and not a word (an unknown
    key, a bad value, a missing command is a line on stderr).  It needs no
    running systemd.  The units run /usr/local/bin/tlsfwd-*; the copy checked
    runs the binaries under test instead, since verify wants them to exist."""
    assert shutil.which("systemd-analyze"), "systemd-analyze: scripts/deps.sh installs systemd"
    text = unit.read_text()
    for prog in ("tlsfwd-client", "tlsfwd-server"):
        text = text.replace(f"/usr/local/bin/{prog}", daemon_command(prog, [], None)[0])
    copy = tmp_path / unit.name
    copy.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=wait_time(60))
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_security_rating(unit):
    """`systemd-analyze security --offline=yes` rates the unit OK (exposure
    below 3.0), the README states the figure."""
    assert shutil.which("systemd-analyze"), "systemd-analyze: scripts/deps.sh installs systemd"
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=wait_time(60))
    last = [line for line in r.stdout.splitlines() if "Overall exposure level" in line]
    assert last, r.stdout + r.stderr
    level = float(last[0].split("level for")[1].split(":")[1].split()[0])
    assert level < 3.0, last[0]
    readme = (ROOT / "README.md").read_text()
    assert f"{unit.name}` rates {level:.1f}" in readme, \
        f"README should state `{unit.name}` rates {level:.1f}"
