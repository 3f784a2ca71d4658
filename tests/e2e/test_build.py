"""The Makefile: `make -j` from a tree without build/ runs scripts/deps.sh once.

A dry run (make -n) in a directory that links the sources but has no build/,
so nothing is built and apt is never touched."""

import subprocess

import pytest

from conftest import ROOT


def deps_runs(tmp_path, *goals):
    """The scripts/deps.sh lines `make -n -j4 GOALS` would run in a tree without build/."""
    for name in ("Makefile", "shared", "client", "server", "certs", "tests", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    p = subprocess.run(["make", "-n", "-j4", "-C", str(tmp_path), *goals],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [l.strip() for l in p.stdout.splitlines() if "scripts/deps.sh" in l]


@pytest.mark.parametrize("goals", [["all"], ["deps", "all"], ["unit"], ["fuzz-build"]])
def test_clean_tree_runs_deps_once(tmp_path, goals):
    runs = deps_runs(tmp_path, *goals)
    assert runs == ["scripts/deps.sh"], runs


def test_clean_tree_system_wolfssl_runs_deps_once(tmp_path):
    assert deps_runs(tmp_path, "WOLFSSL=system", "all") == ["scripts/deps.sh system"]


def test_built_tree_does_not_run_deps():
    p = subprocess.run(["make", "-n", "-C", str(ROOT), "B=build/test-build-dry", "all"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "scripts/deps.sh" not in p.stdout
