"""The server's forward-protocol reader (issue 15 §1, §2): every request mode
read and written out again, records stamped with the client's verified
identity, tags prefixed, acks through it unchanged; bad and oversized
requests reset the sender; memory flat under an 8 MiB request."""

import gzip
import json
import socket
import struct
import subprocess
import threading
import time

import msgpack
import pytest
import zstandard

from conftest import BUILD, VALGRIND, MiB, RssSampler, Tunnel, recv_exact, wait_time
from fwdsink import EventTime
from pki import Pki

pack = msgpack.packb
ET = msgpack.ExtType(0, struct.pack(">II", 1_700_000_000, 123))
STAMP = dict(stamp_key="tls", stamp_address_key="peer_ip", tag_prefix="edge.{cn}.")


def sanitized():
    """An ASan build: its allocator keeps freed memory in a quarantine, so RSS
    says nothing about ours (as in test_memory)."""
    return b"__asan_init" in (BUILD / "tlsfwd-server").read_bytes()


def client_port(tunnel):
    return int(tunnel.client.address.rpartition(":")[2])


def stamped_tunnel(tf, **opts):
    return Tunnel(tf, sink=tf.fwd_sink(), server_opts={**STAMP, **opts})


def ending(sock, timeout=None):
    """How the connection ends from the sender's side: "reset" or "eof"
    (data read before is discarded); AssertionError if it does not end."""
    sock.settimeout(timeout or wait_time(15))
    try:
        while sock.recv(65536):
            pass
        return "eof"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except socket.timeout:
        raise AssertionError("the connection did not end") from None


def send_all(tf, tunnel, data, acks=()):
    """One sender connection: data sent, the acks expected read back."""
    app = tf.connect(tunnel.client)
    app.sendall(data)
    wire = b"".join(pack({"ack": a}) for a in acks)
    if wire:
        assert recv_exact(app, len(wire)) == wire
    return app


def check_stamp(record, cn="client.test"):
    tls = record["tls"]
    assert tls["client"]["x509"]["subject"]["common_name"] == [cn]
    assert tls["address"] == "127.0.0.1" and tls["ip"] == "127.0.0.1"
    assert isinstance(tls["port"], int) and tls["port"] > 0
    assert len(tls["client"]["hash"]["sha256"]) == 64
    assert record["peer_ip"] == "127.0.0.1"


def entries(n, start=0, pad=0):
    return b"".join(pack([1_700_000_000 + i, {"n": i, "pad": "x" * pad}])
                    for i in range(start, start + n))


def zstd_frames(*blobs):
    c = zstandard.ZstdCompressor()
    return b"".join(c.compress(b) for b in blobs)


def every_mode():
    """(requests, acks, [(tag, n)] of the events) in every mode."""
    e01 = pack([1_700_000_000, {"n": 1}]) + pack([ET, {"n": 2}])
    map32 = b"\xdf\x00\x00\x00\x01" + pack("chunk") + pack("c-map32")
    reqs = [
        pack(None),
        pack(["message", ET, {"n": 0}, {"chunk": "c-message"}]),
        pack(["message.int", 1_700_000_000, {"n": 0}]),
        pack(["forward", [[1_700_000_000, {"n": 1}], [ET, {"n": 2}]], {"chunk": "c-forward"}]),
        pack(["packed", e01, {"chunk": "c-packed", "size": 2}]),
        b"\x92" + pack("packed.str") + b"\xdb" + struct.pack(">I", len(e01)) + e01,
        pack(["gzip", gzip.compress(e01[:6]) + gzip.compress(e01[6:]),
              {"chunk": "c-gzip", "compressed": "gzip", "size": 2}]),
        pack(["zstd", zstd_frames(e01[:6], e01[6:]),
              {"chunk": "c-zstd", "compressed": "zstd", "size": 2}]),
        b"\x94" + pack("map32") + pack(1) + pack({"n": 3}) + map32,
        b"\x93" + pack("fwd32") + b"\xdd\x00\x00\x00\x01" + pack([ET, {"n": 4}]) +
        b"\xdf\x00\x00\x00\x01" + pack("chunk") + pack("c-fwd32"),
    ]
    acks = ["c-message", "c-forward", "c-packed", "c-gzip", "c-zstd", "c-map32", "c-fwd32"]
    events = [("message", 0), ("message.int", 0), ("forward", 1), ("forward", 2),
              ("packed", 1), ("packed", 2), ("packed.str", 1), ("packed.str", 2),
              ("gzip", 1), ("gzip", 2), ("zstd", 1), ("zstd", 2), ("map32", 3), ("fwd32", 4)]
    return b"".join(reqs), acks, events


