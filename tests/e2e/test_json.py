"""JSON output is valid JSON for any certificate bytes (issue 11 item 6): a
client certificate whose subject CN holds the bytes a\\xffb (not UTF-8) gives
log lines (--log-format json) and audit lines (--audit-file) that all parse
with a strict json.loads; the invalid byte is written as U+FFFD."""

import base64
import json
import subprocess
import time

import pytest

from conftest import send_and_expect, wait_time
from pki import Pki


def _tlv_end(der, off):
    """The offset just past the DER TLV starting at der[off]."""
    n = der[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(der[off:off + k], "big")
        off += k
    return off + n


def _seq(body):
    """body wrapped in a DER SEQUENCE."""
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        k = (n.bit_length() + 7) // 8
        head = bytes([0x80 | k]) + n.to_bytes(k, "big")
    return b"\x30" + head + body


def raw_cn_identity(pki, tmp_path, placeholder, raw):
    """A client certificate from pki.ca whose CN is the UTF8String `raw`
    (bytes, any): openssl issues it with the same-length `placeholder`, the
    bytes are swapped in the TBSCertificate and it is signed again with the
    CA's key (openssl dgst), so it verifies."""
    assert len(placeholder) == len(raw) < 0x80
    ident = Pki(tmp_path / "pki").issue(pki.ca, "rawcn", placeholder.decode(), usage="client")
    der = subprocess.run(["openssl", "x509", "-in", ident.cert, "-outform", "DER"],
                         capture_output=True, check=True, timeout=wait_time(30)).stdout
    body = 2 + (der[1] & 0x7f if der[1] & 0x80 else 0)     # past the outer header
    tbs_end = _tlv_end(der, body)
    tbs, sigalg = der[body:tbs_end], der[tbs_end:_tlv_end(der, tbs_end)]
    old = b"\x0c" + bytes([len(raw)]) + placeholder
    assert tbs.count(old) == 1, tbs.hex()
    tbs = tbs.replace(old, b"\x0c" + bytes([len(raw)]) + raw)
    tbs_path = tmp_path / "tbs.der"
    tbs_path.write_bytes(tbs)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pki.ca.key, tbs_path],
                         capture_output=True, check=True, timeout=wait_time(30)).stdout
    bits = bytes([0x03]) + _seq(b"\x00" + sig)[1:]          # BIT STRING, no unused bits
    # PEM by hand: OpenSSL itself refuses a name that is not UTF-8 (its
    # canonical form of a Name fails), so neither `openssl x509` nor `verify`
    # can read this certificate; wolfSSL checks the signature in the test.
    b64 = base64.b64encode(_seq(tbs + sigalg + bits)).decode()
    pem = tmp_path / "rawcn.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n" +
                   "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)) +
                   "-----END CERTIFICATE-----\n")
    return type(ident)(name="rawcn", cert=pem, key=ident.key)


def strict_json_lines(data):
    """Every line of data (bytes) as a JSON object: UTF-8 and JSON both strict."""
    out = []
    for line in data.decode("utf-8").splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def wait_lines(path, count):
    """Wait (bounded) until path holds at least count lines; its bytes."""
    deadline = time.monotonic() + wait_time(15)
    while True:
        data = path.read_bytes() if path.exists() else b""
        if data.count(b"\n") >= count:
            return data
        assert time.monotonic() < deadline, f"{count} lines expected in {path}:\n{data!r}"
        time.sleep(0.05)


def relay_hello(tf, ident, audit):
    """A pair logging JSON at debug, the client with identity ident: one
    connection relays "hello" and ends.  (server, client)."""
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_file=audit, log_format="json", log_level="debug")
    client = tf.client(server, identity=ident, log_format="json", log_level="debug")
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"hello")
    app.close()
    far.close()
    return server, client


def test_invalid_utf8_subject_gives_valid_json_lines(tf, tmp_path, pki):
    ident = raw_cn_identity(pki, tmp_path, b"a~b", b"a\xffb")
    audit = tmp_path / "audit.jsonl"
    server, client = relay_hello(tf, ident, audit)
    events = strict_json_lines(wait_lines(audit, 2))        # accept and close
    server.wait_for(lambda r: r.get("msg") == "accepted", what="msg=accepted")
    acc = next(e for e in events if e["kind"] == "accept")
    assert acc["subject"] == "/CN=a\ufffdb", acc
    records = strict_json_lines(server.log_path.read_bytes())
    accepted = [r for r in records if r.get("msg") == "accepted"]
    assert accepted and accepted[0]["subject"].endswith("CN=a\ufffdb"), accepted
    strict_json_lines(client.log_path.read_bytes())


