"""libtlsfwd-preload.so (issue #6): unmodified programs whose Fluentd address is
intercepted reach it over mTLS, in both modes:

- redirect: app -> tlsfwd-client (a running daemon) -> tlsfwd-server -> sink;
- inline:   app -> the client core inside the app (TLSFWD_CONFIG) -> tlsfwd-server -> sink.

Loopback only.  The intercepted address is 127.0.0.77:24224, where nothing
listens, so a connection the shim failed to redirect shows up as a refused
connection and never as traffic leaving the machine; the misconfiguration
tests put a listener there and assert it saw nothing.
"""

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BUILD, VALGRIND, parse_log_line, wait_time

SHIM = BUILD / "libtlsfwd-preload.so"
PROBES = BUILD / "probe"
FLUENTD = "127.0.0.77:24224"          # the address the applications are configured with
MODES = ["redirect", "inline"]
HOOK_STACK = 2048      # bytes of a caller's stack an intercepted connect may use (about 1.4 KiB)
HOOK_STACK_ASAN = 8192  # the same with an ASan probe, whose interceptors run there too


def shim_env(intercept=FLUENTD, **extra):
    env = dict(os.environ, LD_PRELOAD=str(SHIM),
               # the probes of `make check` are ASan builds; the shim is not, and
               # is preloaded before the ASan runtime
               ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1")
    for k in ("TLSFWD_INTERCEPT", "TLSFWD_CLIENT", "TLSFWD_CONFIG"):
        env.pop(k, None)
    if intercept is not None:
        env["TLSFWD_INTERCEPT"] = intercept
    env.update({k: str(getattr(v, "address", v)) for k, v in extra.items() if v is not None})
    return env


def client_conf(tf, server, name="client.conf", **opts):
    """A tlsfwd-client configuration file (what TLSFWD_CONFIG names)."""
    base = dict(server=getattr(server, "address", server), ca=tf.pki.ca.cert,
                cert=tf.pki.client.cert, key=tf.pki.client.key)
    lines = [f"{k.replace('_', '-')} = {v}" for k, v in {**base, **opts}.items() if v is not None]
    return tf.file(name, "\n".join(lines) + "\n")


class Route:
    """Where the shim sends intercepted connections: a running tlsfwd-client
    (redirect) or the client core inside the program (inline); then
    tlsfwd-server, then `sink`."""

    def __init__(self, tf, mode, sink, **conf):
        self.mode = mode
        self.sink = sink
        self.server = tf.server(sink)
        if mode == "redirect":
            self.client = tf.client(self.server)
            self.shim = {"TLSFWD_CLIENT": self.client.address}
        else:
            self.conf = client_conf(tf, self.server, **{"log_level": "warn", **conf})
            self.shim = {"TLSFWD_CONFIG": self.conf}

    def env(self, intercept=FLUENTD, **extra):
        return shim_env(intercept, **self.shim, **extra)


def probe(tf, name, *args, env, valgrind=True):
    """Start a C probe under the shim; with TLSFWD_VALGRIND=1 under valgrind too
    (the shim and, in inline mode, the whole client core inside it): a memory
    error or a definite leak makes the probe (or a forked child) exit 99.
    valgrind=False where the test counts stderr lines: valgrind's launcher is
    a process image of its own that loads the shim from the environment."""
    path = PROBES / name
    if not path.exists():
        pytest.fail(f"{path} is missing (make {path})", pytrace=False)
    cmd = [path, *args]
    if VALGRIND and valgrind:
        env = dict(env)
        cmd = ["valgrind", "-q", "--trace-children=yes", "--error-exitcode=99",
               "--leak-check=full", "--errors-for-leak-kinds=definite",
               f"--log-file={tf.tmp}/{name}.valgrind.%p",
               "/usr/bin/env", f"LD_PRELOAD={env.pop('LD_PRELOAD')}", *cmd]
    return tf.popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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


@pytest.fixture(params=MODES)
def route(request, tf):
    return Route(tf, request.param, tf.tcp_sink())


@pytest.fixture(params=MODES)
def fwd_route(request, tf):
    return Route(tf, request.param, tf.fwd_sink())


# ---------------------------------------------------------------------------
# real forward-protocol senders, unmodified

def test_python_fluent_logger(fwd_route):
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
                       env=fwd_route.env(), timeout=wait_time(60))
    assert r.returncode == 0, r.stderr
    assert not shim_lines(r.stderr)
    events = fwd_route.sink.wait_events(count, timeout=wait_time(20))
    assert [e.tag for e in events] == ["py.event"] * count
    assert [e.record["seq"] for e in events] == list(range(count))


