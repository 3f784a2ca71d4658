"""libtlsfwd-preload.so, redirect mode (issue #6): unmodified programs whose
Fluentd address is intercepted reach it through tlsfwd-client -> tlsfwd-server.

Loopback only.  The intercepted address is 127.0.0.77:24224, where nothing
listens, so a connection the shim failed to redirect shows up as a refused
connection and never as traffic leaving the machine; the misconfiguration
tests put a listener there and assert it saw nothing.
"""

import json
import os
import socket
import subprocess

import pytest

from conftest import BUILD, Tunnel, wait_time

SHIM = BUILD / "libtlsfwd-preload.so"
PROBES = BUILD / "probe"
FLUENTD = "127.0.0.77:24224"          # the address the applications are configured with


def shim_env(intercept=FLUENTD, client=None, **extra):
    env = dict(os.environ, LD_PRELOAD=str(SHIM),
               # the probes of `make check` are ASan builds; the shim is not, and
               # is preloaded before the ASan runtime
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1", **extra)
    env.pop("TLSFWD_INTERCEPT", None)
    env.pop("TLSFWD_CLIENT", None)
    if intercept is not None:
        env["TLSFWD_INTERCEPT"] = intercept
    if client is not None:
        env["TLSFWD_CLIENT"] = getattr(client, "address", client)
    return env


def probe(tf, name, *args, env):
    path = PROBES / name
    if not path.exists():
        pytest.fail(f"{path} is missing (make {path})", pytrace=False)
    return tf.popen([path, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)


def finish(proc):
    out, err = proc.communicate(timeout=wait_time(30))
    return proc.returncode, out, err


def shim_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("tlsfwd-preload:")]


def serve_one(sink, reply_prefix=b"reply:"):
    """Accept one connection on a TcpSink, read a message, answer, close."""
    conn = sink.accept()
    data = conn.recv(4096)
    conn.sendall(reply_prefix + data)
    conn.close()
    return data


@pytest.fixture
def fwd_tunnel(tf):
    return Tunnel(tf, sink=tf.fwd_sink())


# ---------------------------------------------------------------------------
# real forward-protocol senders, unmodified

def test_python_fluent_logger_redirected(fwd_tunnel):
    count = 100
    script = (
        "import sys\n"
        "from fluent import sender\n"
        "s = sender.FluentSender('py', host='127.0.0.77', port=24224, timeout=10)\n"
        f"for i in range({count}):\n"
        "    if not s.emit('event', {'seq': i}):\n"
        "        sys.exit(f'emit {i}: {s.last_error!r}')\n"
        "s.close()\n")
    r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                       env=shim_env(client=fwd_tunnel.client), timeout=wait_time(60))
    assert r.returncode == 0, r.stderr
    assert not shim_lines(r.stderr)
    events = fwd_tunnel.sink.wait_events(count, timeout=wait_time(20))
    assert [e.tag for e in events] == ["py.event"] * count
    assert [e.record["seq"] for e in events] == list(range(count))


def test_node_fluent_logger_redirected_with_acks(fwd_tunnel, node_sender):
    count = 300
    r = subprocess.run(["node", str(node_sender), "--host", "127.0.0.77", "--port", "24224",
                        "--count", str(count), "--tag", "node",
                        "--timeout-ms", str(int(wait_time(20) * 1000))],
                       capture_output=True, text=True, env=shim_env(client=fwd_tunnel.client),
                       timeout=wait_time(60))
    summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    assert r.returncode == 0 and summary.get("acked") == count, \
        f"node sender: rc={r.returncode} {summary}\n{r.stderr[-2000:]}"
    events = fwd_tunnel.sink.wait_events(count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == list(range(count))
    assert fwd_tunnel.sink.acks_sent == count


# ---------------------------------------------------------------------------
# C probes

def test_blocking_connect_redirected(tf, tunnel):
    p = probe(tf, "blocking", FLUENTD, "hello", env=shim_env(client=tunnel.client))
    assert serve_one(tunnel.sink) == b"hello"
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"{FLUENTD} reply=reply:hello\n"), err


def test_nonblocking_connect_with_epoll(tf, tunnel):
    p = probe(tf, "nonblock_epoll", FLUENTD, "async", env=shim_env(client=tunnel.client))
    assert serve_one(tunnel.sink) == b"async"
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert out.splitlines()[-2:] == ["SO_ERROR=0", "reply=reply:async"]
    assert out.splitlines()[0] in ("connect: EINPROGRESS", "connect: immediate")


