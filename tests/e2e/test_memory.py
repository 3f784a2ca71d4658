"""Memory comes back after a burst: once thousands of connections have come
and gone, the daemons' RSS returns close to where it was before."""

import time
from datetime import datetime

from conftest import (BUILD, MiB, SCALE, VALGRIND, RssSampler, Tunnel, assert_delivered,
                      pair_endpoints, run_endpoints, send_and_expect, wait_time)


def sanitized():
    """The daemons are an ASan build: its allocator keeps freed memory in a
    quarantine and its own pools, so RSS says nothing about ours."""
    return b"__asan_init" in (BUILD / "tlsfwd-server").read_bytes()


def trims(d):
    """The daemon's "memory trimmed" records so far."""
    return [r for r in d.records() if r.get("msg") == "memory trimmed"]


def wait_idle_trim(d, since):
    """Wait for a trim that found no connection open, logged after the wall
    clock time `since`, when connections were open: they are gone now and
    their memory was handed back.  (ts has whole milliseconds: one of slack.)"""
    deadline = time.monotonic() + wait_time(15)
    while not any(r.get("active") == "0" and
                  datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() >= since - 0.001
                  for r in trims(d)):
        assert d.running, d.describe()
        assert time.monotonic() < deadline, \
            f"{d.name}: no memory trim once its connections were gone\n{d.describe()}"
        time.sleep(0.1)





def test_memory_is_returned_after_a_burst(tf, capsys):
    """2,000 connections of 1 MiB each, all open at once, then all closed: each
    daemon's RSS ends within a few MiB of what it was before the burst (the
    allocator keeps freed memory unless it is given back).  Under valgrind or
    ASan RSS means nothing: the traffic runs, the numbers are only printed."""
    conns = max(40, int(2000 * min(SCALE, 1.0)))
    debug = dict(log_level="debug")     # "memory trimmed" lines say what a trim cost
    tunnel = Tunnel(tf, server_opts=debug, client_opts=debug)
    daemons = [tunnel.client, tunnel.server]
    # Warm up (TLS state, the allocator's own structures) and let it settle:
    # the daemons trim once the connections are gone.
    for _ in range(4):
        app, far = tunnel.open()
        since = time.time()
        send_and_expect(app, far, b"x" * MiB)
        app.close()
        far.close()
    for d in daemons:
        wait_idle_trim(d, since)
    before = {d.name: d.rss_kib() for d in daemons}
    sampler = RssSampler(daemons)
    try:
        pairs = [tunnel.open() for _ in range(conns)]
        since = time.time()             # all open: the next idle trim comes after the burst
        endpoints = []
        for app, far in pairs:
            endpoints += pair_endpoints(app, far, MiB, 0, chunk=256 * 1024)
        run_endpoints(endpoints, timeout=wait_time(300))
        for a, b in zip(endpoints[::2], endpoints[1::2]):
            assert_delivered(a, b)
        for app, far in pairs:
            app.close()
            far.close()
    finally:
        sampler.stop()
        peak = sampler.peak
    # The daemons close their ends as ours go, then trim with none left.
    for d in daemons:
        wait_idle_trim(d, since)
    after = {d.name: d.rss_kib() for d in daemons}
    # Idle now: no more trims (two periods of the check).
    done = {d.name: len(trims(d)) for d in daemons}
    time.sleep(2.5)
    idle = {d.name: len(trims(d)) - done[d.name] for d in daemons}
    with capsys.disabled():
        for n in before:
            print(f"\n{n}: RSS before {before[n] // 1024} MiB, peak {peak[n] // 1024} MiB, "
                  f"after {after[n] // 1024} MiB ({conns} connections of 1 MiB)", end="")
        for d in daemons:
            took = [float(r["took"]) for r in trims(d)]
            print(f"\n{d.name}: {len(took)} trims, longest {max(took, default=0) * 1000:.2f} ms",
                  end="")
        print()
    assert idle == {d.name: 0 for d in daemons}, f"trims while idle: {idle}"
    if VALGRIND or sanitized():
        return
    slack = 4 * 1024                    # KiB
    for n in before:
        assert after[n] <= before[n] + slack, \
            f"{n}: RSS {after[n]} KiB after the burst, {before[n]} KiB before (peak {peak[n]})"
