"""Startup and configuration: encrypted keys, config files, --check,
--version, the plaintext-listener guard and the log formats."""

import json
import re

import pytest

import os
import shutil
import subprocess

from conftest import (Tunnel, daemon_command, exchange, flags, fmt_addr, free_port,
                      parse_log_line, wait_closed, wait_time)

PASS_ENV = "TLSFWD_E2E_KEY_PASS"


def parse_check(stdout):
    """--check output (config-file syntax) -> {key: [values]}, comments skipped."""
    out = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"--check printed a line that is not `key = value`: {line!r}"
        out.setdefault(key.strip(), []).append(value.strip())
    return out


# -- encrypted keys ------------------------------------------------------------

@pytest.mark.parametrize("source", ["env", "file", "file-with-newline"])
def test_encrypted_key_with_passphrase(tf, source):
    enc = tf.pki.client_encrypted
    if source == "env":
        opts, env = dict(key_pass_env=PASS_ENV), {PASS_ENV: enc.passphrase}
    else:
        newline = "\n" if source == "file-with-newline" else ""
        pass_file = tf.file("key.pass", enc.passphrase + newline)
        pass_file.chmod(0o600)
        opts, env = dict(key_pass_file=pass_file), None
    tunnel = Tunnel(tf, client_opts=dict(identity=enc, env=env, **opts))
    exchange(*tunnel.open())


@pytest.mark.parametrize("prog", ["tlsfwd-client", "tlsfwd-server"])
def test_wrong_passphrase_is_a_clear_startup_error(tf, prog):
    enc = tf.pki.client_encrypted
    opts = dict(ca=tf.pki.ca.cert, cert=enc.cert, key=enc.key, key_pass_env=PASS_ENV,
                listen=f"127.0.0.1:{free_port()}")
    if prog == "tlsfwd-client":
        opts["server"] = f"127.0.0.1:{free_port()}"
    r = tf.run(prog, *flags(opts), env={PASS_ENV: "not the passphrase"})
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert str(enc.key) in r.stderr, f"stderr does not name the key file:\n{r.stderr}"


# -- config files ----------------------------------------------------------------

def base_config(tf, prog):
    lines = [f"ca = {tf.pki.ca.cert}"]
    if prog == "tlsfwd-client":
        lines += [f"cert = {tf.pki.client.cert}", f"key = {tf.pki.client.key}",
                  "server = 127.0.0.1:24284"]
    else:
        lines += [f"cert = {tf.pki.server.cert}", f"key = {tf.pki.server.key}",
                  "upstream = 127.0.0.1:24224"]
    return lines


@pytest.mark.parametrize("prog", ["tlsfwd-client", "tlsfwd-server"])
def test_config_file_then_flags_and_check_output(tf, prog):
    conf = tf.file("tlsfwd.conf", "\n".join([
        "# a comment line",
        *base_config(tf, prog),
        "",
        "max-conns = 100   # a trailing comment",
        "drain-timeout = 5",
        "log-format = json",
    ]) + "\n")
    r = tf.run(prog, "--config", conf, "--max-conns", "7", "--check")
    assert r.returncode == 0, r.stderr
    got = parse_check(r.stdout)
    assert got["max-conns"] == ["7"], "the flag must override the file"
    assert got["drain-timeout"] == ["5"]
    assert got["log-format"] == ["json"]
    assert got["ca"] == [str(tf.pki.ca.cert)]

    # The output is itself a valid config file meaning the same thing.
    again = tf.file("again.conf", r.stdout)
    r2 = tf.run(prog, "--config", again, "--check")
    assert r2.returncode == 0, r2.stderr
    assert parse_check(r2.stdout) == got


def test_repeated_server_keys_make_a_list(tf):
    conf = tf.file("client.conf", "\n".join(base_config(tf, "tlsfwd-client") + [
        "server = [::1]:24285",
        "server = localhost:24286",
    ]) + "\n")
    r = tf.run("tlsfwd-client", "--config", conf, "--check")
    assert r.returncode == 0, r.stderr
    assert parse_check(r.stdout)["server"] == \
        ["127.0.0.1:24284", "[::1]:24285", "localhost:24286"]


