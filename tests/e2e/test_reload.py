"""Live reload: SIGHUP and file changes put new certificates, keys, CAs and
CRLs in force for new connections, leave open ones untouched, and keep the old
configuration when a new file is broken (issue #5)."""

import shutil
import signal
import socket
import ssl
import threading

import pytest

from conftest import (KiB, Tunnel, pair_endpoints, run_endpoints, assert_delivered,
                      send_and_expect, scaled, wait_time)
from pki import Identity, Pki


def served_subject(pki, server, client_identity=None):
    """Connect to `server` with Python's ssl and return the CN it presents."""
    ident = client_identity or pki.client
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
    ctx.load_cert_chain(str(ident.cert), str(ident.key))
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            return subject["commonName"]


def swap_in(src, dst):
    """Replace dst by src the way deployments do: write aside, then rename."""
    tmp = dst.with_suffix(".new")
    shutil.copyfile(src, tmp)
    tmp.chmod(0o600)
    tmp.rename(dst)


@pytest.fixture
def live_identity(tmp_path, pki):
    """A server identity whose files the test may replace."""
    d = tmp_path / "live"
    d.mkdir()
    cert, key = d / "server.crt", d / "server.key"
    shutil.copyfile(pki.server.cert, cert)
    shutil.copyfile(pki.server.key, key)
    key.chmod(0o600)
    return Identity(name="live", cert=cert, key=key)


@pytest.fixture
def second_server(tmp_path, pki):
    """Another server certificate from the same CA, with another CN."""
    return Pki(tmp_path / "pki2").issue(pki.ca, "server2", "second.test", usage="server",
                                        dns=["localhost"], ips=["127.0.0.1"])


def is_reload(trigger):
    return lambda r: r.get("msg", "").startswith("reloaded") and r.get("trigger") == trigger


def wait_reloads(daemon, trigger):
    """Wait until `daemon` logged a reload by `trigger` ("SIGHUP", "file change")."""
    return daemon.wait_for(is_reload(trigger), what=f"a reload by {trigger}")


def wait_reload_error(daemon, count):
    """Wait until `daemon` logged `count` failed reloads; return the last."""
    def enough(_):
        errors = [r for r in daemon.records() if r.get("level") == "error"
                  and "reload" in r.get("msg", "")]
        return errors[-1] if len(errors) >= count else None
    return daemon.wait_for(enough, what=f"{count} failed reload(s)") and enough(None)


def test_sighup_puts_new_certificate_in_force(tf, pki, live_identity, second_server):
    server = tf.server(tf.tcp_sink(), identity=live_identity)
    assert served_subject(pki, server) == "localhost"
    shutil.copyfile(second_server.cert, live_identity.cert)
    shutil.copyfile(second_server.key, live_identity.key)
    server.signal(signal.SIGHUP)
    wait_reloads(server, "SIGHUP")
    assert served_subject(pki, server) == "second.test"


def test_file_change_reloads_without_a_signal(tf, pki, live_identity, second_server):
    server = tf.server(tf.tcp_sink(), identity=live_identity)
    assert served_subject(pki, server) == "localhost"
    swap_in(second_server.key, live_identity.key)
    swap_in(second_server.cert, live_identity.cert)
    wait_reloads(server, "file change")
    assert served_subject(pki, server) == "second.test"


def test_kubernetes_symlink_swap_reloads(tf, pki, tmp_path, second_server):
    """A Secret volume: files are symlinks into ..data, which is swapped atomically."""
    vol = tmp_path / "secret"
    vol.mkdir()
    for gen, ident in (("..2026_a", pki.server), ("..2026_b", second_server)):
        (vol / gen).mkdir()
        shutil.copyfile(ident.cert, vol / gen / "tls.crt")
        shutil.copyfile(ident.key, vol / gen / "tls.key")
        (vol / gen / "tls.key").chmod(0o600)
    (vol / "..data").symlink_to("..2026_a")
    (vol / "tls.crt").symlink_to("..data/tls.crt")
    (vol / "tls.key").symlink_to("..data/tls.key")
    server = tf.server(tf.tcp_sink(), identity=Identity("k8s", vol / "tls.crt", vol / "tls.key"))
    assert served_subject(pki, server) == "localhost"
    (vol / "..data_tmp").symlink_to("..2026_b")
    (vol / "..data_tmp").rename(vol / "..data")
    wait_reloads(server, "file change")
    assert served_subject(pki, server) == "second.test"


