"""Real forward-protocol senders through the tunnel to a forward sink that
decodes msgpack and answers {"ack": chunk}: the acks must come back."""

import gzip
import json
import struct
import subprocess

import msgpack
import pytest
from fluent import sender

from conftest import Tunnel, recv_exact, wait_time


@pytest.fixture
def fwd_tunnel(tf):
    """app -> tlsfwd-client -> tlsfwd-server -> ForwardSink."""
    return Tunnel(tf, sink=tf.fwd_sink())


def client_port(tunnel):
    return int(tunnel.client.address.rpartition(":")[2])


def test_python_fluent_logger(fwd_tunnel):
    count = 200
    logger = sender.FluentSender("py", host="127.0.0.1", port=client_port(fwd_tunnel),
                                 nanosecond_precision=True, timeout=wait_time(10))
    try:
        for i in range(count):
            assert logger.emit("event", {"seq": i, "text": "é" * (i % 7), "blob": "x" * i}), \
                f"emit {i} failed: {logger.last_error!r}"
    finally:
        logger.close()
    events = fwd_tunnel.sink.wait_events(count, timeout=wait_time(20))
    assert [e.tag for e in events] == ["py.event"] * count
    assert [e.record for e in events] == \
        [{"seq": i, "text": "é" * (i % 7), "blob": "x" * i} for i in range(count)]
    assert not fwd_tunnel.sink.errors


@pytest.mark.parametrize("mode", ["Message", "CompressedPackedForward"])
def test_node_fluent_logger_with_acks(tf, fwd_tunnel, node_sender, mode):
    count = 1000
    r = subprocess.run(["node", str(node_sender), "--port", str(client_port(fwd_tunnel)),
                        "--count", str(count), "--tag", "node", "--mode", mode,
                        "--timeout-ms", str(int(wait_time(20) * 1000))],
                       capture_output=True, text=True, timeout=wait_time(60))
    summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    assert r.returncode == 0 and summary.get("acked") == count, \
        f"node sender: rc={r.returncode} {summary}\n{r.stderr[-2000:]}"
    events = fwd_tunnel.sink.wait_events(count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == list(range(count))
    assert {e.mode for e in events} == {mode}
    if mode == "Message":
        assert fwd_tunnel.sink.acks_sent == count       # one chunk id, one ack per event


def test_every_forward_mode_and_its_ack(tf, fwd_tunnel):
    """Hand-built requests in every mode (EventTime, nil, a non-minimal map32
    option like Fluent Bit writes) arrive and each ack comes back in order."""
    et = msgpack.ExtType(0, struct.pack(">II", 1_700_000_000, 123))
    pack = msgpack.packb
    entries = pack([1_700_000_000, {"n": 1}]) + pack([et, {"n": 2}])
    map32_option = b"\xdf\x00\x00\x00\x01" + pack("chunk") + pack("c-map32")
    requests = [
        pack(None),
        pack(["message", et, {"n": 0}, {"chunk": "c-message"}]),
        pack(["forward", [[1_700_000_000, {"n": 1}], [et, {"n": 2}]], {"chunk": "c-forward"}]),
        pack(["packed", entries, {"chunk": "c-packed", "size": 2}]),
        pack(["compressed", gzip.compress(entries),
              {"chunk": "c-compressed", "compressed": "gzip", "size": 2}]),
        b"\x94" + pack("map32") + pack(1) + pack({"n": 3}) + map32_option,
    ]
    app = tf.connect(fwd_tunnel.client)
    app.sendall(b"".join(requests))
    want = [{"ack": c} for c in ("c-message", "c-forward", "c-packed", "c-compressed", "c-map32")]
    wire = b"".join(pack(a) for a in want)
    assert recv_exact(app, len(wire)) == wire
    events = fwd_tunnel.sink.wait_events(8, timeout=wait_time(20))
    assert [(e.tag, e.record["n"]) for e in events] == [
        ("message", 0), ("forward", 1), ("forward", 2), ("packed", 1), ("packed", 2),
        ("compressed", 1), ("compressed", 2), ("map32", 3)]
    assert not fwd_tunnel.sink.errors
