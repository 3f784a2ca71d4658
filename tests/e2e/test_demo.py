"""`make demo` (scripts/demo.sh), the README's first command: a pair on loopback
with throwaway certificates, one event through the pair and one from an
unmodified program through the preload shim, both seen by the sink."""

import os
import subprocess

from conftest import ROOT, free_port, wait_time


def test_demo_delivers_through_the_pair_and_the_shim():
    env = dict(os.environ, DEMO_CLIENT=str(free_port()), DEMO_SERVER=str(free_port()),
               DEMO_SINK=str(free_port()))
    r = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                       capture_output=True, text=True, timeout=wait_time(120))
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'demo.hello: {"message":"hello through tlsfwd"}' in r.stdout, r.stdout
    assert "demo.inline: " in r.stdout, r.stdout
