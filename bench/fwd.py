#!/usr/bin/python3
"""bench/fwd.py: what reading the forward protocol costs (issue 15).

One sender connection sends FWD_GIB GiB of PackedForward requests of FWD_CHUNK bytes (events of
about 250 bytes, as a Fluentd chunk holds) through a pair on loopback to a sink that discards;
the CPU seconds of each end are read from /proc before and after, and reported per GiB sent:

    tlsfwd          the byte-exact tunnel
    tlsfwd+stamp    the server reads every request and writes it out again, each record stamped
                    (--stamp-key tls --stamp-address-key source_ip --tag-prefix 'edge.{fp}.'):
                    the whole identity map, about 650 bytes a record
    tlsfwd+stamp-format   the same with --stamp-format '{cn}': one short string a record
    stunnel         stunnel4 both ends, for scale

Run after `make` (it uses build/tlsfwd-*, and the benchmark's certificates in build/bench/certs,
made here if missing):  /usr/bin/python3 bench/fwd.py   (FWD_GIB=0.25 for a quick run).
"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

import msgpack  # noqa: E402

GIB = float(os.environ.get("FWD_GIB", "1"))
CHUNK = int(os.environ.get("FWD_CHUNK", str(1 << 20)))
ROUNDS = int(os.environ.get("FWD_ROUNDS", "2"))


def request(chunk):
    """One PackedForward request of about `chunk` bytes, with a chunk id (no ack is awaited)."""
    events, n, i = [], 0, 0
    while n < chunk:
        e = msgpack.packb([1_700_000_000 + i, {
            "log": "GET /api/v1/items/%d HTTP/1.1 200 %d \"-\" \"curl/7.88\"" % (i, 512 + i % 977),
            "stream": "stdout", "time": "2026-12-04T07:00:00.%06dZ" % i,
            "kubernetes": {"pod_name": "web-%d" % (i % 17), "namespace_name": "prod",
                           "container_name": "web", "host": "node-%d" % (i % 5)}}])
        events.append(e)
        n += len(e)
        i += 1
    return msgpack.packb(["app.web", b"".join(events), {"chunk": "bench", "size": len(events)}])


class Sink:
    """Accepts connections and discards what they send; .done is set at each EOF."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.received = 0
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        buf = bytearray(1 << 20)
        while True:
            n = c.recv_into(buf)
            if n == 0:
                break
            self.received += n
        c.close()
        self.done.set()


class Tlsfwd(B.Tlsfwd):
    """bench.py's tlsfwd pair, with options for its server end."""

    def __init__(self, name, sink_port, server_extra=()):
        super().__init__(name, sink_port)
        self.server_extra = list(server_extra)

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        self.port, self.server_port = B.pick_port(), B.pick_port()
        common = ["--ca", os.path.join(B.CERTS, "ca.crt"), "--log-level", "warn"]
        self._spawn([B.CLIENT, "--listen", "127.0.0.1:%d" % self.port,
                     "--server", "127.0.0.1:%d" % self.server_port,
                     "--cert", os.path.join(B.CERTS, "client.crt"),
                     "--key", os.path.join(B.CERTS, "client.key")] + common, "client.log")
        self._spawn([B.SERVER, "--listen", "127.0.0.1:%d" % self.server_port,
                     "--upstream", "127.0.0.1:%d" % self.sink_port,
                     "--cert", os.path.join(B.CERTS, "server.crt"),
                     "--key", os.path.join(B.CERTS, "server.key")] + common + self.server_extra,
                    "server.log")
        B.wait_ready(self.name, self.procs, [self.port, self.server_port], self.logs)


def start_tlsfwd(name, sink_port, server_extra=()):
    p = Tlsfwd(name, sink_port, server_extra)
    p.start()
    return p


def start_stunnel(name, sink_port):
    p = B.Stunnel(name, sink_port)
    p.start()
    return p


def measure(pair, sink, req, count):
    """Send req count times on one connection; CPU seconds of each end and the wall time."""
    sink.done.clear()
    c0, s0 = B.cpu_seconds(pair.client_roots()), B.cpu_seconds(pair.server_roots())
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", pair.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(count):
        s.sendall(req)
    s.shutdown(socket.SHUT_WR)
    if not sink.done.wait(300):
        raise B.BenchError("%s: the sink saw no end" % pair.name)
    s.close()
    wall = time.time() - t0
    return B.cpu_seconds(pair.client_roots()) - c0, B.cpu_seconds(pair.server_roots()) - s0, wall


def main():
    for x in (B.BUILT_CLIENT, B.BUILT_SERVER):
        if not os.access(x, os.X_OK):
            sys.exit("fwd.py: %s is missing: run make" % x)
    B.CLIENT, B.SERVER = B.BUILT_CLIENT, B.BUILT_SERVER
    if not os.path.exists(os.path.join(B.CERTS, "ca.crt")):
        subprocess.run([os.path.join(B.TOP, "scripts", "mkcerts.sh"), B.CERTS], check=True,
                       stdout=subprocess.DEVNULL)
    os.makedirs(B.RUN, exist_ok=True)
    req = request(CHUNK)
    count = max(1, int(GIB * (1 << 30) / len(req)))
    sent = count * len(req)
    pairs = [
        ("tlsfwd", lambda port: start_tlsfwd("fwd-plain", port)),
        ("tlsfwd+stamp", lambda port: start_tlsfwd("fwd-stamp", port, [
            "--stamp-key", "tls", "--stamp-address-key", "source_ip",
            "--tag-prefix", "edge.{fp}."])),
        ("tlsfwd+stamp-format", lambda port: start_tlsfwd("fwd-format", port, [
            "--stamp-key", "client", "--stamp-format", "{cn}", "--stamp-address-key",
            "source_ip", "--tag-prefix", "edge.{fp}."])),
        ("stunnel", lambda port: start_stunnel("fwd-stunnel", port)),
    ]
    results = {name: [] for name, _ in pairs}
    try:
        for _ in range(ROUNDS):
            for name, start in pairs:
                sink = Sink()
                pair = start(sink.port)
                try:
                    client, server, wall = measure(pair, sink, req, count)
                finally:
                    pair.stop()
                    sink.lsock.close()
                results[name].append((client, server, wall, sink.received))
    finally:
        B.stop_all()
    gib = sent / (1 << 30)
    print("PackedForward requests of %d bytes (%d events of ~%d bytes), %.2f GiB, one connection,"
          " median of %d" % (len(req), msgpack.unpackb(req)[2]["size"],
                             len(req) // msgpack.unpackb(req)[2]["size"], gib, ROUNDS))
    print()
    print("| pair | client s/GiB | server s/GiB | pair s/GiB | MiB/s | bytes to Fluentd / sent |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for name, _ in pairs:
        rs = sorted(results[name], key=lambda r: r[0] + r[1])
        c, s, w, got = rs[len(rs) // 2]
        if name == "tlsfwd":
            base = s
        print("| %s | %.2f | %.2f | %.2f | %.0f | %.3f |" % (
            name, c / gib, s / gib, (c + s) / gib, sent / w / (1 << 20), got / sent))
    print()
    for name in ("tlsfwd+stamp", "tlsfwd+stamp-format"):
        st = sorted(results[name], key=lambda r: r[1])[len(results[name]) // 2][1]
        print("server CPU %s / tlsfwd: %s" % (name, "%.1f" % (st / base) if base > 0 else "?"))


if __name__ == "__main__":
    main()
