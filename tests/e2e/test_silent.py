"""Never silent: a sender always learns when its bytes went nowhere.

Only a clean end (FIN on a plain socket, close_notify on TLS) is passed on
as a clean end.  Every other end -- a reset, an EOF without close_notify, a
refused or failed handshake, an unreachable upstream, a drain timeout -- must
reach the other side as an abortive close, so each test here is written from
the sender's side: connect, write, half-close, read.  The read (or a write,
or the connect itself) must fail; a clean b'' is a failure of the tunnel.
Each case has a control that ends cleanly, so the checks can tell the two
apart.
"""

import errno
import json
import socket
import threading
from signal import SIGKILL
import ssl
import subprocess
import time

import pytest

from conftest import free_port, wait_time
from test_preload import Route

PAYLOAD = b"event-bytes " * 100


def outcome(addr, payload=PAYLOAD, *, before_shut=None, timeout=None):
    """Send payload to addr, half-close, read to the end.  Returns
    ('refused'|'reset'|'clean'|'timeout', bytes read)."""
    host, _, port = addr.rpartition(":")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout or wait_time(15))
    got = bytearray()
    try:
        try:
            s.connect((host.strip("[]"), int(port)))
        except ConnectionRefusedError:
            return "refused", b""
        s.sendall(payload)
        if before_shut is not None:
            before_shut()
        return read_to_end(s, got)
    except (ConnectionResetError, BrokenPipeError):
        return "reset", bytes(got)
    except socket.timeout:
        return "timeout", bytes(got)
    except OSError as e:
        if e.errno == errno.ENOTCONN:         # shutdown() after a reset
            return "reset", bytes(got)
        raise
    finally:
        s.close()


def read_to_end(s, got):
    """Half-close s and read until the peer's end, into got: ('clean', got)
    if that end was clean; a reset raises."""
    s.shutdown(socket.SHUT_WR)
    while chunk := s.recv(65536):
        got += chunk
    return "clean", bytes(got)


def assert_told(result):
    kind, got = result
    n = got if isinstance(got, int) else len(got)
    assert kind in ("refused", "reset"), \
        f"the sender got {kind!r} (read {n} bytes): its lost bytes looked delivered"


RST_LINGER = b"\x01\x00\x00\x00\x00\x00\x00\x00"    # struct linger {1, 0}: close() sends RST


def sink_rst(sock):
    """Close a socket with RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
    sock.close()


def recv_some(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"EOF after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


# -- through the pair: a plaintext sender of tlsfwd-client --------------------

def test_clean_end_is_passed_on_as_clean(tunnel):
    """The control: upstream answers and closes cleanly; the sender sees a clean end."""
    def serve():
        conn = tunnel.sink.accept()
        data = recv_some(conn, len(PAYLOAD))
        assert conn.recv(1) == b""                 # the sender's half-close arrived as FIN
        conn.sendall(b"ok:" + data[:10])
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    kind, got = outcome(tunnel.client.address)
    t.join()
    assert (kind, got) == ("clean", b"ok:" + PAYLOAD[:10])


def test_fluentd_down_behind_the_server(tf):
    server = tf.server(f"127.0.0.1:{free_port()}")
    client = tf.client(server)
    assert_told(outcome(client.address))
    server.wait_warning(reason="connect_refused", side="upstream")


@pytest.mark.parametrize("case", ["wrong-name", "other-ca", "expired"])
def test_client_refuses_the_server(tf, case):
    identity, opts = {"wrong-name": ("server", dict(server_name="wrong.example")),
                      "other-ca": ("server_other", {}),
                      "expired": ("server_expired", {})}[case]
    sink = tf.tcp_sink()
    server = tf.server(sink, identity=getattr(tf.pki, identity))
    client = tf.client(server, **opts)
    assert_told(outcome(client.address))
    assert not sink.pending(0.2)


def test_server_refuses_the_client(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, identity=tf.pki.client_other)
    assert_told(outcome(client.address))
    server.wait_warning(reason="unknown_ca")
    assert not sink.pending(0.2)


def test_server_down(tf):
    client = tf.client(f"127.0.0.1:{free_port()}")
    assert_told(outcome(client.address))


def test_upstream_resets_mid_stream(tunnel):
    def rst():
        conn = tunnel.sink.accept()
        recv_some(conn, len(PAYLOAD))
        sink_rst(conn)
    assert_told(outcome(tunnel.client.address, before_shut=rst))
    tunnel.server.wait_warning(side="upstream", reason="reset")


def test_server_killed_mid_stream(tunnel):
    def kill():
        recv_some(tunnel.sink.accept(), len(PAYLOAD))
        tunnel.server.stop(SIGKILL)
    assert_told(outcome(tunnel.client.address, before_shut=kill))
    tunnel.client.wait_warning(side="upstream")


def test_drain_timeout(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, drain_timeout=1)
    held = []
    kind, got = outcome(client.address, before_shut=lambda: held.append(sink.accept()))
    assert_told((kind, got))
    client.wait_for(lambda r: any(x.get("reason") == "drain_timeout" for x in client.records()),
                    what="a drain_timeout line")


def test_log_names_what_was_delivered(tf):
    """With Fluentd down nothing was delivered upstream: sent=0, the side named."""
    server = tf.server(f"127.0.0.1:{free_port()}")
    client = tf.client(server)
    assert_told(outcome(client.address))
    line = server.wait_warning(reason="connect_refused")
    assert line.get("side") == "upstream" and line.get("sent") == "0", line


# -- tlsfwd-server's own senders: TLS peers, and Fluentd behind it -----------

def tls_sender(tf, server, payload=PAYLOAD, *, ending="close_notify", before_end=None):
    """A native TLS sender (like Fluent Bit with tls on): sends payload, ends
    as told ('close_notify', 'no_close_notify' or 'rst'), and with
    close_notify reads to the end.  Returns ('clean'|'reset'|'ragged'|
    'alert'|'timeout'|'sent', bytes read)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(str(tf.pki.ca.cert))
    ctx.load_cert_chain(str(tf.pki.client.cert), str(tf.pki.client.key))
    raw = socket.create_connection(("127.0.0.1", int(server.address.rpartition(":")[2])),
                                   timeout=wait_time(15))
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    got = bytearray()
    try:
        s.sendall(payload)
        if before_end is not None:
            before_end()
        if ending == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST_LINGER)
            return "sent", b""
        if ending == "no_close_notify":
            return "sent", b""                  # close() below: FIN, no close_notify
        s = s.unwrap()                          # close_notify, then the peer's
        return read_to_end(s, got)
    except (ConnectionResetError, BrokenPipeError):
        return "reset", bytes(got)
    except ssl.SSLEOFError:
        return "ragged", bytes(got)
    except ssl.SSLError:
        return "alert", bytes(got)
    except socket.timeout:
        return "timeout", bytes(got)
    finally:
        s.close()
        raw.close()


