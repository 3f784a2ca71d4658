"""Per-identity tag ACLs (issue 15 §3): --allow-tag RULE=PATTERN, from the
sender's side.  An allowed tag is delivered and acknowledged; a denied one
resets the sender, reaches nothing and is acknowledged by nobody, with one
warning line and an audit event `tag_denied`; `edge.{cn}.**` keeps each
client under its own name; a reload of the allow-file changes the verdict."""

import json
import signal
import subprocess
import time

import msgpack

from conftest import Tunnel, flags, recv_exact, wait_time
from pki import Pki
from test_fwd import client_port, ending

pack = msgpack.packb


def node_send(node_sender, tunnel, tag, count=10):
    """@fluent-org/logger with acks on: (exit code, its summary)."""
    r = subprocess.run(["node", str(node_sender), "--port", str(client_port(tunnel)),
                        "--count", str(count), "--tag", tag, "--mode", "Message",
                        "--timeout-ms", str(int(wait_time(10) * 1000))],
                       capture_output=True, text=True, timeout=wait_time(60))
    lines = r.stdout.strip().splitlines()
    return r.returncode, json.loads(lines[-1]) if lines else {"stderr": r.stderr[-1500:]}


def connect(tf, client):
    """A connection to tlsfwd-client once it accepts again: a reset from the
    server makes it check that the server is still there first (a refused
    connect meanwhile, as the sender of a down tunnel is told)."""
    deadline = time.monotonic() + wait_time(10)
    while True:
        try:
            return tf.connect(client)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def audit_events(path, kind, timeout=None):
    deadline = time.monotonic() + (timeout or wait_time(10))
    while True:
        events = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        found = [e for e in events if e["kind"] == kind]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_allowed_tag_delivered_denied_tag_reset(tf, node_sender):
    audit = tf.tmp / "audit.jsonl"
    t = Tunnel(tf, sink=tf.fwd_sink(),
               server_opts=dict(allow_tag=["cn:client.test=app.**", "cn:other=audit.**"],
                                audit_file=audit))
    rc, summary = node_send(node_sender, t, "app", 10)
    assert rc == 0 and summary["acked"] == 10, summary
    assert {e.tag for e in t.sink.wait_events(10)} == {"app.event"}
    acks = t.sink.acks_sent

    # Denied: none of the logger's events is acknowledged (its connection
    # is reset; with reconnects off it gives up on them, or exits with
    # them pending: either way not one ack).
    rc, summary = node_send(node_sender, t, "audit", 10)
    assert summary.get("acked", 0) == 0, (rc, summary)
    line = t.server.wait_for(lambda r: r.get("reason") == "tag_denied", what="the tag_denied line")
    assert line["level"] == "warn" and line["tag"] == "audit.event"
    assert "client.test" in line["subject"]
    assert [e["tag"] for e in audit_events(audit, "tag_denied")][:1] == ["audit.event"]
    assert "tag_denied" in [e.get("reason") for e in audit_events(audit, "close")]

    # From a raw socket: an allowed request acknowledged, then a denied one:
    # a reset, no ack, nothing of it in the sink.
    app = connect(tf, t.client)
    app.sendall(pack(["app.ok", 1, {"n": 1}, {"chunk": "ok"}]))
    assert recv_exact(app, len(pack({"ack": "ok"}))) == pack({"ack": "ok"})
    app.sendall(pack(["secret.x", [[1, {"n": 2}], [2, {"n": 3}]], {"chunk": "no"}]))
    assert ending(app) == "reset"
    time.sleep(0.3)
    assert [e.tag for e in t.sink.events if e.tag != "app.event"] == ["app.ok"]
    assert t.sink.acks_sent == acks + 1


def test_denied_tag_is_logged_escaped(tf):
    t = Tunnel(tf, sink=tf.fwd_sink(), server_opts=dict(allow_tag="*=app.*"))
    tag = 'evil "tag"\nnext=line'
    app = tf.connect(t.client)
    app.sendall(pack([tag, 1, {"n": 1}]))
    assert ending(app) == "reset"
    line = t.server.wait_for(lambda r: r.get("reason") == "tag_denied", what="the line")
    assert line["tag"] == tag
    denied = [r for r in t.server.records() if r.get("reason") == "tag_denied"]
    assert len(denied) == 1
    assert not t.sink.events


