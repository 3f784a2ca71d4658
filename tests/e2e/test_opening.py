"""Opening in turns: a client is one address to its server, so it opens at
most --max-handshakes-per-server connections to one server at once (per
worker, its share); a burst of senders waits its turn instead of being closed
by the server's --max-handshakes-per-ip, and a sender whose turn does not
come within --connect-timeout is reset, never left hanging."""

import socket
import threading
import time
from types import SimpleNamespace

import pytest

from conftest import free_port, wait_time
from test_names import move, named_client
from test_servers import CountingSink, lines, wait_count
from test_silent import outcome

BURST = 60


def burst(addr, n):
    """n senders at once, each a byte, half-close, read to the end; their
    outcomes (see test_silent.outcome)."""
    results = [None] * n
    go = threading.Barrier(n)

    def one(i):
        go.wait()
        results[i] = outcome(addr, b"x")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(wait_time(60))
    return results


@pytest.mark.parametrize("cap", [4, 0])
def test_a_burst_from_one_client_waits_its_turn(tf, cap):
    """60 senders at once through a client whose server closes a 17th pending
    handshake from one address.  With --max-handshakes-per-server 4 every one
    is delivered and the server stays up; with 0 (no turns) the server closes
    the excess at accept and the client thinks it down (the control).  The
    server counts a handshake until it has read the client's Finished, which
    may wait behind other work after the client is done: hence the margin,
    like the defaults' 32 against 64."""
    sink = tf.closing(CountingSink())
    server = tf.server(sink, max_handshakes_per_ip=16)
    client = tf.client(server, workers=1, max_handshakes_per_server=cap)
    results = burst(client.address, BURST)
    refused = server.warnings(msg="refused before TLS")
    if cap == 0:
        assert refused, "the control did not overrun the server's per-address budget"
        return
    assert all(kind == "clean" for kind, _ in results), results
    wait_count([sink], BURST, "every sender of the burst delivered")
    assert not refused, refused
    assert not lines(client, "servers unreachable, not accepting")


class Blackhole:
    """A listener that never accepts: the kernel completes the TCP connect,
    the ClientHello is never answered."""

    def __init__(self, ip, port):
        self.sock = socket.socket()
        self.sock.bind((ip, port))
        self.sock.listen(64)

    def close(self):
        self.sock.close()


def test_a_sender_whose_turn_does_not_come_is_reset(tf):
    """--max-handshakes-per-server 1: the first sender's connection holds the
    turn, trying both addresses of the server's name for --connect-timeout
    each; the second waits in line, and at its --connect-timeout it is reset
    (reason=wait_timeout), not left waiting for the first's second try."""
    aggs = SimpleNamespace(port=free_port())
    for ip in ("127.0.0.81", "127.0.0.82"):
        tf.closing(Blackhole(ip, aggs.port))
    hosts = tf.file("hosts", "127.0.0.81 agg.test\n127.0.0.82 agg.test\n")
    client = named_client(tf, hosts, aggs, workers=1, max_handshakes_per_server=1,
                          connect_timeout=2)
    first = {}
    t = threading.Thread(target=lambda: first.update(r=outcome(client.address, b"first")))
    t.start()
    time.sleep(0.3)                     # the first holds the turn
    start = time.monotonic()
    kind, detail = outcome(client.address, b"second")
    waited = time.monotonic() - start
    assert kind == "reset", (kind, detail)
    client.wait_warning(reason="wait_timeout")
    t.join(wait_time(30))
    assert first["r"][0] == "reset", first
    tries = client.warnings(msg="upstream attempt failed, trying the next")
    assert len(tries) == 1, tries       # the first tried the second address meanwhile
    print(f"\nthe second sender was reset after {waited:.2f} s in line")


def test_a_sender_in_line_for_a_dead_server_goes_to_another(tf):
    """Servers A (never answers) and B, weights 1:1, turns of 1: the first
    sender goes to A and holds its turn, the second to B, the third waits for
    A.  When the first's --connect-timeout marks A down, the third chooses
    again and goes to B: it is delivered about one --connect-timeout after it
    came, not two (a connect to A of its own)."""
    dead = tf.closing(Blackhole("127.0.0.1", free_port()))
    sink = tf.closing(CountingSink())
    live = tf.server(sink)
    client = tf.client([f"127.0.0.1:{dead.sock.getsockname()[1]}", live], workers=1,
                       max_handshakes_per_server=1, connect_timeout=3)
    results = {}

    def send(i):
        start = time.monotonic()
        results[i] = outcome(client.address, b"x"), time.monotonic() - start

    threads = []
    for i in range(3):
        threads.append(threading.Thread(target=send, args=(i,)))
        threads[-1].start()
        time.sleep(0.2)                 # in this order: A, B, A
    for t in threads:
        t.join(wait_time(30))
    assert all(r[0][0] == "clean" for r in results.values()), results
    wait_count([sink], 3, "all three delivered by B")
    took = results[2][1]
    print(f"\nthe third sender, in line for the dead server, was delivered after {took:.2f} s")
    assert took < 5, results
    tries = client.warnings(msg="upstream attempt failed, trying the next")
    assert len(tries) == 1, tries       # only the first went to A
