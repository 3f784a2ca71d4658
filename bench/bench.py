#!/usr/bin/python3
"""tlsfwd benchmark: direct TCP, tlsfwd, stunnel and socat pairs on loopback.

Started by bench/run.sh (which builds build/bench/loadgen and the certificates first).  See
bench/README.md for what is measured and how.  Writes build/bench/results.json and
build/bench/results.md and prints the Markdown tables at the end.

Exit status: 0 when every pair worked; 1 when a pair broke or a byte count did not match (the
numbers are still written, with the problems listed); 2 on a set-up error; 130 on ctrl-C.
"""
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("TLSFWD_BUILD", os.path.join(TOP, "build"))
OUT = os.path.join(BUILD, "bench")
RUN = os.path.join(OUT, "run")
LG = os.path.join(OUT, "loadgen")
CERTS = os.path.join(OUT, "certs")
PIDFILE = os.path.join(OUT, "pids")
BUILT_CLIENT = os.path.join(BUILD, "tlsfwd-client")
BUILT_SERVER = os.path.join(BUILD, "tlsfwd-server")
# Other work may rebuild build/ while the benchmark runs: it runs copies taken at the start.
CLIENT = os.path.join(OUT, "bin", "tlsfwd-client")
SERVER = os.path.join(OUT, "bin", "tlsfwd-server")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))
IDLE_ROUNDS = int(os.environ.get("BENCH_IDLE_ROUNDS", str(ROUNDS)))
MiB, GiB = 1 << 20, 1 << 30
CFG = {
    "bulk1_bytes": (128 if QUICK else 1024) * MiB,       # one connection
    "bulk8_bytes": (16 if QUICK else 128) * MiB,         # per connection, 8 connections
    "rr_count": 3000 if QUICK else 20000,
    "rr_warmup": 300 if QUICK else 1000,
    "rr_req": 200, "rr_rep": 40,
    "flood_rr_count": 1000 if QUICK else 5000,
    "setup_secs": 1.5 if QUICK else 4.0,
    "setup_workers": 4,
    "setup_req": 100, "setup_rep": 40,
    "idle_counts": [500, 2000] if QUICK else [2000, 10000],
    "socat_idle_max": 500 if QUICK else 2000,
    "idle_concurrency": 100,
    "probe_conns": 8,
}
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ processes

PROCS = []          # every Popen we started in its own session, until it is reaped


def pidfile_write():
    with open(PIDFILE, "w") as f:
        for p in PROCS:
            if p.poll() is None:
                f.write("%d\n" % p.pid)


def spawn(args, stdout=subprocess.DEVNULL, stderr=None, stdin=subprocess.DEVNULL, text=False):
    """Start args in a new session (its own process group, so socat's forks go with it)."""
    args = [str(a) for a in args]
    p = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True,
                         text=text, close_fds=True)
    PROCS.append(p)
    pidfile_write()
    return p


def stop(p, timeout=10.0):
    """SIGTERM the process group, then SIGKILL what is left; reap."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # socat's children (and anything else in the group) go too.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        log("bench: process %d did not exit after SIGKILL" % p.pid)
    if p in PROCS:
        PROCS.remove(p)
    pidfile_write()


def stop_all():
    for p in list(PROCS):
        stop(p, timeout=3.0)


def proc_table():
    """pid -> (ppid, cpu ticks incl. reaped children) for every process."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        r = s.rsplit(")", 1)[1].split()
        t[int(d)] = (int(r[1]), int(r[11]) + int(r[12]) + int(r[13]) + int(r[14]))
    return t


