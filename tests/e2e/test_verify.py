"""Verification as strict as a careful CA client (issue 13, section 3): what
wolfSSL 5.5.4 skips, tlsfwd checks itself, on both ends.  Each refusal is seen
from the daemon (its warn line names the reason) and from the peer (the
connection fails); certificates are made with the openssl CLI."""

import contextlib
import signal
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import fmt_addr, free_port, wait_closed, wait_time
from pki import Pki


@pytest.fixture(scope="module")
def pk(tmp_path_factory):
    """A PKI of odd certificates, made once for the module."""
    return Pki(tmp_path_factory.mktemp("verify-pki"))


def s_client_cmd(tf, server, cert, key, chain):
    local = f"127.0.0.1:{free_port()}"
    cmd = ["openssl", "s_client", "-connect", server.address, "-bind", local,
           "-CAfile", tf.pki.ca.cert, "-cert", cert, "-key", key, "-servername", "localhost",
           "-auth_level", "0", "-cipher", "DEFAULT@SECLEVEL=0"]
    if chain is not None:
        cmd += ["-cert_chain", chain]
    return local, [str(c) for c in cmd]


def assert_server_refuses(tf, server, sink, reason, cert, key, chain=None):
    """The server refuses the client: one warn line with `reason`; the client
    (openssl s_client, its input left open) gets an alert and its connection
    ends; nothing goes upstream."""
    peer, cmd = s_client_cmd(tf, server, cert, key, chain)
    p = tf.popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with contextlib.suppress(BrokenPipeError):   # refused before it read its input
        p.stdin.write(b"hello\n")
        p.stdin.flush()
    try:
        p.wait(timeout=wait_time(15))     # stdin stays open: only the server can end it
    except subprocess.TimeoutExpired:
        raise AssertionError("s_client's connection stayed open after the refusal") from None
    err = p.stderr.read()
    with contextlib.suppress(BrokenPipeError):
        p.stdin.close()
    server.wait_warning(peer=peer, reason=reason)
    assert b"alert" in err, f"s_client saw no alert:\n{err.decode(errors='replace')}"
    assert len(server.warnings(peer=peer)) == 1, server.warnings(peer=peer)
    assert not sink.pending(0.3), "a refused client reached the upstream"


def assert_server_accepts(tf, server, sink, cert, key, chain=None):
    peer, cmd = s_client_cmd(tf, server, cert, key, chain)
    r = subprocess.run(cmd, input=b"hello\n", capture_output=True, timeout=wait_time(30))
    up = sink.accept()
    assert up.recv(64) == b"hello\n", r.stderr
    assert not server.warnings(peer=peer), server.warnings(peer=peer)


def assert_client_refuses(tf, client, reason):
    """tlsfwd-client refuses the server: one warn line with `reason`, and the
    local sender's connection is closed."""
    app = tf.connect(client, allow_reset=True)
    peer = fmt_addr(app.getsockname())
    assert wait_closed(app, wait_time(15)), "the client kept the app connection open"
    client.wait_warning(peer=peer, reason=reason)


# -- chains: pathLenConstraint, CA and keyCertSign -------------------------

@pytest.fixture(scope="module")
def chains(pk):
    """root0 (pathlen:0, as `tlsfwd-certs ca` makes) <- inter0 <- leaves, and
    the same shape under a root without pathlen, to show the path is fine
    otherwise."""
    class C:
        pass
    c = C()
    c.root0 = pk.ca("root0", pathlen=0)
    c.inter0 = pk.ca("inter0", issuer=c.root0)
    c.client0 = pk.issue(c.inter0, "client0", "client.test", usage="client")
    c.server0 = pk.issue(c.inter0, "server0", "localhost", usage="server",
                         dns=["localhost"], ips=["127.0.0.1", "::1"])
    c.root = pk.ca("root")
    c.inter = pk.ca("inter", issuer=c.root)
    c.client = pk.issue(c.inter, "client-inter", "client.test", usage="client")
    c.root_noks = pk.ca("root-noks", ku="digitalSignature, cRLSign")
    c.client_noks = pk.issue(c.root_noks, "client-noks", "client.test", usage="client")
    return c


def openssl_verify(ca, leaf, chain):
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-untrusted", str(chain),
                           str(leaf)], capture_output=True, text=True)


def test_root_pathlen0_refuses_an_intermediate_as_openssl_does(tf, chains):
    c = chains
    r = openssl_verify(c.root0.cert, c.client0.cert, c.inter0.cert)
    assert r.returncode != 0 and "path length constraint exceeded" in r.stdout + r.stderr
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=c.root0.cert)
    assert_server_refuses(tf, server, sink, "path_length", c.client0.cert, c.client0.key,
                          c.inter0.chain)


def test_same_chain_under_an_unconstrained_root_is_accepted(tf, chains):
    c = chains
    assert openssl_verify(c.root.cert, c.client.cert, c.inter.cert).returncode == 0
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=c.root.cert)
    assert_server_accepts(tf, server, sink, c.client.cert, c.client.key, c.inter.chain)


