"""JSON output is valid JSON for any certificate bytes (issue 11 item 6): a
client certificate whose subject CN holds the bytes a\\xffb (not UTF-8) gives
log lines (--log-format json) and audit lines (--audit-file) that all parse
with a strict json.loads; the invalid byte is written as U+FFFD."""

import base64
import json
import subprocess
import time

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


def test_invalid_utf8_subject_gives_valid_json_lines(tf, tmp_path, pki):
    ident = raw_cn_identity(pki, tmp_path, b"a~b", b"a\xffb")
    audit = tmp_path / "audit.jsonl"
    sink = tf.tcp_sink()
    server = tf.server(sink, audit_file=audit, log_format="json", log_level="debug")
    client = tf.client(server, identity=ident, log_format="json", log_level="debug")
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"hello")
    app.close()
    far.close()
    events = strict_json_lines(wait_lines(audit, 2))        # accept and close
    server.wait_for(lambda r: r.get("msg") == "accepted", what="msg=accepted")
    acc = next(e for e in events if e["kind"] == "accept")
    assert acc["subject"] == "/CN=a\ufffdb", acc
    records = strict_json_lines(server.log_path.read_bytes())
    accepted = [r for r in records if r.get("msg") == "accepted"]
    assert accepted and accepted[0]["subject"].endswith("CN=a\ufffdb"), accepted
    strict_json_lines(client.log_path.read_bytes())
