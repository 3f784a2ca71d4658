"""An HTTP CONNECT hop: tlsfwd-client reaches its servers through a proxy.

A real tinyproxy (Debian's), started per test on loopback with its own
config file, stands between the client and tlsfwd-server: the tunnel through
it is byte-exact and the server's name is verified as without a proxy; a
server name that only the proxy can resolve works.  Every failure of the
proxy -- down, 407, 403, an answer that is not HTTP, one that never comes,
one cut short -- is one warn line with its reason, and the sender is told
(reset or refused), never given a clean end.  Two of those need a proxy that
misbehaves: a small one in Python.
"""

import base64
import os
import socket
import subprocess
import threading
import time

import msgpack
import pytest

from conftest import exchange, free_port, wait_time
from test_reach import FOUND, LOST, wait_msg
from test_servers import CountingSink, run_connections, wait_count
from test_silent import assert_told, outcome

USER, PASSWORD = "alice", "s3cr3t"


class Tinyproxy:
    """tinyproxy in the foreground (-d) on a free loopback port, with its own
    config and log in the test's tmp dir (the system service is not used:
    its port and config are left alone)."""

    def __init__(self, tf, *, auth=False, connect_ports=(), env=None, port=None,
                 host="127.0.0.1"):
        self.port = port or free_port(host)
        self.address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.log = tf.tmp / f"tinyproxy-{self.port}.log"
        lines = [f"Port {self.port}", f"Listen {host}", "Timeout 30", f'LogFile "{self.log}"',
                 "LogLevel Info", "MaxClients 50", f"Allow {host}"]
        lines += [f"ConnectPort {p}" for p in connect_ports]
        if auth:
            lines.append(f"BasicAuth {USER} {PASSWORD}")
        conf = tf.file(f"tinyproxy-{self.port}.conf", "\n".join(lines) + "\n")
        out = open(tf.tmp / f"tinyproxy-{self.port}.out", "wb")
        self.proc = tf.popen(["tinyproxy", "-d", "-c", conf], stdout=out,
                             stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))
        out.close()
        deadline = time.monotonic() + wait_time(15)
        while "Accepting connections" not in self.log_text():
            assert self.proc.poll() is None, f"tinyproxy exited:\n{self.log_text()}"
            assert time.monotonic() < deadline, f"tinyproxy did not start:\n{self.log_text()}"
            time.sleep(0.05)

    def url(self, userinfo=""):
        return f"http://{userinfo + '@' if userinfo else ''}{self.address}"

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def connects(self):
        """The CONNECT requests tinyproxy logged."""
        return [line.split("): ", 1)[1] for line in self.log_text().splitlines()
                if "Request (" in line and "): CONNECT " in line]


class FakeProxy:
    """A proxy that misbehaves: reads a request up to its empty line, keeps
    it, writes `answer`, then closes (close=True) or holds the connection."""

    def __init__(self, tf, answer, close=False):
        self.answer, self.close_after = answer, close
        self.requests = []
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.lsock.getsockname()[1]}"
        self.held = []
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()
        tf.closing(self)

    def url(self):
        return f"http://{self.address}"

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            buf = b""
            conn.settimeout(5)
            try:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                self.requests.append(buf)
                if self.answer:
                    conn.sendall(self.answer)
            except OSError:
                pass
            if self.close_after:
                conn.close()
            else:
                self.held.append(conn)

    def close(self):
        self.stopped = True
        self.lsock.close()
        for c in self.held:
            c.close()


def event(i=0):
    return msgpack.packb(["proxy.test", 1700000000 + i, {"n": i}])


def assert_secret_kept(daemon):
    text = daemon.log_text()
    assert PASSWORD not in text
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in text


# -- through a real proxy -------------------------------------------------------

def test_through_tinyproxy_byte_exact(tf):
    proxy = Tinyproxy(tf)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy=proxy.url())
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up, size=300_000)             # both ways, through the proxy
    assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()
    line = client.wait_for(lambda r: r.get("msg") == "servers are reached through an HTTP proxy")
    assert line.get("proxy") == proxy.address


def test_through_tinyproxy_on_ipv6(tf):
    """A proxy at [::1]:PORT; the server named by its IPv6 literal too."""
    proxy = Tinyproxy(tf, host="::1")
    sink = tf.tcp_sink()
    server = tf.server(sink, listen=f"[::1]:{free_port('::1')}")
    client = tf.client(server, proxy=proxy.url())
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()