def test_intermediate_of_an_earlier_handshake_does_not_complete_a_chain(tf, pk, chains):
    """wolfSSL keeps the intermediates peers sent; a later peer that sends only
    its leaf must not be accepted through them: the checks above never saw
    that path."""
    c = chains
    bare = pk.issue(c.inter, "client-bare", "client.test", usage="client")
    leaf_only = bare.cert.with_name("leaf-only.pem")
    text = bare.cert.read_text()
    leaf_only.write_text(text[:text.index("-----END CERTIFICATE-----") + 26])
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=c.root.cert, workers=1)
    assert_server_accepts(tf, server, sink, c.client.cert, c.client.key, c.inter.chain)
    assert_server_refuses(tf, server, sink, "incomplete_chain", leaf_only, bare.key)


@pytest.fixture(scope="module")
def constrained(pk):
    """A root permitting DNS example.com only, an intermediate without
    constraints under it, and leaves within and outside; a root permitting
    IP 10.0.0.0/8 only and a leaf outside it."""
    class N:
        pass
    n = N()
    n.root = pk.ca("root-nc", nc="permitted;DNS:example.com")
    # wolfSSL holds an intermediate's CN to its issuer's DNS constraints
    n.inter = pk.ca("inter-nc", "ca.example.com", issuer=n.root)
    n.good = pk.issue(n.inter, "nc-good", "a.example.com", usage="client", dns=["a.example.com"])
    n.bad_dns = pk.issue(n.inter, "nc-bad-dns", "a.example.com", usage="client",
                         dns=["evil.test"])
    n.root_ip = pk.ca("root-nc-ip", nc="permitted;IP:10.0.0.0/255.0.0.0")
    n.bad_ip = pk.issue(n.root_ip, "nc-bad-ip", "a.example.com", usage="client",
                        ips=["192.0.2.7"])
    return n


def test_name_constraints_of_a_root_bind_below_its_intermediate(tf, constrained):
    n = constrained
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=n.root.cert)
    assert_server_accepts(tf, server, sink, n.good.cert, n.good.key, n.inter.chain)
    # wolfSSL checks a DNS name against its direct issuer's constraints only
    assert_server_refuses(tf, server, sink, "name_constraints", n.bad_dns.cert, n.bad_dns.key,
                          n.inter.chain)


def test_ip_name_constraints_are_checked(tf, constrained):
    n = constrained
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=n.root_ip.cert)
    # wolfSSL ignores iPAddress constraints
    assert_server_refuses(tf, server, sink, "name_constraints", n.bad_ip.cert, n.bad_ip.key)


def test_tlsfwd_certs_ca_makes_pathlen0_roots(tf, tmp_path):
    from conftest import BUILD
    r = subprocess.run([str(BUILD / "tlsfwd-certs"), "ca", "--out", str(tmp_path / "ca")],
                       capture_output=True, text=True, timeout=wait_time(30))
    assert r.returncode == 0, r.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "ca" / "ca.crt"), "-noout",
                           "-ext", "basicConstraints"], capture_output=True, text=True).stdout
    assert "pathlen:0" in text


def test_root_without_keycertsign_is_no_issuer(tf, chains):
    c = chains
    sink = tf.tcp_sink()
    server = tf.server(sink, ca=c.root_noks.cert)
    assert_server_refuses(tf, server, sink, "issuer_not_ca", c.client_noks.cert,
                          c.client_noks.key)


def test_client_refuses_server_chain_over_pathlen(tf, chains):
    tls = tf.tls_server(chains.server0)
    client = tf.client(f"127.0.0.1:{tls.port}", ca=chains.root0.cert)
    assert_client_refuses(tf, client, "path_length")


# -- key sizes and signature digests ---------------------------------------

@pytest.fixture(scope="module")
def weak(pk, pki):
    class W:
        pass
    w = W()
    w.rsa1024 = pk.issue(pki.ca, "rsa1024", "client.test", usage="client", key="rsa:1024")
    w.rsa2048 = pk.issue(pki.ca, "rsa2048", "client.test", usage="client", key="rsa:2048")
    w.sha1 = pk.issue(pki.ca, "sha1", "client.test", usage="client", digest="sha1")
    w.server_rsa1024 = pk.issue(pki.ca, "server-rsa1024", "localhost", usage="server",
                                key="rsa:1024", dns=["localhost"], ips=["127.0.0.1"])
    w.server_sha1 = pk.issue(pki.ca, "server-sha1", "localhost", usage="server",
                             digest="sha1", dns=["localhost"], ips=["127.0.0.1"])
    w.root1024 = pk.ca("root1024", key="rsa:1024")
    return w


@pytest.mark.parametrize("who, reason", [("rsa1024", "weak_key"), ("sha1", "weak_signature")])
def test_server_refuses_weak_client_certificate(tf, weak, who, reason):
    ident = getattr(weak, who)
    sink = tf.tcp_sink()
    server = tf.server(sink)
    assert_server_refuses(tf, server, sink, reason, ident.cert, ident.key)


def test_rsa2048_client_is_accepted(tf, weak):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    assert_server_accepts(tf, server, sink, weak.rsa2048.cert, weak.rsa2048.key)