def test_node_fluent_logger_with_acks(fwd_route, node_sender):
    count = 300
    r = subprocess.run(["node", str(node_sender), "--host", "127.0.0.77", "--port", "24224",
                        "--count", str(count), "--tag", "node",
                        "--timeout-ms", str(int(wait_time(20) * 1000))],
                       capture_output=True, text=True, env=fwd_route.env(),
                       timeout=wait_time(60))
    summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    assert r.returncode == 0 and summary.get("acked") == count, \
        f"node sender: rc={r.returncode} {summary}\n{r.stderr[-2000:]}"
    events = fwd_route.sink.wait_events(count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == list(range(count))
    assert fwd_route.sink.acks_sent == count


# ---------------------------------------------------------------------------
# C probes

def test_blocking_connect(tf, route):
    p = probe(tf, "blocking", FLUENTD, "hello", env=route.env())
    assert serve_one(route.sink) == b"hello"
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"{FLUENTD} reply=reply:hello\n"), err


def test_nonblocking_connect_with_epoll(tf, route):
    p = probe(tf, "nonblock_epoll", FLUENTD, "async", env=route.env())
    assert serve_one(route.sink) == b"async"
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert out.splitlines()[-2:] == ["SO_ERROR=0", "reply=reply:async"]
    assert out.splitlines()[0] in ("connect: EINPROGRESS", "connect: immediate")


def test_forked_workers_each_log(tf, route):
    workers = 4
    p = probe(tf, "forking", FLUENTD, str(workers), env=route.env())
    got = sorted(serve_one(route.sink) for _ in range(workers))
    assert got == sorted(f"worker {i}\n".encode() for i in range(workers))
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert sorted(line for line in out.splitlines() if line) == \
        sorted(f"worker {i} reply=reply:worker {i}" for i in range(workers))


def test_other_addresses_untouched(tf, route):
    direct = tf.tcp_sink()
    p = probe(tf, "blocking", direct.address, "straight", env=route.env())
    assert serve_one(direct) == b"straight"
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"{direct.address} reply=reply:straight\n"), err
    assert not route.sink.pending(0.3), "a non-intercepted connection went through the tunnel"


def test_udp_to_intercepted_address_untouched(tf, route):
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
                       env=route.env(f"127.0.0.77:{port}"),
                       timeout=wait_time(30))
    assert r.returncode == 0, r.stderr
    assert udp.recv(100) == b"datagram"


def test_getpeername_reports_the_intercepted_address(tf, route):
    p = probe(tf, "getpeer", FLUENTD, env=route.env())
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"peer {FLUENTD}\ndup {FLUENTD}\n"), err
    route.sink.accept()      # it really went through the tunnel


def test_openssl_program_keeps_working(tf, route, pki):
    """OpenSSL in the program, wolfSSL in the shim (inline: both at once)."""
    echo = tf.tls_server(pki.server)
    addr = f"127.0.0.1:{echo.port}"
    p = probe(tf, "openssl_client", addr, pki.ca.cert, pki.client.cert, pki.client.key,
              "over-openssl", FLUENTD, "alongside", env=route.env())
    assert serve_one(route.sink) == b"alongside"
    rc, out, err = finish(p)
    assert rc == 0, out + err
    assert out.splitlines()[-2:] == ["echo=over-openssl", "plain reply=reply:alongside"]
    assert not echo.errors


