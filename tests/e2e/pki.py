"""A throwaway PKI for the e2e tests, made with the openssl CLI only.

Every certificate is issued with `openssl ca`, which (unlike `openssl x509
-req` in OpenSSL 3.0) takes explicit -startdate/-enddate, so expired
certificates need no extra Python package.  Keys are EC P-256, PKCS#8 PEM,
mode 0600.

    pki = Pki(directory)
    ca = pki.ca("test-ca")
    server = pki.issue(ca, "server", "localhost",
                       dns=["localhost"], ips=["127.0.0.1", "::1"],
                       usage="server")
    client = pki.issue(ca, "client", "client.test", usage="client",
                       passphrase="s3cret")      # encrypted key
    old = pki.issue(ca, "old", "old.test", expired=True)
    root0 = pki.ca("root0", pathlen=0)                # constrained roots, and
    inter = pki.ca("inter", issuer=root0)             # intermediates (inter.chain)
    weak = pki.issue(inter, "weak", "w.test", key="rsa:1024", digest="sha1",
                     extra_cn="second.test")          # leaf + inter's chain in one file
"""

import datetime
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# OpenSSL's req/ca need a config file; ours is self-contained so the host's
# /etc/ssl/openssl.cnf never changes what we issue.
_CA_CONF = """\
[ca]
default_ca = ca_default

[ca_default]
dir           = {dir}
database      = $dir/index.txt
new_certs_dir = $dir/issued
serial        = $dir/serial
certificate   = $dir/ca.crt
private_key   = $dir/ca.key
default_md    = sha256
policy        = policy_any
unique_subject = no
copy_extensions = none
email_in_dn   = no

[policy_any]
commonName = supplied
organizationalUnitName = optional

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = unused
"""

_EXT_CA = """\
[ext]
basicConstraints = critical, CA:TRUE{pathlen}
keyUsage = critical, {ku}
subjectKeyIdentifier = hash
{akid}
{nc}
"""

_EXT_LEAF = """\
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{san}
"""

_EKU = {
    "server": "serverAuth",
    "client": "clientAuth",
    "both": "serverAuth, clientAuth",
}


@dataclass(frozen=True)
class Identity:
    """A certificate and its key; `passphrase` is set when the key is encrypted."""
    name: str
    cert: Path
    key: Path
    passphrase: str | None = None


@dataclass(frozen=True)
class Ca(Identity):
    dir: Path | None = None
    conf: Path | None = None
    chain: Path | None = None     # an intermediate and the CAs above it but the root


def _utc(delta_days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=delta_days)
    return t.strftime("%Y%m%d%H%M%SZ")