def test_each_client_under_its_own_name(tf):
    p = Pki(tf.tmp / "pki")
    sink = tf.fwd_sink()
    server = tf.server(sink, allow_tag="*=edge.{cn}.**")
    clients = {cn: tf.client(server, identity=p.issue(tf.pki.ca, cn, cn))
               for cn in ("edge-01", "edge-02")}
    for cn, client in clients.items():
        app = tf.connect(client)
        app.sendall(pack([f"edge.{cn}.app", 1, {"who": cn}, {"chunk": cn}]))
        assert recv_exact(app, len(pack({"ack": cn}))) == pack({"ack": cn})
    got = sink.wait_events(2)
    assert sorted((e.tag, e.record["who"]) for e in got) == \
        [("edge.edge-01.app", "edge-01"), ("edge.edge-02.app", "edge-02")]
    app = connect(tf, clients["edge-01"])
    app.sendall(pack(["edge.edge-02.app", 1, {"who": "edge-01"}, {"chunk": "x"}]))
    assert ending(app) == "reset"
    time.sleep(0.3)
    assert len(sink.events) == 2


def test_no_rule_for_this_identity_no_tag(tf):
    """When --allow-tag rules exist, a client that matches none of their
    rules may write no tag at all."""
    t = Tunnel(tf, sink=tf.fwd_sink(), server_opts=dict(allow_tag="cn:someone-else=**"))
    app = tf.connect(t.client)
    app.sendall(pack(["anything", 1, {"n": 1}]))
    assert ending(app) == "reset"
    time.sleep(0.2)
    assert not t.sink.events


def test_reload_changes_the_verdict(tf):
    """Tag rules come and go with reloads of the allow-file, also on a
    server that started without any: each new connection gets the reader
    its policy needs."""
    rules = tf.tmp / "allow.txt"
    rules.write_text("cn:client.test\n")
    t = Tunnel(tf, sink=tf.fwd_sink(), server_opts=dict(allow_file=rules))

    def verdict(tag):
        app = connect(tf, t.client)
        app.sendall(pack([tag, 1, {"n": 1}, {"chunk": tag}]))
        try:
            return recv_exact(app, len(pack({"ack": tag}))) == pack({"ack": tag})
        except (ConnectionResetError, AssertionError, OSError):
            return False

    def reload(n):
        t.server.signal(signal.SIGHUP)
        t.server.wait_for(lambda _: len([r for r in t.server.records()
                                         if r.get("msg", "").startswith("reloaded")
                                         and r.get("trigger") == "SIGHUP"]) >= n,
                          what=f"reload {n}")

    assert verdict("z.x")                       # no tag rule yet: any tag
    rules.write_text("cn:client.test\ntag cn:client.test=a.**\n")
    reload(1)
    assert verdict("a.x") and not verdict("b.x")
    rules.write_text("cn:client.test\ntag cn:client.test=b.**\n")
    reload(2)
    assert verdict("b.x") and not verdict("a.y")
    # No tag rule left: any tag again.
    rules.write_text("cn:client.test\n")
    reload(3)
    assert verdict("c.z")
    assert sorted(e.tag for e in t.sink.events) == ["a.x", "b.x", "c.z", "z.x"]
    assert not [r for r in t.server.records() if r.get("reason") == "tag_rules_need_restart"]


def test_pattern_errors_name_the_key_and_line(tf):
    pki = tf.pki
    base = ["--upstream", "127.0.0.1:1", "--ca", pki.ca.cert, "--cert", pki.server.cert,
            "--key", pki.server.key, "--check"]
    r = tf.run("tlsfwd-server", *base, *flags(dict(allow_tag="cn:a=app.{x,y")))
    assert r.returncode != 0 and "allow-tag" in r.stderr and "{" in r.stderr, r.stderr
    r = tf.run("tlsfwd-server", *base, *flags(dict(allow_tag="cn:a")))
    assert r.returncode != 0 and "RULE=PATTERN" in r.stderr, r.stderr
    conf = tf.tmp / "server.conf"
    conf.write_text("# tags\nallow-tag = *=ok.**\nallow-tag = *=edge.{a,b\n")
    r = tf.run("tlsfwd-server", *base, "--config", conf)
    assert r.returncode != 0 and f"{conf}:3" in r.stderr and "allow-tag" in r.stderr, r.stderr
    rules = tf.tmp / "allow.txt"
    rules.write_text("cn:a\n\ntag cn:a=x.{y\n")
    r = tf.run("tlsfwd-server", *base, "--allow-file", rules)
    assert r.returncode != 0 and f"{rules}:3" in r.stderr, r.stderr