def test_through_tinyproxy_to_a_forward_sink(tf):
    proxy = Tinyproxy(tf)
    sink = tf.fwd_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy=proxy.url())
    s = tf.connect(client)
    s.sendall(b"".join(event(i) for i in range(50)))
    s.close()
    got = sink.wait_events(50, timeout=wait_time(10))
    assert [e.record for e in got] == [{"n": i} for i in range(50)]
    assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()


def test_half_close_and_acks_through_tinyproxy(tf):
    """tinyproxy ends a tunnel both ways at the first FIN: the client passes
    the sender's half-close on as close_notify alone, so the acks that follow
    it still come back, then a clean end."""
    proxy = Tinyproxy(tf)
    sink = tf.fwd_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy=proxy.url())
    req = msgpack.packb(["proxy.test", [[1700000000, {"n": 1}]], {"chunk": "c1"}])
    kind, got = outcome(client.address, req)
    assert kind == "clean", (kind, got)
    assert msgpack.unpackb(got) == {"ack": "c1"}
    assert [e.record for e in sink.wait_events(1, timeout=wait_time(10))] == [{"n": 1}]


def test_a_name_only_the_proxy_resolves(tf):
    """The server's name resolves for tinyproxy (nss_wrapper serves it from a
    file) and nowhere else (.test is reserved): the client sends the name in
    CONNECT and never resolves it; its certificate is verified as
    --server-name says."""
    hosts = tf.file("hosts", "127.0.0.1 agg.tlsfwd.test\n")
    proxy = Tinyproxy(tf, env=dict(LD_PRELOAD="libnss_wrapper.so", NSS_WRAPPER_HOSTS=str(hosts)))
    sink = tf.tcp_sink()
    server = tf.server(sink)
    port = server.address.rpartition(":")[2]
    target = f"agg.tlsfwd.test:{port}"
    common = ["--server", target, "--server-name", "localhost", "--ca", tf.pki.ca.cert,
              "--cert", tf.pki.client.cert, "--key", tf.pki.client.key]
    r = tf.run("tlsfwd-client", *common, "--check")
    assert r.returncode == 1 and "agg.tlsfwd.test" in r.stderr, r.stderr   # the control
    client = tf.client(target, server_name="localhost", proxy=proxy.url())
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    assert f"CONNECT {target} HTTP/1.1" in proxy.connects(), proxy.log_text()


def test_basic_authentication(tf):
    """The password percent-encoded in the URL (%73 is s) is decoded."""
    proxy = Tinyproxy(tf, auth=True)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy=proxy.url(f"{USER}:%73{PASSWORD[1:]}"))
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    assert_secret_kept(client)


def test_password_file(tf):
    proxy = Tinyproxy(tf, auth=True)
    pw = tf.file("proxy-password", PASSWORD + "\nnot this line\n")
    pw.chmod(0o644)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    # the file's password wins over the URL's
    client = tf.client(server, proxy=proxy.url(f"{USER}:wrong"), proxy_password_file=pw)
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    assert_secret_kept(client)
    line = client.wait_warning(msg="proxy password file is readable by others")
    assert line.get("mode") == "0644", line


def test_wrong_password_is_407(tf):
    proxy = Tinyproxy(tf, auth=True)
    server = tf.server(tf.tcp_sink())
    client = tf.client(server, proxy=proxy.url(f"{USER}:nope"))
    assert_told(outcome(client.address))
    client.wait_warning(reason="proxy_auth_required", msg="upstream unreachable")
    wait_msg(client, LOST)
    assert "nope" not in client.log_text()


def test_no_credentials_is_407(tf):
    proxy = Tinyproxy(tf, auth=True)
    server = tf.server(tf.tcp_sink())
    client = tf.client(server, proxy=proxy.url())
    assert_told(outcome(client.address))
    client.wait_warning(reason="proxy_auth_required")


def test_connect_port_not_allowed_is_403(tf):
    server = tf.server(tf.tcp_sink())
    port = int(server.address.rpartition(":")[2])
    proxy = Tinyproxy(tf, connect_ports=[443 if port != 443 else 444])
    client = tf.client(server, proxy=proxy.url())
    assert_told(outcome(client.address))
    client.wait_warning(reason="proxy_forbidden", msg="upstream unreachable")


def test_proxy_down(tf):
    server = tf.server(tf.tcp_sink())
    client = tf.client(server, proxy=f"http://127.0.0.1:{free_port()}")
    assert_told(outcome(client.address))
    client.wait_warning(reason="proxy_refused")
    wait_msg(client, LOST)