def s_server(tf, ident):
    """openssl s_server willing to present a weak certificate; its address."""
    port = free_port()
    p = tf.popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", ident.cert,
                  "-key", ident.key, "-cipher", "DEFAULT@SECLEVEL=0", "-auth_level", "0",
                  "-quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + wait_time(10)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"127.0.0.1:{port}"
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, "s_server did not start"
            time.sleep(0.05)


@pytest.mark.parametrize("who, reason", [("server_rsa1024", "weak_key"),
                                         ("server_sha1", "weak_signature")])
def test_client_refuses_weak_server_certificate(tf, weak, who, reason):
    client = tf.client(s_server(tf, getattr(weak, who)))
    assert_client_refuses(tf, client, reason)


@pytest.mark.parametrize("which, reason", [("cert", "weak_key"), ("cert-sha1", "weak_signature"),
                                           ("ca", "weak_key")])
def test_weak_own_certificate_or_ca_is_a_startup_error(tf, pki, weak, which, reason):
    args = dict(listen=f"127.0.0.1:{free_port()}", upstream="127.0.0.1:1", ca=pki.ca.cert,
                cert=pki.server.cert, key=pki.server.key)
    if which == "cert":
        args.update(cert=weak.server_rsa1024.cert, key=weak.server_rsa1024.key)
    elif which == "cert-sha1":
        args.update(cert=weak.server_sha1.cert, key=weak.server_sha1.key)
    else:
        args.update(ca=weak.root1024.cert)
    flags = [f for k, v in args.items() for f in (f"--{k}", str(v))]
    r = tf.run("tlsfwd-server", *flags)
    assert r.returncode != 0, r.stderr
    named = args["ca"] if which == "ca" else args["cert"]
    assert reason in r.stderr and str(named) in r.stderr, r.stderr


# -- extended key usage ----------------------------------------------------

def test_server_refuses_client_certificate_without_clientauth(tf, pki):
    # pki.server has an EKU with serverAuth only
    sink = tf.tcp_sink()
    server = tf.server(sink)
    assert_server_refuses(tf, server, sink, "wrong_usage", pki.server.cert, pki.server.key)


def test_client_refuses_server_certificate_without_serverauth(tf, pk, pki):
    bad = pk.issue(pki.ca, "server-clientauth", "localhost", usage="client",
                   dns=["localhost"], ips=["127.0.0.1", "::1"])
    tls = tf.tls_server(bad)
    client = tf.client(f"127.0.0.1:{tls.port}")
    assert_client_refuses(tf, client, "wrong_usage")


# -- --allow-cn and several CNs ---------------------------------------------

@pytest.mark.parametrize("rule", ["client.test", "second.test", "nobody"])
def test_allow_cn_refuses_a_subject_with_several_cns(tf, pk, pki, rule):
    two = pk.issue(pki.ca, f"two-cns-{rule}", "client.test", usage="client",
                   extra_cn="second.test")
    sink = tf.tcp_sink()
    server = tf.server(sink, allow_cn=rule)
    assert_server_refuses(tf, server, sink, "several_cns", two.cert, two.key)


# -- expired CRLs ------------------------------------------------------------

def test_expired_crl_is_a_startup_error_naming_the_file(tf, pk, pki, tmp_path):
    crl = tmp_path / "old.crl"
    shutil.copyfile(pk.crl(pki.ca, expired=True), crl)
    r = tf.run("tlsfwd-server", "--listen", f"127.0.0.1:{free_port()}", "--upstream",
               "127.0.0.1:1", "--ca", pki.ca.cert, "--cert", pki.server.cert, "--key",
               pki.server.key, "--crl", crl)
    assert r.returncode != 0
    assert "crl_expired" in r.stderr and str(crl) in r.stderr, r.stderr


def test_expired_crl_at_reload_keeps_the_old_one_and_says_so(tf, pk, pki, tmp_path):
    crl = tmp_path / "current.crl"
    shutil.copyfile(pk.crl(pki.ca), crl)
    sink = tf.tcp_sink()
    server = tf.server(sink, crl=crl)
    shutil.copyfile(pk.crl(pki.ca, expired=True), crl)
    server.signal(signal.SIGHUP)
    rec = server.wait_for(lambda r: r.get("level") == "error" and "reload" in r.get("msg", ""),
                          what="a failed reload")
    assert "crl_expired" in rec["reason"] and str(crl) in rec["reason"], rec
    assert_server_accepts(tf, server, sink, pki.client.cert, pki.client.key)


def test_crl_that_expires_while_loaded_fails_closed(tf, pk, pki, tmp_path):
    crl = tmp_path / "short.crl"
    life = int(wait_time(4))      # long enough for the daemon to load it first
    due = time.time() + life
    shutil.copyfile(pk.crl(pki.ca, seconds=life), crl)
    sink = tf.tcp_sink()
    server = tf.server(sink, crl=crl)
    time.sleep(max(0.0, due + 1.5 - time.time()))   # a clock, not a log line, to wait for
    assert_server_refuses(tf, server, sink, "crl_expired", pki.client.cert, pki.client.key)