BAD_LINES = {
    "unknown-key": ("no-such-option = 1", "no-such-option"),
    "bad-number": ("max-conns = lots", "max-conns"),
    "bad-tls-min": ("tls-min = 1.1", "tls-min"),
    "bad-address": ("listen = 127.0.0.1", "listen"),
    "bad-log-level": ("log-level = chatty", "log-level"),
    "no-equals": ("drain-timeout 5", None),       # no key to name: FILE:LINE: is enough
    # List options whose values are rules: checked as they are read, not at start-up.
    "bad-allow-net": ("allow-net = 10.0.0.1/8", "allow-net"),
    "bad-allow-spki": ("allow-spki = sha256:" + "ab" * 32, "allow-spki"),
    "bad-allow-fingerprint": ("allow-fingerprint = abcd", "allow-fingerprint"),
    "bad-allow-dns": ("allow-dns = a..example.com", "allow-dns"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_config_file_error_names_file_line_and_key(tf, case):
    line, key = BAD_LINES[case]
    lines = base_config(tf, "tlsfwd-server") + ["# before the bad line", line]
    conf = tf.file("bad.conf", "\n".join(lines) + "\n")
    r = tf.run("tlsfwd-server", "--config", conf, "--check")
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    want = f"{conf}:{len(lines)}:" + (f" {key}:" if key else "")
    assert want in r.stderr, r.stderr


def run_bytes(tf, prog, *args):
    """tf.run with stdout and stderr as bytes: what the terminal would get."""
    cmd = daemon_command(prog, [], tf.tmp / f"{prog}-bytes.valgrind")
    cmd += [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    return subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=wait_time(30))


def test_nul_byte_in_a_config_file_is_an_error(tf):
    """A NUL byte would cut the line short (here: the port) without a word."""
    lines = [line.encode() for line in base_config(tf, "tlsfwd-server")]
    conf = tf.tmp / "nul.conf"
    conf.write_bytes(b"\n".join(lines + [b"listen = 127.0.0.1:1\x0024284", b""]))
    r = tf.run("tlsfwd-server", "--config", conf, "--check")
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert f"{conf}:{len(lines) + 1}: NUL byte" in r.stderr, r.stderr


def test_binary_junk_in_a_config_file_is_escaped_in_the_error(tf):
    lines = [line.encode() for line in base_config(tf, "tlsfwd-server")]
    conf = tf.tmp / "junk.conf"
    conf.write_bytes(b"\n".join(lines + [b"\x1b[2J\x1b]0;owned\x07\xff\xfe = 1", b""]))
    r = run_bytes(tf, "tlsfwd-server", "--config", conf, "--check")
    assert r.returncode == 1, r.stderr
    assert f"{conf}:{len(lines) + 1}: ".encode() in r.stderr, r.stderr
    assert b"\\x1b[2J\\x1b]0;owned\\x07\\xff\\xfe: unknown option" in r.stderr, r.stderr
    assert all(b == 0x0a or 0x20 <= b < 0x7f for b in r.stderr), \
        f"raw bytes reached the terminal: {r.stderr!r}"


def test_binary_junk_in_an_allow_file_is_escaped_in_the_startup_error(tf):
    rules = tf.tmp / "allow.txt"
    rules.write_bytes(b"cn:web-1\n\x1b[2J\xff:x\n")
    r = run_bytes(tf, "tlsfwd-server", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.server.cert,
                                                   key=tf.pki.server.key, allow_file=rules)),
                  "--check")
    assert r.returncode == 1, r.stderr
    assert f"{rules}:2: ".encode() in r.stderr and b"\\x1b[2J\\xff" in r.stderr, r.stderr
    assert all(b == 0x0a or 0x20 <= b < 0x7f for b in r.stderr), \
        f"raw bytes reached the terminal: {r.stderr!r}"


@pytest.mark.parametrize("name", ["logs\x1b[2J.example.com", "logs.example.com\r",
                                  "b\xfccher.example"], ids=["escape", "cr", "latin1"])
def test_server_name_with_control_characters_is_refused(tf, name):
    r = run_bytes(tf, "tlsfwd-client", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert,
                                                   key=tf.pki.client.key,
                                                   server="127.0.0.1:24284")),
                  "--server-name", os.fsencode(name), "--check")
    assert r.returncode == 1, f"--check accepted it and printed:\n{r.stdout!r}"
    assert b"--server-name: " in r.stderr, r.stderr
    assert all(b == 0x0a or 0x20 <= b < 0x7f for b in r.stderr), r.stderr
    assert r.stdout == b"", r.stdout


def test_key_readable_by_others_warning_names_the_mode(tf):
    key = tf.tmp / "key.pem"
    shutil.copy(tf.pki.client.key, key)
    key.chmod(0o644)
    r = tf.run("tlsfwd-client", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert, key=key,
                                          server="127.0.0.1:24284")), "--check")
    assert r.returncode == 0, r.stderr
    warns = [w for w in map(parse_log_line, r.stderr.splitlines())
             if w.get("msg") == "key file is readable by others"]
    assert warns, r.stderr
    assert warns[0]["file"] == str(key)
    assert warns[0]["mode"] == "0644", r.stderr


def test_missing_config_file(tf):
    missing = tf.tmp / "does-not-exist.conf"
    r = tf.run("tlsfwd-client", "--config", missing, "--check")
    assert r.returncode == 1
    assert str(missing) in r.stderr, r.stderr


@pytest.mark.parametrize("args, flag", [
    (["--max-conns", "banana"], "--max-conns"),
    (["--connect-timeout=-3"], "--connect-timeout"),
    (["--log-format", "xml"], "--log-format"),
    (["--no-such-flag", "1"], "--no-such-flag"),
    (["--server"], "--server"),                   # last, so it has no value
])
def test_bad_flag_names_the_flag(tf, args, flag):
    r = tf.run("tlsfwd-client", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert,
                                          key=tf.pki.client.key, server="127.0.0.1:1")),
               "--check", *args)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert f"{flag}:" in r.stderr, r.stderr


