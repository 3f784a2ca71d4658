"""Faults a production network produces, from the sender's point of view.

Every test runs on a fresh rig (conftest.py): sender and tlsfwd-client in one
network namespace, tlsfwd-server and the forward sink (fwdsink.py, standing in
for Fluentd) in another, a veth pair between them.  Two kinds of sender:

- AckSender (require_ack_response): resends a chunk until it is acked.  With
  acks nothing may be lost, whatever the fault: assert_all_delivered.
- PlainSender (no acks): a connection counts as delivered only when the read
  after its half-close ends with a clean EOF.  Without acks a loss must be
  visible to it (refused, reset, broken pipe): assert_no_silent_loss.

The sleeps here are the faults' durations (how long a cable stays cut, a
process stays stopped or dead), not waits for something to happen; those wait
for a count or a log line, bounded.
"""

import threading
import time

import pytest

from conftest import (SERVER_PORT, AckSender, PlainSender, SinkProc, assert_all_delivered,
                      assert_no_silent_loss, ns_daemon, wait_time)

KILL_CYCLES = 20          # kill/restart cycles with acks (issue 13: at least 20)
PLAIN_KILL_CYCLES = 6     # without acks: each cycle leaves its mark on several connections


# ---------------------------------------------------------------------------
# partitions

def test_partition_mid_stream_healed_plain(rig):
    """A connection that is streaming when the cable is cut, and keeps writing
    through the partition (into the kernel's buffers, then blocking): once
    healed, TCP retransmits, and the sender reads a clean EOF with every event
    delivered.  Nothing failed, so nothing may be reported as failed either."""
    sender = PlainSender(rig.net.c, rig.address, per_conn=3000, per_write=20, pace=0.005,
                         timeout=wait_time(60))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("conn", sender.one()), daemon=True)
    t.start()
    deadline = time.monotonic() + wait_time(15)
    while not sender.conns or sender.conns[0].last < 600:
        assert time.monotonic() < deadline and t.is_alive(), f"not streaming: {sender.summary()}"
        time.sleep(0.01)
    rig.net.partition()
    before = sender.conns[0].last
    time.sleep(3)                          # the partition
    during = sender.conns[0].last - before
    rig.net.heal()
    t.join(wait_time(60))
    assert not t.is_alive(), f"the connection did not finish after the heal: {sender.summary()}"
    conn = result["conn"]
    assert conn.outcome == "ok", f"sender saw {conn.outcome} although nothing was lost"
    assert_no_silent_loss(rig.sink, sender)
    got = set(rig.sink.seqs(sender.tag))
    assert all(s in got for s in conn.seqs())
    print(f"partition 3 s mid-stream: {during} events written during it, "
          f"{conn.last - conn.first} in all, outcome {conn.outcome}")


@pytest.mark.parametrize("seconds,ack_timeout", [(2.5, 15), (6, 3)], ids=["short", "long"])
def test_partition_healed_acks(rig, seconds, ack_timeout):
    """With acks, a partition is a delay: short (under the ack timeout) it
    costs no retry at all; long (the ack timeout and the client's connect
    timeout expire, new connections fail) the sender retries, and once healed
    every event is delivered."""
    sender = AckSender(rig.net.c, rig.address, ack_timeout=ack_timeout).start()
    sender.wait_acked(1000)
    rig.net.partition()
    time.sleep(seconds)                    # the partition
    rig.net.heal()
    sender.wait_acked(sender.acked + 1000, timeout=wait_time(60))
    sender.stop()
    assert_all_delivered(rig.sink, sender)
    if seconds * 2 < ack_timeout:
        assert sender.retries == 0, f"a short partition cost retries: {sender.summary()}"
    else:
        assert sender.retries > 0, f"the long partition went unnoticed: {sender.summary()}"
    print(f"partition {seconds} s: {sender.summary()}")


def test_partition_new_connections_fail_visibly(rig):
    """While the client cannot reach the server (connect timeout 3 s, the
    partition lasts 8 s), a sender without acks that starts during the
    partition keeps opening connections: each either fails where it can see it
    (connect refused, reset) or, held until the heal, delivers everything;
    none ends with a clean EOF after its events went nowhere.  The connection
    that was streaming when the cable was cut just waits.  Once healed,
    connections succeed again."""
    old = PlainSender(rig.net.c, rig.address, per_conn=100, per_write=20, pace=0.002).start()
    old.wait_conns(3)
    rig.net.partition()
    new = PlainSender(rig.net.c, rig.address, tag="fresh", per_conn=100, per_write=20,
                      pace=0.002).start()
    time.sleep(8)                          # the partition
    rig.net.heal()
    old.wait_conns(3, timeout=wait_time(60))
    new.wait_conns(3, timeout=wait_time(60))
    old.stop()
    new.stop()
    print(f"partition 8 s: streaming sender {old.summary()}; "
          f"sender started during it {new.summary()}")
    assert_no_silent_loss(rig.sink, old)
    assert_no_silent_loss(rig.sink, new)