class Pki:
    """Issues CAs and leaf certificates into `directory` (created if missing)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- helpers ---------------------------------------------------------
    def _openssl(self, *args, env=None):
        full_env = dict(os.environ)
        full_env.pop("OPENSSL_CONF", None)
        full_env.update(env or {})
        r = subprocess.run(["openssl", *map(str, args)], capture_output=True,
                           text=True, env=full_env, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{r.stderr}")
        return r.stdout

    def _genkey(self, path, key="ec"):
        """key: "ec" (P-256), "ec:CURVE" or "rsa:BITS"."""
        kind, _, size = key.partition(":")
        if kind == "rsa":
            self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                          f"rsa_keygen_bits:{size or 2048}", "-out", path)
        else:
            self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                          f"ec_paramgen_curve:{size or 'P-256'}", "-out", path)
        path.chmod(0o600)

    def _encrypt_key(self, plain, path, passphrase):
        self._openssl("pkey", "-in", plain, "-aes256", "-passout", "env:TLSFWD_PKI_PASS",
                      "-out", path, env={"TLSFWD_PKI_PASS": passphrase})
        path.chmod(0o600)

    def _sign(self, ca_dir, ca_conf, csr, out, ext, *, start, end, selfsign=False,
              digest="sha256"):
        extfile = out.with_suffix(".ext")
        extfile.write_text(ext)
        args = ["ca", "-batch", "-config", ca_conf, "-in", csr, "-out", out,
                "-startdate", start, "-enddate", end, "-extfile", extfile,
                "-extensions", "ext", "-notext", "-rand_serial", "-md", digest]
        if selfsign:
            args += ["-selfsign", "-keyfile", ca_dir / "ca.key"]
        self._openssl(*args)

    # -- public ----------------------------------------------------------
    def ca(self, name, cn=None, *, pathlen=None, issuer=None, ku="keyCertSign, cRLSign",
           key="ec", nc=None):
        """Make a self-signed root CA valid from 2019 for ten years from now, or
        with `issuer` (a Ca) an intermediate CA signed by it.

        pathlen: its basicConstraints pathLenConstraint (none by default).
        ku: its keyUsage.  key: as for issue().
        nc: its nameConstraints, in openssl's syntax ("permitted;DNS:example.com").
        The intermediate's `chain` file holds it and its issuer's chain."""
        d = self.dir / name
        (d / "issued").mkdir(parents=True, exist_ok=True)
        (d / "index.txt").write_text("")
        conf = d / "ca.cnf"
        conf.write_text(_CA_CONF.format(dir=d))
        keyfile = d / "ca.key"
        self._genkey(keyfile, key)
        csr = d / "ca.csr"
        self._openssl("req", "-new", "-config", conf, "-key", keyfile,
                      "-subj", f"/CN={cn or name}", "-out", csr)
        cert = d / "ca.crt"
        ext = _EXT_CA.format(pathlen="" if pathlen is None else f", pathlen:{pathlen}", ku=ku,
                             akid="authorityKeyIdentifier = keyid" if issuer else "",
                             nc=f"nameConstraints = critical, {nc}" if nc else "")
        if issuer is None:
            self._sign(d, conf, csr, cert, ext, start="20190101000000Z",
                       end=_utc(3650), selfsign=True)
        else:
            self._sign(issuer.dir, issuer.conf, csr, cert, ext, start=_utc(-1), end=_utc(365))
        chain = d / "chain.pem"
        chain.write_text(cert.read_text() + (issuer.chain.read_text() if issuer and
                                             issuer.chain else ""))
        return Ca(name=name, cert=cert, key=keyfile, dir=d, conf=conf,
                  chain=chain if issuer else None)

    def issue(self, ca, name, cn, *, dns=(), ips=(), uris=(), ou=None, usage="client",
              expired=False, passphrase=None, key="ec", digest="sha256", extra_cn=None,
              days=365):
        """Issue a leaf certificate signed by `ca`.

        usage: "client", "server" or "both" (extendedKeyUsage).
        expired: valid 2020-01-01 .. 2021-01-01 instead of yesterday .. +1 year.
        days: how long from now it stays valid (default a year).
        passphrase: the key file is encrypted (AES-256, PKCS#8) with it.
        key: "ec" (P-256), "ec:CURVE" or "rsa:BITS".  digest: of the CA's signature.
        extra_cn: a second commonName after the first.
        With an intermediate `ca`, the cert file holds the leaf and ca's chain.
        """
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        plain_key = d / "key.pem"
        self._genkey(plain_key, key)
        csr = d / "req.csr"
        subj = f"/CN={cn}" + (f"/OU={ou}" if ou else "") + (f"/CN={extra_cn}" if extra_cn else "")
        self._openssl("req", "-new", "-config", ca.conf, "-key", plain_key,
                      "-subj", subj, "-out", csr)
        sans = [f"DNS:{n}" for n in dns] + [f"IP:{i}" for i in ips] + [f"URI:{u}" for u in uris]
        ext = _EXT_LEAF.format(eku=_EKU[usage],
                               san=f"subjectAltName = {', '.join(sans)}" if sans else "")
        cert = d / "cert.pem"
        if expired:
            start, end = "20200101000000Z", "20210101000000Z"
        else:
            start, end = _utc(-1), _utc(days)
        self._sign(ca.dir, ca.conf, csr, cert, ext, start=start, end=end, digest=digest)
        if getattr(ca, "chain", None):
            cert.write_text(cert.read_text() + ca.chain.read_text())
        key = plain_key
        if passphrase is not None:
            key = d / "key.enc.pem"
            self._encrypt_key(plain_key, key, passphrase)
            plain_key.unlink()
        return Identity(name=name, cert=cert, key=key, passphrase=passphrase)


    def self_signed(self, name, cn):
        """A self-signed client certificate (no CA), for pinning."""
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        key, cert = d / "key.pem", d / "cert.pem"
        self._genkey(key)
        self._openssl("req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}", "-days", "30",
                      "-addext", "extendedKeyUsage=clientAuth",
                      "-addext", "keyUsage=critical,digitalSignature", "-out", cert)
        return Identity(name=name, cert=cert, key=key)

    def crl(self, ca, revoked=(), der=False, seconds=None, expired=False):
        """Revoke each identity in `revoked` (once) and write a fresh CRL of `ca`;
        returns its path (PEM, or DER with der=True).  Its nextUpdate is in 30
        days, in `seconds`, or with expired=True a day ago."""
        for ident in revoked:
            self._openssl("ca", "-config", ca.conf, "-revoke", ident.cert)
        out = ca.dir / "crl.pem"
        due = ["-crldays", "30"]
        if seconds is not None:
            due = ["-crlsec", seconds]
        if expired:
            due = ["-crl_lastupdate", _utc(-2), "-crl_nextupdate", _utc(-1)]
        self._openssl("ca", "-config", ca.conf, "-gencrl", *due, "-out", out)
        if der:
            pem, out = out, ca.dir / "crl.der"
            self._openssl("crl", "-in", pem, "-outform", "DER", "-out", out)
        return out


class TestPki:
    """The set of identities the e2e suite uses (see conftest's `pki` fixture)."""

    PASSPHRASE = "correct horse battery staple"

    def __init__(self, directory):
        p = Pki(directory)
        self.ca = p.ca("ca", "tlsfwd test CA")
        self.other_ca = p.ca("other-ca", "some other CA")
        loopback = dict(dns=["localhost"], ips=["127.0.0.1", "::1"])
        self.server = p.issue(self.ca, "server", "localhost", usage="server", **loopback)
        self.server_noip = p.issue(self.ca, "server-noip", "localhost", usage="server",
                                   dns=["localhost"])
        self.server_expired = p.issue(self.ca, "server-expired", "localhost", usage="server",
                                      expired=True, **loopback)
        self.server_other = p.issue(self.other_ca, "server-other", "localhost",
                                    usage="server", **loopback)
        self.client = p.issue(self.ca, "client", "client.test", usage="client")
        self.client_other = p.issue(self.other_ca, "client-other", "client.test",
                                    usage="client")
        self.client_expired = p.issue(self.ca, "client-expired", "client.test",
                                      usage="client", expired=True)
        self.client_encrypted = p.issue(self.ca, "client-encrypted", "client.test",
                                        usage="client", passphrase=self.PASSPHRASE)


TestPki.__test__ = False  # not a pytest test class


if __name__ == "__main__":
    import sys
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "pki")
    t = TestPki(target)
    for attr, ident in vars(t).items():
        print(f"{attr}: {ident.cert} {ident.key}")