def check_every_mode(sink, events):
    got = sink.wait_events(len(events), timeout=wait_time(20))
    assert [(e.tag, e.record["n"]) for e in got] == [("edge.client.test." + t, n)
                                                    for t, n in events]
    for e in got:
        check_stamp(e.record)
    # times as they were sent: EventTime stays EventTime, integers integers
    assert got[0].time == EventTime(1_700_000_000, 123)
    assert got[1].time == 1_700_000_000
    assert got[3].time == EventTime(1_700_000_000, 123)
    assert not sink.errors


def test_every_mode_stamped_and_acked(tf):
    t = stamped_tunnel(tf)
    data, acks, events = every_mode()
    send_all(tf, t, data, acks)
    check_every_mode(t.sink, events)
    modes = [r[0] for r in t.sink.requests]
    assert modes[0] == "nil"
    # compressed requests reach Fluentd uncompressed; Forward stays Forward
    assert "CompressedPackedForward" not in modes
    assert modes.count("Forward") == 2


def test_split_at_every_byte(tf):
    """Every request mode sent one byte per write (one TLS record each, as
    the client relays them at once): the same events and acks."""
    t = stamped_tunnel(tf)
    data, acks, events = every_mode()
    app = tf.connect(t.client)
    app.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        app.send(data[i:i + 1])
        time.sleep(0.0005)
    wire = b"".join(pack({"ack": a}) for a in acks)
    assert recv_exact(app, len(wire)) == wire
    check_every_mode(t.sink, events)


def test_big_packed_forward_in_pieces_memory_flat(tf):
    """An 8 MiB PackedForward (Fluentd's default chunk) is never held whole:
    it reaches Fluentd as PackedForward pieces of at most 64 KiB, only the
    last with the chunk option, and one ack comes back; the server's memory
    does not follow the request's size."""
    t = stamped_tunnel(tf)
    n = 80_000
    blob = entries(n, pad=90)
    assert len(blob) > 8 * MiB
    req = pack(["big", blob, {"chunk": "c-big", "size": n}])
    sampler = RssSampler([t.server])
    try:
        send_all(tf, t, req, ["c-big"])
        got = t.sink.wait_events(n, timeout=wait_time(60))
    finally:
        sampler.stop()
    assert [e.record["n"] for e in got] == list(range(n))
    check_stamp(got[-1].record)
    reqs = t.sink.requests
    assert len(reqs) > 8 * MiB // 65536
    assert all("chunk" not in opt for _, opt, _ in reqs[:-1])
    assert reqs[-1][1]["chunk"] == "c-big"
    assert sum(count for _, _, count in reqs) == n
    assert all(opt["size"] == count for _, opt, count in reqs)
    growth = sampler.growth()[t.server.name]
    print(f"server RSS growth with an 8 MiB request: {growth} KiB")
    if VALGRIND or sanitized():
        return
    assert growth < 4 * 1024, f"server RSS grew {growth} KiB for an 8 MiB request"


