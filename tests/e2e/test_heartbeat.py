"""Fluentd out_forward's UDP heartbeats (heartbeat_type udp: one 0x00 byte to
the port it sends to, answered with 0x00 by in_forward) are answered by
tlsfwd-client on its listen address only while a server is up, so the
sender's failure detector sees the whole path.  And TCP keepalive on every
socket of the tunnel (--tcp-keepalive)."""

import re
import socket
import subprocess
import time

from conftest import free_port, split_addr, wait_time
from test_reach import FOUND, LOST, wait_msg
from test_silent import assert_told, outcome


def heartbeat(addr, timeout):
    """Send one 0x00 datagram to addr as out_forward does; the answer, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(b"\0", split_addr(addr))
        return s.recvfrom(16)[0]
    except (socket.timeout, ConnectionRefusedError):
        return None
    finally:
        s.close()


def test_answered_only_while_a_server_is_up(tf):
    sink = tf.fwd_sink()
    addr = f"127.0.0.1:{free_port()}"
    server = tf.server(sink, listen=addr)
    client = tf.client(server)
    assert heartbeat(client.address, wait_time(5)) == b"\0"
    # Anything but a heartbeat is not answered.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(b"hello", split_addr(client.address))
    try:
        assert s.recvfrom(16) is None, "answered a datagram that is no heartbeat"
    except socket.timeout:
        pass
    s.close()

    server.stop()
    assert_told(outcome(client.address))       # a sender finds the server gone
    wait_msg(client, LOST)
    assert heartbeat(client.address, 1.0) is None, "a heartbeat answered while no server is up"

    tf.server(sink, listen=addr)               # the server is back: so are the answers
    wait_msg(client, FOUND)
    assert heartbeat(client.address, wait_time(5)) == b"\0"


def test_no_heartbeat(tf):
    client = tf.client(tf.server(tf.tcp_sink()), no_heartbeat=True)
    assert heartbeat(client.address, 1.0) is None


def keepalive_timers(pid):
    """The keepalive timers (seconds left, None without one) of the TCP
    sockets of process pid, by local and remote address, from ss.  ss shows
    one timer a socket: while a segment waits for its ACK it shows that one,
    so this asks again until none does."""
    deadline = time.monotonic() + wait_time(5)
    while True:
        out = subprocess.run(["ss", "-tnpoH", "state", "established"], capture_output=True,
                             text=True, check=True).stdout
        lines = [line for line in out.splitlines() if f"pid={pid}," in line]
        if not any("timer:(" in line and "timer:(keepalive" not in line for line in lines):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    timers = {}
    for line in lines:
        fields = line.split()
        m = re.search(r"timer:\(keepalive,([0-9.]+)(min|sec|ms)", line)
        timers[(fields[2], fields[3])] = m and float(m.group(1)) * {"min": 60, "sec": 1, "ms": 0.001}[m.group(2)]
    return timers


def test_tcp_keepalive_on_every_tunnel_socket(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink, tcp_keepalive=30)
    client = tf.client(server, tcp_keepalive=45)
    app = tf.connect(client)
    app.sendall(b"x")
    far = sink.accept()
    assert far.recv(1) == b"x"
    for daemon, idle in ((client, 45), (server, 30)):
        timers = keepalive_timers(daemon.pid)
        assert len(timers) == 2, timers        # the accepted socket and the one it made
        assert all(t is not None and 0 < t <= idle for t in timers.values()), timers

    quiet = tf.client(server, tcp_keepalive=0)
    app2 = tf.connect(quiet)
    app2.sendall(b"y")
    far2 = sink.accept()
    assert far2.recv(1) == b"y"
    timers = keepalive_timers(quiet.pid)
    assert len(timers) == 2 and all(t is None for t in timers.values()), timers
