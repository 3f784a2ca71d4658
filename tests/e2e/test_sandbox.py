"""Privileges and sandbox (issue 14 §3): --user drops root for good once the
listeners are bound and the files loaded; the sandbox (Landlock where the
kernel has it, and a seccomp allow-list) is on by default, and the daemon
serves, reloads and reopens its audit file under it.

The denied open is real, not a test hook: the server re-reads its allow-file
on SIGHUP, and the test turns that file (a symbolic link) to a directory the
configuration never named; Landlock refuses the open (EACCES) and the reload
fails, keeping the rules in force.  With --no-sandbox the same reload works.

Under valgrind (make valgrind) the sandbox is off (conftest.py says why):
the tests that need it are skipped there; the --user ones run."""

import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import VALGRIND, daemon_command, free_port, send_and_expect, wait_time
from pki import Identity
from test_audit import read_events
from test_reload import second_server, served_subject, wait_reload_error, wait_reloads  # noqa: F401

needs_sandbox = pytest.mark.skipif(VALGRIND, reason="valgrind has no landlock or seccomp: "
                                   "the daemons run with --no-sandbox under it")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root")


def status(daemon):
    """/proc/PID/status of a daemon as {field: value}."""
    with open(f"/proc/{daemon.pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def relay_one(tf, server, sink):
    """A connection through a client and server, bytes both ways."""
    client = tf.client(server, no_tls_resume=True)
    app = tf.connect(client)
    far = sink.accept()
    send_and_expect(app, far, b"x" * 5000)
    send_and_expect(far, app, b"y" * 50)
    app.close()
    far.close()
    return client


@pytest.fixture
def live(tmp_path, pki):
    """A server identity in its own directory, which the test may rewrite."""
    d = tmp_path / "live"
    d.mkdir()
    shutil.copyfile(pki.server.cert, d / "server.crt")
    shutil.copyfile(pki.server.key, d / "server.key")
    (d / "server.key").chmod(0o600)
    return Identity(name="live", cert=d / "server.crt", key=d / "server.key")


@needs_sandbox
def test_serves_reloads_and_reopens_under_the_sandbox(tf, pki, tmp_path, live, second_server):
    (tmp_path / "audit").mkdir()
    audit = tmp_path / "audit" / "audit.jsonl"
    sink = tf.tcp_sink()
    server = tf.server(sink, identity=live, audit_file=audit)
    st = status(server)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
    assert server.wait_for(lambda r: r.get("msg", "").startswith("sandbox on"))
    root = [r for r in server.records() if r.get("msg", "").startswith("running as root")]
    if os.geteuid() == 0:
        assert len(root) == 1 and root[0]["level"] == "warn", root
    client = relay_one(tf, server, sink)
    assert status(client)["Seccomp"] == "2"
    read_events(audit, 2)                         # accept, close

    # SIGHUP: the new certificate is read under the sandbox.
    shutil.copyfile(second_server.cert, live.cert)
    shutil.copyfile(second_server.key, live.key)
    server.signal(signal.SIGHUP)
    wait_reloads(server, "SIGHUP")
    assert served_subject(pki, server) == "second.test"
    sink.accept().close()                         # what served_subject opened

    # SIGUSR1 after logrotate moved the file: created again in its directory.
    audit.rename(audit.with_suffix(".1"))
    server.signal(signal.SIGUSR1)
    relay_one(tf, server, sink)
    read_events(audit, 2)
    for d in (server, client):
        assert not [r for r in d.records() if "denied by the sandbox" in r.get("msg", "")], \
            d.describe()


# mount(2)'s number on the architectures whose SIGSYS the daemon reports.
MOUNT_NR = {"x86_64": 165, "aarch64": 40}


@needs_sandbox
@pytest.mark.skipif(platform.machine() not in MOUNT_NR,
                    reason="the daemon names a denied call on x86-64 and arm64 only")
def test_a_denied_system_call_fails_with_eperm_and_is_logged(tf):
    """gdb makes the running server call mount(2), which the allow-list does
    not hold: the call fails with EPERM, one error line names it, and the
    server keeps serving (SIGSYS caught, not the process killed)."""
    sink = tf.tcp_sink()
    server = tf.server(sink)
    server.expect_denied = True
    nr = MOUNT_NR[platform.machine()]
    p = subprocess.run(["gdb", "-p", str(server.pid), "-batch", "-nx",
                        "-ex", "handle SIGSYS nostop noprint pass",
                        "-ex", f"print (long)syscall({nr}, 0, 0, 0, 0, 0)",
                        "-ex", "print *(int *)__errno_location()"],
                       capture_output=True, text=True, timeout=wait_time(60))
    assert "$1 = -1" in p.stdout and "$2 = 1" in p.stdout, p.stdout + p.stderr   # EPERM
    rec = server.wait_for(lambda r: "denied by the sandbox" in r.get("msg", ""))
    assert rec["level"] == "error" and rec["syscall"] == str(nr), rec
    relay_one(tf, server, sink)


def allow_file_setup(tmp_path, pki):
    """The allow-file as a symbolic link into rules/a/, and a rule file in a
    directory the configuration does not name."""
    rules = tmp_path / "rules"
    (rules / "a").mkdir(parents=True)
    (rules / "a" / "allow").write_text("cn:client.test\n")
    link = rules / "allow"
    link.symlink_to("a/allow")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "allow").write_text("cn:client.test\n")
    return link, outside / "allow"


def retarget(link, target):
    tmp = link.with_name("allow.tmp")
    tmp.symlink_to(target)
    tmp.rename(link)