# ---------------------------------------------------------------------------
# hostile names of any length: a certificate rebuilt field by field

def _der_parse(der):
    """DER bytes -> [(tag, bytes or [children])]; constructed tags are parsed."""
    out, off = [], 0
    while off < len(der):
        tag, n = der[off], der[off + 1]
        off += 2
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(der[off:off + k], "big")
            off += k
        body = der[off:off + n]
        assert len(body) == n, "truncated DER"
        out.append((tag, _der_parse(body) if tag & 0x20 else body))
        off += n
    return out


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    k = (n.bit_length() + 7) // 8
    return bytes([0x80 | k]) + n.to_bytes(k, "big")


def _der_build(nodes):
    out = b""
    for tag, body in nodes:
        if isinstance(body, list):
            body = _der_build(body)
        out += bytes([tag]) + _der_len(len(body)) + body
    return out


def _der_swap(nodes, swaps, seen):
    """nodes with every primitive value found in swaps replaced (lengths
    re-encoded), looking inside OCTET STRINGs that hold DER (extensions)."""
    out = []
    for tag, body in nodes:
        if isinstance(body, list):
            body = _der_swap(body, swaps, seen)
        elif body in swaps:
            seen.add(body)
            body = swaps[body]
        elif tag == 0x04 and any(old in body for old in swaps):
            body = _der_build(_der_swap(_der_parse(body), swaps, seen))
        out.append((tag, body))
    return out


def hostile_identity(pki, tmp_path, name, cn=None, dns=None, uri=None, usage="client", ips=()):
    """A client certificate from pki.ca whose CN, DNS SAN and URI SAN hold
    the given bytes (any bytes, any length): openssl issues it with
    placeholders, which are swapped in the parsed certificate, and the
    TBSCertificate is signed again with the CA's key."""
    ph_cn, ph_dns, ph_uri = b"cn-placeholder", b"dns.placeholder.test", b"spiffe://placeholder/x"
    ident = Pki(tmp_path / f"pki-{name}").issue(
        pki.ca, name, ph_cn.decode(), usage=usage, ips=ips,
        dns=[ph_dns.decode()] if dns is not None else (),
        uris=[ph_uri.decode()] if uri is not None else ())
    der = subprocess.run(["openssl", "x509", "-in", ident.cert, "-outform", "DER"],
                         capture_output=True, check=True, timeout=wait_time(30)).stdout
    [(_, [tbs, sigalg, _sig])] = _der_parse(der)
    swaps = {old: new for old, new in ((ph_cn, cn), (ph_dns, dns), (ph_uri, uri))
             if new is not None}
    seen = set()
    [tbs] = _der_swap([tbs], swaps, seen)
    assert seen == set(swaps), f"placeholders not found: {set(swaps) - seen}"
    tbs_der = _der_build([tbs])
    tbs_path = tmp_path / f"{name}-tbs.der"
    tbs_path.write_bytes(tbs_der)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pki.ca.key, tbs_path],
                         capture_output=True, check=True, timeout=wait_time(30)).stdout
    cert = _der_build([(0x30, [tbs, sigalg, (0x03, b"\x00" + sig)])])
    b64 = base64.b64encode(cert).decode()
    pem = tmp_path / f"{name}.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n" +
                   "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)) +
                   "-----END CERTIFICATE-----\n")
    return type(ident)(name=name, cert=pem, key=ident.key)


def json_text(raw):
    """What a JSON line's string holds for these bytes (log.h's
    log_json_escape): well-formed UTF-8 as it is, each other byte U+FFFD."""
    out, i = [], 0
    while i < len(raw):
        b = raw[i]
        k = 1 if b < 0x80 else 2 if 0xc2 <= b <= 0xdf else 3 if 0xe0 <= b <= 0xef else \
            4 if 0xf0 <= b <= 0xf4 else 0
        try:
            out.append(raw[i:i + k].decode("utf-8") if k else None)
        except UnicodeDecodeError:
            out.append(None)
        if out[-1] is None or len(raw[i:i + k]) < k:
            out[-1] = "\ufffd"
            k = 1
        i += k
    return "".join(out)


