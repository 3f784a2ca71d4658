"""Fluentd's <security> handshake spoken by tlsfwd-server for senders that
cannot (--upstream-shared-key-file): the server answers in_forward's HELO,
checks the PONG, and only then relays.  Seen from the sender: Python's
fluent-logger, which knows nothing of HELO, through the pair to a forward
sink that requires a shared key (and, for user_auth, a user)."""

import re
import socket
import threading
import time

import msgpack
import pytest
from fluent import sender

from conftest import flags, free_port, wait_time
from test_silent import assert_told, outcome

KEY = "a shared key with spaces, é"
HEX128 = re.compile(r"[0-9a-f]{128}")


def secret(tf, name, text, mode=0o600):
    path = tf.file(name, text + "\nnot this line\n")
    path.chmod(mode)
    return path


def pair(tf, sink, key=KEY, server_opts=None):
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", key),
                       **(server_opts or {}))
    return server, tf.client(server)


def emit(client, count, tag="py"):
    port = int(client.address.rpartition(":")[2])
    logger = sender.FluentSender(tag, host="127.0.0.1", port=port, timeout=wait_time(10))
    try:
        for i in range(count):
            assert logger.emit("event", {"seq": i}), f"emit {i}: {logger.last_error!r}"
    finally:
        logger.close()


def message(chunk=None):
    option = {"chunk": chunk} if chunk else {}
    return msgpack.packb(["raw", int(time.time()), {"a": 1}, option])


def assert_refused_by_server(tf, sink, server, reason, key=KEY):
    """A sender through the pair is reset (or refused, once the server closed
    its door); the server's line names the reason; nothing reached the sink's
    relay and no secret is in the log."""
    client = tf.client(server)
    assert_told(outcome(client.address, message()))
    line = server.wait_warning(reason=reason)
    assert line.get("side") == "upstream", line
    assert not sink.events
    assert key not in server.log_text()
    return line


def test_events_arrive_and_the_ping_is_fluentds(tf):
    sink = tf.fwd_sink(shared_key=KEY)
    server, client = pair(tf, sink, server_opts={"upstream_hostname": "edge-gw"})
    emit(client, 100)
    events = sink.wait_events(100, timeout=wait_time(20))
    assert [e.record["seq"] for e in events] == list(range(100))
    assert not sink.errors and not sink.auth_failures
    assert sink.handshakes >= 1
    ping = sink.pings[0]
    # ['PING', self_hostname, salt (str, 32 lowercase hex), digest (128), username, digest]
    assert len(ping) == 6 and ping[0] == "PING" and ping[1] == "edge-gw", ping
    assert isinstance(ping[2], str) and re.fullmatch(r"[0-9a-f]{32}", ping[2]), ping
    assert isinstance(ping[3], str) and HEX128.fullmatch(ping[3]), ping
    # in_forward's HELO always has an auth salt: as out_forward, '' and its digest
    assert ping[4] == "" and HEX128.fullmatch(ping[5]), ping
    assert len({p[2] for p in sink.pings}) == len(sink.pings), "a salt was used twice"
    assert KEY not in server.log_text()


def test_the_sender_never_sees_helo_or_pong(tf):
    """The first bytes the sender reads are Fluentd's ack of its chunk."""
    sink = tf.fwd_sink(shared_key=KEY)
    _, client = pair(tf, sink)
    host, _, port = client.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=wait_time(10)) as s:
        s.sendall(message("c2hhcmVka2V5"))
        got = msgpack.Unpacker(raw=False)
        while True:
            data = s.recv(65536)
            assert data, "EOF before the ack"
            got.feed(data)
            objs = list(got)
            if objs:
                break
    assert objs == [{"ack": "c2hhcmVka2V5"}]
    assert sink.wait_events(1)[0].record == {"a": 1}


def test_wrong_key_resets_the_sender(tf):
    sink = tf.fwd_sink(shared_key=KEY)
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", "not the key"))
    assert_refused_by_server(tf, sink, server, "shared_key_mismatch")
    assert sink.auth_failures and set(sink.auth_failures) == {"shared_key mismatch"}


def test_pong_with_a_wrong_digest_resets_the_sender(tf):
    """A Fluentd (or whatever answers on its port) that says yes without
    proving the key: its PONG digest is checked."""
    sink = tf.fwd_sink(shared_key=KEY, pong_key="another key")
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", KEY))
    assert_refused_by_server(tf, sink, server, "shared_key_mismatch")
    assert not sink.auth_failures and sink.handshakes >= 1


def test_pong_naming_our_own_hostname_is_refused(tf):
    """A PONG with our hostname has our PING's digest: a reflection."""
    sink = tf.fwd_sink(shared_key=KEY, self_hostname="edge-gw")
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", KEY),
                       upstream_hostname="edge-gw")
    assert_refused_by_server(tf, sink, server, "fwd_auth_same_hostname")


@pytest.mark.parametrize("password,ok", [("pass word", True), ("wrong", False)])
def test_user_auth(tf, password, ok):
    sink = tf.fwd_sink(shared_key=KEY, users={"edge": "pass word", "other": "x"})
    opts = {"upstream_username": "edge",
            "upstream_password_file": secret(tf, "password", password)}
    if ok:
        _, client = pair(tf, sink, server_opts=opts)
        emit(client, 10)
        assert len(sink.wait_events(10)) == 10
        assert sink.pings[0][4] == "edge" and HEX128.fullmatch(sink.pings[0][5])
    else:
        server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", KEY), **opts)
        assert_refused_by_server(tf, sink, server, "user_auth_failed")
        assert set(sink.auth_failures) == {"username/password mismatch"}
        assert password not in server.log_text()


