"""Refused peers, silent peers and dead ends: each costs the daemon one warn
line naming the reason and the peer, never the daemon, never another
connection's data."""

import os
import selectors
import ssl
import subprocess
import time

import msgpack
import pytest

from conftest import Background, fmt_addr, free_port, wait_closed, wait_time


@pytest.fixture
def busy_tunnel(tunnel):
    """The tunnel with a well-behaved transfer in progress (check it with bg.check())."""
    app, sink = tunnel.open()
    bg = Background(app, sink)
    bg.wait_moving()
    return tunnel, bg


def assert_refused_once(daemon, peer, reason):
    """The daemon logged exactly one warn line for `peer`, with `reason`, and lives on."""
    daemon.wait_warning(peer=peer, reason=reason)
    time.sleep(0.3)                       # a second line for the same peer would show by now
    lines = daemon.warnings(peer=peer)
    assert len(lines) == 1, f"expected one warn line for {peer}, got {lines}"
    assert daemon.running, f"{daemon.name} died\n{daemon.describe()}"


def s_client(tf, server, identity=None, *extra):
    """openssl s_client from a known local port, sending one line; returns the
    peer address the server sees and the finished process."""
    local = f"127.0.0.1:{free_port()}"
    cmd = ["openssl", "s_client", "-connect", server.address, "-bind", local,
           "-CAfile", tf.pki.ca.cert, "-servername", "localhost", *extra]
    if identity is not None:
        cmd += ["-cert", identity.cert, "-key", identity.key]
    r = subprocess.run([str(c) for c in cmd], input=b"hello\n", capture_output=True,
                       timeout=wait_time(30))
    return local, r


# -- the server refuses TLS peers -------------------------------------------

SERVER_REFUSALS = {
    "no_certificate": (None, ()),
    "unknown_ca": ("client_other", ()),
    "expired": ("client_expired", ()),
    "protocol_version": ("client", ("-tls1_2",)),
}


@pytest.mark.parametrize("reason", list(SERVER_REFUSALS))
def test_server_refuses_tls_peer(busy_tunnel, reason):
    tunnel, bg = busy_tunnel
    identity, extra = SERVER_REFUSALS[reason]
    peer, _ = s_client(tunnel.tf, tunnel.server,
                       getattr(tunnel.tf.pki, identity) if identity else None, *extra)
    assert_refused_once(tunnel.server, peer, reason)
    assert not tunnel.sink.pending(0.2), "a refused peer reached the upstream"
    bg.check()


NOT_TLS = {
    # kind: (bytes sent to the server port, the reason it must log)
    "http": (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "not_tls"),
    "forward-msgpack": (msgpack.packb(["app.log", 1_700_000_000, {"k": "v"}, {"chunk": "x"}]),
                        "not_tls"),
    "random": (bytes([0x01]) + os.urandom(4095), "not_tls"),
    # a TLS handshake record header followed by garbage: TLS, but broken
    "garbage-handshake": (b"\x16\x03\x01\x00\x20" + os.urandom(32), "tls_error"),
}


@pytest.mark.parametrize("kind", list(NOT_TLS))
def test_server_refuses_bytes_that_are_not_tls(busy_tunnel, kind):
    tunnel, bg = busy_tunnel
    data, reason = NOT_TLS[kind]
    s = tunnel.tf.connect(tunnel.server)
    peer = fmt_addr(s.getsockname())
    s.sendall(data)
    assert wait_closed(s, wait_time(15)), "the server kept the peer open"
    assert_refused_once(tunnel.server, peer, reason)
    assert not tunnel.sink.pending(0.2), "the bytes reached the upstream"
    bg.check()


# -- the client refuses servers ---------------------------------------------

CLIENT_REFUSALS = {
    "wrong-name": ("server", dict(server_name="wrong.example"), "name_mismatch"),
    "ip-not-in-san": ("server_noip", {}, "name_mismatch"),
    "other-ca": ("server_other", {}, "unknown_ca"),
    "expired": ("server_expired", {}, "expired"),
}


def assert_client_refuses(tf, client, sink, reason):
    app = tf.connect(client, allow_reset=True)
    peer = fmt_addr(app.getsockname())
    assert wait_closed(app, wait_time(15)), "the client kept the app connection open"
    assert_refused_once(client, peer, reason)
    if sink is not None:
        assert not sink.pending(0.2), "data went to a server the client refused"


