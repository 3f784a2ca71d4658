"""tlsfwd-certs end to end: the certificates it makes are checked with the
tools people will use them with (openssl verify, Python's ssl module, stunnel,
wolfSSL itself), and what it prints is checked against openssl.

Its PKI is made by tlsfwd-certs itself (make_pki), since those certificates
are what is under test; conftest's PKI (pki.py, openssl-made) is for the
daemons' tests.  From conftest it takes free_port and, for stunnel, the tf
fixture; every test works in its own tmp_path.  TLSFWD_BUILD names the
directory holding tlsfwd-certs (default build/); TLSFWD_VALGRIND=1 runs every
tlsfwd-certs command under valgrind.
"""

import base64
import datetime
import ipaddress
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port

try:
    import yaml
except ImportError:        # python3-yaml missing: parse the simple form we emit
    yaml = None

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = Path(os.environ.get("TLSFWD_BUILD") or ROOT / "build")
CERTS = BUILD / "tlsfwd-certs"
VALGRIND = os.environ.get("TLSFWD_VALGRIND") == "1"
WOLFSSL = ROOT / "build" / "wolfssl"



# ---------------------------------------------------------------------------
# running things

def certs(*args, env=None, ok=True, cwd=None):
    """Run tlsfwd-certs; with ok=True it must exit 0, with ok=False non-zero.
    Returns the CompletedProcess (text)."""
    cmd = [str(CERTS), *map(str, args)]
    if VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite"] + cmd
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd,
                       timeout=300 if VALGRIND else 60)
    assert p.returncode != 99, f"valgrind errors:\n{p.stderr}"
    if ok:
        assert p.returncode == 0, f"{cmd} failed ({p.returncode}):\n{p.stderr}"
    else:
        assert p.returncode != 0, f"{cmd} should have failed:\n{p.stdout}"
        assert p.stderr.strip(), "a failure must say why"
    return p


def openssl(*args, ok=True, input=None, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, env=full_env,
                       input=input, timeout=60)
    if ok:
        assert p.returncode == 0, f"openssl {args} failed:\n{p.stderr.decode()}"
    return p


def make_ca(d, *extra, env=None):
    certs("ca", "--out", d, *extra, env=env)
    return d


def make_pki(tmp, key="ec"):
    """A CA, a server certificate for localhost/127.0.0.1/agg.example.com and
    a client certificate.  Returns (ca_dir, server_dir, client_dir)."""
    ca = make_ca(tmp / "ca", "--key", key)
    certs("server", "--ca", ca, "--cn", "agg.example.com", "--key", key,
          "--san", "DNS:agg.example.com,DNS:localhost,IP:127.0.0.1,IP:::1",
          "--out", tmp / "server")
    certs("client", "--ca", ca, "--cn", "edge-01", "--key", key,
          "--san", "URI:spiffe://example.org/edge-01", "--out", tmp / "client")
    return ca, tmp / "server", tmp / "client"


def x509_text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout.decode()


def ext_value(text, name):
    """The value line(s) of an X509v3 extension in `openssl x509 -text`, and
    whether it is critical.  (None, False) if absent."""
    m = re.search(r"X509v3 " + re.escape(name) + r":( critical)? *\n((?:\s{16}.*\n)+)", text)
    if not m:
        return None, False
    return " ".join(l.strip() for l in m.group(2).splitlines()), bool(m.group(1))


def verify(ca, cert, purpose, strict=True):
    args = ["verify", "-CAfile", ca]
    if strict:
        args.append("-x509_strict")
    if purpose is not None:
        args += ["-purpose", purpose]
    args.append(cert)
    return openssl(*args, ok=False)


