"""The Makefile: `make -j` from a tree without build/ runs scripts/deps.sh once,
and the preload shim carries only the client.

A dry run (make -n) in a directory that links the sources but has no build/,
so nothing is built and apt is never touched.  The shim is read with nm: its
static symbols name every module linked into it."""

import subprocess

import pytest

from conftest import BUILD, ROOT


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


# Modules the preload shim (client/preload*.c over client/ and shared/) can
# never call, by their symbols: exact names, or a prefix ending in '_'.
SHIM_NEVER = {
    "the DER writer (certs/der_buf.c)": ("der_buf_", "der_put", "der_put_tlv"),
    "the certificate printers (certs/text.c)": ("text_", "x509_name_text", "x509_gn_text",
                                                "x509_pem"),
    # --metrics-listen is the daemons' (shared/metrics_http.c, libmicrohttpd)
    "the metrics HTTP server (shared/metrics_http.c)": ("metrics_http", "MHD_", "http_start"),
    # The shim installs no sandbox and drops no privileges (it lives in
    # someone else's program): neither libseccomp nor shared/sandbox.c.
    "the sandbox (shared/sandbox.c, libseccomp)": ("seccomp_", "landlock", "sigsys"),
}
# The server's modules (server/audit*.c, authz*.c, peers.c, ratelimit.c,
# admit.c): the shared code reaches them only through server_role.
SHIM_NEVER_SERVER = ("audit_", "authz_", "peers_", "ratelimit_", "admit_", "server_")


def shim_symbols():
    """The names in the preload shim's symbol table (static ones included)."""
    shim = BUILD / "libtlsfwd-preload.so"
    if not shim.exists():
        pytest.fail(f"{shim} does not exist (build it, or set TLSFWD_BUILD)", pytrace=False)
    p = subprocess.run(["nm", str(shim)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    names = {l.split()[-1] for l in p.stdout.splitlines() if l.strip()}
    # nm must see the internals, or every check below passes for nothing
    assert "preload_constructor" in names, "nm shows none of the shim's own functions (stripped?)"
    return names


def found(names, patterns):
    return sorted(n for n in names for p in patterns
                  if (n.startswith(p) if p.endswith("_") else n == p))


@pytest.mark.parametrize("module", sorted(SHIM_NEVER))
def test_shim_carries_only_the_client(module):
    assert found(shim_symbols(), SHIM_NEVER[module]) == [], f"the shim links {module}"


@pytest.mark.parametrize("prefix", SHIM_NEVER_SERVER)
def test_shim_carries_no_server_module(prefix):
    assert found(shim_symbols(), (prefix,)) == [], f"the shim links {prefix}*"


def test_shim_does_not_link_libmicrohttpd():
    shim = BUILD / "libtlsfwd-preload.so"
    p = subprocess.run(["readelf", "-d", str(shim)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "NEEDED" in p.stdout and "microhttpd" not in p.stdout