def test_helo_and_pong_one_byte_at_a_time(tf):
    sink = tf.fwd_sink(shared_key=KEY, dribble=True)
    _, client = pair(tf, sink)
    emit(client, 20)
    assert [e.record["seq"] for e in sink.wait_events(20)] == list(range(20))
    assert sink.handshakes >= 1 and not sink.errors


def test_wrong_key_one_byte_at_a_time(tf):
    sink = tf.fwd_sink(shared_key=KEY, dribble=True)
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", "nope"))
    assert_refused_by_server(tf, sink, server, "shared_key_mismatch")


def test_fluentd_that_never_says_helo_times_out(tf):
    sink = tf.fwd_sink(shared_key=KEY, helo=False)
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", KEY),
                       connect_timeout=1)
    start = time.monotonic()
    assert_refused_by_server(tf, sink, server, "fwd_auth_timeout")
    assert time.monotonic() - start < wait_time(8)


class Speaker:
    """A TCP upstream that says `data` to each connection, then closes."""

    def __init__(self, data):
        self.data = data
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(self.data)
                    conn.shutdown(socket.SHUT_WR)
                    conn.settimeout(2)
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass

    def close(self):
        self.lsock.close()


@pytest.mark.parametrize("data,reason", [
    (b"", "fwd_auth_closed"),
    (msgpack.packb(["PONG", True, "", "x", "y"]), "fwd_auth_not_helo"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "fwd_auth_not_helo"),
    (b"\xc1", "fwd_auth_bad_msgpack"),
    (b"\xdd\xff\xff\xff\xff", "fwd_auth_too_long"),
    (msgpack.packb(["HELO", {"nonce": b"n" * 16, "auth": b""}]), "fwd_auth_closed"),
])
def test_what_is_not_fluentds_handshake(tf, data, reason):
    up = Speaker(data)
    tf.closing(up)
    server = tf.server(up, upstream_shared_key_file=secret(tf, "shared-key", KEY))
    client = tf.client(server)
    assert_told(outcome(client.address, message()))
    server.wait_warning(reason=reason)


def test_options(tf):
    key = secret(tf, "shared-key", KEY)
    for opts, needle in [
        ({"upstream_username": "u"}, "--upstream-username: needs --upstream-shared-key-file"),
        ({"upstream_shared_key_file": key, "upstream_username": "u"},
         "--upstream-username: needs --upstream-password-file"),
        ({"upstream_shared_key_file": tf.tmp / "missing"}, "--upstream-shared-key-file: "),
        ({"upstream_shared_key_file": tf.file("empty", "\n")}, "the first line is empty"),
    ]:
        r = tf.run("tlsfwd-server", *flags(dict(
            listen=f"127.0.0.1:{free_port()}", upstream="127.0.0.1:9", ca=tf.pki.ca.cert,
            cert=tf.pki.server.cert, key=tf.pki.server.key, **opts)), timeout=wait_time(10))
        assert r.returncode == 1 and needle in r.stderr, r.stderr
    # readable by others: said, as for --key and --proxy-password-file
    key.chmod(0o644)
    server = tf.server(tf.fwd_sink(shared_key=KEY), upstream_shared_key_file=key)
    line = server.wait_warning(msg="secret file is readable by others")
    assert line.get("mode") == "0644" and line.get("option") == "upstream-shared-key-file", line


def test_probes_speak_the_handshake(tf):
    """An upstream found down is probed with the handshake: a Fluentd that
    answers but refuses our key stays down; once one accepts it, the server
    accepts again and events flow."""
    from fwdsink import ForwardSink
    from test_reach import wait_msg

    port = free_port()
    server = tf.server(f"127.0.0.1:{port}",
                       upstream_shared_key_file=secret(tf, "shared-key", KEY), health_interval=1)
    client = tf.client(server)
    assert_told(outcome(client.address, message()))
    wait_msg(server, "upstream unreachable, not accepting")
    wrong = tf.closing(ForwardSink(port=port, shared_key="other").start())
    deadline = time.monotonic() + wait_time(10)
    while len(wrong.auth_failures) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(wrong.auth_failures) >= 2, "no probe reached the sink"
    assert not any(r.get("msg") == "upstream reachable again, accepting"
                   for r in server.records())
    wrong.close()
    sink = tf.closing(ForwardSink(port=port, shared_key=KEY).start())
    wait_msg(server, "upstream reachable again, accepting", timeout=wait_time(10))
    emit(tf.client(server), 5)
    assert len(sink.wait_events(5)) == 5


def test_sender_gone_during_the_handshake(tf):
    """The sender resets while the server waits for HELO: its connection goes
    when the handshake times out (what the hop held is freed: valgrind)."""
    sink = tf.fwd_sink(shared_key=KEY, helo=False)
    server = tf.server(sink, upstream_shared_key_file=secret(tf, "shared-key", KEY),
                       connect_timeout=1)
    client = tf.client(server)
    host, _, port = client.address.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=wait_time(10))
    s.sendall(message())
    server.wait_for(lambda r: r.get("msg") == "accepted", what="the TLS handshake")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    line = server.wait_for(lambda r: r.get("reason") is not None, what="the connection's end")
    assert line.get("reason") in ("fwd_auth_timeout", "reset", "no_close_notify"), line
    assert not sink.events
