"""Who may send: allow rules on the client certificate, pins (also for
self-signed clients without a CA), source networks, per-address limits, and
the client's --pin-server (issue #5)."""

import hashlib
import subprocess
import time

import pytest

from conftest import recv_exact, send_and_expect, wait_time
from pki import Pki


def sha256_der(cert):
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def sha256_spki(cert):
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def ids(pki, tmp_path_factory):
    """Client identities with the names the rules look at."""
    p = Pki(tmp_path_factory.mktemp("authz-pki"))
    return {
        "web1": p.issue(pki.ca, "web1", "web-1", ou="edge",
                        dns=["a.example.com"], uris=["spiffe://corp/edge/a"]),
        "deep": p.issue(pki.ca, "deep", "deep", dns=["a.b.example.com"],
                        uris=["spiffe://corp/edge/a/b"]),
        "apex": p.issue(pki.ca, "apex", "apex", dns=["example.com"],
                        uris=["spiffe://corp/edge"]),
        "upper": p.issue(pki.ca, "upper", "upper", dns=["A.EXAMPLE.COM"],
                         uris=["spiffe://corp/edgeX/a"]),
        "selfsigned": p.self_signed("selfsigned", "lonely"),
        "selfsigned2": p.self_signed("selfsigned2", "stranger"),
    }


def allowed(tf, server_opts, identity, *, ca=True):
    """Does a client with `identity` get a byte through a server with these rules?"""
    sink = tf.tcp_sink()
    opts = dict(server_opts)
    if not ca:
        opts["ca"] = None
    server = tf.server(sink, **opts)
    client = tf.client(server, identity=identity, no_tls_resume=True)
    app = tf.connect(client, allow_reset=True)
    try:
        app.sendall(b"may I?")
    except OSError:
        pass
    # Whichever comes first: the upstream connection or the refusal line.
    deadline = time.monotonic() + wait_time(15)
    while not sink.pending(0.05):
        if server.warnings(reason="not_allowed"):
            assert not sink.pending(0), "refused, yet relayed"
            return False
        assert server.running, server.describe()
        assert time.monotonic() < deadline, f"neither relayed nor refused\n{server.describe()}"
    assert recv_exact(sink.accept(), 6) == b"may I?"
    return True


@pytest.mark.parametrize("rule,who,expect", [
    ("allow_cn=web-1", "web1", True),
    ("allow_cn=web-1", "deep", False),
    ("allow_ou=edge", "web1", True),
    ("allow_ou=edge", "apex", False),
    ("allow_dns=a.example.com", "web1", True),
    ("allow_dns=a.example.com", "deep", False),
    ("allow_dns=*.example.com", "web1", True),
    ("allow_dns=*.example.com", "upper", True),      # DNS names ignore case
    ("allow_dns=*.example.com", "deep", False),      # one label only
    ("allow_dns=*.example.com", "apex", False),      # not the apex
    ("allow_uri=spiffe://corp/edge/a", "web1", True),
    ("allow_uri=spiffe://corp/edge/a", "deep", False),
    ("allow_uri=spiffe://corp/edge/*", "deep", True),
    ("allow_uri=spiffe://corp/edge/*", "apex", False),
    ("allow_uri=spiffe://corp/edge/*", "upper", False),
])
def test_rule_kinds(tf, ids, rule, who, expect):
    key, value = rule.split("=", 1)
    assert allowed(tf, {key: value}, ids[who]) is expect


def test_fingerprint_and_spki_pins(tf, ids, pki):
    web1 = ids["web1"]
    assert allowed(tf, {"allow_fingerprint": "sha256:" + sha256_der(web1.cert)}, web1)
    assert not allowed(tf, {"allow_fingerprint": sha256_der(web1.cert)}, ids["deep"])
    # openssl's own spelling: upper case with colons.
    colons = ":".join(sha256_spki(web1.cert)[i:i + 2] for i in range(0, 64, 2)).upper()
    assert allowed(tf, {"allow_spki": "spki:" + colons}, web1)
    assert not allowed(tf, {"allow_spki": "spki:" + colons}, ids["deep"])