# -- --check finds what a start would ---------------------------------------

CHECK_FAILURES = {
    "key-does-not-match-cert": lambda p: dict(cert=p.client.cert, key=p.server.key),
    "missing-cert": lambda p: dict(cert="/nonexistent/cert.pem", key=p.client.key),
    "cert-is-not-pem": lambda p: dict(cert=p.ca.dir / "index.txt", key=p.client.key),
    "missing-ca": lambda p: dict(ca="/nonexistent/ca.pem"),
    "missing-server": lambda p: dict(server=None),
    "bad-server-address": lambda p: dict(server="127.0.0.1"),
}


@pytest.mark.parametrize("case", list(CHECK_FAILURES))
def test_check_fails_like_a_start_would(tf, case):
    opts = dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert, key=tf.pki.client.key,
                server="127.0.0.1:24284")
    opts.update(CHECK_FAILURES[case](tf.pki))
    r = tf.run("tlsfwd-client", *flags(opts), "--check")
    assert r.returncode == 1, f"--check passed:\n{r.stdout}"
    assert r.stderr.strip(), "no message on stderr"


def test_ca_file_size(tf, tmp_path):
    """A CA bundle is read whole at its size: 200 copies of the CA with
    comment text between them (about 1 MiB) load; one over 4 MiB is refused
    with the file and the cause named."""
    ca = tf.pki.ca.cert.read_text()
    opts = dict(cert=tf.pki.client.cert, key=tf.pki.client.key, server="127.0.0.1:24284")
    big = tmp_path / "bundle.pem"
    big.write_text(("# " + "x" * 78 + "\n") * 40 + ca)
    big.write_text(big.read_text() * 200)
    r = tf.run("tlsfwd-client", *flags(dict(opts, ca=big)), "--check")
    assert r.returncode == 0, r.stderr
    huge = tmp_path / "huge.pem"
    huge.write_text(ca + "#" * (4 << 20))
    r = tf.run("tlsfwd-client", *flags(dict(opts, ca=huge)), "--check")
    assert r.returncode == 1, f"--check passed:\n{r.stdout}"
    assert f"{huge}: cannot read certificates: file too large" in r.stderr, r.stderr


def test_check_ok_prints_the_effective_config(tf):
    r = tf.run("tlsfwd-client", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert,
                                          key=tf.pki.client.key, server="localhost:24284")),
               "--check")
    assert r.returncode == 0, r.stderr
    got = parse_check(r.stdout)
    assert got["listen"] == ["127.0.0.1:24224"]
    assert got["server"] == ["localhost:24284"]
    assert got["tls-min"] == ["1.3"]
    assert got["connect-timeout"] == ["10"]
    assert got["drain-timeout"] == ["60"]
    assert got["max-conns"] == ["4096"]


@pytest.mark.parametrize("prog", ["tlsfwd-client", "tlsfwd-server"])
def test_version(tf, prog):
    r = tf.run(prog, "--version")
    assert r.returncode == 0, r.stderr
    text = r.stdout.lower()
    for name in ("tlsfwd", "wolfssl", "libev"):
        assert re.search(rf"{name}\S*\s+v?\d+\.\d+", text), f"no {name} version in:\n{r.stdout}"


# -- the plaintext listener stays on loopback -------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_client_refuses_non_loopback_listen(tf, host):
    port = free_port()
    opts = dict(listen=f"{host}:{port}", server=f"127.0.0.1:{free_port()}")
    d = tf.client(opts.pop("server"), wait=False, **opts)
    rc = d.wait_exit(wait_time(10))
    assert rc == 1, d.describe()
    assert "allow-remote-plaintext" in d.log_text(), d.describe()
    ok = tf.run("tlsfwd-client", *flags(dict(ca=tf.pki.ca.cert, cert=tf.pki.client.cert,
                                           key=tf.pki.client.key, server="127.0.0.1:24284",
                                           listen=f"{host}:{port}")),
                "--allow-remote-plaintext", "--check")
    assert ok.returncode == 0, ok.stderr


# -- logs ------------------------------------------------------------------------

def test_logfmt_lines(tunnel):
    for d in (tunnel.server, tunnel.client):
        listening = d.wait_for(lambda r: r.get("msg") == "listening")
        assert listening["level"] == "info"
        assert listening["prog"] == d.prog
        assert listening["listen"] == d.address
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", listening["ts"])


def test_json_log_format(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink, log_format="json")
    s = tf.connect(server)
    peer = fmt_addr(s.getsockname())
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert wait_closed(s, wait_time(15))
    server.wait_warning(peer=peer, reason="not_tls")
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    for line in lines:
        obj = json.loads(line)              # every line is one JSON object
        assert {"ts", "level", "prog", "msg"} <= obj.keys(), line