class Sinks:
    """Several sinks read as one (the events may be in any of them)."""

    def __init__(self, *sinks):
        self.sinks = sinks

    def seqs(self, tag):
        return [q for sink in self.sinks for q in sink.seqs(tag)]


def test_partitioned_server_costs_one_connect_timeout(rig):
    """Two servers (issue 12 §1): the rig's across the veth and a second one on
    C's own loopback, with its own sink.  When the cable is cut, the one
    connection that meets the far server waits a connect timeout (1 s) and
    goes on to the near one; the far server is down from then on, so the
    next connections go straight to the near one, and nothing is lost or
    refused.  Once healed, a probe brings it back within --health-interval."""
    tf = rig.tf
    near = SinkProc(tf, rig.net.c, port=24226, name="near-sink").start()
    ns_daemon(tf, rig.net.c, "tlsfwd-server", "server-near", listen="127.0.0.1:24285",
              upstream=near.address, ca=tf.pki.ca.cert, cert=tf.pki.server.cert,
              key=tf.pki.server.key, workers=1, log_level="info")
    client = ns_daemon(tf, rig.net.c, "tlsfwd-client", "client-2", listen="127.0.0.1:24225",
                       server=[f"{rig.net.s_addr}:{SERVER_PORT}", "127.0.0.1:24285"],
                       server_name="localhost", ca=tf.pki.ca.cert, cert=tf.pki.client.cert,
                       key=tf.pki.client.key, connect_timeout=1, health_interval=1, workers=1,
                       log_level="info")
    sender = PlainSender(rig.net.c, client.address, per_conn=20)
    for _ in range(10):
        assert sender.one(burst=True).outcome == "ok", sender.summary()
    far = Sinks(rig.sink).seqs(sender.tag)
    assert far and len(far) < 200, "before the cut, the two servers share the connections"
    rig.net.partition()
    took = []
    for _ in range(20):
        start = time.monotonic()
        c = sender.one(burst=True)
        took.append(time.monotonic() - start)
        assert c.outcome == "ok", sender.summary()
    print(f"cable cut: 20 connections, " + " ".join(f"{t * 1000:.0f}" for t in took) + " ms")
    assert sum(t > 0.5 for t in took) == 1, took
    assert max(took) < 2.0, took
    assert [r["upstream"] for r in client.records() if r.get("msg") == "upstream down"] == \
        [f"{rig.net.s_addr}:{SERVER_PORT}"]
    rig.net.heal()
    client.wait_for(lambda r: r.get("msg") == "upstream up", wait_time(5),
                    "the far server probed back within --health-interval 1")
    assert_no_silent_loss(Sinks(rig.sink, near), sender)


def test_keepalive_finds_a_silent_path(rig):
    """Issue 12 §4: an idle tunnel whose cable is cut is noticed by TCP
    keepalive (--tcp-keepalive 1: probes after 1 s, every 1 s, dead after 6
    unanswered), not left open until the next write: the client logs
    reason=path_timeout and resets its sender, who learns its connection is
    gone without writing."""
    tf = rig.tf
    client = ns_daemon(tf, rig.net.c, "tlsfwd-client", "client-ka", listen="127.0.0.1:24227",
                       server=f"{rig.net.s_addr}:{SERVER_PORT}", server_name="localhost",
                       ca=tf.pki.ca.cert, cert=tf.pki.client.cert, key=tf.pki.client.key,
                       tcp_keepalive=1, workers=1, log_level="info")
    app = rig.net.c.connect(client.address)
    app.sendall(b"\x93\xa3app\x00\x80")             # one Message event: [app, 0, {}]
    rig.server.wait_for(lambda r: r.get("msg") == "accepted", wait_time(10))
    time.sleep(0.5)                                     # idle
    rig.net.partition()
    cut = time.monotonic()
    app.settimeout(30)
    try:
        got = app.recv(1)
    except ConnectionResetError:
        got = None
    took = time.monotonic() - cut
    print(f"idle tunnel, cable cut: the sender was reset after {took:.1f} s")
    assert got is None, f"the sender read {got!r}, not a reset"
    assert took < 1 + 6 * 1 + 3, took
    line = client.wait_for(lambda r: r.get("reason") == "path_timeout", wait_time(5),
                           "a line with reason=path_timeout")
    assert line.get("side") == "upstream", line


# ---------------------------------------------------------------------------
# SIGKILL and restart

def _kill(rig, victim):
    if victim == "server":
        rig.kill_server()
    else:
        rig.sink.kill()


def _restart(rig, victim):
    if victim == "server":
        rig.restart_server()
    else:
        rig.sink.start()