def test_broken_new_file_keeps_the_old_configuration(tf, pki, live_identity):
    server = tf.server(tf.tcp_sink(), identity=live_identity)
    live_identity.cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    server.signal(signal.SIGHUP)
    rec = wait_reload_error(server, 1)
    assert str(live_identity.cert) in rec["reason"], rec
    assert served_subject(pki, server) == "localhost"   # the old certificate still serves
    # A key that does not match the (restored) certificate: refused as a whole too.
    shutil.copyfile(pki.server.cert, live_identity.cert)
    shutil.copyfile(pki.client.key, live_identity.key)
    server.signal(signal.SIGHUP)
    rec = wait_reload_error(server, 2)
    assert str(live_identity.key) in rec["reason"], rec
    assert served_subject(pki, server) == "localhost"


def test_revoked_client_refused_after_crl_replaced_without_signal(tf, pki, tmp_path):
    p = Pki(tmp_path / "pki3")
    victim = p.issue(pki.ca, "victim", "victim.test", usage="client")
    crl = tmp_path / "current.crl"
    shutil.copyfile(p.crl(pki.ca), crl)
    sink = tf.tcp_sink()
    server = tf.server(sink, crl=crl)
    client = tf.client(server, identity=victim, no_tls_resume=True)
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"before revocation")
    swap_in(p.crl(pki.ca, revoked=[victim]), crl)
    wait_reloads(server, "file change")
    late = tf.connect(client, allow_reset=True)
    server.wait_warning(reason="revoked")
    assert not sink.pending(0.5), "a revoked client reached the upstream"
    # The connection opened before the reload is untouched.
    send_and_expect(app, far, b"still flowing after the CRL changed")
    send_and_expect(far, app, b"both ways")
    late.close()


def test_der_crl_refuses_the_revoked_and_only_them(tf, pki, tmp_path):
    p = Pki(tmp_path / "pki4")
    victim = p.issue(pki.ca, "victim", "victim.test", usage="client")
    crl = p.crl(pki.ca, revoked=[victim], der=True)
    assert not crl.read_bytes().startswith(b"-----")
    sink = tf.tcp_sink()
    server = tf.server(sink, crl=crl)
    send_and_expect(tf.connect(tf.client(server)), sink.accept(), b"not revoked")
    tf.connect(tf.client(server, identity=victim), allow_reset=True)
    server.wait_warning(reason="revoked")
    assert not sink.pending(0.5), "a revoked client reached the upstream"


def test_reload_with_1000_open_connections_loses_no_byte(tf, live_identity, second_server):
    tunnel = Tunnel(tf, server_opts=dict(identity=live_identity))
    conns = 1000
    per_conn = scaled(256 * KiB, minimum=16 * KiB)
    pairs = [tunnel.open() for _ in range(conns)]
    endpoints = []
    for app, sink in pairs:
        endpoints += pair_endpoints(app, sink, per_conn, per_conn, chunk=8 * KiB, pace=0.01)
    mover = threading.Thread(target=run_endpoints, args=(endpoints,),
                             kwargs=dict(timeout=wait_time(180)))
    mover.start()
    try:
        swap_in(second_server.key, live_identity.key)
        swap_in(second_server.cert, live_identity.cert)
        wait_reloads(tunnel.server, "file change")
        for d in (tunnel.server, tunnel.client):
            d.signal(signal.SIGHUP)
        for d in (tunnel.server, tunnel.client):
            wait_reloads(d, "SIGHUP")
        assert any(not e.done for e in endpoints), "the transfer ended before the reloads"
    finally:
        mover.join()
    for a, b in zip(endpoints[::2], endpoints[1::2]):
        assert_delivered(a, b)
    assert served_subject(tf.pki, tunnel.server) == "second.test"