@pytest.mark.parametrize("case", list(CLIENT_REFUSALS))
def test_client_refuses_server(tf, case):
    identity, client_opts, reason = CLIENT_REFUSALS[case]
    sink = tf.tcp_sink()
    server = tf.server(sink, identity=getattr(tf.pki, identity))
    client = tf.client(server, **client_opts)
    assert_client_refuses(tf, client, sink, reason)


def test_client_refuses_tls12_only_server(tf):
    tls = tf.tls_server(tf.pki.server, maximum_version=ssl.TLSVersion.TLSv1_2)
    client = tf.client(f"127.0.0.1:{tls.port}")
    assert_client_refuses(tf, client, None, "protocol_version")


# -- silent peers ----------------------------------------------------------

def watch_closes(socks, timeout):
    """{socket: monotonic time it was closed by the peer} for those closed in time."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = {}
    deadline = time.monotonic() + timeout
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed[key.fileobj] = time.monotonic()
                sel.unregister(key.fileobj)
    sel.close()
    return closed


def test_silent_peers_are_closed_after_the_handshake_timeout(tf):
    timeout = 2
    sink = tf.tcp_sink()
    # 500 from one address: lift the per-address budget (test_preauth.py covers it).
    server = tf.server(sink, handshake_timeout=timeout, max_handshakes_per_ip=0)
    client = tf.client(server)
    bg = Background(tf.connect(client), sink.accept())
    bg.wait_moving()

    opened = {}
    for _ in range(500):
        s = tf.connect(server)
        opened[s] = time.monotonic()
    closed = watch_closes(list(opened), timeout + wait_time(30))
    assert len(closed) == len(opened), \
        f"{len(opened) - len(closed)} of {len(opened)} silent peers still open"
    early = [closed[s] - opened[s] for s in opened if closed[s] - opened[s] < timeout / 2]
    assert not early, f"{len(early)} silent peers closed long before the handshake timeout"

    moved = bg.moved
    bg.wait_moving(moved + 256 * 1024)         # the real transfer kept going
    bg.check()
    # One address: its timeouts are rate-limited, a line then one with the
    # count (repeated=N, peer without a port), and the counts add up.
    peers = {fmt_addr(s.getsockname()) for s in opened} | {"127.0.0.1"}

    def timeouts():
        lines = [w for w in server.warnings() if w.get("peer") in peers]
        return lines, sum(int(w.get("repeated", 1)) for w in lines)
    server.wait_for(lambda r: timeouts()[1] >= len(opened),
                    wait_time(10), "handshake_timeout lines counting every silent peer")
    lines, events = timeouts()
    assert events == len(opened)
    assert {w.get("reason") for w in lines} == {"handshake_timeout"}, lines[:5]
    assert len(lines) <= 6, f"{len(lines)} lines for {len(opened)} timeouts of one address"


# -- dead ends ---------------------------------------------------------------

def test_upstream_down_closes_at_once(tf):
    dead = f"127.0.0.1:{free_port()}"
    server = tf.server(dead, connect_timeout=30)
    client = tf.client(server, connect_timeout=30)
    app = tf.connect(client, allow_reset=True)
    start = time.monotonic()
    assert wait_closed(app, wait_time(15)), "the app connection stayed open"
    elapsed = time.monotonic() - start
    assert elapsed < wait_time(5), f"closed only after {elapsed:.1f}s (a timeout, not the refusal)"
    line = server.wait_warning(reason="connect_refused")
    assert line.get("peer", "").startswith("127.0.0.1:"), line
    assert server.running and client.running


def test_server_down_closes_at_once(tf):
    dead = f"127.0.0.1:{free_port()}"
    client = tf.client(dead, connect_timeout=30)
    app = tf.connect(client, allow_reset=True)
    peer = fmt_addr(app.getsockname())
    start = time.monotonic()
    assert wait_closed(app, wait_time(15)), "the app connection stayed open"
    elapsed = time.monotonic() - start
    assert elapsed < wait_time(5), f"closed only after {elapsed:.1f}s (a timeout, not the refusal)"
    assert_refused_once(client, peer, "connect_refused")


def test_every_server_down_with_failover(tf):
    client = tf.client([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"],
                       connect_timeout=30)
    app = tf.connect(client, allow_reset=True)
    assert wait_closed(app, wait_time(15)), "the app connection stayed open"
    client.wait_warning(peer=fmt_addr(app.getsockname()), reason="connect_refused")
    assert client.running
