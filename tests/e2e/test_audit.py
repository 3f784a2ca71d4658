"""The audit trail: one event per decision (accept, deny) and per close, as
JSON lines in --audit-file and as forward-protocol events to a Fluentd input
(--audit-forward), never in the way of the data (issue #5)."""

import json
import signal
import subprocess
import time

from conftest import free_port, send_and_expect, wait_time


def read_events(path, count, timeout=None):
    """Wait until `path` holds at least `count` JSON lines; return them parsed."""
    deadline = time.monotonic() + (timeout or wait_time(15))
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        assert time.monotonic() < deadline, f"{len(lines)} of {count} audit events:\n{lines}"
        time.sleep(0.05)


def no_certificate_attempt(server):
    host, port = server.address.rsplit(":", 1)
    subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-quiet"],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=wait_time(20))


def test_audit_file_accept_deny_close(tf, tmp_path, pki):
    log = tmp_path / "audit.jsonl"
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_file=log, log_level="debug")
    client = tf.client(server, no_tls_resume=True)
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"x" * 1000)
    send_and_expect(far, app, b"y" * 40)
    app.close()
    far.close()
    no_certificate_attempt(server)
    events = read_events(log, 3)
    by_kind = {e["kind"]: e for e in events}
    acc, close, deny = by_kind["accept"], by_kind["close"], by_kind["deny"]
    assert acc["subject"] == "/CN=client.test" and acc["issuer"] == "/CN=tlsfwd test CA"
    assert acc["tls_version"] == "TLSv1.3" and acc["cipher"]
    assert len(acc["fingerprint"]) == 64 and acc["serial"]
    assert acc["peer"] == close["peer"]
    assert close["bytes_in"] == 1000 and close["bytes_out"] == 40 and close["duration"] >= 0
    # The verified identity lives as long as the connection: its close names it too.
    for key in ("subject", "issuer", "serial", "fingerprint"):
        assert close[key] == acc[key], key
    closed = server.wait_for(lambda r: r.get("msg") == "closed", wait_time(10), "closed")
    assert closed["subject"] == "/CN=client.test", closed
    assert deny["reason"] == "no_certificate" and "subject" not in deny
    for e in events:
        assert e["time"].endswith("Z")


def test_audit_names_the_matching_rule_and_the_refusal(tf, tmp_path, pki):
    log = tmp_path / "audit.jsonl"
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_file=log, allow_cn="client.test")
    send_and_expect(tf.connect(tf.client(server)), sink.accept(), b"allowed")
    other = tf.server(sink, audit_file=tmp_path / "other.jsonl", allow_cn="nobody")
    tf.connect(tf.client(other), allow_reset=True).sendall(b"refused")
    acc = next(e for e in read_events(log, 1) if e["kind"] == "accept")
    assert acc["rule"] == "cn:client.test"
    deny = next(e for e in read_events(tmp_path / "other.jsonl", 1) if e["kind"] == "deny")
    assert deny["reason"] == "not_allowed" and deny["subject"] == "/CN=client.test"
    assert len(deny["fingerprint"]) == 64


def test_audit_net_and_per_ip_refusals(tf, tmp_path):
    log = tmp_path / "audit.jsonl"
    server = tf.server(tf.tcp_sink(), audit_file=log, allow_net="10.0.0.0/8")
    tf.connect(server, allow_reset=True)
    deny = read_events(log, 1)[0]
    assert deny["kind"] == "deny" and deny["reason"] == "net_denied"
    assert deny["peer"].startswith("127.0.0.1:")


def test_audit_forward_reaches_a_forward_input(tf, pki, tmp_path):
    fwd = tf.fwd_sink()
    sink = tf.tcp_sink()
    log = tmp_path / "audit.jsonl"
    server = tf.server(sink, audit_forward=fwd.address, audit_tag="sec.tlsfwd", audit_file=log)
    app = tf.connect(tf.client(server, no_tls_resume=True))
    far = sink.accept()
    send_and_expect(app, far, b"hi")
    app.close()
    far.close()
    no_certificate_attempt(server)
    events = fwd.wait_events(3)
    assert {e.tag for e in events} == {"sec.tlsfwd"}
    assert all(e.mode == "Message" and float(e.time) > 1.7e9 for e in events)
    # Field by field, the forwarded records equal the JSON lines of the same events.
    lines = {e["kind"]: e for e in read_events(log, 3)}
    for e in events:
        rec = dict(e.record)
        want = dict(lines[rec["kind"]])
        want.pop("time")
        # JSON writes the duration to the microsecond, msgpack as a double.
        assert abs(rec.pop("duration", 0) - want.pop("duration", 0)) < 1e-5
        assert rec == want, (rec, want)
    acc, deny, close = (lines[k] for k in ("accept", "deny", "close"))
    assert set(acc) >= {"peer", "subject", "issuer", "serial", "fingerprint", "tls_version",
                        "cipher"}
    assert acc["subject"] == "/CN=client.test" and acc["issuer"] == "/CN=tlsfwd test CA"
    assert deny["reason"] == "no_certificate" and deny["peer"].startswith("127.0.0.1:")
    assert close["bytes_in"] == 2 and close["peer"] == acc["peer"]


def test_audit_file_reopened_on_sigusr1(tf, tmp_path):
    log = tmp_path / "audit.jsonl"
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_file=log)
    client = tf.client(server, no_tls_resume=True)
    send_and_expect(tf.connect(client), sink.accept(), b"one")
    read_events(log, 1)
    rotated = tmp_path / "audit.jsonl.1"
    log.rename(rotated)
    server.signal(signal.SIGUSR1)
    deadline = time.monotonic() + wait_time(15)
    while not log.exists():                       # the reopen creates the file anew
        assert time.monotonic() < deadline, f"SIGUSR1 did not reopen {log}\n{server.describe()}"
        time.sleep(0.02)
    send_and_expect(tf.connect(client), sink.accept(), b"two")
    assert [e["kind"] for e in read_events(log, 1)][:1] == ["accept"]   # the new file
    assert [e["kind"] for e in read_events(rotated, 1)] == ["accept"]   # the old one kept its line


def test_fluentd_away_never_blocks_the_data(tf):
    dead = f"127.0.0.1:{free_port()}"
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_forward=dead)
    client = tf.client(server, no_tls_resume=True)
    for i in range(20):
        app = tf.connect(client)
        far = sink.accept()
        send_and_expect(app, far, b"data %d" % i)
        send_and_expect(far, app, b"ack %d" % i)