def line_form(raw):
    """What the one-line subject makes of a UTF8String CN's bytes (see
    x509_name.c): '\\', '/', '+' get a '\\' before them, a control byte is
    \\xXX; then the JSON writer turns each byte that is not UTF-8 into U+FFFD."""
    out = bytearray()
    for b in raw:
        if b < 0x20 or b == 0x7f:
            out += b"\\x%02X" % b
        else:
            if b in b"\\/+":
                out += b"\\"
            out.append(b)
    return json_text(bytes(out))


HOSTILE = {
    "quotes": b'say "hi" \\ back/slash+plus \\u0000 \\"',
    "controls": b"a\x01\x08\x0c\n\r\t\x1b[31mred\x7fz",
    "bad_utf8": b"\xff\xfe\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|ok\xe2\x82",
    "utf8": "caf\u00e9 \u20ac \U0001F600 \u2028\u2029 \u0085\u009f \ufeff".encode(),
    "long": b"L" * 2000 + "\u00e9".encode() * 500,
}


def _check_cut(logged, expected, what):
    """logged is expected, or (a long value) a prefix of it ending in '...'."""
    if logged == expected:
        return
    assert logged.endswith("..."), f"{what}: {logged[:200]!r} != {expected[:200]!r}"
    assert expected.startswith(logged[:-3]), f"{what}: not a prefix: {logged[:200]!r}"
    assert len(logged) > 200, f"{what}: cut too short ({len(logged)})"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_subjects_give_valid_json(tf, tmp_path, pki, case):
    """Every JSON log line of both daemons and every audit line parses with a
    strict json.loads, and the subject and SANs come through: the same text,
    U+FFFD for each invalid byte, or cut short with '...' when too long."""
    raw = HOSTILE[case]
    dns = b"dns-" + raw.replace(b"\n", b"") if case != "long" else b"d" * 3000 + b".test"
    uri = b"spiffe://x/" + raw
    ident = hostile_identity(pki, tmp_path, case, cn=raw, dns=dns, uri=uri)
    audit = tmp_path / "audit.jsonl"
    server, client = relay_hello(tf, ident, audit)
    server.wait_for(lambda r: r.get("msg") == "accepted", what="msg=accepted")
    events = strict_json_lines(wait_lines(audit, 2))
    records = strict_json_lines(server.log_path.read_bytes())
    strict_json_lines(client.log_path.read_bytes())

    subject = "/CN=" + line_form(raw)
    accepted = [r for r in records if r.get("msg") == "accepted"]
    assert accepted, records
    _check_cut(accepted[0]["subject"], subject, "log subject")
    acc = next(e for e in events if e["kind"] == "accept")
    _check_cut(acc["subject"], subject, "audit subject")
    # SANs are IA5Strings: a byte above 0x7f is read as Latin-1 (x509_name.c),
    # a control byte kept as it is (JSON escapes it).  The audit event keeps
    # 1024 bytes of SANs: the 3000-byte one is left out whole.
    sans = acc.get("sans", [])
    if case != "long":
        assert sans == ["DNS:" + dns.decode("latin-1"), "URI:" + uri.decode("latin-1")], sans
    assert "placeholder" not in " ".join(sans)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_server_subject_in_client_lines(tf, tmp_path, pki, case):
    """The client's lines name the server certificate's subject (its closing
    line): valid JSON, the same text as the server would give."""
    raw = HOSTILE[case]
    ident = hostile_identity(pki, tmp_path, case, cn=raw, usage="server", ips=["127.0.0.1"])
    sink = tf.tcp_sink()
    server = tf.server(sink, identity=ident, log_format="json")
    client = tf.client(server, log_format="json", log_level="debug")
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"hello")
    app.close()
    far.close()
    client.wait_for(lambda r: r.get("msg") == "closed", what="msg=closed")
    records = strict_json_lines(client.log_path.read_bytes())
    strict_json_lines(server.log_path.read_bytes())
    closed = [r for r in records if r.get("msg") == "closed"]
    _check_cut(closed[0]["subject"], "/CN=" + line_form(raw), "client's subject")