def sink_end(conn, n):
    """What a Fluentd stand-in sees: the bytes, then 'clean' (FIN) or 'reset'."""
    data = recv_some(conn, n)
    try:
        rest = conn.recv(65536)
    except ConnectionResetError:
        return "reset", data
    return ("clean" if not rest else "more"), data


@pytest.mark.parametrize("ending", ["no_close_notify", "rst"])
def test_a_tls_sender_that_is_cut_reaches_fluentd_as_a_reset(tf, ending):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    conns = []
    tls_sender(tf, server, ending=ending,
               before_end=lambda: conns.append(sink.accept()))
    kind, data = sink_end(conns[0], len(PAYLOAD))
    assert data == PAYLOAD                      # what came before the cut was delivered
    assert kind == "reset", f"Fluentd saw {kind!r}: a cut stream looked complete"
    server.wait_for(lambda r: any(x.get("side") == "peer" and
                                  x.get("reason") in ("no_close_notify", "reset", "tls_error")
                                  for x in server.records()), what="the cut, named")


def test_a_tls_sender_that_ends_cleanly_reaches_fluentd_as_fin(tf):
    """The control for the test above."""
    sink = tf.tcp_sink()
    server = tf.server(sink)
    conns = []
    t = threading.Thread(target=lambda: conns.append(sink.accept()))
    t.start()
    result = {}
    s = threading.Thread(target=lambda: result.update(r=tls_sender(tf, server)))
    s.start()
    t.join()
    kind, data = sink_end(conns[0], len(PAYLOAD))
    conns[0].close()
    s.join()
    assert (kind, data) == ("clean", PAYLOAD)
    assert result["r"] == ("clean", b"")


def test_a_tls_sender_whose_fluentd_is_down_is_not_told_close_notify(tf):
    server = tf.server(f"127.0.0.1:{free_port()}")
    kind, _ = tls_sender(tf, server)
    assert kind in ("reset", "ragged", "alert"), f"the TLS sender got {kind!r}"


def test_a_tls_sender_whose_fluentd_resets_is_not_told_close_notify(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)

    def rst():
        sink_rst_after = sink.accept()
        recv_some(sink_rst_after, len(PAYLOAD))
        sink_rst(sink_rst_after)
    kind, _ = tls_sender(tf, server, before_end=rst)
    assert kind in ("reset", "ragged", "alert"), f"the TLS sender got {kind!r}"


# -- the preload shim in inline mode ------------------------------------------

SHIM_SENDER = """
import errno, json, socket, sys
payload = b"event-bytes " * 100
s = socket.socket()
s.settimeout(30)
try:
    s.connect(("127.0.0.77", 24224))
except ConnectionRefusedError:
    print(json.dumps(["refused", 0])); sys.exit(0)
except ConnectionResetError:    # the core had already tried, failed and reset it
    print(json.dumps(["reset", 0])); sys.exit(0)
got = b""
try:
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    while True:
        c = s.recv(65536)
        if not c:
            print(json.dumps(["clean", len(got)])); break
        got += c
except (ConnectionResetError, BrokenPipeError):
    print(json.dumps(["reset", len(got)]))
except OSError as e:
    if e.errno != errno.ENOTCONN:
        raise
    print(json.dumps(["reset", len(got)]))
except socket.timeout:
    print(json.dumps(["timeout", len(got)]))
"""


def shim_outcome(route):
    r = subprocess.run(["/usr/bin/python3", "-c", SHIM_SENDER], capture_output=True, text=True,
                       env=route.env(), timeout=wait_time(60))
    assert r.returncode == 0, r.stderr
    return tuple(json.loads(r.stdout.strip().splitlines()[-1]))


class DeadSink:
    """An upstream address where nothing listens."""
    address = f"127.0.0.1:{free_port()}"


def test_inline_fluentd_down(tf):
    route = Route(tf, "inline", DeadSink())
    assert_told(shim_outcome(route))


def test_inline_client_refuses_the_server(tf):
    sink = tf.tcp_sink()
    route = Route(tf, "inline", sink, server_name="wrong.example")
    assert_told(shim_outcome(route))
    assert not sink.pending(0.2)


def test_inline_server_down(tf):
    route = Route(tf, "inline", tf.tcp_sink())
    route.server.stop(SIGKILL)
    assert_told(shim_outcome(route))


def test_inline_clean_end_is_clean(tf):
    sink = tf.tcp_sink()
    route = Route(tf, "inline", sink)

    def serve():
        conn = sink.accept()
        recv_some(conn, len(PAYLOAD))
        conn.recv(1)
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    kind, _ = shim_outcome(route)
    t.join()
    assert kind == "clean"