def test_proxy_back_is_found_by_the_probes(tf):
    """While the proxy is down the listener is shut; the probes go through
    the proxy too, and find the way back when it returns."""
    port = free_port()
    sink = tf.fwd_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy=f"http://127.0.0.1:{port}")
    assert_told(outcome(client.address))
    wait_msg(client, LOST)
    assert_told(outcome(client.address))         # refused now
    proxy = Tinyproxy(tf, port=port)
    wait_msg(client, FOUND)
    s = tf.connect(client)
    s.sendall(event(7))
    s.close()
    assert [e.record for e in sink.wait_events(1, timeout=wait_time(10))] == [{"n": 7}]
    assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()


def test_proxy_down_tries_the_next_server(tf):
    """A failure through the proxy is that server's attempt failing: the next
    --server (reached the same way) is tried, as without a proxy."""
    proxy = Tinyproxy(tf)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    dead = f"127.0.0.1:{free_port()}"            # tinyproxy cannot connect: a 5xx
    client = tf.client([dead, server], proxy=proxy.url())
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    line = client.wait_warning(msg="upstream attempt failed, trying the next")
    assert line.get("upstream") == dead and line.get("reason", "").startswith("proxy_"), line


def test_weighted_servers_through_the_proxy(tf):
    """Attributes of --server hold through the proxy: the CONNECT line names
    the server without them, and new connections follow the weights."""
    proxy = Tinyproxy(tf)
    sinks = [tf.closing(CountingSink()) for _ in range(2)]
    servers = [tf.server(sink) for sink in sinks]
    client = tf.client([f"{servers[0].address},weight=3", f"{servers[1].address},weight=1"],
                       proxy=proxy.url())
    results = run_connections(client.address, 40, workers=2)
    assert all(kind == "clean" for (kind, _), _ in results), results
    wait_count(sinks, 40, "through the proxy")
    assert [s.count for s in sinks] == [30, 10]
    for server in servers:
        assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()


# -- a proxy that misbehaves ----------------------------------------------------

@pytest.mark.parametrize("answer,close,reason", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", False, "proxy_not_http"),
    (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", True, "proxy_status_502"),
    (b"HTTP/1.1 200 Connection established\r\n", True, "proxy_closed"),
    (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01", False, "proxy_data_after_header"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 5000 + b"\r\n\r\n", False,
     "proxy_header_too_long"),
], ids=["not-http", "502", "closed", "data-after-header", "too-long"])
def test_bad_answers(tf, answer, close, reason):
    fake = FakeProxy(tf, answer, close)
    server = tf.server(tf.tcp_sink())
    client = tf.client(server, proxy=fake.url())
    assert_told(outcome(client.address))
    client.wait_warning(reason=reason, msg="upstream unreachable")
    # the request as sent: the server as configured, no credentials
    assert fake.requests[0] == (f"CONNECT {server.address} HTTP/1.1\r\n"
                                f"Host: {server.address}\r\n\r\n").encode()


def test_request_with_credentials(tf):
    fake = FakeProxy(tf, b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
    client = tf.client("127.0.0.1:24284", proxy=f"http://{USER}:{PASSWORD}@{fake.address}")
    assert_told(outcome(client.address))
    client.wait_warning(reason="proxy_auth_required")
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert fake.requests[0] == (b"CONNECT 127.0.0.1:24284 HTTP/1.1\r\nHost: 127.0.0.1:24284\r\n"
                                b"Proxy-Authorization: Basic " + auth.encode() + b"\r\n\r\n")
    assert_secret_kept(client)


def test_a_proxy_that_never_answers_is_bounded_by_connect_timeout(tf):
    fake = FakeProxy(tf, b"")
    client = tf.client("127.0.0.1:24284", proxy=fake.url(), connect_timeout=1)
    start = time.monotonic()
    assert_told(outcome(client.address))
    took = time.monotonic() - start
    line = client.wait_warning(reason="proxy_timeout", msg="upstream unreachable")
    assert took < wait_time(5), took
    assert float(line["duration"]) >= 0.9, line


# -- --proxy env ----------------------------------------------------------------

def proxy_env(**kw):
    """The four variables, so that the machine's own do not leak in."""
    env = dict(https_proxy="", HTTPS_PROXY="", no_proxy="", NO_PROXY="")
    env.update(kw)
    return env


def test_env_https_proxy(tf):
    proxy = Tinyproxy(tf)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    env = proxy_env(https_proxy=proxy.address, HTTPS_PROXY="http://127.0.0.1:1")
    client = tf.client(server, proxy="env", env=env)     # https_proxy wins, taken bare
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    assert f"CONNECT {server.address} HTTP/1.1" in proxy.connects(), proxy.log_text()


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "example.com, 127.0.0.1", "*"])
def test_env_no_proxy_bypasses(tf, no_proxy):
    dead = f"http://127.0.0.1:{free_port()}"     # a proxy that is not there
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy="env", env=proxy_env(HTTPS_PROXY=dead, NO_PROXY=no_proxy))
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)
    client.wait_for(lambda r: r.get("msg") == "server bypasses the proxy (no_proxy)")