def test_connect_from_a_small_stack(tf, fwd_route):
    """Fluent Bit's outputs connect from coroutines with 24 KiB stacks: a
    thread with a 16 KiB stack (and a guard page below it) makes the
    program's first intercepted connect, which in inline mode starts the
    client core (loading the key alone takes about 34 KiB).  The core must
    not run on that stack: the program must not crash, its events must
    arrive, and the hooks use at most HOOK_STACK bytes of it."""
    count = 100
    # as programs run: their own first calls bind lazily (about 3.5 KiB here)
    p = probe(tf, "smallstack", FLUENTD, str(count), "16384", env=fwd_route.env())
    rc, out, err = finish(p)
    assert rc == 0, f"rc={rc} (-11 is SIGSEGV: the stack overflowed)\n{out}{err}"
    assert out.splitlines()[0] == f"sent {count}", out + err
    assert not shim_lines(err), err
    # every symbol bound at load: what is left is the probe's frames and the hooks'
    p = probe(tf, "smallstack", FLUENTD, str(count), "16384",
              env=dict(fwd_route.env(), LD_BIND_NOW="1"))
    rc, out, err = finish(p)
    assert rc == 0, f"rc={rc}\n{out}{err}"
    used, *asan = out.splitlines()[-1].removeprefix("stack used ").split()
    limit = HOOK_STACK_ASAN if asan else HOOK_STACK
    assert int(used) <= limit, f"{used} bytes of the caller's stack used"
    events = fwd_route.sink.wait_events(2 * count, timeout=wait_time(20))
    assert {e.tag for e in events} == {"smallstack"}
    assert sorted(e.record["seq"] for e in events) == sorted(2 * list(range(count)))