def test_self_signed_client_needs_a_pin(tf, ids):
    lonely, stranger = ids["selfsigned"], ids["selfsigned2"]
    pin = {"allow_spki": "spki:" + sha256_spki(lonely.cert)}
    assert allowed(tf, pin, lonely, ca=False)           # no CA at all: the pin decides
    assert allowed(tf, pin, lonely)                     # with a CA too
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=None, **pin)
    client = tf.client(server, identity=stranger, no_tls_resume=True)
    tf.connect(client, allow_reset=True).sendall(b"let me in")
    server.wait_warning(reason="unknown_ca")
    assert not sink.pending(0.5)


def test_no_ca_without_pins_is_a_startup_error(tf, pki):
    r = tf.run("tlsfwd-server", "--cert", pki.server.cert, "--key", pki.server.key,
               "--allow-cn", "web-1", "--check")
    assert r.returncode == 1 and "--ca: required" in r.stderr, r.stderr


def test_allow_file(tf, ids, tmp_path):
    rules = tmp_path / "allow.txt"
    rules.write_text("# edge hosts\n\ncn:nobody\ndns:*.example.com\n")
    assert allowed(tf, {"allow_file": rules}, ids["web1"])
    assert not allowed(tf, {"allow_file": rules}, ids["deep"])
    bad = tmp_path / "bad.txt"
    bad.write_text("cn:ok\nhostname:nope\n")
    r = tf.run("tlsfwd-server", "--ca", tf.pki.ca.cert, "--cert", tf.pki.server.cert,
               "--key", tf.pki.server.key, "--allow-file", bad, "--check")
    assert r.returncode == 1 and f"{bad}:2:" in r.stderr, r.stderr


def test_allow_net_closes_before_tls(tf):
    sink = tf.tcp_sink()
    denied = tf.server(sink, allow_net=["10.0.0.0/8", "fd00::/8"])
    client = tf.client(denied, no_tls_resume=True)
    tf.connect(client, allow_reset=True).sendall(b"from 127.0.0.1")
    denied.wait_warning(reason="net_denied")
    assert not sink.pending(0.5)
    ok = tf.server(sink, allow_net=["127.0.0.0/8"])
    send_and_expect(tf.connect(tf.client(ok, no_tls_resume=True)), sink.accept(), b"local")


def test_max_conns_per_ip(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink, max_conns_per_ip=2)
    client = tf.client(server, no_tls_resume=True)
    held = []
    for i in range(2):
        app = tf.connect(client)
        far = sink.accept()
        send_and_expect(app, far, b"in %d" % i)
        held.append((app, far))
    try:
        tf.connect(client, allow_reset=True).sendall(b"third")
    except OSError:
        pass                                     # reset already: the server refused it
    server.wait_warning(reason="per_ip_limit")
    assert not sink.pending(0.5)
    # One closes; a new one gets through (once the client's probe finds room:
    # until then it refuses connects, as no connection could get through).
    held[0][0].close()
    held[0][1].close()
    for _ in range(50):
        try:
            app = tf.connect(client, allow_reset=True)
            app.sendall(b"again")
        except OSError:
            while sink.pending(0.1):             # the client's probe: an empty connection,
                sink.accept().close()            # closed as Fluentd closes it
            continue
        while sink.pending(0.5):
            far = sink.accept()
            first = far.recv(5)
            if not first:                        # the client's probe: an empty
                far.close()                      # connection, closed like Fluentd does
                continue
            assert first + recv_exact(far, 5 - len(first)) == b"again"
            send_and_expect(app, far, b"room again")
            return
    pytest.fail("no connection got through after one closed")


def test_client_pin_server(tf, pki):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    good = tf.client(server, pin_server="spki:" + sha256_spki(pki.server.cert))
    send_and_expect(tf.connect(good), sink.accept(), b"pinned")
    bad = tf.client(server, pin_server="sha256:" + "00" * 32)
    tf.connect(bad, allow_reset=True)
    bad.wait_warning(reason="pin_mismatch")
    r = tf.run("tlsfwd-client", "--server", "127.0.0.1:1", "--ca", pki.ca.cert,
               "--cert", pki.client.cert, "--key", pki.client.key,
               "--pin-server", "cn:web-1", "--check")
    assert r.returncode == 1 and "--pin-server" in r.stderr, r.stderr
