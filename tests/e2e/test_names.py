"""Names that move (issue 12 §2): the client resolves a server's name again
every --resolve-interval and soon after the server fails, uses every address
it resolves to, and keeps the last addresses of a name that stops resolving.
nss_wrapper serves the names from a file the test rewrites."""

import os
import subprocess
import time

from conftest import free_port, wait_time
from test_preload import FLUENTD, SHIM, client_conf, shim_env
from test_reach import FOUND, LOST, wait_msg
from test_servers import CountingSink, run_connections, wait_count


def move(hosts, text):
    """Rewrite the hosts file; nss_wrapper reloads it on a new st_mtime
    (whole seconds), so the file is dated ahead, each time further."""
    before = os.stat(hosts).st_mtime
    hosts.write_text(text)
    later = max(time.time() + 5, before + 2)
    os.utime(hosts, (later, later))


class Aggregators:
    """A tlsfwd-server with its own counting sink on each of the given
    loopback addresses, all on one port."""

    def __init__(self, tf, *ips):
        self.port = free_port()
        self.sinks, self.servers = {}, {}
        for ip in ips:
            self.sinks[ip] = tf.closing(CountingSink())
            host = f"[{ip}]" if ":" in ip else ip
            self.servers[ip] = tf.server(self.sinks[ip], listen=f"{host}:{self.port}")

    def counts(self):
        return {ip: s.count for ip, s in self.sinks.items()}


def named_client(tf, hosts, aggs, **opts):
    env = {"LD_PRELOAD": "libnss_wrapper.so", "NSS_WRAPPER_HOSTS": str(hosts),
           # an ASan build (make check) would rather be first in the list, and
           # cannot have libc loaded with RTLD_DEEPBIND
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
           "NSS_WRAPPER_DISABLE_DEEPBIND": "1"}
    return tf.client(f"agg.test:{aggs.port}", server_name="localhost", env=env, **opts)


def resolved(client, addresses):
    return lambda r: r.get("msg") == "resolved" and r.get("addresses") == addresses


def test_a_moved_name_is_followed_without_a_restart(tf):
    aggs = Aggregators(tf, "127.0.0.78", "127.0.0.79")
    hosts = tf.file("hosts", "127.0.0.78 agg.test\n")
    client = named_client(tf, hosts, aggs, resolve_interval=1)
    run_connections(client.address, 5, workers=1)
    wait_count(aggs.sinks.values(), 5, "before the move")
    assert aggs.counts() == {"127.0.0.78": 5, "127.0.0.79": 0}

    move(hosts, "127.0.0.79 agg.test\n")
    client.wait_for(resolved(client, f"127.0.0.79:{aggs.port}"), wait_time(5),
                    "the new address within --resolve-interval 1")
    results = run_connections(client.address, 5, workers=1)
    assert all(kind == "clean" for (kind, _), _ in results), results
    wait_count(aggs.sinks.values(), 10, "after the move")
    assert aggs.counts() == {"127.0.0.78": 5, "127.0.0.79": 5}

    # A name that stops resolving keeps its last addresses, with one warning.
    move(hosts, "127.0.0.80 other.test\n")
    client.wait_warning(msg="cannot resolve, keeping the last addresses", timeout=wait_time(5))
    time.sleep(2.5)                             # more rounds: still one line
    run_connections(client.address, 3, workers=1)
    wait_count(aggs.sinks.values(), 13, "with the last addresses")
    assert aggs.counts()["127.0.0.79"] == 8
    assert len(client.warnings(msg="cannot resolve, keeping the last addresses")) == 1


def test_every_address_of_a_name_is_used(tf):
    """An AAAA and an A record: new connections alternate between them."""
    aggs = Aggregators(tf, "::1", "127.0.0.79")
    hosts = tf.file("hosts", "::1 agg.test\n127.0.0.79 agg.test\n")
    client = named_client(tf, hosts, aggs)
    run_connections(client.address, 20, workers=1)
    wait_count(aggs.sinks.values(), 20, "over both addresses")
    assert aggs.counts() == {"::1": 10, "127.0.0.79": 10}
    # One address dead: the other serves every connection, none is lost.
    aggs.servers["::1"].stop()
    results = run_connections(client.address, 10, workers=1)
    assert all(kind == "clean" for (kind, _), _ in results), results
    wait_count(aggs.sinks.values(), 30, "over the one left")
    assert aggs.counts()["127.0.0.79"] == 20
    # Only the first of them tried the dead address: it is no first try for
    # --health-interval.
    tries = client.warnings(msg="upstream attempt failed, trying the next")
    assert len(tries) == 1, tries


def test_a_failed_server_is_resolved_again_at_once(tf):
    """--resolve-interval 60: only the failure makes the client look again."""
    aggs = Aggregators(tf, "127.0.0.78", "127.0.0.79")
    hosts = tf.file("hosts", "127.0.0.78 agg.test\n")
    client = named_client(tf, hosts, aggs)          # the default: every 60 s
    run_connections(client.address, 2, workers=1)
    move(hosts, "127.0.0.79 agg.test\n")
    aggs.servers["127.0.0.78"].stop()
    run_connections(client.address, 1, workers=1)    # reset: the old address is gone
    wait_msg(client, LOST)
    wait_msg(client, FOUND)
    results = run_connections(client.address, 3, workers=1)
    assert all(kind == "clean" for (kind, _), _ in results), results
    wait_count(aggs.sinks.values(), 5, "at the new address")
    assert aggs.counts() == {"127.0.0.78": 2, "127.0.0.79": 3}


INLINE_SENDER = """
import socket, sys
def once():
    try:
        s = socket.create_connection(("127.0.0.77", 24224), timeout=10)
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        while s.recv(100):
            pass
        s.close()
        return "clean"
    except OSError as e:
        return type(e).__name__
for line in sys.stdin:
    print(once(), flush=True)
"""


def test_the_inline_core_follows_a_moved_name(tf):
    """The preload shim's inline core (the client inside the program) follows
    the same rules: the name moves while the program runs, and its next
    connections go to the new address."""
    aggs = Aggregators(tf, "127.0.0.78", "127.0.0.79")
    hosts = tf.file("hosts", "127.0.0.78 agg.test\n")
    conf = client_conf(tf, f"agg.test:{aggs.port}", server_name="localhost",
                       resolve_interval=1)
    env = shim_env(FLUENTD, TLSFWD_CONFIG=conf, NSS_WRAPPER_HOSTS=str(hosts))
    env["LD_PRELOAD"] = f"libnss_wrapper.so:{SHIM}"
    p = tf.popen(["/usr/bin/python3", "-c", INLINE_SENDER], env=env, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def once():
        p.stdin.write("go\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    assert once() == "clean"
    wait_count(aggs.sinks.values(), 1, "before the move")
    assert aggs.counts() == {"127.0.0.78": 1, "127.0.0.79": 0}
    move(hosts, "127.0.0.79 agg.test\n")
    deadline = time.monotonic() + wait_time(5)
    sent = 1
    while aggs.counts()["127.0.0.79"] == 0:
        assert time.monotonic() < deadline, f"still at the old address: {aggs.counts()}"
        assert once() == "clean"
        sent += 1
        wait_count(aggs.sinks.values(), sent, "each connection delivered")
    p.stdin.close()
    assert p.wait(wait_time(30)) == 0, p.stderr.read()
