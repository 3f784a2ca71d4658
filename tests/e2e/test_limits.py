"""--max-conns and graceful stop on SIGTERM/SIGINT."""

import signal
import socket
import time

import pytest

from conftest import Background, Tunnel, exchange, recv_exact, wait_closed, wait_time


@pytest.mark.parametrize("capped", ["client", "server"])
def test_max_conns_queues_new_connections(tf, capped):
    cap = 2
    limit = dict(max_conns=cap)
    # The client's connect timeout covers the TLS handshake, which waits in
    # the server's backlog when the server is the capped one.
    tunnel = Tunnel(tf, server_opts=limit if capped == "server" else {},
                    client_opts=dict(connect_timeout=60, **(limit if capped == "client" else {})))
    daemon = getattr(tunnel, capped)
    conns = [tunnel.open() for _ in range(cap)]
    for app, far in conns:
        exchange(app, far)

    waiting = tf.connect(tunnel.client)            # the kernel completes it: backlog
    waiting.sendall(b"queued request")
    daemon.wait_warning(reason="max_conns")
    assert not tunnel.sink.pending(1.5), "a connection beyond --max-conns was relayed"
    for app, far in conns:                         # the open ones are unaffected
        exchange(app, far, 64 * 1024)

    app, far = conns.pop(0)                        # load drops: the waiting one gets through
    app.close()
    far.close()
    late = tunnel.sink.accept(timeout=wait_time(20))
    assert recv_exact(late, len(b"queued request")) == b"queued request"
    exchange(waiting, late)
    exchange(*conns[0])
    assert daemon.running


def assert_not_served(tunnel):
    """A new app connection is refused, or never reaches the upstream."""
    try:
        late = tunnel.tf.connect(tunnel.client, timeout=2)
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
        return
    try:
        late.sendall(b"too late")
    except OSError:
        return
    # The daemon ends it (a closed listener, or the client's refused upstream),
    # or it reaches the sink: whichever comes first.
    deadline = time.monotonic() + wait_time(15)
    while not wait_closed(late, 0.05):
        assert not tunnel.sink.pending(0), "a connection accepted after the signal was relayed"
        assert time.monotonic() < deadline, "a connection accepted after the signal stays open"
    assert not tunnel.sink.pending(0), "a connection accepted after the signal was relayed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("target", ["client", "server"])
def test_signal_stops_accepting_and_lets_connections_finish(tunnel, target, sig):
    app, far = tunnel.open()
    bg = Background(app, far)
    bg.wait_moving()
    daemon = getattr(tunnel, target)
    daemon.signal(sig)
    daemon.wait_for(lambda r: r.get("msg", "").startswith("stopping:"), what="msg=stopping")
    # The line comes before the workers are told (ev_async) and no line says
    # they closed their listeners: wait until the kernel has none left.
    daemon.wait_listeners_closed()
    assert_not_served(tunnel)
    bg.wait_moving(bg.moved + 512 * 1024)          # the open connection keeps flowing
    assert daemon.running, f"{daemon.name} exited with a connection open\n{daemon.describe()}"
    bg.check()
    rc = daemon.wait_exit(wait_time(20))
    assert rc == 0, f"{daemon.name} exited {rc} after {sig!r}\n{daemon.describe()}"


def test_signal_closes_idle_connections_after_the_drain_timeout(tf):
    drain = 2
    tunnel = Tunnel(tf, client_opts=dict(drain_timeout=drain))
    app, far = tunnel.open()
    exchange(app, far)
    tunnel.client.signal(signal.SIGTERM)
    start = time.monotonic()
    rc = tunnel.client.wait_exit(drain + wait_time(20))
    assert rc == 0, tunnel.client.describe()
    assert time.monotonic() - start > drain / 2, "an idle connection was cut without draining"
    assert wait_closed(app, wait_time(5))