def show(path):
    """`tlsfwd-certs show` as {label: [values]}."""
    out = certs("show", path).stdout
    facts = {}
    for line in out.splitlines():
        label, _, value = line.partition(":")
        facts.setdefault(label, []).append(value.strip())
    return facts


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl_date(s):
    """'Nov 22 08:00:00 2025 GMT' -> aware datetime."""
    return datetime.datetime.strptime(" ".join(s.split()), "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc)


def iso_date(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------------------
# TLS peers

def tls_server_ctx(cert, key, ca=None, password=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key, password=password)
    if ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ca)
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def tls_client_ctx(ca, cert=None, key=None, password=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)   # CERT_REQUIRED + check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if cert is not None:
        ctx.load_cert_chain(cert, key, password=password)
    return ctx


class EchoServer:
    """A listener on host, port 0, serving each connection on its own thread
    with the subclass's _serve(conn); a context manager that closes it."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TlsEcho(EchoServer):
    """A TLS echo server on 127.0.0.1, port 0, one thread per connection.
    Handshake errors are kept in .errors; the peer certificate of the last
    connection in .peer."""

    def __init__(self, ctx, host="127.0.0.1"):
        self.ctx = ctx
        self.errors = []
        self.peer = None
        super().__init__(host)

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.peer = tls.getpeercert()
                while True:
                    data = tls.recv(65536)
                    if not data:
                        break
                    tls.sendall(data)
        except (ssl.SSLError, OSError) as e:
            self.errors.append(e)
        finally:
            conn.close()


def tls_exchange(ctx, port, server_hostname, payload=b"hello tlsfwd\n", host="127.0.0.1"):
    """Connect, handshake, send payload, read the echo."""
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got


class PlainEcho(EchoServer):
    """A plaintext TCP echo server on 127.0.0.1 (stunnel's backend)."""

    @staticmethod
    def _serve(conn):
        conn.settimeout(10)
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# help and usage

@pytest.mark.parametrize("cmd", ["ca", "server", "client", "self-signed", "fingerprint",
                                 "show", "kube-secret"])
def test_help_for_each_command(cmd):
    p = certs(cmd, "--help")
    assert p.stdout.startswith(f"Usage: tlsfwd-certs {cmd}")
    assert certs("help", cmd).stdout == p.stdout


def test_top_level_usage_and_version():
    p = certs("--help")
    for cmd in ("ca", "server", "client", "self-signed", "fingerprint", "show", "kube-secret"):
        assert f"  {cmd}" in p.stdout
    assert "wolfSSL" in certs("--version").stdout
    p = certs(ok=False)
    assert "Usage" in p.stderr
    p = certs("frobnicate", ok=False)
    assert "unknown command 'frobnicate'" in p.stderr


# ---------------------------------------------------------------------------
# what gets made

def test_ca_profile(tmp_path):
    p = certs("ca", "--out", tmp_path / "pki", "--cn", "Logging CA")
    ca = tmp_path / "pki" / "ca.crt"
    assert "wrote" in p.stdout and "sha256:" in p.stdout
    text = x509_text(ca)
    assert "Subject: CN = Logging CA" in text and "Issuer: CN = Logging CA" in text
    bc, crit = ext_value(text, "Basic Constraints")
    assert crit and bc.startswith("CA:TRUE")
    ku, crit = ext_value(text, "Key Usage")
    assert crit and ku == "Certificate Sign, CRL Sign"
    skid, _ = ext_value(text, "Subject Key Identifier")
    akid, _ = ext_value(text, "Authority Key Identifier")
    assert skid and akid and skid in akid
    assert ext_value(text, "Extended Key Usage")[0] is None
    assert "ASN1 OID: prime256v1" in text and "ecdsa-with-SHA256" in text
    assert verify(ca, ca, None).returncode == 0      # a valid self-signed root
    assert mode(tmp_path / "pki" / "ca.key") == 0o600
    assert mode(tmp_path / "pki") == 0o700


def test_dates_serial_and_days(tmp_path):
    make_ca(tmp_path / "ca", "--days", "30")
    f = show(tmp_path / "ca" / "ca.crt")
    nb, na = iso_date(f["not-before"][0]), iso_date(f["not-after"][0])
    # notBefore an hour in the past for clock skew; notAfter now + days
    assert abs((now() - nb).total_seconds() - 3600) < 120
    assert abs((na - now()).total_seconds() - 30 * 86400) < 120
    # serials: random, positive, 16 bytes
    serials = set()
    for i in range(3):
        certs("client", "--ca", tmp_path / "ca", "--cn", f"c{i}", "--out", tmp_path / f"c{i}")
        der = openssl("x509", "-in", tmp_path / f"c{i}" / "client.crt", "-outform", "DER").stdout
        serial = openssl("x509", "-in", tmp_path / f"c{i}" / "client.crt", "-noout",
                         "-serial").stdout.decode().strip().split("=")[1]
        assert len(serial) == 32, serial                      # 16 bytes, no sign byte
        assert int(serial[0], 16) < 8                          # positive
        assert bytes.fromhex(serial) in der
        serials.add(serial)
    assert len(serials) == 3
    f = show(tmp_path / "c0" / "client.crt")
    assert abs((iso_date(f["not-after"][0]) - now()).total_seconds() - 825 * 86400) < 120


def test_server_and_client_profiles(tmp_path):
    ca, server, client = make_pki(tmp_path)
    ca_text = x509_text(ca / "ca.crt")
    ca_skid, _ = ext_value(ca_text, "Subject Key Identifier")

    text = x509_text(server / "server.crt")
    assert "Subject: CN = agg.example.com" in text and "Issuer: CN = tlsfwd CA" in text
    eku, _ = ext_value(text, "Extended Key Usage")
    assert eku == "TLS Web Server Authentication"
    san, _ = ext_value(text, "Subject Alternative Name")
    assert san == ("DNS:agg.example.com, DNS:localhost, IP Address:127.0.0.1, "
                   "IP Address:0:0:0:0:0:0:0:1")
    ku, crit = ext_value(text, "Key Usage")
    assert crit and ku == "Digital Signature"
    bc, crit = ext_value(text, "Basic Constraints")
    assert crit and bc == "CA:FALSE"
    assert ca_skid in ext_value(text, "Authority Key Identifier")[0]
    assert ext_value(text, "Subject Key Identifier")[0] not in (None, ca_skid)

    text = x509_text(client / "client.crt")
    assert ext_value(text, "Extended Key Usage")[0] == "TLS Web Client Authentication"
    assert ext_value(text, "Subject Alternative Name")[0] == "URI:spiffe://example.org/edge-01"
    assert ca_skid in ext_value(text, "Authority Key Identifier")[0]
    for d, name in ((server, "server"), (client, "client")):
        assert mode(d / f"{name}.key") == 0o600
        assert mode(d / f"{name}.crt") == 0o644


def test_openssl_verify_purposes(tmp_path):
    ca, server, client = make_pki(tmp_path)
    ca_crt = ca / "ca.crt"
    assert verify(ca_crt, server / "server.crt", "sslserver").returncode == 0
    assert verify(ca_crt, client / "client.crt", "sslclient").returncode == 0
    p = verify(ca_crt, client / "client.crt", "sslserver")
    assert p.returncode != 0 and b"unsuitable certificate purpose" in p.stdout + p.stderr
    p = verify(ca_crt, server / "server.crt", "sslclient")
    assert p.returncode != 0
    # and not against another CA
    other = make_ca(tmp_path / "other")
    assert verify(other / "ca.crt", server / "server.crt", "sslserver").returncode != 0


@pytest.mark.parametrize("key,desc,bits", [("rsa", "RSA", 2048), ("rsa3072", "RSA", 3072),
                                           ("ec384", "EC", 384)])
def test_key_types(tmp_path, key, desc, bits):
    ca, server, client = make_pki(tmp_path, key=key)
    for path in (ca / "ca.key", server / "server.key", client / "client.key"):
        text = openssl("pkey", "-in", path, "-noout", "-text").stdout.decode()
        assert f"({bits} bit" in text.splitlines()[0]
        assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")   # PKCS#8
    assert show(server / "server.crt")["public-key"] == [f"{desc} {'P-' if desc == 'EC' else ''}{bits}"]
    assert verify(ca / "ca.crt", server / "server.crt", "sslserver").returncode == 0
    assert verify(ca / "ca.crt", client / "client.crt", "sslclient").returncode == 0
    if desc == "RSA":
        ku, _ = ext_value(x509_text(server / "server.crt"), "Key Usage")
        assert ku == "Digital Signature, Key Encipherment"
        assert "sha256WithRSAEncryption" in x509_text(server / "server.crt")
    else:
        assert "ecdsa-with-SHA384" in x509_text(server / "server.crt")


def test_mixed_key_types_with_an_openssl_ca(tmp_path):
    """A CA made by openssl (SEC1 key with EC PARAMETERS, multi-attribute
    subject) signs our certificates; the issuer is copied byte for byte."""
    ca = tmp_path / "oca"
    ca.mkdir()
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-out", ca / "ca.key")
    openssl("req", "-x509", "-new", "-key", ca / "ca.key", "-days", "3650",
            "-subj", "/C=US/O=Example, Inc./OU=Logging/CN=Example Root",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", ca / "ca.crt")
    certs("server", "--ca", ca, "--cn", "agg", "--san", "DNS:agg.example.com",
          "--key", "rsa", "--out", tmp_path / "s")
    assert verify(ca / "ca.crt", tmp_path / "s" / "server.crt", "sslserver").returncode == 0
    issuer = openssl("x509", "-in", tmp_path / "s" / "server.crt", "-noout", "-issuer",
                     "-nameopt", "RFC2253").stdout
    subject = openssl("x509", "-in", ca / "ca.crt", "-noout", "-subject",
                      "-nameopt", "RFC2253").stdout
    assert issuer.split(b"=", 1)[1] == subject.split(b"=", 1)[1]


def test_leaf_outliving_the_ca_warns(tmp_path):
    make_ca(tmp_path / "ca", "--days", "10")
    p = certs("client", "--ca", tmp_path / "ca", "--cn", "c", "--out", tmp_path / "c")
    assert "warning" in p.stderr and "CA only until" in p.stderr


# ---------------------------------------------------------------------------
# they work for real

def test_python_ssl_mutual_tls(tmp_path):
    ca, server, client = make_pki(tmp_path)
    sctx = tls_server_ctx(server / "server.crt", server / "server.key", ca / "ca.crt")
    cctx = tls_client_ctx(ca / "ca.crt", client / "client.crt", client / "client.key")
    with TlsEcho(sctx) as srv:
        for name in ("localhost", "agg.example.com", "127.0.0.1"):   # DNS and IP SANs
            assert tls_exchange(cctx, srv.port, name) == b"hello tlsfwd\n"
        assert srv.errors == []
        assert ("commonName", "edge-01") in [a for rdn in srv.peer["subject"] for a in rdn]
        assert ("URI", "spiffe://example.org/edge-01") in srv.peer["subjectAltName"]
    with TlsEcho(sctx, host="::1") as srv:
        assert tls_exchange(cctx, srv.port, "::1", host="::1") == b"hello tlsfwd\n"


def test_python_ssl_refuses_wrong_names_and_no_client_cert(tmp_path):
    ca, server, client = make_pki(tmp_path)
    sctx = tls_server_ctx(server / "server.crt", server / "server.key", ca / "ca.crt")
    with TlsEcho(sctx) as srv:
        cctx = tls_client_ctx(ca / "ca.crt", client / "client.crt", client / "client.key")
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            tls_exchange(cctx, srv.port, "other.example.com")
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            tls_exchange(cctx, srv.port, "10.0.0.5")
        nocert = tls_client_ctx(ca / "ca.crt")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_exchange(nocert, srv.port, "localhost")


def test_client_certificate_refused_as_server_certificate(tmp_path):
    ca, server, client = make_pki(tmp_path)
    # a client cert carrying the right name, still only clientAuth
    certs("client", "--ca", ca, "--cn", "localhost", "--san", "DNS:localhost",
          "--out", tmp_path / "impostor")
    imp = tmp_path / "impostor"
    sctx = tls_server_ctx(imp / "client.crt", imp / "client.key", ca / "ca.crt")
    cctx = tls_client_ctx(ca / "ca.crt", client / "client.crt", client / "client.key")
    with TlsEcho(sctx) as srv:
        with pytest.raises(ssl.SSLCertVerificationError, match="unsuitable certificate purpose"):
            tls_exchange(cctx, srv.port, "localhost")


def test_server_certificate_refused_as_client_certificate(tmp_path):
    ca, server, client = make_pki(tmp_path)
    sctx = tls_server_ctx(server / "server.crt", server / "server.key", ca / "ca.crt")
    cctx = tls_client_ctx(ca / "ca.crt", server / "server.crt", server / "server.key")
    with TlsEcho(sctx) as srv:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_exchange(cctx, srv.port, "localhost")
        deadline = time.monotonic() + 5
        while not srv.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("unsuitable certificate purpose" in str(e) for e in srv.errors), srv.errors


def test_self_signed_client_pinned(tmp_path):
    ca, server, _ = make_pki(tmp_path)
    p = certs("self-signed", "--cn", "edge-07", "--out", tmp_path / "pinned")
    pinned = tmp_path / "pinned"
    text = x509_text(pinned / "client.crt")
    assert "Issuer: CN = edge-07" in text
    assert ext_value(text, "Extended Key Usage")[0] == "TLS Web Client Authentication"
    assert ext_value(text, "Basic Constraints") == ("CA:FALSE", True)
    # what it prints is what fingerprint prints
    fp = certs("fingerprint", pinned / "client.crt").stdout
    assert fp.strip() in p.stdout
    # a server that trusts exactly this certificate accepts it
    sctx = tls_server_ctx(server / "server.crt", server / "server.key", pinned / "client.crt")
    sctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    cctx = tls_client_ctx(ca / "ca.crt", pinned / "client.crt", pinned / "client.key")
    with TlsEcho(sctx) as srv:
        assert tls_exchange(cctx, srv.port, "localhost") == b"hello tlsfwd\n"
        assert srv.errors == []


def test_self_signed_server(tmp_path):
    certs("self-signed", "--purpose", "server", "--cn", "agg", "--san",
          "DNS:localhost,IP:127.0.0.1", "--out", tmp_path / "s")
    s = tmp_path / "s"
    assert ext_value(x509_text(s / "server.crt"), "Extended Key Usage")[0] == \
        "TLS Web Server Authentication"
    sctx = tls_server_ctx(s / "server.crt", s / "server.key")
    with TlsEcho(sctx) as srv:
        assert tls_exchange(tls_client_ctx(s / "server.crt"), srv.port, "127.0.0.1") == \
            b"hello tlsfwd\n"
    p = certs("self-signed", "--purpose", "server", "--cn", "agg", "--out", tmp_path / "t",
              ok=False)
    assert "--san" in p.stderr


def test_stunnel_server_with_python_client(tmp_path, tf):
    ca, server, client = make_pki(tmp_path)
    backend = PlainEcho()
    port = free_port()
    tf.stunnel({
        "accept": f"127.0.0.1:{port}", "connect": f"127.0.0.1:{backend.port}",
        "cert": server / "server.crt", "key": server / "server.key",
        "CAfile": ca / "ca.crt", "verifyChain": "yes", "requireCert": "yes",
        "sslVersionMin": "TLSv1.2"})
    try:
        cctx = tls_client_ctx(ca / "ca.crt", client / "client.crt", client / "client.key")
        assert tls_exchange(cctx, port, "agg.example.com") == b"hello tlsfwd\n"
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_exchange(tls_client_ctx(ca / "ca.crt"), port, "agg.example.com")
    finally:
        backend.close()


def test_stunnel_client_with_python_server(tmp_path, tf):
    ca, server, client = make_pki(tmp_path)
    sctx = tls_server_ctx(server / "server.crt", server / "server.key", ca / "ca.crt")
    with TlsEcho(sctx) as srv:
        port = free_port()
        tf.stunnel({
            "client": "yes", "accept": f"127.0.0.1:{port}",
            "connect": f"127.0.0.1:{srv.port}",
            "cert": client / "client.crt", "key": client / "client.key",
            "CAfile": ca / "ca.crt", "verifyChain": "yes", "checkHost": "agg.example.com",
            "sslVersionMin": "TLSv1.2"}, name="edge")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"through stunnel\n")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        assert got == b"through stunnel\n"
        assert ("commonName", "edge-01") in [a for rdn in srv.peer["subject"] for a in rdn]


WOLFCHECK_C = r"""
#include <wolfssl/options.h>
#if !defined(HAVE___UINT128_T) && defined(__SIZEOF_INT128__)
#define HAVE___UINT128_T 1
#endif
#include <wolfssl/ssl.h>
#include <stdio.h>
#include <string.h>

static const char *pass;

static int pw_cb(char *buf, int size, int rw, void *u)
{
	(void)rw; (void)u;
	if (pass == NULL || (int)strlen(pass) >= size) return 0;
	strcpy(buf, pass);
	return (int)strlen(pass);
}

/* wolfcheck CA CERT KEY PASS HOST IP: what the daemons do with these files. */
int main(int argc, char **argv)
{
	WOLFSSL_CTX *ctx;
	WOLFSSL_CERT_MANAGER *cm;
	WOLFSSL_X509 *x;

	if (argc != 7) return 2;
	pass = argv[4][0] ? argv[4] : NULL;
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfTLS_server_method());
	wolfSSL_CTX_set_default_passwd_cb(ctx, pw_cb);
	if (wolfSSL_CTX_use_certificate_file(ctx, argv[2], WOLFSSL_FILETYPE_PEM) != 1)
		{ puts("cert: FAIL"); return 1; }
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, argv[3], WOLFSSL_FILETYPE_PEM) != 1)
		{ puts("key: FAIL"); return 1; }
	if (wolfSSL_CTX_check_private_key(ctx) != 1)
		{ puts("match: FAIL"); return 1; }
	cm = wolfSSL_CertManagerNew();
	if (wolfSSL_CertManagerLoadCA(cm, argv[1], NULL) != 1)
		{ puts("ca: FAIL"); return 1; }
	if (wolfSSL_CertManagerVerify(cm, argv[2], WOLFSSL_FILETYPE_PEM) != 1)
		{ puts("verify: FAIL"); return 1; }
	x = wolfSSL_X509_load_certificate_file(argv[2], WOLFSSL_FILETYPE_PEM);
	if (argv[5][0] && wolfSSL_X509_check_host(x, argv[5], strlen(argv[5]), 0, NULL) != 1)
		{ puts("host: FAIL"); return 1; }
	if (argv[6][0] && wolfSSL_X509_check_ip_asc(x, argv[6], 0) != 1)
		{ puts("ip: FAIL"); return 1; }
	wolfSSL_X509_free(x);
	wolfSSL_CertManagerFree(cm);
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
	puts("ok");
	return 0;
}
"""


@pytest.fixture(scope="module")
def wolfcheck(tmp_path_factory):
    """A small program on the project's static wolfSSL that loads a cert and
    key (with a password callback) the way the daemons do."""
    lib = WOLFSSL / "lib" / "libwolfssl.a"
    cc = shutil.which("cc") or shutil.which("gcc")
    assert lib.exists() and cc is not None, \
        f"this check needs {lib} (make deps) and a C compiler"
    d = tmp_path_factory.mktemp("wolfcheck")
    (d / "wolfcheck.c").write_text(WOLFCHECK_C)
    subprocess.run([cc, "-I", str(WOLFSSL / "include"), "-o", str(d / "wolfcheck"),
                    str(d / "wolfcheck.c"), str(lib), "-lm", "-pthread"], check=True)
    return d / "wolfcheck"


def test_wolfssl_loads_and_verifies(tmp_path, wolfcheck):
    env = {"PASS": "correct horse"}
    ca = make_ca(tmp_path / "ca", "--key", "rsa", "--key-pass-env", "PASS", env=env)
    certs("server", "--ca", ca, "--cn", "agg", "--san", "DNS:agg.example.com,IP:10.0.0.5",
          "--key-pass-env", "PASS", "--out", tmp_path / "s", env=env)
    s = tmp_path / "s"

    def check(*args):
        return subprocess.run([str(wolfcheck), *map(str, args)], capture_output=True, text=True)

    p = check(ca / "ca.crt", s / "server.crt", s / "server.key", "correct horse",
              "agg.example.com", "10.0.0.5")
    assert p.returncode == 0, p.stdout
    p = check(ca / "ca.crt", ca / "ca.crt", ca / "ca.key", "correct horse", "", "")
    assert p.returncode == 0, p.stdout                     # the encrypted RSA key too
    assert check(ca / "ca.crt", s / "server.crt", s / "server.key", "wrong", "",
                 "").stdout.strip() == "key: FAIL"
    assert check(ca / "ca.crt", s / "server.crt", s / "server.key", "correct horse",
                 "other.example.com", "").stdout.strip() == "host: FAIL"
    assert check(ca / "ca.crt", s / "server.crt", s / "server.key", "correct horse", "",
                 "10.0.0.6").stdout.strip() == "ip: FAIL"


# ---------------------------------------------------------------------------
# fingerprints and show

def openssl_fingerprints(cert):
    line = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout.decode()
    sha = line.strip().split("=", 1)[1].replace(":", "").lower()
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout").stdout
    der = openssl("pkey", "-pubin", "-outform", "DER", input=pub).stdout
    spki = openssl("dgst", "-sha256", input=der).stdout.decode().split("= ")[1].strip()
    return sha, spki


def openssl_made_cert(tmp_path, name, keyalg):
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    openssl("req", "-x509", "-newkey", keyalg, "-nodes", "-keyout", key, "-out", crt,
            "-days", "10",
            "-subj", "/C=DE/ST=Berlin/O=Acme, Inc./OU=Ops/CN=rich.example.com"
                     "/emailAddress=ops@example.com",
            "-addext", "subjectAltName=DNS:rich.example.com,DNS:*.rich.example.com,"
                       "IP:192.0.2.1,IP:2001:db8::1,URI:spiffe://example.org/ns/x,"
                       "email:a@example.com",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement",
            "-addext", "extendedKeyUsage=serverAuth,clientAuth,codeSigning,1.2.3.4.5")
    return key, crt


def test_fingerprints_equal_openssl(tmp_path):
    ca, server, client = make_pki(tmp_path)
    _, rsa = openssl_made_cert(tmp_path, "rsa", "rsa:2048")
    openssl("ecparam", "-name", "secp384r1", "-out", tmp_path / "p384.pem")
    _, ec = openssl_made_cert(tmp_path, "ec", "ec:" + str(tmp_path / "p384.pem"))
    for cert in (ca / "ca.crt", server / "server.crt", client / "client.crt", rsa, ec):
        sha, spki = openssl_fingerprints(cert)
        out = certs("fingerprint", cert).stdout
        assert out == f"sha256:{sha}\nspki:{spki}\n"
        facts = show(cert)
        assert facts["fingerprint"] == [f"sha256:{sha}", f"spki:{spki}"]
    # the spki: pin is also what the private key's public half hashes to
    der = openssl("pkey", "-in", server / "server.key", "-pubout", "-outform", "DER").stdout
    spki = openssl("dgst", "-sha256", input=der).stdout.decode().split("= ")[1].strip()
    assert f"spki:{spki}" in certs("fingerprint", server / "server.crt").stdout
    # DER input works too
    der_file = tmp_path / "server.der"
    der_file.write_bytes(openssl("x509", "-in", server / "server.crt", "-outform",
                                 "DER").stdout)
    assert certs("fingerprint", der_file).stdout == \
        certs("fingerprint", server / "server.crt").stdout


def test_fingerprint_check_accepts_the_usual_forms(tmp_path):
    ca = make_ca(tmp_path / "ca")
    crt = ca / "ca.crt"
    sha, spki = openssl_fingerprints(crt)
    colon = ":".join(sha[i:i + 2] for i in range(0, 64, 2)).upper()
    ossl = openssl("x509", "-in", crt, "-noout", "-fingerprint", "-sha256").stdout.decode()
    for form in (f"sha256:{sha}", f"SHA256:{sha.upper()}", f"sha256:{colon}", colon, sha,
                 ossl.strip(), f"spki:{spki}", "spki:" + ":".join(
                     spki[i:i + 2] for i in range(0, 64, 2)).upper()):
        p = certs("fingerprint", crt, "--check", form)
        assert p.stdout.startswith("match: ")
    p = certs("fingerprint", crt, "--check", "sha256:" + "0" * 64, ok=False)
    assert p.returncode == 1 and "does not match" in p.stderr and sha in p.stderr
    p = certs("fingerprint", crt, "--check", f"spki:{sha}", ok=False)
    assert p.returncode == 1
    for bad, why in (("md5:" + "0" * 32, "unknown fingerprint prefix"),
                     ("sha256:abcd", "too short"), ("sha256:abc", "odd number"), ("sha256:" + "zz" * 32, "not a hex digit"),
                     ("sha256:" + "00" * 33, "too long")):
        p = certs("fingerprint", crt, "--check", bad, ok=False)
        assert p.returncode == 2 and why in p.stderr, p.stderr


def parse_openssl_text(text):
    """The facts show prints, from `openssl x509 -text`, normalised to show's
    forms."""
    ku_names = {"Digital Signature": "digitalSignature", "Non Repudiation": "nonRepudiation",
                "Key Encipherment": "keyEncipherment", "Data Encipherment": "dataEncipherment",
                "Key Agreement": "keyAgreement", "Certificate Sign": "keyCertSign",
                "CRL Sign": "cRLSign", "Encipher Only": "encipherOnly",
                "Decipher Only": "decipherOnly"}
    eku_names = {"TLS Web Server Authentication": "serverAuth",
                 "TLS Web Client Authentication": "clientAuth", "Code Signing": "codeSigning",
                 "E-mail Protection": "emailProtection", "Time Stamping": "timeStamping",
                 "OCSP Signing": "OCSPSigning", "Any Extended Key Usage": "anyExtendedKeyUsage"}
    facts = {}
    m = re.search(r"Serial Number:\s*\n?\s*([0-9a-f:]+)(?: \(0x([0-9a-f]+)\))?", text)
    facts["serial"] = (m.group(2) or m.group(1).replace(":", "")).lstrip("0") or "0"
    facts["subject"] = re.search(r"Subject: (.*)", text).group(1)
    facts["issuer"] = re.search(r"Issuer: (.*)", text).group(1)
    facts["not-before"] = openssl_date(re.search(r"Not Before: (.*)", text).group(1))
    facts["not-after"] = openssl_date(re.search(r"Not After : (.*)", text).group(1))
    san, _ = ext_value(text, "Subject Alternative Name")
    if san:
        out = []
        for item in san.split(", "):
            kind, _, value = item.partition(":")
            if kind == "IP Address":
                out.append("IP:" + str(ipaddress.ip_address(value)))
            else:
                out.append(f"{kind}:{value}")
        facts["subject-alt-names"] = out
    ku, crit = ext_value(text, "Key Usage")
    if ku:
        facts["key-usage"] = (crit, [ku_names[k] for k in ku.split(", ")])
    eku, crit = ext_value(text, "Extended Key Usage")
    if eku:
        facts["ext-key-usage"] = (crit, [eku_names.get(k, k) for k in eku.split(", ")])
    return facts


def dn_from_openssl(s):
    """'C = DE, O = "Acme, Inc.", CN = x' -> ['C=DE', 'O=Acme, Inc.', 'CN=x']."""
    parts = re.findall(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)', s)
    return [f"{k}={v[1:-1] if v.startswith(chr(34)) else v}" for k, v in parts]


def dn_from_show(s):
    """'C=DE, O=Acme\\, Inc., CN=x' -> ['C=DE', 'O=Acme, Inc.', 'CN=x']."""
    parts = re.split(r"(?<!\\), ", s)
    return [re.sub(r"\\(.)", r"\1", p) for p in parts]


def split_crit(value):
    crit = value.startswith("critical, ")
    return crit, (value[len("critical, "):] if crit else value).split(", ")


@pytest.mark.parametrize("which", ["openssl-rsa", "openssl-ec", "ours-server", "ours-ca"])
def test_show_prints_what_openssl_prints(tmp_path, which):
    if which.startswith("openssl"):
        alg = "rsa:2048" if which == "openssl-rsa" else "ec"
        if alg == "ec":
            openssl("ecparam", "-name", "prime256v1", "-out", tmp_path / "p256.pem")
            alg = "ec:" + str(tmp_path / "p256.pem")
        _, crt = openssl_made_cert(tmp_path, "c", alg)
    else:
        ca, server, _ = make_pki(tmp_path)
        crt = server / "server.crt" if which == "ours-server" else ca / "ca.crt"
    want = parse_openssl_text(x509_text(crt))
    got = show(crt)
    assert dn_from_show(got["subject"][0]) == dn_from_openssl(want["subject"])
    assert dn_from_show(got["issuer"][0]) == dn_from_openssl(want["issuer"])
    assert got["serial"][0].lstrip("0") == want["serial"]
    assert iso_date(got["not-before"][0]) == want["not-before"]
    assert iso_date(got["not-after"][0]) == want["not-after"]
    for label in ("subject-alt-names", "key-usage", "ext-key-usage"):
        if label not in want:
            assert label not in got
            continue
        if label == "subject-alt-names":
            assert got[label][0].split(", ") == want[label]
        else:
            assert split_crit(got[label][0]) == want[label]
    assert got["status"][0].startswith("valid, expires in")


def test_show_and_fingerprint_errors(tmp_path):
    ca = make_ca(tmp_path / "ca")
    p = certs("show", ca / "ca.key", ok=False)
    assert str(ca / "ca.key") in p.stderr and "private key" in p.stderr
    p = certs("fingerprint", tmp_path / "nope.crt", ok=False)
    assert "nope.crt" in p.stderr and "No such file" in p.stderr
    (tmp_path / "junk").write_bytes(b"\x01\x02garbage")
    p = certs("show", tmp_path / "junk", ok=False)
    assert "junk" in p.stderr
    p = certs("show", ok=False)
    assert "expected one FILE" in p.stderr


# ---------------------------------------------------------------------------
# keys: encryption, modes, overwriting

def test_encrypted_keys(tmp_path):
    env = {"CA_PASS": "ca secret", "LEAF_PASS": "leaf secret"}
    ca = make_ca(tmp_path / "ca", "--key-pass-env", "CA_PASS", env=env)
    key = ca / "ca.key"
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    openssl("pkey", "-in", key, "-passin", "env:CA_PASS", "-noout", env=env)
    p = openssl("pkey", "-in", key, "-passin", "pass:wrong", "-noout", ok=False)
    assert p.returncode != 0
    p = openssl("pkey", "-in", key, "-passin", "pass:", "-noout", ok=False)
    assert p.returncode != 0

    # signing with the encrypted CA key needs its passphrase
    p = certs("client", "--ca", ca, "--cn", "c", "--out", tmp_path / "c1", ok=False)
    assert str(key) in p.stderr and "encrypted" in p.stderr and "--key-pass-env" in p.stderr
    p = certs("client", "--ca", ca, "--cn", "c", "--out", tmp_path / "c1",
              "--key-pass-env", "LEAF_PASS", env=env, ok=False)
    assert str(key) in p.stderr and "wrong passphrase" in p.stderr
    assert not (tmp_path / "c1" / "client.key").exists()
    # the same passphrase for both, or a separate one for the CA key
    certs("client", "--ca", ca, "--cn", "c", "--out", tmp_path / "c1",
          "--key-pass-env", "CA_PASS", env=env)
    openssl("pkey", "-in", tmp_path / "c1" / "client.key", "-passin", "env:CA_PASS",
            "-noout", env=env)
    certs("client", "--ca", ca, "--cn", "c", "--out", tmp_path / "c2",
          "--key-pass-env", "LEAF_PASS", "--ca-key-pass-env", "CA_PASS", env=env)
    openssl("pkey", "-in", tmp_path / "c2" / "client.key", "-passin", "env:LEAF_PASS",
            "-noout", env=env)
    assert verify(ca / "ca.crt", tmp_path / "c2" / "client.crt", "sslclient").returncode == 0
    # and Python's ssl loads it with the passphrase
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
        tmp_path / "c2" / "client.crt", tmp_path / "c2" / "client.key", password="leaf secret")
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            tmp_path / "c2" / "client.crt", tmp_path / "c2" / "client.key", password="nope")


