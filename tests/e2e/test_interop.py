"""Both ends are plain TLS: interop with stunnel4, openssl s_client and
Python's ssl module, and what the client sends as SNI."""

import subprocess

import pytest

from conftest import (MiB, assert_delivered, free_port, pair_endpoints, recv_exact,
                      run_endpoints, scaled, wait_time)


def transfer(app, far):
    a, b = pair_endpoints(app, far, scaled(8 * MiB), scaled(8 * MiB))
    run_endpoints([a, b])
    assert_delivered(a, b)


def test_stunnel_client_to_tlsfwd_server(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    port = free_port()
    tf.stunnel({
        "client": "yes",
        "accept": f"127.0.0.1:{port}",
        "connect": server.address,
        "cert": tf.pki.client.cert,
        "key": tf.pki.client.key,
        "CAfile": tf.pki.ca.cert,
        "verifyChain": "yes",
        "checkHost": "localhost",
        "sni": "localhost",
    })
    app = tf.connect(f"127.0.0.1:{port}")
    transfer(app, sink.accept())
    assert server.warnings() == []


def test_tlsfwd_client_to_stunnel_server(tf):
    sink = tf.tcp_sink()
    port = free_port()
    tf.stunnel({
        "accept": f"127.0.0.1:{port}",
        "connect": sink.address,
        "cert": tf.pki.server.cert,
        "key": tf.pki.server.key,
        "CAfile": tf.pki.ca.cert,
        "verify": "2",
    })
    client = tf.client(f"127.0.0.1:{port}")
    app = tf.connect(client)
    transfer(app, sink.accept())
    assert client.warnings() == []


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_s_client_is_relayed(tf, version):
    """A control for the refusal tests: s_client with a good certificate gets
    through (TLS 1.2 only when --tls-min 1.2 asks for it)."""
    sink = tf.tcp_sink()
    server = tf.server(sink, tls_min="1.2" if version == "-tls1_2" else None)
    r = subprocess.run(["openssl", "s_client", "-connect", server.address, version,
                        "-CAfile", str(tf.pki.ca.cert), "-servername", "localhost",
                        "-verify_return_error", "-cert", str(tf.pki.client.cert),
                        "-key", str(tf.pki.client.key)],
                       input=b"hello through s_client\n", capture_output=True,
                       timeout=wait_time(30))
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert recv_exact(sink.accept(), 23) == b"hello through s_client\n"
    assert server.warnings() == []


SNI_CASES = {
    # --server, --server-name, server identity, expected SNI
    "hostname": ("localhost", None, "server_noip", "localhost"),
    "ip-literal": ("127.0.0.1", None, "server", None),
    "ip-with-server-name": ("127.0.0.1", "localhost", "server_noip", "localhost"),
}


@pytest.mark.parametrize("case", list(SNI_CASES))
def test_sni_and_name_verification(tf, case):
    host, server_name, identity, want_sni = SNI_CASES[case]
    tls = tf.tls_server(getattr(tf.pki, identity))
    client = tf.client(f"{host}:{tls.port}", server_name=server_name)
    app = tf.connect(client)
    app.sendall(b"ping")
    assert recv_exact(app, 4) == b"ping"
    assert tls.sni == [want_sni]
    assert tls.subjects == [{"commonName": "client.test"}]
    assert client.warnings() == []