def test_big_gzip_and_zstd(tf):
    t = stamped_tunnel(tf)
    n = 20_000
    blob = entries(n, pad=200)
    half = len(entries(n // 2, pad=200))
    reqs = pack(["gz", gzip.compress(blob[:half]) + gzip.compress(blob[half:]),
                 {"chunk": "a", "compressed": "gzip"}])
    reqs += pack(["zs", zstd_frames(blob), {"chunk": "b", "compressed": "zstd"}])
    send_all(tf, t, reqs, ["a", "b"])
    got = t.sink.wait_events(2 * n, timeout=wait_time(60))
    assert [(e.tag, e.record["n"]) for e in got] == \
        [("edge.client.test.gz", i) for i in range(n)] + \
        [("edge.client.test.zs", i) for i in range(n)]


def test_node_logger_acks_through_stamping(tf, node_sender):
    """@fluent-org/logger with acks: 1000 events, 1000 acks, each record stamped."""
    t = stamped_tunnel(tf)
    count = 1000
    for mode in ("Message", "CompressedPackedForward"):
        r = subprocess.run(["node", str(node_sender), "--port", str(client_port(t)),
                            "--count", str(count), "--tag", "node", "--mode", mode,
                            "--timeout-ms", str(int(wait_time(20) * 1000))],
                           capture_output=True, text=True, timeout=wait_time(60))
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
        assert r.returncode == 0 and summary.get("acked") == count, \
            f"node sender ({mode}): rc={r.returncode} {summary}\n{r.stderr[-2000:]}"
    events = t.sink.wait_events(2 * count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == sorted(list(range(count)) * 2)
    assert {e.tag for e in events} == {"edge.client.test.node.event"}
    for e in events:
        check_stamp(e.record)
    assert t.sink.acks_sent >= count + 1


@pytest.mark.parametrize("name,data", [
    ("garbage", b"\xc1\xc1\xc1\xc1"),
    ("json", b'{"tag":"a","message":"json mode"}\n'),
    ("not_a_request", pack(["a"])),
    ("record_not_a_map", pack(["a", 1, [1, 2, 3]])),
    ("bad_gzip", pack(["a", b"\x1f\x8b" + b"\x00" * 40, {"compressed": "gzip"}])),
    ("compression_mismatch", pack(["a", gzip.compress(entries(2))])),
    ("truncated_event", pack(["a", entries(2)[:-3]])),
])
def test_malformed_request_resets_the_sender(tf, name, data):
    t = stamped_tunnel(tf)
    app = send_all(tf, t, pack(["ok", 1, {"n": 0}]))
    t.sink.wait_events(1)
    app.sendall(data)
    assert ending(app) == "reset"
    t.server.wait_for(lambda r: r.get("msg") == "dropped: bad input", what="the drop line")
    time.sleep(0.2)
    assert len(t.sink.events) == 1


def test_oversized_request_resets_the_sender(tf):
    audit = tf.tmp / "audit.jsonl"
    t = stamped_tunnel(tf, max_request_size=4096, audit_file=audit)
    app = send_all(tf, t, pack(["small", entries(10), {"chunk": "s"}]), ["s"])
    app.sendall(pack(["big", entries(1000), {"chunk": "b"}]))
    assert ending(app) == "reset"
    line = t.server.wait_for(lambda r: r.get("msg") == "dropped: bad input",
                             what="the drop line")
    assert "fwd_request_too_large" in json.dumps(line)
    assert t.sink.acks_sent == 1
    deadline = time.monotonic() + wait_time(10)
    while time.monotonic() < deadline:
        events = [json.loads(x) for x in audit.read_text().splitlines()] if audit.exists() else []
        closes = [e for e in events if e["kind"] == "close"]
        if closes:
            break
        time.sleep(0.05)
    assert closes and closes[0]["reason"] == "fwd_request_too_large", events


def test_compressed_request_counts_decompressed(tf):
    """--max-request-size holds for what a compressed payload expands to:
    20 KiB of gzip that would make 2 MiB of events is refused."""
    t = stamped_tunnel(tf, max_request_size=1 * MiB)
    app = send_all(tf, t, pack(["ok", gzip.compress(entries(1000)),
                                {"chunk": "s", "compressed": "gzip"}]), ["s"])
    blob = entries(2000, pad=1000)
    bomb = gzip.compress(blob)
    assert len(bomb) < 64 * 1024 < 1 * MiB < len(blob)
    app.sendall(pack(["bomb", bomb, {"chunk": "b", "compressed": "gzip"}]))
    assert ending(app) == "reset"
    line = t.server.wait_for(lambda r: r.get("msg") == "dropped: bad input",
                             what="the drop line")
    assert line.get("reason") == "fwd_request_too_large", line
    # Pieces before the fault may have reached Fluentd, never acknowledged.
    assert t.sink.acks_sent == 1
    assert len([e for e in t.sink.events if e.tag.endswith("bomb")]) < 1100


def test_half_close_after_the_last_piece(tf):
    """A sender that half-closes after a large request: every piece, then
    the end, reach Fluentd, and the ack comes back before a clean end."""
    sink = tf.tcp_sink()
    server = tf.server(sink, **STAMP)
    client = tf.client(server)
    app = tf.connect(client)
    up = sink.accept()
    n = 5000
    app.sendall(pack(["hc", entries(n, pad=100), {"chunk": "h"}]))
    app.shutdown(socket.SHUT_WR)
    u = msgpack.Unpacker(raw=False, max_buffer_size=64 * MiB)
    data = bytearray()
    while True:
        chunk = up.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    u.feed(bytes(data))
    reqs = list(u)
    assert len(reqs) > 1 and reqs[-1][2]["chunk"] == "h"
    assert sum(r[2]["size"] for r in reqs) == n
    up.sendall(pack({"ack": "h"}))
    up.shutdown(socket.SHUT_WR)
    assert recv_exact(app, len(pack({"ack": "h"}))) == pack({"ack": "h"})
    assert ending(app) == "eof"


def test_helo_ping_pong_pass_through(tf):
    """A sender speaking <security> itself: Fluentd's HELO reaches it, its
    PING reaches Fluentd byte for byte, the PONG comes back; then its events
    are stamped."""
    sink = tf.tcp_sink()
    server = tf.server(sink, **STAMP)
    client = tf.client(server)
    app = tf.connect(client)
    up = sink.accept()
    helo = pack(["HELO", {"nonce": b"n" * 16, "auth": b"", "keepalive": True}])
    up.sendall(helo)
    assert recv_exact(app, len(helo)) == helo
    ping = pack(["PING", "edge", b"s" * 16, "ab" * 64, "", ""])
    app.sendall(ping)
    assert recv_exact(up, len(ping)) == ping
    pong = pack(["PONG", True, "", "fluentd", "cd" * 64])
    up.sendall(pong)
    assert recv_exact(app, len(pong)) == pong
    app.sendall(pack(["after", 1, {"n": 1}]))
    u = msgpack.Unpacker(raw=False)
    while True:
        u.feed(up.recv(65536))
        got = list(u)
        if got:
            break
    tag, tm, record = got[0]
    assert tag == "edge.client.test.after" and tm == 1 and record["n"] == 1
    check_stamp(record)


def test_stamp_fields_and_format(tf):
    p = Pki(tf.tmp / "pki")
    edge = p.issue(tf.pki.ca, "edge", "edge-01", dns=["edge-01.example.com"],
                   uris=["spiffe://prod/edge-01"], ou="fleet")
    sink = tf.fwd_sink()
    server = tf.server(sink, stamp_key="tls", allow_cn="edge-01")
    client = tf.client(server, identity=edge)
    server2 = tf.server(sink, stamp_key="who", stamp_format="{cn}/{ou}/{dns}/{uri}",
                        tag_prefix="{dns}.")
    client2 = tf.client(server2, identity=edge)
    for c in (client, client2):
        app = tf.connect(c)
        app.sendall(pack(["t", 1, {"n": 1, "tls": "spoofed", "who": "spoofed"}]))
    got = sink.wait_events(2)
    by_tag = {e.tag: e.record for e in got}
    tls = by_tag["t"]["tls"]
    assert by_tag["t"]["who"] == "spoofed"
    c = tls["client"]
    assert c["subject"] == c["x509"]["subject"]["distinguished_name"]
    assert "edge-01" in c["subject"]
    assert c["x509"]["subject"]["common_name"] == ["edge-01"]
    assert c["x509"]["subject"]["organizational_unit"] == ["fleet"]
    assert c["x509"]["alternative_names"] == ["edge-01.example.com", "spiffe://prod/edge-01"]
    assert c["hash"]["sha256"] == c["hash"]["sha256"].upper()
    assert c["not_after"].endswith("Z") and c["not_after"] == c["x509"]["not_after"]
    assert c["x509"]["serial_number"] == c["x509"]["serial_number"].upper()
    assert "tls test CA" in c["issuer"] or c["issuer"]
    assert tls["tlsfwd"]["rule"] == "cn:edge-01"
    assert len(tls["tlsfwd"]["spki_sha256"]) == 64
    assert by_tag["edge-01.example.com.t"] == {
        "n": 1, "tls": "spoofed",
        "who": "edge-01/fleet/edge-01.example.com/spiffe://prod/edge-01"}


def test_every_connection_shows_its_certificate(tf):
    """While stamping the server issues no tickets: the client's second
    connection makes a full handshake too, and its records are stamped."""
    t = stamped_tunnel(tf)
    for i in range(3):
        app = send_all(tf, t, pack(["r", 1, {"n": i}, {"chunk": f"c{i}"}]), [f"c{i}"])
        app.close()
    for e in t.sink.wait_events(3):
        check_stamp(e.record)
    accepted = [r for r in t.server.records() if r.get("msg") == "accepted"]
    assert len(accepted) == 3 and all(r["resumed"] == "0" for r in accepted), accepted


def test_identity_that_is_no_tag_is_refused(tf):
    """--tag-prefix with a value a tag may not hold (a URI SAN) or a missing
    one (no DNS SAN): refused at the handshake, never mangled."""
    p = Pki(tf.tmp / "pki")
    edge = p.issue(tf.pki.ca, "edge", "edge-01", uris=["spiffe://prod/edge-01"])
    sink = tf.fwd_sink()
    for prefix in ("{uri}.", "{dns}."):
        server = tf.server(sink, tag_prefix=prefix)
        client = tf.client(server, identity=edge)
        app = tf.connect(client, allow_reset=True)
        app.sendall(pack(["t", 1, {"n": 1}]))
        assert ending(app) == "reset"
        server.wait_for(lambda r: "identity_not_a_tag" in json.dumps(r),
                        what="the refusal line")
    assert not sink.events


def test_no_option_no_reader(tf):
    """Without the options the server stays byte-exact: JSON (which the
    reader refuses) and garbage pass untouched."""
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server)
    app = tf.connect(client)
    up = sink.accept()
    data = b'{"tag":"a"}\xc1\xc1' + pack(["a", 1, {"n": 1}])
    app.sendall(data)
    assert recv_exact(up, len(data)) == data


@pytest.mark.parametrize("opts,error", [
    (dict(stamp_format="{cn}"), "--stamp-format: needs --stamp-key"),
    (dict(tag_prefix="edge.{nope}."), "--tag-prefix"),
    (dict(tag_prefix="edge/{cn}."), "--tag-prefix"),
    (dict(stamp_key="a", stamp_address_key="a"), "--stamp-address-key"),
])
def test_option_errors(tf, opts, error):
    from conftest import flags
    pki = tf.pki
    r = tf.run("tlsfwd-server", "--upstream", "127.0.0.1:1", "--ca", pki.ca.cert, "--cert",
               pki.server.cert, "--key", pki.server.key, "--check", *flags(opts))
    assert r.returncode != 0 and error in r.stderr, r.stderr
