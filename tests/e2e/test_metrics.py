"""--metrics-listen: Prometheus metrics, /healthz and /readyz, and the
certificate expiry lines.

The output passes `promtool check metrics`; a real Prometheus (Debian's
`prometheus`) started here scrapes both daemons, and PromQL through its HTTP
API finds the counts of a known sequence of accepted and refused
connections, by the reasons the log names.
"""

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import free_port, wait_time
from pki import Pki

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
need_prometheus = pytest.mark.skipif(PROMETHEUS is None or PROMTOOL is None,
                                     reason="Debian's prometheus package is not installed")


def http_get(addr, path, method="GET"):
    host, _, port = addr.rpartition(":")
    c = http.client.HTTPConnection(host, int(port), timeout=wait_time(10))
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def metrics(addr):
    status, body = http_get(addr, "/metrics")
    assert status == 200, body
    return body


def sample(text, name, **labels):
    """The value of the sample `name` whose labels include `labels`, summed."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
            seen = True
    return total if seen else None


def wait_until(fn, what, timeout=None):
    deadline = time.monotonic() + (timeout or wait_time(20))
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def promtool_check(text):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, f"promtool check metrics:\n{p.stdout}{p.stderr}\n{text}"


def refused_by_bad_cert(tf, server):
    """A TLS connection to the server with a certificate of another CA: the
    server must refuse it (a reset or an alert, never data)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(tf.pki.ca.cert)
    ctx.load_cert_chain(tf.pki.client_other.cert, tf.pki.client_other.key)
    host, _, port = server.address.rpartition(":")
    raw = socket.create_connection((host, int(port)), timeout=wait_time(10))
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"x")
        assert s.recv(1) == b"", "a refused client got data"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        raw.close()