def test_encrypted_openssl_ca_keys(tmp_path):
    """CA keys encrypted by openssl: traditional PEM (Proc-Type) and PKCS#8
    with OpenSSL 3's PBES2/HMAC-SHA256."""
    env = {"PW": "abc123"}
    for kind in ("traditional", "pkcs8"):
        d = tmp_path / kind
        d.mkdir()
        if kind == "traditional":
            openssl("genrsa", "-aes256", "-traditional", "-passout", "env:PW", "-out",
                    d / "ca.key", "2048", env=env)
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-aes-256-cbc", "-pass", "env:PW", "-out", d / "ca.key", env=env)
        openssl("req", "-x509", "-new", "-key", d / "ca.key", "-passin", "env:PW",
                "-subj", f"/CN={kind} CA", "-days", "3650", "-out", d / "ca.crt",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", env=env)
        certs("server", "--ca", d, "--cn", "s", "--san", "DNS:s.example.com",
              "--ca-key-pass-env", "PW", "--out", d / "out", env=env)
        assert verify(d / "ca.crt", d / "out" / "server.crt", "sslserver").returncode == 0


def test_pass_env_must_be_set(tmp_path):
    env = {"EMPTY_PASS": ""}
    os.environ.pop("NO_SUCH_PASS_VAR", None)
    p = certs("ca", "--out", tmp_path / "a", "--key-pass-env", "NO_SUCH_PASS_VAR", ok=False)
    assert "NO_SUCH_PASS_VAR" in p.stderr and "not set" in p.stderr
    p = certs("ca", "--out", tmp_path / "a", "--key-pass-env", "EMPTY_PASS", env=env, ok=False)
    assert "EMPTY_PASS" in p.stderr and "empty" in p.stderr
    assert not (tmp_path / "a" / "ca.key").exists()


def test_refuses_to_overwrite_without_force(tmp_path):
    ca = make_ca(tmp_path / "ca")
    before = (ca / "ca.key").read_bytes(), (ca / "ca.crt").read_bytes()
    p = certs("ca", "--out", ca, ok=False)
    assert str(ca / "ca.key") in p.stderr and "already exists" in p.stderr
    assert "--force" in p.stderr
    assert ((ca / "ca.key").read_bytes(), (ca / "ca.crt").read_bytes()) == before
    # a lone certificate is protected too
    (ca / "ca.key").unlink()
    p = certs("ca", "--out", ca, ok=False)
    assert str(ca / "ca.crt") in p.stderr
    assert not (ca / "ca.key").exists()
    # --force replaces both, and the key is 0600 even if the old one was not
    (ca / "ca.key").write_text("old")
    os.chmod(ca / "ca.key", 0o644)
    certs("ca", "--out", ca, "--force")
    assert (ca / "ca.crt").read_bytes() != before[1]
    assert mode(ca / "ca.key") == 0o600
    openssl("pkey", "-in", ca / "ca.key", "-noout")
    # never through a symlink planted where the key goes
    certs("server", "--ca", ca, "--cn", "s", "--san", "DNS:s", "--out", tmp_path / "s")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.unlink(tmp_path / "s" / "server.key")
    os.unlink(tmp_path / "s" / "server.crt")
    os.symlink(victim, tmp_path / "s" / "server.key")
    p = certs("server", "--ca", ca, "--cn", "s", "--san", "DNS:s", "--out", tmp_path / "s",
              ok=False)
    assert "server.key" in p.stderr
    assert victim.read_text() == "keep"


def test_key_modes_ignore_umask(tmp_path):
    env = dict(os.environ)
    cmd = [str(CERTS), "ca", "--out", str(tmp_path / "ca")]
    subprocess.run(cmd, check=True, env=env, capture_output=True,
                   preexec_fn=lambda: os.umask(0))
    assert mode(tmp_path / "ca" / "ca.key") == 0o600
    assert mode(tmp_path / "ca" / "ca.crt") == 0o644
    subprocess.run([str(CERTS), "client", "--ca", str(tmp_path / "ca"), "--cn", "c",
                    "--out", str(tmp_path / "c")], check=True, capture_output=True,
                   preexec_fn=lambda: os.umask(0o077))
    assert mode(tmp_path / "c" / "client.key") == 0o600
    assert mode(tmp_path / "c" / "client.crt") == 0o644


# ---------------------------------------------------------------------------
# kube-secret

def parse_secret(text):
    if yaml is not None:
        return yaml.safe_load(text)
    doc, section = {}, None          # the flat two-level form we print
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(": ")
        key = key.rstrip(":")
        value = value.strip('"')
        if not line.startswith(" "):
            section = key
            doc[key] = value if value else {}
        elif isinstance(doc[section], dict) and line.startswith("  ") and not \
                line.startswith("    "):
            doc[section][key] = value if value else {}
    return doc


def test_kube_secret(tmp_path):
    ca, server, _ = make_pki(tmp_path)
    p = certs("kube-secret", "--name", "tlsfwd-server", "--ca", ca,
              "--cert", server / "server.crt", "--key", server / "server.key",
              "--namespace", "logging")
    doc = parse_secret(p.stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Secret"
    assert doc["type"] == "kubernetes.io/tls"
    assert doc["metadata"]["name"] == "tlsfwd-server"
    assert doc["metadata"]["namespace"] == "logging"
    data = doc["data"]
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    assert base64.b64decode(data["tls.crt"], validate=True) == (server / "server.crt").read_bytes()
    assert base64.b64decode(data["tls.key"], validate=True) == (server / "server.key").read_bytes()
    assert base64.b64decode(data["ca.crt"], validate=True) == (ca / "ca.crt").read_bytes()

    p = certs("kube-secret", "--name", "x", "--type", "opaque", "--ca", ca / "ca.crt",
              "--cert", server / "server.crt", "--key", server / "server.key")
    doc = parse_secret(p.stdout)
    assert doc["type"] == "Opaque" and "namespace" not in doc["metadata"]
    assert base64.b64decode(doc["data"]["ca.crt"]) == (ca / "ca.crt").read_bytes()


def test_kube_secret_errors(tmp_path):
    ca, server, _ = make_pki(tmp_path)
    args = ["--cert", server / "server.crt", "--key", server / "server.key"]
    p = certs("kube-secret", "--name", "Bad_Name", *args, ok=False)
    assert "Bad_Name" in p.stderr and "lowercase" in p.stderr
    p = certs("kube-secret", *args, ok=False)
    assert "--name is required" in p.stderr
    p = certs("kube-secret", "--name", "x", "--cert", server / "server.key",
              "--key", server / "server.crt", ok=False)
    assert "server.key" in p.stderr and "certificate" in p.stderr
    p = certs("kube-secret", "--name", "x", "--ca", tmp_path / "missing", *args, ok=False)
    assert "missing" in p.stderr and "No such file" in p.stderr
    p = certs("kube-secret", "--name", "x", "--type", "weird", *args, ok=False)
    assert "--type" in p.stderr


# ---------------------------------------------------------------------------
# errors name the cause

def test_missing_or_wrong_ca(tmp_path):
    p = certs("server", "--ca", tmp_path / "nope", "--cn", "s", "--san", "DNS:s",
              "--out", tmp_path / "s", ok=False)
    assert str(tmp_path / "nope") in p.stderr and "No such file or directory" in p.stderr
    assert not (tmp_path / "s").exists()
    (tmp_path / "file").write_text("x")
    p = certs("client", "--ca", tmp_path / "file", "--cn", "c", "--out", tmp_path / "c",
              ok=False)
    assert "not a directory" in p.stderr
    (tmp_path / "empty").mkdir()
    p = certs("client", "--ca", tmp_path / "empty", "--cn", "c", "--out", tmp_path / "c",
              ok=False)
    assert str(tmp_path / "empty" / "ca.crt") in p.stderr and "No such file" in p.stderr
    # a leaf is not a CA
    ca = make_ca(tmp_path / "ca")
    certs("server", "--ca", ca, "--cn", "s", "--san", "DNS:s", "--out", tmp_path / "leaf")
    fake = tmp_path / "fake"
    fake.mkdir()
    shutil.copy(tmp_path / "leaf" / "server.crt", fake / "ca.crt")
    shutil.copy(tmp_path / "leaf" / "server.key", fake / "ca.key")
    p = certs("client", "--ca", fake, "--cn", "c", "--out", tmp_path / "c", ok=False)
    assert str(fake / "ca.crt") in p.stderr and "not a CA" in p.stderr
    # a key from another CA
    other = make_ca(tmp_path / "other")
    shutil.copy(other / "ca.key", tmp_path / "ca" / "ca.key")
    p = certs("client", "--ca", ca, "--cn", "c", "--out", tmp_path / "c", ok=False)
    assert "does not match" in p.stderr and "ca.key" in p.stderr


def test_expired_ca_refused(tmp_path):
    d = tmp_path / "old"
    d.mkdir()
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", d / "ca.key")
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        f"[ca]\ndefault_ca=d\n[d]\ndatabase={d}/index.txt\nnew_certs_dir={d}\n"
        f"serial={d}/serial\ndefault_md=sha256\npolicy=p\nx509_extensions=e\n"
        "[p]\ncommonName=supplied\n[e]\nbasicConstraints=critical,CA:TRUE\n"
        "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
        "[req]\ndistinguished_name=dn\n[dn]\n")
    openssl("req", "-new", "-key", d / "ca.key", "-subj", "/CN=old CA", "-out", d / "ca.csr",
            "-config", d / "ca.cnf")
    openssl("ca", "-batch", "-selfsign", "-config", d / "ca.cnf", "-keyfile", d / "ca.key",
            "-in", d / "ca.csr", "-startdate", "20200101000000Z", "-enddate",
            "20210101000000Z", "-out", d / "ca.crt")
    p = certs("client", "--ca", d, "--cn", "c", "--out", tmp_path / "c", ok=False)
    assert "expired" in p.stderr and "2021-01-01" in p.stderr
    assert "EXPIRED" in certs("show", d / "ca.crt").stdout


def test_server_needs_a_san(tmp_path):
    ca = make_ca(tmp_path / "ca")
    p = certs("server", "--ca", ca, "--cn", "s", "--out", tmp_path / "s", ok=False)
    assert "--san is required" in p.stderr
    p = certs("server", "--ca", ca, "--cn", "s", "--san", "", "--out", tmp_path / "s",
              ok=False)
    assert "--san" in p.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("san,why", [
    ("agg.example.com", "no type; write DNS:agg.example.com"),
    ("FOO:bar", "unknown type"),
    ("DNS:", "empty DNS name"),
    ("DNS:bad_name.example.com", "only letters, digits"),
    ("DNS:a..b", "empty label"),
    ("DNS:-a.example.com", "cannot start with '-'"),
    ("DNS:10.0.0.5", "write it as IP:"),
    ("DNS:a.example.com,", "trailing comma"),
    ("IP:10.0.0.256", "not an IPv4 or IPv6 address"),
    ("IP:agg.example.com", "not an IPv4 or IPv6 address"),
    ("URI:no-scheme", "scheme"),
    ("URI:spiffe://has space", "no spaces"),
    ("email:nobody", "like ops@example.com"),
])
def test_bad_san_syntax(tmp_path, san, why):
    ca = make_ca(tmp_path / "ca")
    p = certs("server", "--ca", ca, "--cn", "s", "--san", san, "--out", tmp_path / "s",
              ok=False)
    assert p.returncode == 2
    assert "--san" in p.stderr and why in p.stderr, p.stderr
    assert not (tmp_path / "s").exists()


def test_san_forms_accepted(tmp_path):
    ca = make_ca(tmp_path / "ca")
    certs("server", "--ca", ca, "--cn", "s", "--out", tmp_path / "s",
          "--san", "dns:a.example.com, DNS:*.b.example.com",
          "--san", "IP:[2001:db8::7],ip:192.0.2.9",
          "--san", "URI:https://example.org/x?a=1,b=2,email:ops@example.com")
    f = show(tmp_path / "s" / "server.crt")
    assert f["subject-alt-names"] == ["DNS:a.example.com, DNS:*.b.example.com, "
                                      "IP:2001:db8::7, IP:192.0.2.9, "
                                      "URI:https://example.org/x?a=1,b=2, email:ops@example.com"]


@pytest.mark.parametrize("args,why", [
    (["ca"], "--out is required"),
    (["ca", "--out"], "needs a value"),
    (["ca", "--out", "X", "--days", "0"], "--days '0'"),
    (["ca", "--out", "X", "--days", "ten"], "--days 'ten'"),
    (["ca", "--out", "X", "--key", "dsa"], "--key 'dsa'"),
    (["ca", "--out", "X", "--san", "DNS:x"], "--san is not an option of this command"),
    (["ca", "--out", "X", "--bogus"], "unknown option --bogus"),
    (["ca", "--out", "X", "extra"], "unexpected argument 'extra'"),
    (["client", "--out", "X", "--cn", "c"], "--ca is required"),
    (["self-signed", "--out", "X", "--cn", "c", "--purpose", "both"], "--purpose 'both'"),
    (["ca", "--out", "X", "--cn", "x" * 64], "must be 1 to 63 bytes"),
])
def test_usage_errors(tmp_path, args, why):
    p = certs(*args, ok=False, cwd=tmp_path)
    assert why in p.stderr, p.stderr
    assert not (tmp_path / "X" / "ca.key").exists()