def test_env_no_proxy_suffix(tf):
    """no_proxy=.tlsfwd.test sends agg.tlsfwd.test direct: the client itself
    must resolve it then, and cannot (the control that the proxy is skipped)."""
    dead = f"http://127.0.0.1:{free_port()}"
    args = ["--server", "agg.tlsfwd.test:24284", "--ca", tf.pki.ca.cert,
            "--cert", tf.pki.client.cert, "--key", tf.pki.client.key, "--proxy", "env", "--check"]
    r = tf.run("tlsfwd-client", *args, env=proxy_env(https_proxy=dead, no_proxy=".tlsfwd.test"))
    assert r.returncode == 1 and "agg.tlsfwd.test" in r.stderr, r.stderr
    r = tf.run("tlsfwd-client", *args, env=proxy_env(https_proxy=dead, no_proxy="other.test"))
    assert r.returncode == 0, r.stderr


def test_env_without_https_proxy_goes_direct(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, proxy="env", env=proxy_env())
    app = tf.connect(client)
    up = sink.accept()
    exchange(app, up)


# -- configuration --------------------------------------------------------------

def run_check(tf, *args, env=None):
    base = ["--server", "127.0.0.1:24284", "--ca", tf.pki.ca.cert, "--cert", tf.pki.client.cert,
            "--key", tf.pki.client.key]
    return tf.run("tlsfwd-client", *base, *args, "--check", env=env)


@pytest.mark.parametrize("url,why", [
    ("https://127.0.0.1:3128", "https:// proxy is not supported"),
    ("socks5://127.0.0.1:1080", "expected http://"),
    ("127.0.0.1:3128", "expected http://"),
    ("http://127.0.0.1", "needs a port"),
    ("http://127.0.0.1:3128/path", "no path"),
    ("http://127.0.0.1:99999", "bad proxy address"),
    ("http://al:ice:x@127.0.0.1:3128", None),     # a ':' in the password is fine
    ("http://%zz:pw@127.0.0.1:3128", "bad user name"),
    ("http://alice:%0a@127.0.0.1:3128", "bad password"),
])
def test_proxy_url_errors(tf, url, why):
    r = run_check(tf, "--proxy", url)
    if why is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 1, r.stdout
    assert "--proxy: " in r.stderr and why in r.stderr, r.stderr


def test_check_does_not_show_the_password(tf):
    r = run_check(tf, "--proxy", f"http://{USER}:{PASSWORD}@127.0.0.1:3128")
    assert r.returncode == 0, r.stderr
    assert f"proxy = http://{USER}:***@127.0.0.1:3128" in r.stdout, r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    r = run_check(tf, "--proxy", f"http://{USER}:{PASSWORD}@127.0.0.1:3128/x")
    assert r.returncode == 1 and PASSWORD not in r.stdout + r.stderr, r.stderr


def test_password_file_errors(tf):
    r = run_check(tf, "--proxy-password-file", tf.tmp / "nothing")
    assert r.returncode == 1 and "there is no --proxy" in r.stderr, r.stderr
    r = run_check(tf, "--proxy", "http://127.0.0.1:3128", "--proxy-password-file",
                  tf.file("pw", "x\n"))
    assert r.returncode == 1 and "has no user" in r.stderr, r.stderr
    r = run_check(tf, "--proxy", "http://u@127.0.0.1:3128", "--proxy-password-file",
                  tf.tmp / "missing")
    assert r.returncode == 1 and "missing" in r.stderr, r.stderr


def test_env_bad_https_proxy_names_the_variable(tf):
    r = run_check(tf, "--proxy", "env", env=proxy_env(https_proxy="https://p:1"))
    assert r.returncode == 1 and "https_proxy: " in r.stderr, r.stderr