class Prometheus:
    def __init__(self, tf, targets):
        self.port = free_port()
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
                       for job, addr in targets.items())
        conf = tf.file("prometheus.yml", "global:\n  scrape_interval: 1s\n"
                       "  evaluation_interval: 1s\nscrape_configs:\n" + jobs)
        log = open(tf.tmp / "prometheus.log", "wb")
        self.proc = tf.popen([PROMETHEUS, f"--config.file={conf}",
                              f"--storage.tsdb.path={tf.tmp / 'tsdb'}",
                              f"--web.listen-address=127.0.0.1:{self.port}"],
                             stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.log = tf.tmp / "prometheus.log"
        wait_until(self.ready, "Prometheus to be ready", wait_time(60))

    def ready(self):
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return http_get(f"127.0.0.1:{self.port}", "/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, q):
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=wait_time(10)) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {json.dumps(x["metric"], sort_keys=True): float(x["value"][1])
                for x in body["data"]["result"]}


def tunnel(tf, **server_opts):
    sink = tf.tcp_sink()
    smx = f"127.0.0.1:{free_port()}"
    cmx = f"127.0.0.1:{free_port()}"
    server = tf.server(sink, metrics_listen=smx, **server_opts)
    client = tf.client(server, metrics_listen=cmx)
    return sink, server, smx, client, cmx


def pass_through(tf, sink, client, n):
    for i in range(n):
        app = tf.connect(client)
        app.sendall(b"hello %d" % i)
        up = sink.accept()
        assert up.recv(64).startswith(b"hello")
        up.sendall(b"ack")
        assert app.recv(3) == b"ack"
        app.shutdown(socket.SHUT_WR)
        assert up.recv(1) == b""
        up.close()
        assert app.recv(1) == b""
        app.close()


@need_prometheus
def test_prometheus_counts_accepted_and_refused(tf):
    sink, server, smx, client, cmx = tunnel(tf)
    prom = Prometheus(tf, {"tlsfwd-server": smx, "tlsfwd-client": cmx})
    pass_through(tf, sink, client, 5)
    for _ in range(3):
        refused_by_bad_cert(tf, server)
    # the reason the log gives the refusals
    line = server.wait_for(lambda r: r.get("msg") == "handshake failed", what="handshake failed")
    reason = line["reason"]

    for addr in (smx, cmx):
        promtool_check(metrics(addr))
    wait_until(lambda: sample(metrics(smx), "tlsfwd_connections_closed_total",
                              outcome="done") == 5 and
               sample(metrics(cmx), "tlsfwd_connections_closed_total", outcome="done") == 5,
               "the tunnel's five connections closed on both daemons")

    def prom_counts():
        refused = prom.query('sum by (stage, reason) '
                             '(tlsfwd_connections_refused_total{job="tlsfwd-server"})')
        closed = prom.query('sum by (job, outcome) (tlsfwd_connections_closed_total)')
        return refused, closed

    want_refused = {json.dumps({"stage": "handshake", "reason": reason}, sort_keys=True): 3.0}
    want_closed = {
        json.dumps({"job": "tlsfwd-server", "outcome": "done"}, sort_keys=True): 5.0,
        json.dumps({"job": "tlsfwd-server", "outcome": "handshake_failed"}, sort_keys=True): 3.0,
        json.dumps({"job": "tlsfwd-client", "outcome": "done"}, sort_keys=True): 5.0,
    }
    last = []

    def matches():
        last[:] = [prom_counts()]
        return last[0] == (want_refused, want_closed)

    try:
        wait_until(matches, "Prometheus to see 5 accepted and 3 refused", wait_time(30))
    except AssertionError:
        raise AssertionError(f"Prometheus has {last}, expected {(want_refused, want_closed)}")
    # the rest of what it scraped
    assert prom.query('tlsfwd_upstream_up{job="tlsfwd-client"}') == {
        json.dumps({"__name__": "tlsfwd_upstream_up", "instance": cmx, "job": "tlsfwd-client",
                    "upstream": server.address}, sort_keys=True): 1.0}
    assert prom.query('sum(tlsfwd_handshake_duration_seconds_count{job="tlsfwd-client"})') \
        == {"{}": 5.0}
    assert prom.query('tlsfwd_listener_accepting') and all(
        v == 1.0 for v in prom.query('tlsfwd_listener_accepting').values())
    text = metrics(smx)
    (tf.tmp / "server.metrics").write_text(text)
    assert sample(text, "tlsfwd_bytes_total", direction="up") == 5 * len(b"hello 0")
    assert sample(text, "tlsfwd_bytes_total", direction="down") == 5 * 3
    assert sample(text, "tlsfwd_audit_events_dropped_total") == 0
    assert sample(text, "tlsfwd_certificate_not_after_seconds", kind="cert") > time.time()
    assert sample(text, "tlsfwd_certificate_not_after_seconds", kind="ca") > time.time()
    assert sample(metrics(cmx), "tlsfwd_audit_events_dropped_total") is None   # server only


def test_admit_refusals_by_reason(tf):
    sink = tf.tcp_sink()
    smx = f"127.0.0.1:{free_port()}"
    server = tf.server(sink, metrics_listen=smx, allow_net="10.0.0.0/8")
    for _ in range(2):
        s = socket.create_connection(server.address.rsplit(":", 1), timeout=wait_time(5))
        s.settimeout(wait_time(5))
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
        s.close()
    wait_until(lambda: sample(metrics(smx), "tlsfwd_connections_refused_total", stage="admit",
                              reason="net_denied") == 2, "two net_denied refusals")
    assert sample(metrics(smx), "tlsfwd_connections_opened_total") == 0


def test_healthz_readyz_and_methods(tf):
    fluentd = f"127.0.0.1:{free_port()}"           # nothing listens there yet
    smx = f"127.0.0.1:{free_port()}"
    server = tf.server(fluentd, metrics_listen=smx, health_interval=1)
    client = tf.client(server)
    assert http_get(smx, "/healthz") == (200, "ok\n")
    assert http_get(smx, "/healthz", "HEAD")[0] == 200
    assert http_get(smx, "/nope")[0] == 404
    assert http_get(smx, "/metrics", "POST")[0] == 405
    assert http_get(smx, "/readyz", "DELETE")[0] == 405

    # A sender's connection finds Fluentd missing: not ready, with the reason.
    app = tf.connect(client)
    app.sendall(b"x")
    try:
        app.recv(1)
    except OSError:
        pass
    status, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
        http_get(smx, "/readyz")), "/readyz 503")
    assert body == "the upstream (Fluentd) is unreachable\n"
    assert sample(metrics(smx), "tlsfwd_upstream_up") == 0
    assert sample(metrics(smx), "tlsfwd_listener_accepting") == 0
    assert http_get(smx, "/healthz") == (200, "ok\n")   # it still serves

    # Fluentd comes back: the probe finds it, ready again.
    tf.fwd_sink(port=int(fluentd.rpartition(":")[2]))
    wait_until(lambda: http_get(smx, "/readyz") == (200, "ok\n"), "/readyz 200 again")
    assert sample(metrics(smx), "tlsfwd_upstream_up") == 1


def test_client_readyz_needs_a_server(tf):
    cmx = f"127.0.0.1:{free_port()}"
    client = tf.client(f"127.0.0.1:{free_port()}", metrics_listen=cmx, health_interval=1)
    app = tf.connect(client)
    try:
        app.sendall(b"x")
        app.recv(1)
    except OSError:
        pass
    wait_until(lambda: http_get(cmx, "/readyz") == (503, "no server is up\n"),
               "client /readyz 503")


def test_metrics_listen_is_loopback_only(tf):
    pki = tf.pki
    common = ["--ca", pki.ca.cert, "--cert", pki.server.cert, "--key", pki.server.key,
              "--upstream", "127.0.0.1:24224"]
    r = tf.run("tlsfwd-server", *common, "--metrics-listen", "0.0.0.0:9100", "--check")
    assert r.returncode == 1
    assert "--metrics-listen: 0.0.0.0:9100 is not a loopback address" in r.stderr
    assert "--allow-remote-metrics" in r.stderr
    r = tf.run("tlsfwd-server", *common, "--metrics-listen", "0.0.0.0:9100",
               "--allow-remote-metrics", "--check")
    assert r.returncode == 0, r.stderr
    r = tf.run("tlsfwd-client", "--ca", pki.ca.cert, "--cert", pki.client.cert, "--key",
               pki.client.key, "--server", "127.0.0.1:24284", "--metrics-listen", "[::]:9100",
               "--check")
    assert r.returncode == 1 and "not a loopback address" in r.stderr, r.stderr