def test_re_resolution_runs_off_the_callers_stack(tf):
    """A connect on the port of a host name entry, to an address the name
    does not have, first resolves the name again (the program may just have
    resolved it to a new address): getaddrinfo() and the NSS modules run on a
    thread of the shim, not on the caller's 16 KiB stack (a lookup that went
    to DNS overflowed it before).  localhost is in /etc/hosts: no DNS traffic."""
    sink = tf.fwd_sink(host="127.0.0.2")     # not an address of localhost: passed through
    port = sink.address.rpartition(":")[2]
    env = shim_env(f"localhost:{port}", TLSFWD_CLIENT="127.0.0.1:9", TLSFWD_RESOLVE_EVERY="0",
                   LD_BIND_NOW="1")
    count = 20
    p = probe(tf, "smallstack", sink.address, str(count), "16384", env=env)
    rc, out, err = finish(p)
    assert rc == 0, f"rc={rc} (-11 is SIGSEGV: the stack overflowed)\n{out}{err}"
    assert out.splitlines()[0] == f"sent {count}", out + err
    used, *asan = out.splitlines()[-1].removeprefix("stack used ").split()
    limit = HOOK_STACK_ASAN if asan else HOOK_STACK
    assert int(used) <= limit, f"{used} bytes of the caller's stack used"
    assert not shim_lines(err), err
    events = sink.wait_events(count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == list(range(count))


def test_inline_core_chooses_its_own_stacks(tf):
    """A program that made new threads' default stack small (16 KiB, with
    pthread_setattr_default_np): the core's threads still have the stack they
    need (a handshake takes about 24 KiB, loading the key about 34 KiB)."""
    sink = tf.fwd_sink()
    r = Route(tf, "inline", sink)
    count = 20
    p = probe(tf, "smallstack", FLUENTD, str(count), "16384", "default", env=r.env())
    rc, out, err = finish(p)
    assert rc == 0, f"rc={rc} (-11 is SIGSEGV: the stack overflowed)\n{out}{err}"
    assert out.splitlines()[0] == f"sent {count}", out + err
    events = sink.wait_events(count, timeout=wait_time(20))
    assert sorted(e.record["seq"] for e in events) == list(range(count))


@pytest.mark.parametrize("every", ["0", "off"])
def test_intercepted_name_is_followed_when_it_moves(tf, route, every):
    """fluentd.test moves from 127.0.0.78 to 127.0.0.79 while the program runs
    (nss_wrapper serves the names from a file): its next connect, to the new
    address, is intercepted too, and the old address stays intercepted.  With
    TLSFWD_RESOLVE_EVERY=off the new address is not followed (and, as nothing
    listens there, the connect is refused)."""
    hosts = tf.file("hosts", "127.0.0.78 fluentd.test\n")
    env = route.env("fluentd.test:24224", NSS_WRAPPER_HOSTS=hosts, TLSFWD_RESOLVE_EVERY=every)
    env["LD_PRELOAD"] = f"libnss_wrapper.so:{SHIM}"
    script = ("import socket, sys\n"
              "def once(host, msg):\n"
              "    try:\n"
              "        s = socket.create_connection((host, 24224), timeout=10)\n"
              "        s.sendall(msg)\n"
              "        got = s.recv(100)\n"
              "        s.close()\n"
              "        return got.decode()\n"
              "    except OSError as e:\n"
              "        return type(e).__name__\n"
              "print(once('fluentd.test', b'one'), flush=True)\n"
              "sys.stdin.readline()\n"
              "print(once('fluentd.test', b'two'), flush=True)\n"
              "print(once('127.0.0.78', b'three'), flush=True)\n")
    p = tf.popen(["/usr/bin/python3", "-c", script], env=env, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert serve_one(route.sink) == b"one"
    assert p.stdout.readline().strip() == "reply:one"
    hosts.write_text("127.0.0.79 fluentd.test\n")
    later = time.time() + 5                   # nss_wrapper reloads on a new st_mtime (seconds)
    os.utime(hosts, (later, later))
    p.stdin.write("go\n")
    p.stdin.flush()
    if every == "off":
        assert p.stdout.readline().strip() == "ConnectionRefusedError"
    else:
        assert serve_one(route.sink) == b"two"
        assert p.stdout.readline().strip() == "reply:two"
    assert serve_one(route.sink) == b"three"
    assert p.stdout.readline().strip() == "reply:three"
    rc, out, err = finish(p)
    assert rc == 0 and not shim_lines(err), err


# ---------------------------------------------------------------------------
# inline mode: fork, exit, reload

def test_exec_keeps_the_shim(tf, route):
    """A program that connects, then execs another that connects: the
    environment carries the shim into the new image, which works alike."""
    second = ("import socket\n"
              "s = socket.create_connection(('127.0.0.77', 24224), timeout=10)\n"
              "s.sendall(b'after-exec')\n"
              "print(s.recv(100).decode(), flush=True)\n")
    first = ("import os, socket, sys\n"
             "s = socket.create_connection(('127.0.0.77', 24224), timeout=10)\n"
             "s.sendall(b'before-exec')\n"
             "print(s.recv(100).decode(), flush=True)\n"
             "s.close()\n"
             f"os.execv('/usr/bin/python3', ['python3', '-c', {second!r}])\n")
    p = tf.popen(["/usr/bin/python3", "-c", first], env=route.env(), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    assert serve_one(route.sink) == b"before-exec"
    assert serve_one(route.sink) == b"after-exec"
    rc, out, err = finish(p)
    assert (rc, out) == (0, "reply:before-exec\nreply:after-exec\n"), err


def test_inline_logs_never_go_into_a_socket_on_fd_2(tf):
    """A program that closed stderr, whose next socket (its Fluentd
    connection) became fd 2: the core's log lines must not be written into it."""
    sink = tf.tcp_sink()
    r = Route(tf, "inline", sink, log_level="debug")
    script = ("import os, socket\n"
              "os.close(2)\n"
              "s = socket.create_connection(('127.0.0.77', 24224), timeout=10)\n"
              "assert s.fileno() == 2, s.fileno()\n"
              "s.sendall(b'only-this')\n"
              "print(s.recv(100).decode(), flush=True)\n"     # the tunnel is up and logged
              "s.shutdown(socket.SHUT_WR)\n"
              "s.recv(100)\n")
    p = tf.popen(["/usr/bin/python3", "-c", script], env=r.env(), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    conn = sink.accept()
    data = bytearray()
    while len(data) < len(b"only-this") and (chunk := conn.recv(4096)):
        data += chunk
    conn.sendall(b"ok")
    while chunk := conn.recv(4096):           # then EOF, with nothing in between
        data += chunk
    conn.close()
    rc, out, err = finish(p)
    assert (rc, out) == (0, "ok\n"), err
    assert bytes(data) == b"only-this"


def test_inline_core_starts_only_when_needed(tf):
    """Loading the shim costs nothing until an intercepted connect: no thread,
    no certificate read (here the key is unreadable, and nothing says so)."""
    conf = client_conf(tf, "127.0.0.1:9", key=tf.tmp / "missing.key")
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import os; print(len(os.listdir('/proc/self/task')))"],
                       capture_output=True, text=True, env=shim_env(TLSFWD_CONFIG=conf),
                       timeout=wait_time(30))
    assert (r.returncode, r.stdout, r.stderr) == (0, "1\n", "")


def test_inline_fork_after_the_core_started(tf):
    """The parent's core runs when it forks: each child gets none of the
    parent's tunnel sockets, starts its own core, and the parent's open
    connection keeps working."""
    r = Route(tf, "inline", tf.tcp_sink())
    workers = 3
    p = probe(tf, "forking", FLUENTD, str(workers), "parent-first", env=r.env())
    got = sorted(serve_one(r.sink) for _ in range(workers + 1))
    assert got == sorted([b"parent\n"] + [f"worker {i}\n".encode() for i in range(workers)])
    rc, out, err = finish(p)
    assert rc == 0, out + err
    lines = sorted(line for line in out.splitlines() if line)
    # each child inherited the parent's application socket, and nothing else
    assert lines == sorted(["parent reply=reply:parent"] +
                           [f"worker {i} sockets=1" for i in range(workers)] +
                           [f"worker {i} reply=reply:worker {i}" for i in range(workers)]), err
    assert not shim_lines(err), err


@pytest.mark.parametrize("size", [100, 8 << 20])
def test_inline_exit_delivers_what_was_sent(tf, size):
    """A program that sends and returns from main at once, never closing or
    reading: the exit waits until the core has delivered every byte."""
    sink = tf.tcp_sink()
    r = Route(tf, "inline", sink)
    p = probe(tf, "fire", FLUENTD, str(size), env=r.env())
    conn = sink.accept()
    data = bytearray()
    while chunk := conn.recv(1 << 20):
        data += chunk
    conn.close()                              # as Fluentd does at EOF
    rc, out, err = finish(p)
    assert (rc, out) == (0, f"sent {size}\n"), err
    assert len(data) == size
    assert data == (b"0123456789" * (size // 10 + 1))[:size]
    assert not shim_lines(err), err


def test_inline_exit_waits_boundedly_and_says_what_is_lost(tf):
    """An upstream that accepts TCP and never answers the handshake: the
    program's exit waits at most 5 s, then names what it could not deliver."""
    silent = tf.tcp_sink()                    # accepts (backlog), never speaks TLS
    conf = client_conf(tf, silent, log_level="warn")
    start = time.monotonic()
    p = probe(tf, "fire", FLUENTD, "100", env=shim_env(TLSFWD_CONFIG=conf))
    rc, out, err = finish(p)
    took = time.monotonic() - start
    assert (rc, out) == (0, "sent 100\n"), err
    lines = shim_lines(err)
    assert len(lines) == 1 and "still open after 5 s" in lines[0], err
    assert 4.5 <= took < wait_time(9), took


def test_inline_reloads_changed_certificates(tf, pki):
    """The core watches its files like the daemon: a client certificate
    replaced on disk is used by the next connection."""
    sink = tf.tcp_sink()
    server = tf.server(sink)
    cert, key = tf.tmp / "client.crt", tf.tmp / "client.key"
    cert.write_bytes(pki.client_other.cert.read_bytes())      # another CA: refused
    key.write_bytes(pki.client_other.key.read_bytes())
    key.chmod(0o600)
    conf = client_conf(tf, server, cert=cert, key=key, log_level="info")
    script = ("import socket, sys, time\n"
              "def once(msg):\n"
              "    try:\n"
              "        s = socket.create_connection(('127.0.0.77', 24224), timeout=10)\n"
              "        s.sendall(msg)\n"
              "        got = s.recv(100)\n"
              "        s.close()\n"
              "        return got\n"
              "    except OSError as e:\n"
              "        return type(e).__name__\n"
              "print(once(b'first'), flush=True)\n"
              "sys.stdin.readline()\n"
              "for _ in range(100):\n"     # refused until the core's probe gets through
              "    got = once(b'second')\n"
              "    if got != 'ConnectionRefusedError':\n"
              "        break\n"
              "    time.sleep(0.1)\n"
              "print(got, flush=True)\n")
    log = tf.tmp / "inline.stderr"                  # the core's log lines
    with open(log, "w") as err:
        p = tf.popen(["/usr/bin/python3", "-c", script], env=shim_env(TLSFWD_CONFIG=conf),
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    assert p.stdout.readline().strip() in ("b''", "ConnectionResetError")  # refused
    cert.write_bytes(pki.client.cert.read_bytes())
    key.write_bytes(pki.client.key.read_bytes())
    deadline = time.monotonic() + wait_time(15)     # the watch settles for 0.5 s, then:
    while not any(parse_log_line(line).get("msg", "").startswith("reloaded")
                  for line in log.read_text(errors="replace").splitlines()):
        assert p.poll() is None and time.monotonic() < deadline, \
            f"the inline core did not reload:\n{log.read_text(errors='replace')}"
        time.sleep(0.05)
    p.stdin.write("go\n")
    p.stdin.flush()
    # The refusal shut the core's listener; after the reload its probe (an
    # empty connection to the sink, closed by serve_one) opens it again.
    while (data := serve_one(sink)) == b"":
        pass
    assert data == b"second"
    assert p.stdout.readline().strip() == "b'reply:second'"
    rc, out, _ = finish(p)
    assert rc == 0, out + log.read_text(errors="replace")


# ---------------------------------------------------------------------------
# misconfiguration: one stderr line, intercepted connects refused, nothing leaks

MISCONFIGURED = ["bad-entry", "bad-port", "no-client", "bad-client", "both-modes",
                 "config-missing", "config-malformed", "config-bad-cert"]


@pytest.mark.parametrize("case", MISCONFIGURED)
def test_misconfigured_shim_refuses_and_says_so(tf, case):
    guarded = tf.tcp_sink("127.0.0.77")      # the address the user wants protected
    stand_in = tf.tcp_sink()                 # what TLSFWD_CLIENT would point at
    direct = tf.tcp_sink()
    port = guarded.address.rpartition(":")[2]
    good = client_conf(tf, stand_in)
    malformed = tf.file("malformed.conf", f"server = {stand_in.address}\nmax-conns = lots\n")
    no_cert = client_conf(tf, stand_in, name="nocert.conf", cert=tf.tmp / "missing.crt")
    intercept, shim, want = {
        "bad-entry": (f"{guarded.address},[::1:{port}", {"TLSFWD_CLIENT": stand_in},
                      "missing ']'"),
        "bad-port": (f"127.0.0.77:{port}x", {"TLSFWD_CLIENT": stand_in},
                     "port must be a number"),
        "no-client": (guarded.address, {}, "neither TLSFWD_CLIENT"),
        "bad-client": (guarded.address, {"TLSFWD_CLIENT": "127.0.0.1"}, "TLSFWD_CLIENT"),
        "both-modes": (guarded.address, {"TLSFWD_CLIENT": stand_in, "TLSFWD_CONFIG": good},
                       "both set"),
        "config-missing": (guarded.address, {"TLSFWD_CONFIG": tf.tmp / "none.conf"},
                           "none.conf"),
        "config-malformed": (guarded.address, {"TLSFWD_CONFIG": malformed},
                             "malformed.conf:2: max-conns"),
        "config-bad-cert": (guarded.address, {"TLSFWD_CONFIG": no_cert}, "missing.crt"),
    }[case]
    p = probe(tf, "blocking", guarded.address, "secret", direct.address, "fine",
              env=shim_env(intercept=intercept, **shim), valgrind=False)
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