def tree(roots, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, stack = [], [r for r in roots if r in table]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out, table


def cpu_seconds(roots):
    pids, table = tree(roots)
    return sum(table[p][1] for p in pids) / TICK


def host_ticks():
    """(stolen, total) CPU ticks of the whole machine so far, from /proc/stat."""
    f = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    return (f[7] if len(f) > 7 else 0), sum(f[:8])


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(roots):
    pids, _ = tree(roots)
    return {
        "rss_kib": sum(status_kib(p, "VmRSS") for p in pids),
        "pss_kib": sum(pss_kib(p) for p in pids),
        "processes": len(pids),
        "threads": sum(status_kib(p, "Threads") for p in pids),
    }


def listening(port):
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if x[1] == want and x[3] == "0A":
                return True
    return False


USED_PORTS = set()


def free_port():
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in USED_PORTS and port < 32768:
            USED_PORTS.add(port)
            return port
    # ephemeral range starts at 32768 here; fall back to anything unused
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    USED_PORTS.add(port)
    return port


def pick_port():
    """A port outside the ephemeral range (setup tests churn through it) that nobody uses."""
    base = int(os.environ.get("BENCH_PORT_BASE", "0")) or (27000 + os.getpid() % 2000)
    for port in range(base, base + 3000):
        if port in USED_PORTS or port >= 32768:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        USED_PORTS.add(port)
        return port
    return free_port()


def wait_ready(name, procs, ports, logs=(), pattern=None, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p, lg in zip(procs, list(logs) + [None] * len(procs)):
            if p.poll() is not None:
                raise BenchError("%s: %s exited with %s before it was ready:\n%s"
                                 % (name, p.args[0], p.returncode, tail(lg)))
        ok = all(listening(port) for port in ports)
        if ok and pattern:
            ok = all(pattern in read(lg) for lg in logs)
        if ok:
            return
        time.sleep(0.05)
    raise BenchError("%s: not ready after %.0f s:\n%s" % (name, timeout,
                                                          "\n".join(tail(lg) for lg in logs)))


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except (OSError, TypeError):
        return ""


def tail(path, n=15):
    if not path:
        return ""
    lines = read(path).splitlines()
    return "  [%s]\n" % path + "\n".join("  " + line for line in lines[-n:])


# ----------------------------------------------------------------------------------- pairs

class Pair:
    """Two daemons (or none, for direct) between the load generator and the sink."""
    kind = "?"

    def __init__(self, name, sink_port):
        self.name = name
        self.sink_port = sink_port
        self.procs = []
        self.logs = []
        self.port = None
        self.dir = os.path.join(RUN, name)

    def roots(self):
        return [p.pid for p in self.procs]

    def client_roots(self):
        return [self.procs[0].pid] if self.procs else []

    def server_roots(self):
        return [self.procs[1].pid] if len(self.procs) > 1 else []

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        """upstream_port: where the client end connects (the server end, or a relay)."""
        raise NotImplementedError

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def settle(self, timeout=5.0):
        """Wait until per-connection processes (socat's forks) are gone."""
        deadline = time.time() + timeout
        base = len(self.procs)
        while time.time() < deadline:
            if len(tree(self.roots())[0]) <= base:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        for p in self.procs:
            stop(p)
        self.procs = []

    def _spawn(self, args, logname):
        os.makedirs(self.dir, exist_ok=True)
        lg = os.path.join(self.dir, logname)
        f = open(lg, "w")
        p = spawn(args, stderr=f)
        f.close()
        self.procs.append(p)
        self.logs.append(lg)
        return p


class Direct(Pair):
    kind = "direct"

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        self.port = self.sink_port


class Tlsfwd(Pair):
    kind = "tlsfwd"

    def __init__(self, name, sink_port, workers=None, extra=()):
        super().__init__(name, sink_port)
        self.workers = workers
        self.extra = list(extra)
        self.server_port = None

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        self.port, self.server_port = pick_port(), pick_port()
        common = ["--ca", os.path.join(CERTS, "ca.crt"), "--log-level", "info" if verbose else "warn"]
        if self.workers:
            common += ["--workers", str(self.workers)]
        if max_conns:
            common += ["--max-conns", str(max_conns)]
        # client first: Pair.client_roots() is procs[0]
        self._spawn([CLIENT, "--listen", "127.0.0.1:%d" % self.port,
                     "--server", "127.0.0.1:%d" % (upstream_port or self.server_port),
                     "--cert", os.path.join(CERTS, "client.crt"),
                     "--key", os.path.join(CERTS, "client.key")] + common + self.extra,
                    "client.log")
        self._spawn([SERVER, "--listen", "127.0.0.1:%d" % self.server_port,
                     "--upstream", "127.0.0.1:%d" % self.sink_port,
                     "--cert", os.path.join(CERTS, "server.crt"),
                     "--key", os.path.join(CERTS, "server.key")] + common, "server.log")
        # msg=listening is an info line: only there when verbose; the LISTEN state always is.
        wait_ready(self.name, self.procs, [self.port, self.server_port], self.logs,
                   "msg=listening" if verbose else None)


class Stunnel(Pair):
    kind = "stunnel"

    def __init__(self, name, sink_port, resume=True):
        super().__init__(name, sink_port)
        self.resume = resume
        self.server_port = None

    def _conf(self, side, accept, connect, verbose):
        c = os.path.join(CERTS, side)
        lines = [
            "foreground = yes",
            "pid = %s" % os.path.join(self.dir, side + ".pid"),
            "debug = %d" % (6 if verbose else 3),
            "syslog = no",
            "[bench]",
        ]
        if side == "client":
            lines += ["client = yes"]
        lines += [
            "accept = 127.0.0.1:%d" % accept,
            "connect = 127.0.0.1:%d" % connect,
            "cert = %s.crt" % c,
            "key = %s.key" % c,
            "CAfile = %s" % os.path.join(CERTS, "ca.crt"),
            "verify = 2",
            "socket = l:TCP_NODELAY=1",
            "socket = r:TCP_NODELAY=1",
        ]
        if side == "client":
            lines += ["checkIP = 127.0.0.1"]
        if not self.resume:
            lines += ["sessionResume = no"]
        path = os.path.join(self.dir, side + ".conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.server_port = pick_port(), pick_port()
        cc = self._conf("client", self.port, upstream_port or self.server_port, verbose)
        sc = self._conf("server", self.server_port, self.sink_port, verbose)
        self._spawn(["stunnel4", cc], "client.log")
        self._spawn(["stunnel4", sc], "server.log")
        wait_ready(self.name, self.procs, [self.port, self.server_port], self.logs)


class Socat(Pair):
    kind = "socat"

    def start(self, upstream_port=None, verbose=False, max_conns=None):
        self.port, self.server_port = pick_port(), pick_port()
        ca = os.path.join(CERTS, "ca.crt")
        d = ["-d", "-d", "-d"] if verbose else []
        self._spawn(["socat"] + d + [
            "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=4096" % self.port,
            "OPENSSL-CONNECT:127.0.0.1:%d,cert=%s,key=%s,cafile=%s,verify=1,nodelay" % (
                upstream_port or self.server_port, os.path.join(CERTS, "client.crt"),
                os.path.join(CERTS, "client.key"), ca)], "client.log")
        self._spawn(["socat"] + d + [
            "OPENSSL-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=4096,"
            "cert=%s,key=%s,cafile=%s,verify=1" % (
                self.server_port, os.path.join(CERTS, "server.crt"),
                os.path.join(CERTS, "server.key"), ca),
            "TCP:127.0.0.1:%d,nodelay" % self.sink_port], "server.log")
        wait_ready(self.name, self.procs, [self.port, self.server_port], self.logs)


# ----------------------------------------------------------------------------- load runs

def loadgen_start(*args, stdin=subprocess.DEVNULL):
    """Start a loadgen subcommand; loadgen_finish() collects its JSON line."""
    return spawn([LG] + list(args), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 text=True)


def loadgen_finish(pair, p, input=None, timeout=300):
    """Wait for loadgen p (handing it input, if any) and return its JSON line."""
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise BenchError("%s: loadgen %s timed out after %d s" % (pair.name, p.args[1], timeout))
    finally:
        if p in PROCS:
            PROCS.remove(p)
            pidfile_write()
    if p.returncode != 0:
        raise BenchError("%s: loadgen %s failed (exit %d): %s%s" % (
            pair.name, " ".join(p.args[1:]), p.returncode, err.strip(),
            "" if pair.alive() else "\n  (a daemon of the pair has exited)\n" +
            "\n".join(tail(lg) for lg in pair.logs)))
    return json.loads(out.strip().splitlines()[-1])


def loadgen(pair, *args, timeout=300):
    return loadgen_finish(pair, loadgen_start(*args), timeout=timeout)


def rr_beside_flood(pair):
    """Request/reply on one connection while another connection through the same pair sends
    as fast as it can (loadgen flood, until its stdin has a line): what a busy sender costs
    the others' acks."""
    flood = loadgen_start("flood", pair.port, stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        r = loadgen(pair, "rr", pair.port, CFG["flood_rr_count"], CFG["rr_req"], CFG["rr_rep"], 100)
    finally:
        f = loadgen_finish(pair, flood, input="\n", timeout=60)
    r["flood_mb_s"] = f["mb_s"]
    return r


PROBLEMS = []
RESULTS = {}


def problem(msg):
    log("bench: PROBLEM: " + msg)
    PROBLEMS.append(msg)


def sink_stats(port):
    p = subprocess.run([LG, "stats", str(port)], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise BenchError("sink stats: %s" % p.stderr.strip())
    return json.loads(p.stdout)


def check_sink(sink_port, where):
    s = sink_stats(sink_port)
    if s["errors"]:
        problem("the sink counted %d byte-count/protocol errors by the end of %s (see %s)"
                % (s["errors"], where, os.path.join(RUN, "sink.log")))
        raise BenchError("byte count mismatch at the sink during %s" % where)
    return s


def smoke(pair):
    """One request/reply, one small bulk transfer: the pair must work before it is measured."""
    r = loadgen(pair, "setup", pair.port, 1, 10, 100, 40, 3, timeout=60)
    if r["ok"] != 3:
        raise BenchError("%s: broken pair: %d of 3 request/reply connections failed (%s)\n%s" % (
            pair.name, r["errors"], r["last_error"], "\n".join(tail(lg) for lg in pair.logs)))
    loadgen(pair, "bulk", pair.port, 1, 4 * MiB, timeout=60)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------------------- phases

def phase_probe(pairs, sink_port, results):
    """Per pair, once, through a counting relay on the TLS link: handshake bytes of each of
    a few sequential connections (a resumed TLS 1.3 handshake carries no certificates, so it is
    much smaller than the first, full one), and the negotiated cipher from verbose logs."""
    out = {}
    for proto in pairs:
        pair = type(proto)(proto.name + "-probe", sink_port, **getattr(proto, "probe_kw", {}))
        relay_port = pick_port()
        pair.dir = os.path.join(RUN, proto.name + "-probe")
        os.makedirs(pair.dir, exist_ok=True)
        relay_out = open(os.path.join(pair.dir, "relay.out"), "w")
        try:
            pair.start(upstream_port=relay_port, verbose=True)
            relay = spawn([LG, "relay", relay_port, pair.server_port], stdout=relay_out,
                          stderr=subprocess.DEVNULL)
            wait_ready(pair.name + " relay", [relay], [relay_port])
            r = loadgen(pair, "setup", pair.port, 1, 30, 100, 40, CFG["probe_conns"], timeout=90)
            time.sleep(0.5)
            stop(relay)
        finally:
            relay_out.close()
            pair.stop()
        conns = [tuple(int(x) for x in line.split())
                 for line in read(os.path.join(pair.dir, "relay.out")).splitlines() if line.strip()]
        if r["ok"] != CFG["probe_conns"] or not conns:
            raise BenchError("%s: broken pair: %d of %d probe connections failed (%s)" % (
                proto.name, r["errors"], CFG["probe_conns"], r["last_error"]))
        tot = [u + d for u, d in conns]
        big = max(tot)
        full = [c for c, t in zip(conns, tot) if t >= 0.75 * big]
        resumed = [c for c, t in zip(conns, tot) if t < 0.75 * big]
        logs = "\n".join(read(lg) for lg in pair.logs)
        cipher = None
        for pat in (r"cipher=(\S+)", r"ciphersuite: (\S+)", r"cipher[^\"]*\"([A-Z0-9_-]+)\"",
                    r"SSL connection using (\S+)", r"using cipher (\S+)"):
            m = re.search(pat, logs)
            if m:
                cipher = m.group(1)
                break
        info = {
            "connections": len(conns),
            "resumed": len(resumed),
            "full": len(full),
            "full_bytes_up_down": [median([c[0] for c in full]), median([c[1] for c in full])],
            "resumed_bytes_up_down": ([median([c[0] for c in resumed]),
                                       median([c[1] for c in resumed])] if resumed else None),
            "cipher": cipher,
        }
        out[proto.name] = info
        log("probe %-18s cipher %-26s %d of %d connections resumed; handshake+data bytes "
            "full %s, resumed %s" % (proto.name, cipher, len(resumed), len(conns),
                                     info["full_bytes_up_down"], info["resumed_bytes_up_down"]))
    results["probe"] = out
    return out


def run_bulk(pair, conns, nbytes):
    c0 = cpu_seconds(pair.roots()) if pair.procs else None
    r = loadgen(pair, "bulk", pair.port, conns, nbytes, timeout=600)
    if pair.procs:
        if not pair.settle():
            log("bench: %s: per-connection processes still there 5 s after the run" % pair.name)
        c1 = cpu_seconds(pair.roots())
        r["cpu_s"] = c1 - c0
        r["cpu_s_per_gib"] = r["cpu_s"] / (r["bytes"] / GiB)
    else:
        r["cpu_s"] = r["cpu_s_per_gib"] = None
    return r


def phase_interleaved(title, key, pairs, fn, results, fmt):
    """for each round: for each pair: fn(pair) -> dict.  results[key][pair] = {runs, ...}."""
    res = results.setdefault(key, {})
    for rnd in range(ROUNDS):
        for pair in pairs:
            s0, t0 = host_ticks()
            r = fn(pair)
            s1, t1 = host_ticks()
            # CPU the hypervisor gave to others while this ran: a noisy run shows here.
            r["host_steal_pct"] = round(100.0 * (s1 - s0) / max(1, t1 - t0), 1)
            res.setdefault(pair.name, {"runs": []})["runs"].append(r)
            log("%-10s round %d/%d  %-16s %s  (steal %.0f%%)" % (
                title, rnd + 1, ROUNDS, pair.name, fmt(r), r["host_steal_pct"]))
    return res


def summarize(res, fields):
    for name, v in res.items():
        for f in fields:
            v[f] = median([r.get(f) for r in v["runs"]])
        v["errors"] = sum(r.get("errors", 0) for r in v["runs"])


def phase_idle(pair_factories, sink_port, results):
    """Fresh daemons per pair and round: the baseline RSS after one warm-up connection, then
    connections that each delivered one message and got its reply, opened in steps (2000, then
    up to 10000) and held open while the RSS and PSS of every process of the pair (socat's forks
    included) are summed."""
    counts = sorted(CFG["idle_counts"])
    res = results.setdefault("idle", {})
    for rnd in range(IDLE_ROUNDS):
        for name, make in pair_factories:
            steps = [n for n in counts if name != "socat" or n <= CFG["socat_idle_max"]]
            pair = make()
            pair.dir = os.path.join(RUN, "%s-idle" % name)
            holders = []
            try:
                pair.start(max_conns=max(steps) + 16)
                r = loadgen(pair, "setup", pair.port, 1, 10, 100, 40, 1, timeout=60)
                if r["ok"] != 1:
                    raise BenchError("%s: broken pair: the warm-up connection failed (%s)\n%s"
                                     % (name, r["last_error"],
                                        "\n".join(tail(lg) for lg in pair.logs)))
                pair.settle()
                time.sleep(0.3)
                base = {"client": memory(pair.client_roots()),
                        "server": memory(pair.server_roots())}
                have = 0
                for n in steps:
                    h = IdleHolder(pair, n - have)
                    holders.append(h)
                    h.open()
                    have = n
                    time.sleep(1.0)     # let the handshakes' transient buffers go
                    if not pair.alive():
                        raise BenchError("%s: a daemon exited while holding %d connections\n%s"
                                         % (name, n, "\n".join(tail(lg) for lg in pair.logs)))
                    m = {"client": memory(pair.client_roots()),
                         "server": memory(pair.server_roots())}
                    rec = idle_record(n, base, m, sum(x.errors for x in holders),
                                      sum(x.seconds for x in holders))
                    res.setdefault(str(n), {}).setdefault(name, {"runs": []})["runs"].append(rec)
                    log("idle %-6d round %d/%d  %-10s RSS %7.1f KiB/conn (Δ %6.1f, PSS %6.1f) "
                        "processes %d threads %d, opened in %.1f s" % (
                            n, rnd + 1, IDLE_ROUNDS, name, rec["rss_kib_per_conn"],
                            rec["delta_rss_kib_per_conn"], rec["pss_kib_per_conn"],
                            m["client"]["processes"] + m["server"]["processes"],
                            m["client"]["threads"] + m["server"]["threads"], rec["open_seconds"]))
                dropped = sum(h.release() for h in holders)
                if dropped:
                    problem("%s: %d of %d idle connections were dropped while held open"
                            % (name, dropped, have))
            finally:
                for h in holders:
                    stop(h.p)
                pair.stop()
    for n, byname in res.items():
        summarize(byname, ["rss_kib_per_conn", "pss_kib_per_conn", "delta_rss_kib_per_conn",
                           "delta_pss_kib_per_conn", "client_rss_kib_per_conn",
                           "server_rss_kib_per_conn", "open_seconds"])
    check_sink(sink_port, "the idle-memory test")


def idle_record(n, base, m, errors, seconds):
    rss = m["client"]["rss_kib"] + m["server"]["rss_kib"]
    pss = m["client"]["pss_kib"] + m["server"]["pss_kib"]
    brss = base["client"]["rss_kib"] + base["server"]["rss_kib"]
    bpss = base["client"]["pss_kib"] + base["server"]["pss_kib"]
    return {
        "conns": n, "open_seconds": seconds, "errors": errors,
        "baseline": base, "held": m,
        "rss_kib_per_conn": rss / n, "pss_kib_per_conn": pss / n,
        "delta_rss_kib_per_conn": (rss - brss) / n,
        "delta_pss_kib_per_conn": (pss - bpss) / n,
        "client_rss_kib_per_conn": m["client"]["rss_kib"] / n,
        "server_rss_kib_per_conn": m["server"]["rss_kib"] / n,
    }


class IdleHolder:
    """A loadgen idle process holding n connections open until release()."""

    def __init__(self, pair, n):
        self.pair, self.n = pair, n
        self.errors, self.seconds = 0, 0.0
        self.p = spawn([LG, "idle", pair.port, n, 100, 40, CFG["idle_concurrency"]],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)

    def open(self):
        line = self.p.stdout.readline()
        if not line:
            err = self.p.stderr.read()
            raise BenchError("%s: idle %d: loadgen failed: %s\n%s" % (
                self.pair.name, self.n, err.strip(),
                "\n".join(tail(lg) for lg in self.pair.logs)))
        first = json.loads(line)
        self.errors, self.seconds = first["errors"], first["seconds"]
        if first["errors"]:
            problem("%s: idle: %d of %d connections failed to open and deliver (last: %s)" % (
                self.pair.name, first["errors"], self.n, first["last_error"]))

    def release(self):
        """Close the connections; how many had been dropped by the tunnel meanwhile."""
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        second = json.loads(self.p.stdout.readline() or '{"dropped": -1}')
        self.p.wait(60)
        return second["dropped"]


# ------------------------------------------------------------------------------ reporting

def fmt_num(v, digits):
    if v is None:
        return "—"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, digits)


def ratio(v, ref):
    if v is None or not ref:
        return None
    return v / ref


def cell(v, ref, digits, errors=0):
    if v is None:
        return "—"
    s = fmt_num(v, digits)
    r = ratio(v, ref)
    if r is not None:
        s += " (%.2f×)" % r
    if errors:
        s += " ⚠ %d errors" % errors
    return s


def versions():
    def out(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
    cpu = None
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    st = out(["stunnel4", "-version"]) or ""
    m = re.search(r"stunnel (\S+)", st)
    m2 = re.search(r"Running\s+with (OpenSSL \S+)", st)
    so = out(["socat", "-V"]) or ""
    m3 = re.search(r"socat version (\S+)", so)
    return {
        "tlsfwd": (out([CLIENT, "--version"]) or "").splitlines()[:3],
        "stunnel": (m.group(1) if m else None),
        "stunnel_openssl": (m2.group(1) if m2 else None),
        "socat": (m3.group(1) if m3 else None),
        "openssl": out(["openssl", "version"]),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def ratios_to(res, field, ref_name="stunnel"):
    ref = res.get(ref_name, {}).get(field)
    for name, v in res.items():
        v[field + "_ratio_vs_stunnel"] = ratio(v.get(field), ref)


def render(results):
    t = results["tests"]
    names = ["direct", "tlsfwd", "stunnel", "socat"]
    rows = []

    def row(label, key, field, digits, target, sub=None):
        res = t.get(key, {})
        if sub is not None:
            res = res.get(sub, {})
        ref = res.get("stunnel", {}).get(field)
        cells = []
        for n in names:
            v = res.get(n)
            if v is None:
                cells.append("—" if n == "direct" else "not measured")
            else:
                cells.append(cell(v.get(field), ref, digits, v.get("errors", 0)))
        rows.append("| %s | %s | %s |" % (label, " | ".join(cells), target))

    meta = results["meta"]
    lines = []
    lines.append("Medians of %d interleaved round%s (idle memory: %d); in brackets: ratio to "
                 "stunnel in the same run.  %s, %d CPUs, Linux %s; tlsfwd %s, stunnel %s (%s), "
                 "socat %s.%s" % (
                     meta["rounds"], "" if meta["rounds"] == 1 else "s", meta["idle_rounds"],
                     meta["versions"]["cpu"], meta["versions"]["cpus"], meta["versions"]["kernel"],
                     meta["tlsfwd_version"], meta["versions"]["stunnel"],
                     meta["versions"]["stunnel_openssl"], meta["versions"]["socat"],
                     "  **Quick smoke run (BENCH_QUICK=1): small sizes, not for comparison.**"
                     if meta["quick"] else ""))
    lines.append("")
    lines.append("| | direct | tlsfwd | stunnel | socat | target for tlsfwd |")
    lines.append("|---|---:|---:|---:|---:|---|")
    c = meta["config"]
    row("Bulk, 1 connection (MB/s)", "bulk1", "mb_s", 0, "≥ 1.5×")
    row("Bulk, 8 connections (MB/s)", "bulk8", "mb_s", 0, "≥ 1.5×")
    row("Request/reply p50 (µs)", "rr", "p50_us", 0, "")
    row("Request/reply p99 (µs)", "rr", "p99_us", 0, "≤ 0.8×")
    row("Connection setups/s (%d workers)" % c["setup_workers"], "setup", "per_s", 0, "≥ 2×")
    row("CPU ms per connection setup (both ends)", "setup", "cpu_ms_per_conn", 2, "")
    for n in c["idle_counts"]:
        row("Idle memory, %s conns (RSS KiB/conn, both ends)" % "{:,}".format(n), "idle",
            "rss_kib_per_conn", 1, "≤ 0.5× and ≤ 48 KiB", sub=str(n))
    for n in c["idle_counts"]:
        row("Idle memory, %s conns (PSS KiB/conn, both ends)" % "{:,}".format(n),
            "idle", "pss_kib_per_conn", 1, "", sub=str(n))
    row("CPU s/GiB, 1 connection (both ends)", "bulk1", "cpu_s_per_gib", 2, "≤ 0.7×")
    row("CPU s/GiB, 8 connections (both ends)", "bulk8", "cpu_s_per_gib", 2, "≤ 0.7×")
    lines += rows
    steal = {k: [r["host_steal_pct"] for v in t[k].values() if isinstance(v, dict)
                 for r in v.get("runs", []) if "host_steal_pct" in r]
             for k in ("bulk1", "bulk8", "rr", "setup") if k in t}
    steal = {k: v for k, v in steal.items() if v}
    if steal:
        lines += ["", "CPU time stolen by the hypervisor during the timed runs (of the machine's "
                  "total; a noisy host shows here, and in the direct column): " +
                  ", ".join("%s median %.0f%%, max %.0f%%" % (k, median(v), max(v))
                            for k, v in steal.items()) + "."]

    # request/reply beside a flood
    f = t.get("rr_flood", {})
    if f:
        fnames = ["direct", "tlsfwd", "tlsfwd-w1", "stunnel", "socat"]
        lines += ["", "Request/reply beside a flood: one connection sends as fast as it can "
                  "through the same pair while another does request/reply (%d round trips, "
                  "200 B / 40 B; tlsfwd-w1: `--workers 1` at both ends, so both connections "
                  "share one event loop):" % c.get("flood_rr_count", 0), "",
                  "| | " + " | ".join(fnames) + " |", "|---|" + "---:|" * len(fnames)]
        for label, field in (("p50 (µs)", "p50_us"), ("p99 (µs)", "p99_us"),
                             ("max (µs)", "max_us"), ("the flood meanwhile (MB/s)", "flood_mb_s")):
            lines.append("| %s | %s |" % (label, " | ".join(
                fmt_num(f.get(n, {}).get(field), 0) for n in fnames)))

    # workers
    w = t.get("workers", {})
    if w:
        lines += ["", "tlsfwd scaling with `--workers` (both ends):", "",
                  "| | --workers 1 | --workers 2 | 2 ÷ 1 |", "|---|---:|---:|---:|"]
        for label, key, field in (("Bulk, 8 connections (MB/s)", "bulk8", "mb_s"),
                                  ("Bulk, 1 connection (MB/s)", "bulk1", "mb_s"),
                                  ("Connection setups/s (4 workers)", "setup", "per_s")):
            d = w.get(key)
            if not d:
                continue
            a = d.get("tlsfwd-w1", {}).get(field)
            b = d.get("tlsfwd-w2", {}).get(field)
            lines.append("| %s | %s | %s | %s |" % (label, fmt_num(a, 0), fmt_num(b, 0),
                                                    "%.2f×" % (b / a) if a and b else "—"))

    # handshakes
    h = t.get("handshake", {})
    probe = results["tests"].get("probe", {})
    if h:
        lines += ["", "Full versus resumed TLS handshakes (connection setups/s, %d workers; "
                  "TLS link bytes up/down per connection incl. 100+40 B of data and framing):"
                  % c["setup_workers"], "",
                  "| | full handshake | resumed | resumed ÷ full | bytes, full | bytes, resumed | "
                  "resumed in probe |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name in ("tlsfwd", "stunnel", "socat"):
            d = h.get(name)
            if not d:
                continue
            pr = probe.get(d.get("probe_full") or name, {})
            prr = probe.get(d.get("probe_resumed") or name, {})
            f, r = d.get("full"), d.get("resumed")
            fb = pr.get("full_bytes_up_down")
            rb = prr.get("resumed_bytes_up_down")
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, d.get("full_note") or fmt_num(f, 0), d.get("resumed_note") or fmt_num(r, 0),
                "%.2f×" % (r / f) if f and r else "—",
                "%d / %d" % tuple(fb) if fb and None not in fb else "—",
                "%d / %d" % tuple(rb) if rb and None not in rb else "—",
                "%d of %d" % (prr.get("resumed", 0), prr.get("connections", 0)) if prr else "—"))
        for note in h.get("_notes", []):
            lines += ["", note]

    ciphers = ", ".join("%s %s" % (k.replace("-probe", ""), v.get("cipher") or "?")
                        for k, v in probe.items() if not k.endswith("-full") and
                        not k.endswith("-noresume"))
    if ciphers:
        lines += ["", "Negotiated (TLS 1.3, ECDSA P-256 certificates, each tool's defaults): "
                  + ciphers + "."]
    if results["problems"]:
        lines += ["", "**Problems in this run** (numbers with ⚠ are not trustworthy):", ""]
        lines += ["- " + p for p in results["problems"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ main

def no_resume_args():
    """The tlsfwd-client switch for full handshakes (BENCH_TLSFWD_NO_RESUME overrides)."""
    env = os.environ.get("BENCH_TLSFWD_NO_RESUME")
    if env is not None:
        return env.split() or None
    return ["--no-tls-resume"]


def main():
    t_start = time.time()
    os.makedirs(RUN, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    # Each daemon holds two descriptors per tunnelled connection, and stunnel admits at most
    # RLIMIT_NOFILE*125/256 clients: without CAP_SYS_RESOURCE the hard limit caps the count.
    notes = []
    fit = min((soft - 100) // 2, soft * 125 // 256 - 16) // 100 * 100
    for i, n in enumerate(CFG["idle_counts"]):
        if n > fit:
            notes.append("Idle memory: %s connections asked for, measured at %s: the hard "
                         "RLIMIT_NOFILE here is %d (each daemon needs two descriptors per "
                         "connection and stunnel admits ulimit×125/256 clients); %d would do."
                         % ("{:,}".format(n), "{:,}".format(fit), soft, 2 * n * 256 // 250 + 100))
            CFG["idle_counts"][i] = fit
    if fit < 100:
        log("bench: RLIMIT_NOFILE is %d: too low for the idle test; raise ulimit -n" % soft)
        return 2
    for binary in (BUILT_CLIENT, BUILT_SERVER, LG):
        if not os.access(binary, os.X_OK):
            log("bench: %s is missing: run make (and bench/run.sh)" % binary)
            return 2
    os.makedirs(os.path.dirname(CLIENT), exist_ok=True)
    built = {}
    for src, dst in ((BUILT_CLIENT, CLIENT), (BUILT_SERVER, SERVER)):
        shutil.copy2(src, dst + ".tmp")
        os.replace(dst + ".tmp", dst)
        with open(dst, "rb") as f:
            built[os.path.basename(dst)] = {
                "sha256": hashlib.sha256(f.read()).hexdigest(),
                "mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.stat(src).st_mtime))}

    results = {"meta": {"quick": QUICK, "rounds": ROUNDS, "idle_rounds": IDLE_ROUNDS,
                        "config": CFG, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "loadavg_start": read("/proc/loadavg").split()[:3],
                        "versions": versions(), "binaries": built},
               "tests": {"notes": notes}, "problems": PROBLEMS}
    RESULTS.update(results)
    results = RESULTS
    for f in ("results.json", "results.md"):
        try:
            os.unlink(os.path.join(OUT, f))
        except OSError:
            pass
    results["meta"]["tlsfwd_version"] = re.sub(r"^tlsfwd-client ", "", (
        results["meta"]["versions"]["tlsfwd"] or ["?"])[0])
    tests = results["tests"]

    sink_port = pick_port()
    sink_log = open(os.path.join(RUN, "sink.log"), "w")
    sink = spawn([LG, "sink", sink_port, 2], stderr=sink_log)
    sink_log.close()
    wait_ready("sink", [sink], [sink_port])
    log("bench: sink on 127.0.0.1:%d; %s, %d round%s; RLIMIT_NOFILE %d" % (
        sink_port, "QUICK" if QUICK else "full", ROUNDS, "" if ROUNDS == 1 else "s", soft))

    nores = no_resume_args()
    direct = Direct("direct", sink_port)
    tlsfwd = Tlsfwd("tlsfwd", sink_port)
    stunnel = Stunnel("stunnel", sink_port)
    socat = Socat("socat", sink_port)
    main_pairs = [direct, tlsfwd, stunnel, socat]
    w1 = Tlsfwd("tlsfwd-w1", sink_port, workers=1)
    w2 = Tlsfwd("tlsfwd-w2", sink_port, workers=2)
    st_full = Stunnel("stunnel-noresume", sink_port, resume=False)
    st_full.probe_kw = {"resume": False}
    tf_full = Tlsfwd("tlsfwd-full", sink_port, extra=nores) if nores else None
    if tf_full:
        tf_full.probe_kw = {"extra": nores}

    # 1. the probe: ciphers, handshake sizes, whether sessions are resumed
    probe_pairs = [tlsfwd, stunnel, st_full, socat] + ([tf_full] if tf_full else [])
    probe = phase_probe(probe_pairs, sink_port, tests)

    extra_pairs = [w1, w2, st_full] + ([tf_full] if tf_full else [])
    for pair in main_pairs + extra_pairs:
        pair.start()
        smoke(pair)
    check_sink(sink_port, "the smoke tests")

    # 2. bulk throughput and CPU
    def bulkfmt(r):
        return "%8.1f MB/s%s" % (r["mb_s"], "  CPU %.2f s/GiB" % r["cpu_s_per_gib"]
                                 if r["cpu_s_per_gib"] is not None else "")
    for key, conns, nbytes in (("bulk1", 1, CFG["bulk1_bytes"]), ("bulk8", 8, CFG["bulk8_bytes"])):
        res = phase_interleaved(key, key, main_pairs, lambda p: run_bulk(p, conns, nbytes),
                                tests, bulkfmt)
        summarize(res, ["mb_s", "cpu_s_per_gib", "cpu_s", "seconds"])
        ratios_to(res, "mb_s")
        ratios_to(res, "cpu_s_per_gib")
        check_sink(sink_port, key)

    # 3. request/reply latency
    res = phase_interleaved("rr", "rr", main_pairs, lambda p: loadgen(
        p, "rr", p.port, CFG["rr_count"], CFG["rr_req"], CFG["rr_rep"], CFG["rr_warmup"]),
        tests, lambda r: "p50 %7.1f µs  p99 %8.1f µs" % (r["p50_us"], r["p99_us"]))
    summarize(res, ["p50_us", "p90_us", "p99_us", "p999_us", "mean_us"])
    for f in ("p50_us", "p99_us"):
        ratios_to(res, f)
    check_sink(sink_port, "rr")

    # 3b. request/reply beside a flood on another connection; tlsfwd also with one worker,
    # where both connections always share one event loop
    res = phase_interleaved("rr-flood", "rr_flood", main_pairs[:2] + [w1] + main_pairs[2:],
                            rr_beside_flood, tests,
                            lambda r: "p50 %7.1f µs  p99 %8.1f µs  max %8.1f µs  flood %6.0f MB/s"
                            % (r["p50_us"], r["p99_us"], r["max_us"], r["flood_mb_s"]))
    summarize(res, ["p50_us", "p99_us", "max_us", "flood_mb_s"])
    check_sink(sink_port, "rr-flood")

    # 4. connection setup rate
    def setup(p):
        c0 = cpu_seconds(p.roots()) if p.procs else None
        r = loadgen(p, "setup", p.port, CFG["setup_workers"], CFG["setup_secs"],
                    CFG["setup_req"], CFG["setup_rep"], timeout=CFG["setup_secs"] + 120)
        r["cpu_ms_per_conn"] = None
        if p.procs and r["ok"]:
            p.settle()
            r["cpu_ms_per_conn"] = (cpu_seconds(p.roots()) - c0) * 1000 / r["ok"]
        if r["errors"]:
            problem("%s: %d of %d connection setups failed (last: %s)" % (
                p.name, r["errors"], r["errors"] + r["ok"], r["last_error"]))
        return r

    def setupfmt(r):
        return "%8.1f setups/s  p50 %7.0f µs  p99 %7.0f µs  CPU %s ms/conn%s" % (
            r["per_s"], r["p50_us"], r["p99_us"], fmt_num(r["cpu_ms_per_conn"], 2),
            "  %d ERRORS (%s)" % (r["errors"], r["last_error"]) if r["errors"] else "")
    res = phase_interleaved("setup", "setup", main_pairs, setup, tests, setupfmt)
    summarize(res, ["per_s", "p50_us", "p99_us", "cpu_ms_per_conn"])
    ratios_to(res, "per_s")
    ratios_to(res, "cpu_ms_per_conn")
    check_sink(sink_port, "setup")

    # 5. tlsfwd --workers 1 vs 2
    wres = tests.setdefault("workers", {})
    for key, conns, nbytes in (("bulk8", 8, CFG["bulk8_bytes"]), ("bulk1", 1, CFG["bulk1_bytes"] // 2)):
        r = phase_interleaved("w-" + key, "_w_" + key, [w1, w2],
                              lambda p: run_bulk(p, conns, nbytes), tests, bulkfmt)
        summarize(r, ["mb_s", "cpu_s_per_gib"])
        wres[key] = tests.pop("_w_" + key)
    r = phase_interleaved("w-setup", "_w_setup", [w1, w2], setup, tests, setupfmt)
    summarize(r, ["per_s", "p50_us", "p99_us", "cpu_ms_per_conn"])
    wres["setup"] = tests.pop("_w_setup")

    # 6. full versus resumed handshakes
    hs = {"_notes": []}
    # resumed and full interleaved in this phase of their own
    hpairs = [stunnel, st_full] + ([tlsfwd, tf_full] if tf_full else [])
    r = phase_interleaved("handshake", "_hs", hpairs, setup, tests, setupfmt)
    summarize(r, ["per_s", "p50_us", "p99_us", "cpu_ms_per_conn"])
    tests.pop("_hs")
    setup_res = dict(tests["setup"], **r)
    tf_probe = probe.get("tlsfwd", {})
    tf_resumes = tf_probe.get("resumed", 0) > 0
    hs["stunnel"] = {"full": r["stunnel-noresume"]["per_s"], "resumed": setup_res["stunnel"]["per_s"],
                     "probe_full": "stunnel-noresume", "probe_resumed": "stunnel"}
    hs["socat"] = {"full": setup_res["socat"]["per_s"], "resumed": None,
                   "resumed_note": "not supported (a fresh process per connection)"}
    if tf_full:
        hs["tlsfwd"] = {"full": r["tlsfwd-full"]["per_s"], "resumed": setup_res["tlsfwd"]["per_s"],
                        "probe_full": "tlsfwd-full", "probe_resumed": "tlsfwd"}
        hs["_notes"].append("tlsfwd full handshakes: client started with `%s`." % " ".join(nores))
    else:
        hs["tlsfwd"] = {"full": None, "resumed": setup_res["tlsfwd"]["per_s"],
                        "full_note": "not measured (BENCH_TLSFWD_NO_RESUME is empty)",
                        "probe_full": "tlsfwd", "probe_resumed": "tlsfwd"}
    if not tf_resumes:
        hs["_notes"].append("tlsfwd resumed no session in the probe (%d connections): its "
                            "setup rate above is full handshakes."
                            % tf_probe.get("connections", 0))
    tests["handshake"] = hs

    for pair in main_pairs + extra_pairs:
        if not pair.alive():
            problem("%s: a daemon of the pair died during the run" % pair.name)
        pair.stop()

    # 7. idle memory, fresh daemons each time
    phase_idle([("tlsfwd", lambda: Tlsfwd("tlsfwd", sink_port)),
                ("stunnel", lambda: Stunnel("stunnel", sink_port)),
                ("socat", lambda: Socat("socat", sink_port))], sink_port, tests)
    for n, byname in tests["idle"].items():
        for f in ("rss_kib_per_conn", "pss_kib_per_conn", "delta_rss_kib_per_conn"):
            ratios_to(byname, f)
    if max(CFG["idle_counts"]) > CFG["socat_idle_max"]:
        tests.setdefault("notes", []).append(
            "socat forks a process per connection; it is measured at %d connections at most."
            % CFG["socat_idle_max"])

    results["meta"]["sink_final"] = check_sink(sink_port, "the run")
    results["meta"]["loadavg_end"] = read("/proc/loadavg").split()[:3]
    results["meta"]["seconds"] = round(time.time() - t_start, 1)
    stop(sink)
    write_results(results)
    return 1 if PROBLEMS else 0


def write_results(results):
    md = render(results)
    if results["tests"].get("notes"):
        md += "\n" + "\n".join(results["tests"]["notes"]) + "\n"
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    log("bench: %s and %s written (%.0f s)" % (os.path.join(OUT, "results.json"),
                                                  os.path.join(OUT, "results.md"),
                                                  results["meta"].get("seconds", 0)))


def on_signal(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started ignoring it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 2
    try:
        rc = main()
    except BenchError as e:
        log("bench: FAILED: %s" % e)
        rc = 1
        if RESULTS:
            PROBLEMS.append("the run stopped early: %s" % str(e).splitlines()[0])
            try:
                stop_all()
                write_results(RESULTS)
            except Exception as e2:     # the partial results are a courtesy
                log("bench: could not write the partial results: %s" % e2)
    except KeyboardInterrupt:
        log("bench: interrupted")
        rc = 130
    finally:
        stop_all()
        try:
            os.unlink(PIDFILE)
        except OSError:
            pass
    sys.exit(rc)