@needs_sandbox
def test_an_open_outside_the_named_directories_is_denied(tf, pki, tmp_path):
    link, outside = allow_file_setup(tmp_path, pki)
    server = tf.server(tf.tcp_sink(), allow_file=link)
    server.signal(signal.SIGHUP)
    wait_reloads(server, "SIGHUP")                # the named directory: allowed
    retarget(link, outside)
    server.signal(signal.SIGHUP)
    rec = wait_reload_error(server, 1)
    assert "Permission denied" in rec["reason"] and str(link) in rec["reason"], rec
    assert served_subject(pki, server) == "localhost"   # the rules in force stay


def test_no_sandbox_turns_both_off(tf, pki, tmp_path):
    link, outside = allow_file_setup(tmp_path, pki)
    server = tf.server(tf.tcp_sink(), allow_file=link, no_sandbox=True)
    assert status(server)["Seccomp"] == "0"
    assert server.wait_for(lambda r: r.get("msg") == "sandbox off (--no-sandbox)")
    retarget(link, outside)
    server.signal(signal.SIGHUP)
    wait_reloads(server, "SIGHUP")                # Landlock off: the open works


@pytest.fixture
def shared_pki(pki, second_server):
    """The certificates in a directory `nobody` can read (pytest's tmp dirs
    are 0700): a copy made world-traversable, the keys owned by nobody."""
    nobody = pwd.getpwnam("nobody")
    d = tempfile.mkdtemp(prefix="tlsfwd-sandbox-")
    os.chmod(d, 0o755)
    files = {"ca.crt": pki.ca.cert, "server.crt": pki.server.cert,
             "server.key": pki.server.key, "second.crt": second_server.cert,
             "second.key": second_server.key}
    for name, src in files.items():
        shutil.copyfile(src, os.path.join(d, name))
        os.chmod(os.path.join(d, name), 0o600 if name.endswith(".key") else 0o644)
        os.chown(os.path.join(d, name), nobody.pw_uid, nobody.pw_gid)
    yield d
    shutil.rmtree(d)


def free_low_port():
    """A free TCP port below 1024 on 127.0.0.1 (binding it needs root)."""
    for port in range(900, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    pytest.skip("no free port below 1024")


@needs_root
def test_user_nobody_binds_a_low_port_serves_and_reloads(tf, pki, shared_pki):
    nobody = pwd.getpwnam("nobody")
    ident = Identity("shared", Path(shared_pki) / "server.crt", Path(shared_pki) / "server.key")
    sink = tf.tcp_sink()
    server = tf.server(sink, identity=ident, ca=os.path.join(shared_pki, "ca.crt"),
                       listen=f"127.0.0.1:{free_low_port()}", user="nobody")
    st = status(server)
    uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
    assert st["Uid"].split() == [uid] * 4 and st["Gid"].split() == [gid] * 4, st
    groups = sorted(g for g in os.getgrouplist("nobody", nobody.pw_gid))
    assert sorted(int(g) for g in st["Groups"].split()) == groups, st
    assert st["CapEff"] == "0000000000000000", st
    assert not [r for r in server.records() if r.get("msg", "").startswith("running as root")]
    relay_one(tf, server, sink)
    shutil.copyfile(os.path.join(shared_pki, "second.crt"), ident.cert)
    shutil.copyfile(os.path.join(shared_pki, "second.key"), ident.key)
    server.signal(signal.SIGHUP)
    wait_reloads(server, "SIGHUP")                # read as nobody
    assert served_subject(pki, server) == "second.test"


def server_args(pki, *extra):
    return ["--listen", f"127.0.0.1:{free_port()}", "--upstream", "127.0.0.1:9",
            "--ca", pki.ca.cert, "--cert", pki.server.cert, "--key", pki.server.key, *extra]


@needs_root
def test_an_unknown_user_is_a_startup_error(tf, pki):
    p = tf.run("tlsfwd-server", *server_args(pki, "--user", "no-such-user-tlsfwd"))
    assert p.returncode == 1, p
    assert "--user: no-such-user-tlsfwd: no such user" in p.stderr, p.stderr
    p = tf.run("tlsfwd-server", *server_args(pki, "--user", "no-such-user-tlsfwd", "--check"))
    assert p.returncode == 1 and "no such user" in p.stderr, p
    p = tf.run("tlsfwd-client", "--listen", f"127.0.0.1:{free_port()}", "--server",
               "127.0.0.1:9", "--ca", pki.ca.cert, "--cert", pki.client.cert, "--key",
               pki.client.key, "--user", "nobody:no-such-group-tlsfwd")
    assert p.returncode == 1, p
    assert "no-such-group-tlsfwd: no such group" in p.stderr, p.stderr


@needs_root
def test_not_root_cannot_switch_to_another_user(tf, pki, shared_pki):
    nobody = pwd.getpwnam("nobody")
    args = ["--listen", f"127.0.0.1:{free_port()}", "--upstream", "127.0.0.1:9",
            "--ca", os.path.join(shared_pki, "ca.crt"),
            "--cert", os.path.join(shared_pki, "server.crt"),
            "--key", os.path.join(shared_pki, "server.key"), "--user", "root"]
    logs = os.path.join(shared_pki, "logs")      # valgrind's log, written as nobody
    os.mkdir(logs)
    os.chown(logs, nobody.pw_uid, nobody.pw_gid)
    cmd = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
           *daemon_command("tlsfwd-server", args, os.path.join(logs, "server.valgrind"))]
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=wait_time(30))
    assert p.returncode == 1, p
    assert "--user: root: only root can switch to another user" in p.stderr, p.stderr