def mapped(daemon, lib):
    return lib in open(f"/proc/{daemon.pid}/maps").read()


def test_metrics_off_by_default(tf):
    """Without --metrics-listen nothing serves, and libmicrohttpd (with its
    GnuTLS) is not even loaded."""
    if __import__("os").environ.get("TLSFWD_VALGRIND"):
        pytest.skip("under valgrind the pid is valgrind's")
    sink = tf.tcp_sink()
    server = tf.server(sink)
    assert not any(r.get("msg") == "serving metrics" for r in server.records())
    assert not mapped(server, "libmicrohttpd") and not mapped(server, "libgnutls")
    server2 = tf.server(sink, metrics_listen=f"127.0.0.1:{free_port()}")
    assert mapped(server2, "libmicrohttpd")


@pytest.mark.parametrize("days, level, msg", [
    (10, "warn", "certificate expires within 30 days"),
    (3, "error", "certificate expires within 7 days"),
])
def test_certificate_expiry_lines(tf, days, level, msg):
    p = Pki(tf.tmp / "pki")
    ident = p.issue(tf.pki.ca, "soon", "localhost", usage="server", dns=["localhost"],
                    ips=["127.0.0.1"], days=days)
    sink = tf.tcp_sink()
    smx = f"127.0.0.1:{free_port()}"
    server = tf.server(sink, identity=ident, metrics_listen=smx)
    line = server.wait_for(lambda r: r.get("msg") == msg, what=msg)
    assert line["level"] == level and line["kind"] == "cert" and line["index"] == "0", line
    assert line["subject"] == "/CN=localhost", line
    assert days - 1 < float(line["days_left"]) <= days, line
    # the CA (ten years) gets no line; the gauge has the same date
    assert sum(r.get("msg", "").startswith("certificate expires") for r in server.records()) == 1
    nat = sample(metrics(smx), "tlsfwd_certificate_not_after_seconds", kind="cert", index="0")
    assert abs(nat - (time.time() + days * 86400)) < 3 * 86400
    # a reload checks again
    server.signal(__import__("signal").SIGHUP)
    server.wait_for(lambda r: r.get("msg", "").startswith("reloaded"), what="reloaded")
    wait_until(lambda: sum(r.get("msg") == msg for r in server.records()) == 2,
               "the line again after the reload")
    assert sample(metrics(smx), "tlsfwd_reloads_total", result="ok") == 1


@need_prometheus
def test_readme_alert_rules_are_valid(tf):
    """The README's sample alert rules pass `promtool check rules`."""
    readme = (__import__("pathlib").Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:]]
    rules = [b for b in blocks if b.startswith("# tlsfwd-alerts.yml")]
    assert len(rules) == 1, "the README's alert rules block is missing"
    path = tf.file("tlsfwd-alerts.yml", rules[0])
    p = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 7 rules found" in p.stdout, p.stdout


def test_crl_next_update_gauge(tf):
    p = Pki(tf.tmp / "pki")
    ca = p.ca("crl-ca", "crl test CA")
    ident = p.issue(ca, "srv", "localhost", usage="server", dns=["localhost"], ips=["127.0.0.1"])
    crl = p.crl(ca)
    sink = tf.tcp_sink()
    smx = f"127.0.0.1:{free_port()}"
    tf.server(sink, identity=ident, ca=ca.cert, crl=crl, metrics_listen=smx)
    text = metrics(smx)
    if PROMTOOL:
        promtool_check(text)
    nu = sample(text, "tlsfwd_crl_next_update_seconds", index="0", file=str(crl))
    assert nu is not None and abs(nu - (time.time() + 30 * 86400)) < 2 * 86400, text
    assert sample(text, "tlsfwd_certificate_not_after_seconds", kind="ca",
                  subject="/CN=crl test CA") > time.time()


def test_reloads_by_result(tf):
    import signal as sig
    p = Pki(tf.tmp / "pki")
    ident = p.issue(tf.pki.ca, "srv", "localhost", usage="server", dns=["localhost"],
                    ips=["127.0.0.1"])
    sink = tf.tcp_sink()
    smx = f"127.0.0.1:{free_port()}"
    server = tf.server(sink, identity=ident, metrics_listen=smx)
    good = ident.cert.read_text()
    ident.cert.write_text("not a certificate\n")
    server.signal(sig.SIGHUP)
    wait_until(lambda: sample(metrics(smx), "tlsfwd_reloads_total", result="failed") >= 1,
               "a failed reload counted")
    ident.cert.write_text(good)
    server.signal(sig.SIGHUP)
    wait_until(lambda: sample(metrics(smx), "tlsfwd_reloads_total", result="ok") >= 1,
               "a good reload counted")
    assert http_get(smx, "/readyz") == (200, "ok\n")