@pytest.mark.parametrize("victim", ["server", "sink"])
def test_killed_and_restarted_acks(rig, victim):
    """tlsfwd-server, or the sink (Fluentd), SIGKILLed and restarted 20 times
    under a sender with acks: not one event lost (duplicates are allowed:
    a chunk whose ack died with the process is sent again)."""
    sender = AckSender(rig.net.c, rig.address, ack_timeout=5).start()
    for _ in range(KILL_CYCLES):
        sender.wait_acked(sender.acked + 200, timeout=wait_time(30))
        _kill(rig, victim)
        time.sleep(0.3)                    # down time
        _restart(rig, victim)
    sender.wait_acked(sender.acked + 200, timeout=wait_time(30))
    sender.stop()
    assert_all_delivered(rig.sink, sender)
    assert sender.retries >= KILL_CYCLES, f"kills missed the stream: {sender.summary()}"
    got = rig.sink.seqs(sender.tag)
    print(f"{KILL_CYCLES} {victim} kills: {sender.summary()}, "
          f"{len(got) - len(set(got))} duplicates")


@pytest.mark.parametrize("victim", ["server", "sink"])
def test_killed_and_restarted_plain(rig, victim):
    """The same without acks: the events in flight when the process dies, and
    those sent while it is down, are lost, and the sender must see every such
    loss (rule 1: an abortive end reaches the sender as a reset; rule 2: no
    server, no accepted connection), never a clean EOF.

    Each kill lands in the middle of a paced connection (PlainSender.inject),
    which writes on after it: a sink killed between reading a connection's
    last bytes and recording them closes with a clean FIN, a loss that no
    sender without acks can learn of, whatever the tunnel does.  Burst
    connections (everything in one write, then the half-close) run while the
    process is down and after it is back."""
    sender = PlainSender(rig.net.c, rig.address).start()
    for _ in range(PLAIN_KILL_CYCLES):
        sender.wait_conns(3, timeout=wait_time(30))
        sender.inject(lambda: _kill(rig, victim))
        time.sleep(0.3)                    # down time: the sender goes on writing
        _restart(rig, victim)
    sender.wait_conns(3, timeout=wait_time(30))
    sender.stop()
    print(f"{PLAIN_KILL_CYCLES} {victim} kills, no acks: {sender.summary()}")
    assert_no_silent_loss(rig.sink, sender)


@pytest.mark.parametrize("cause", ["server_killed", "partition"])
def test_unreachable_refuses_then_recovers(rig, cause):
    """Rule 2: while no server can be reached (tlsfwd-server killed and not
    yet restarted, or the cable cut), the client stops accepting, so a
    sender's connect is refused and its events stay in its own buffer; on the
    way there no connection ends with a clean EOF.  Once the server is back,
    connections are accepted and deliver again."""
    sender = PlainSender(rig.net.c, rig.address, per_conn=100, per_write=20, pace=0.002)
    assert sender.one().outcome == "ok"
    if cause == "server_killed":
        rig.kill_server()
    else:
        rig.net.partition()
    deadline = time.monotonic() + wait_time(20)
    while sender.one().outcome != "connect: ECONNREFUSED":
        assert time.monotonic() < deadline, \
            f"the client still accepts with no server reachable: {sender.summary()}"
        time.sleep(0.05)
    if cause == "server_killed":
        rig.restart_server()
    else:
        rig.net.heal()
    deadline = time.monotonic() + wait_time(30)
    while sender.one().outcome != "ok":
        assert time.monotonic() < deadline, \
            f"the client did not accept again once the server was back: {sender.summary()}"
        time.sleep(0.05)
    print(f"{cause}: {sender.summary()}")
    assert_no_silent_loss(rig.sink, sender)


# ---------------------------------------------------------------------------
# SIGSTOP / SIGCONT

@pytest.mark.parametrize("pause", [1, 5], ids=["short", "long"])
@pytest.mark.parametrize("victim", ["client", "server", "sink"])
def test_stopped_and_continued(rig, victim, pause):
    """A process frozen (SIGSTOP: a stalled VM, a debugger, swap) three times,
    under both senders at once.  Short (1 s, less than every timeout): the
    kernel keeps queueing and backlogging, the pause is only a delay; nothing
    is lost, no chunk needs a retry, no connection fails.  Long (5 s, more
    than the client's 3 s connect timeout and the 3 s ack timeout): whatever
    times out, the sender with acks loses nothing and the one without sees
    every loss."""
    acked = AckSender(rig.net.c, rig.address, ack_timeout=10 if pause == 1 else 3).start()
    plain = PlainSender(rig.net.c, rig.address, per_conn=100, per_write=20, pace=0.002).start()
    for _ in range(3):
        acked.wait_acked(acked.acked + 200)
        plain.wait_conns(2)
        rig.stop(victim)
        time.sleep(pause)                  # the pause
        rig.cont(victim)
    acked.wait_acked(acked.acked + 200)
    plain.wait_conns(2)
    acked.stop()
    plain.stop()
    print(f"{victim} stopped 3 x {pause} s: acks {acked.summary()}; no acks {plain.summary()}")
    assert_all_delivered(rig.sink, acked)
    assert_no_silent_loss(rig.sink, plain)
    if pause == 1:
        assert acked.retries == 0, f"a pause cost retries: {acked.summary()}"
        failed = [c.outcome for c in plain.conns if c.outcome != "ok"]
        assert not failed, f"a pause failed connections: {plain.summary()}"