def test_forked_workers_each_log(tf, tunnel):
    workers = 4
    p = probe(tf, "forking", FLUENTD, str(workers), env=shim_env(client=tunnel.client))
    got = sorted(serve_one(tunnel.sink) for _ in range(workers))
    assert got == sorted(f"worker {i}\n".encode() for i in range(workers))
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert sorted(line for line in out.splitlines() if line) == \
        sorted(f"worker {i} reply=reply:worker {i}" for i in range(workers))


def test_other_addresses_untouched(tf, tunnel):
    direct = tf.tcp_sink()
    p = probe(tf, "blocking", direct.address, "straight", env=shim_env(client=tunnel.client))
    assert serve_one(direct) == b"straight"
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"{direct.address} reply=reply:straight\n"), err
    assert not tunnel.sink.pending(0.3), "a non-intercepted connection went through the tunnel"


def test_udp_to_intercepted_address_untouched(tf, tunnel):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tf.track(udp)
    udp.bind(("127.0.0.77", 0))
    udp.settimeout(wait_time(10))
    port = udp.getsockname()[1]
    script = ("import socket\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"s.connect(('127.0.0.77', {port}))\n"
              "s.send(b'datagram')\n")
    r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                       env=shim_env(intercept=f"127.0.0.77:{port}", client=tunnel.client),
                       timeout=wait_time(30))
    assert r.returncode == 0, r.stderr
    assert udp.recv(100) == b"datagram"


def test_getpeername_reports_the_intercepted_address(tf, tunnel):
    p = probe(tf, "getpeer", FLUENTD, env=shim_env(client=tunnel.client))
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"peer {FLUENTD}\ndup {FLUENTD}\n"), err
    tunnel.sink.accept()      # it really went through the tunnel


def test_openssl_program_keeps_working(tf, tunnel, pki):
    echo = tf.tls_server(pki.server)
    addr = f"127.0.0.1:{echo.port}"
    p = probe(tf, "openssl_client", addr, pki.ca.cert, pki.client.cert, pki.client.key,
              "over-openssl", env=shim_env(client=tunnel.client))
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert out.splitlines()[-1] == "echo=over-openssl"
    assert not echo.errors


# ---------------------------------------------------------------------------
# misconfiguration: one stderr line, intercepted connects refused, nothing leaks

@pytest.mark.parametrize("case", ["bad-entry", "bad-port", "no-client", "bad-client",
                                  "inline-asked"])
def test_misconfigured_shim_refuses_and_says_so(tf, case):
    guarded = tf.tcp_sink("127.0.0.77")      # the address the user wants protected
    stand_in = tf.tcp_sink()                 # what TLSFWD_CLIENT would point at
    direct = tf.tcp_sink()
    port = guarded.address.rpartition(":")[2]
    intercept, client, want = {
        "bad-entry": (f"{guarded.address},[::1:{port}", stand_in, "missing ']'"),
        "bad-port": (f"127.0.0.77:{port}x", stand_in, "port must be a number"),
        "no-client": (guarded.address, None, "TLSFWD_CLIENT is not"),
        "bad-client": (guarded.address, "127.0.0.1", "TLSFWD_CLIENT"),
        "inline-asked": (guarded.address, None, "inline mode"),
    }[case]
    extra = {"TLSFWD_CONFIG": "/etc/tlsfwd/client.conf"} if case == "inline-asked" else {}
    p = probe(tf, "blocking", guarded.address, "secret", direct.address, "fine",
              env=shim_env(intercept=intercept, client=client, **extra))
    assert serve_one(direct) == b"fine"
    rc, out, err = finish(p)
    assert rc == 1
    assert out.splitlines() == [f"{guarded.address} connect: errno=111 (Connection refused)",
                                f"{direct.address} reply=reply:fine"], err
    lines = shim_lines(err)
    assert len(lines) == 1 and want in lines[0] and "refused" in lines[0], err
    assert len(err.splitlines()) == 1, err
    assert not guarded.pending(0.3), "plaintext reached the intercepted address"
    assert not stand_in.pending(0.1), "a misconfigured shim redirected anyway"


def test_unset_intercept_is_inert(tf):
    direct = tf.tcp_sink()
    p = probe(tf, "blocking", direct.address, "plain", env=shim_env(intercept=None))
    assert serve_one(direct) == b"plain"
    rc, out, err = finish(p)
    assert (rc, out, err) == (0, f"{direct.address} reply=reply:plain\n", "")


def test_exported_symbols_are_only_the_hooks():
    r = subprocess.run(["nm", "-D", "--defined-only", str(SHIM)], capture_output=True,
                       text=True, check=True)
    names = {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}
    assert names == {"connect", "getpeername", "close", "dup", "dup2", "dup3"}
    r = subprocess.run(["nm", "-D", "--undefined-only", str(SHIM)], capture_output=True,
                       text=True, check=True)
    assert "wolfSSL" not in r.stdout and "ev_" not in r.stdout
