"""Several servers (issue 12 §1): new connections spread by weight over the
servers that are up (smooth weighted round robin), standby servers only while
no primary is up, a failed server marked down at once and probed back within
--health-interval; every change one log line."""

import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from signal import SIGKILL

from conftest import VALGRIND, free_port, wait_time
from test_reach import FOUND, LOST, wait_msg
from test_silent import assert_told, outcome

SHORT = 400 if VALGRIND else 10000     # short connections for the weights
SLOW_FACTOR = 10.0 if VALGRIND else 1.0


class CountingSink:
    """A TCP listener standing in for Fluentd that accepts every connection on
    its own thread, reads it to its end and closes it cleanly: counts the
    connections that brought bytes and ended so (not the client's probes,
    which bring none), and the bytes."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.address = "%s:%d" % self.lsock.getsockname()
        self.count = self.bytes = 0
        self._stop = False
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.lsock, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            for key, _ in self._sel.select(0.1):
                s = key.fileobj
                if s is self.lsock:
                    try:
                        conn, _ = s.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self._sel.register(conn, selectors.EVENT_READ, [0])
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = None
                if data:
                    self.bytes += len(data)
                    key.data[0] += len(data)
                    continue
                self._sel.unregister(s)
                if data == b"" and key.data[0] > 0:
                    self.count += 1
                s.close()

    def close(self):
        self._stop = True
        self._thread.join()
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()


def short_connection(addr):
    """One sender's connection: a byte, half-close, read to the end.  Its
    outcome (see test_silent.outcome) and how long it took."""
    start = time.monotonic()
    return outcome(addr, b"x"), time.monotonic() - start


def run_connections(addr, n, workers=8):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: short_connection(addr), range(n)))


def wait_count(sinks, n, what):
    deadline = time.monotonic() + wait_time(15)
    while sum(s.count for s in sinks) < n:
        assert time.monotonic() < deadline, \
            f"{what}: {[s.count for s in sinks]} connections ended cleanly, expected {n}"
        time.sleep(0.05)


def aggregator(tf, listen=None):
    sink = tf.closing(CountingSink())
    server = tf.server(sink, listen=listen or f"127.0.0.1:{free_port()}")
    return sink, server


def lines(daemon, msg):
    return [r for r in daemon.records() if r.get("msg") == msg]


def test_weights_spread_new_connections(tf):
    (a, sa), (b, sb) = aggregator(tf), aggregator(tf)
    client = tf.client([f"{sa.address},weight=60", f"{sb.address},weight=40"])
    results = run_connections(client.address, SHORT)
    assert all(kind == "clean" for (kind, _), _ in results), \
        {kind for (kind, _), _ in results}
    wait_count((a, b), SHORT, "every connection delivered")
    share = a.count / SHORT
    print(f"\n{SHORT} connections over weights 60/40: {a.count}/{b.count}")
    assert abs(share - 0.6) <= 0.02, (a.count, b.count)
    assert a.bytes + b.bytes == SHORT
    assert not lines(client, "upstream down")


def test_standby_takes_over_and_gives_back(tf):
    (p, sp), (s, ss) = aggregator(tf), aggregator(tf)
    client = tf.client([sp.address, f"{ss.address},standby"], health_interval=1)
    run_connections(client.address, 20, workers=4)
    wait_count((p, s), 20, "before")
    assert (p.count, s.count) == (20, 0), "a standby took connections while the primary was up"

    sp.stop(SIGKILL)
    results = run_connections(client.address, 20, workers=1)
    assert [kind for (kind, _), _ in results] == ["clean"] * 20
    wait_count((s,), 20, "the standby took over")
    assert p.count == 20
    down = lines(client, "upstream down")
    assert len(down) == 1 and down[0]["upstream"] == sp.address, down
    assert not client.warnings(msg=LOST), "the listener was shut while the standby was up"

    time.sleep(2)                   # its probes' back-off reaches --health-interval
    back = time.monotonic()
    tf.server(p, listen=sp.address)
    client.wait_for(lambda r: r.get("msg") == "upstream up" and r.get("upstream") == sp.address,
                    wait_time(1) + 1.5, "the primary probed back within --health-interval 1")
    print(f"\nprimary back in service {time.monotonic() - back:.2f} s after its restart")
    run_connections(client.address, 10, workers=1)
    wait_count((p,), 30, "given back to the primary")
    assert s.count == 20
    assert len(lines(client, "upstream up")) == 1


def test_killed_server_costs_no_connection_more_than_a_connect_timeout(tf):
    (a, sa), (b, sb) = aggregator(tf), aggregator(tf)
    client = tf.client([sa.address, sb.address], connect_timeout=2)
    n = 100 if VALGRIND else 1000
    results = []
    runner = threading.Thread(target=lambda: results.extend(run_connections(client.address, n,
                                                                              workers=4)))
    runner.start()
    deadline = time.monotonic() + wait_time(15)
    while a.count + b.count < n // 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sa.stop(SIGKILL)                # mid-run
    runner.join()
    kinds = [kind for (kind, _), _ in results]
    # A connection that was inside the killed server is reset (its sender is
    # told); every other one is delivered, and none waits for long.
    assert set(kinds) <= {"clean", "reset"}, set(kinds)
    assert kinds.count("reset") <= 4 * 2, kinds.count("reset")
    slowest = max(took for _, took in results)
    print(f"\n{n} connections, a server killed mid-run: {kinds.count('reset')} reset, "
          f"slowest {slowest * 1000:.0f} ms")
    assert slowest < 2 * SLOW_FACTOR
    wait_count((a, b), kinds.count("clean"), "every clean end delivered")
    assert len(lines(client, "upstream down")) == 1


def test_all_down_shuts_the_listener_one_back_opens_it(tf):
    (a, sa), (b, sb) = aggregator(tf), aggregator(tf)
    client = tf.client([sa.address, f"{sb.address},weight=3"], health_interval=1)
    sa.stop(SIGKILL)
    sb.stop(SIGKILL)
    assert_told(outcome(client.address))
    wait_msg(client, LOST)
    assert outcome(client.address)[0] == "refused"
    tf.server(b, listen=sb.address)
    wait_msg(client, FOUND)
    assert outcome(client.address, b"y")[0] == "clean"
    wait_count((b,), 1, "delivered to the one that came back")


def test_bad_server_attributes_are_config_errors(tf):
    for value, why in ((f"127.0.0.1:{free_port()},weight=0", "weight must be 1 to 1000"),
                       (f"127.0.0.1:{free_port()},backup", 'unknown attribute "backup"'),
                       ("nohost,standby", "")):
        r = tf.run("tlsfwd-client", "--server", value, "--ca", tf.pki.ca.cert,
                   "--cert", tf.pki.client.cert, "--key", tf.pki.client.key, "--check")
        assert r.returncode != 0, (value, r.stdout)
        assert "--server" in r.stderr and why in r.stderr, (value, r.stderr)
