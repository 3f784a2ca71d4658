#!/usr/bin/env bash
# gen-x509-corpus.sh [DIR]: write the x509 target's seed corpus, a few dozen
# varied DER certificates made with the openssl CLI, into DIR (default
# tests/fuzz/corpus/x509).  The files are committed; run this again only to
# change the set (keys and serials are random, so every run makes new files).
# RSA and EC keys, Ed25519/Ed448, SANs of every GeneralName type, long
# subjects, several CNs, multi-valued RDNs, UTF8/Printable/T61/BMP/Universal
# strings, v1 certificates, GeneralizedTime dates and many extensions.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/tests/fuzz/corpus/x509}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$tmp"

key() {	# key NAME ALG [OPTS...]
	local name=$1 alg=$2
	shift 2
	openssl genpkey -algorithm "$alg" "$@" -out "$name.key" 2>/dev/null
}

# self NAME KEY SUBJ [openssl req options...]: a self-signed certificate.
self() {
	local name=$1 k=$2 subj=$3
	shift 3
	openssl req -new -x509 -key "$k.key" -subj "$subj" -days 365 -outform DER \
	    -out "$out/$name.der" "$@" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
}

key rsa2048 RSA -pkeyopt rsa_keygen_bits:2048
key rsa1024 RSA -pkeyopt rsa_keygen_bits:1024
key rsa4096 RSA -pkeyopt rsa_keygen_bits:4096
key p256 EC -pkeyopt ec_paramgen_curve:P-256
key p384 EC -pkeyopt ec_paramgen_curve:P-384
key p521 EC -pkeyopt ec_paramgen_curve:P-521
key k256 EC -pkeyopt ec_paramgen_curve:secp256k1
key p256explicit EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit
key ed25519 ED25519
key ed448 ED448

# Key types and signature algorithms.
self rsa2048 rsa2048 "/CN=rsa-2048"
self rsa1024-sha1 rsa1024 "/CN=rsa-1024" -sha1
self rsa4096-sha512 rsa4096 "/CN=rsa-4096/O=Example" -sha512
self rsa-pss rsa2048 "/CN=pss" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
self ec-p256 p256 "/CN=ec-p256"
self ec-p384 p384 "/CN=ec-p384" -sha384
self ec-p521 p521 "/CN=ec-p521" -sha512
self ec-k256 k256 "/CN=ec-secp256k1"
self ec-explicit p256explicit "/CN=ec-explicit"
self ed25519 ed25519 "/CN=ed25519"
self ed448 ed448 "/CN=ed448"

# SANs of every GeneralName type.
self san-dns p256 "/CN=web-1" \
    -addext "subjectAltName=DNS:web-1.example.com,DNS:*.edge.example.com,DNS:xn--bcher-kva.example"
self san-ip p256 "/CN=ips" \
    -addext "subjectAltName=IP:10.0.0.5,IP:127.0.0.1,IP:fd00::1,IP:::ffff:192.0.2.7,IP:2001:db8::"
self san-uri p256 "/CN=spiffe" \
    -addext "subjectAltName=URI:spiffe://corp/edge/a,URI:https://example.com/a?b=c#d"
self san-all rsa2048 "/CN=all" \
    -addext "subjectAltName=email:a@example.com,DNS:all.example.com,URI:urn:x:y,IP:192.0.2.1,RID:1.2.3.4.5,dirName:dir_sect,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@example.com" \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nC=US\nO=Dir Org\nCN=dir name\n')
self san-critical p256 "/" -addext "subjectAltName=critical,DNS:only-san.example.com"
self san-many p256 "/CN=many" \
    -addext "subjectAltName=$(for i in $(seq 1 60); do printf 'DNS:h%d.example.com,IP:10.0.%d.1,' "$i" "$i"; done)URI:urn:end"

# Subjects: long, several CNs, multi-valued RDNs, many attribute types.
long=$(printf 'x%.0s' $(seq 1 59))
self subj-long p256 "/C=US/ST=California/L=San Francisco/O=o$long/$(for i in $(seq 1 30); do printf 'OU=%02d%s/' "$i" "$long"; done)CN=long$long"
self subj-two-cn p256 "/CN=first/CN=second"
self subj-three-cn-ou rsa2048 "/OU=a/CN=one/OU=b/CN=two/CN=three"
self subj-multivalue p256 "/O=Example/CN=web+OU=edge+UID=42" -multivalue-rdn
self subj-attrs p256 "/DC=com/DC=example/C=DE/ST=Bayern/L=Muenchen/street=Main St 1/O=Org/OU=Unit/title=Dr/SN=Surname/GN=Given/initials=GS/generationQualifier=III/dnQualifier=q/pseudonym=p/postalCode=80331/businessCategory=IT/serialNumber=123/emailAddress=a@example.com/name=nm/CN=attrs"
self subj-escape p256 '/CN=a\,b\+c"d\\e<f>g;h #i /O=\ lead/OU=trail '
self subj-ctrl p256 "/CN=ctl$(printf '\001\177')x/OU=slash\/plus"
self subj-empty-cn p256 "/CN="

# String types: UTF8, Printable, T61 (Latin-1), BMP and Universal.
self str-utf8 p256 "/CN=Grüße/O=東京/OU=😀" -utf8
self str-printable p256 "/CN=printable/O=Example Org" \
    -config <(printf '[req]\ndistinguished_name=dn\nstring_mask=default\n[dn]\n')
self str-t61 p256 "/CN=Grüße/O=Café" -utf8 \
    -config <(printf '[req]\ndistinguished_name=dn\nstring_mask=nombstr\n[dn]\n')
self str-bmp p256 "/CN=東京タワーだ/O=Ωmega" -utf8 \
    -config <(printf '[req]\ndistinguished_name=dn\nstring_mask=default\n[dn]\n')
self str-bmp-cn p256 "/CN=ÄÖÜ東京/OU=Ünit" -utf8 \
    -config <(printf '[req]\ndistinguished_name=dn\nstring_mask=pkix\n[dn]\n')
# UniversalString: OpenSSL does not write it; re-tag a 4-byte aligned BMP
# value (the signature no longer verifies, which the parser does not check).
python3 - "$out/str-bmp.der" "$out/str-universal.der" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
# 0x1e LEN with LEN a multiple of 4: the CN's BMPString
for i in range(len(d) - 1):
    if d[i] == 0x1e and d[i + 1] % 4 == 0 and d[i + 1] > 0:
        d[i] = 0x1c
        break
open(sys.argv[2], 'wb').write(bytes(d))
PY

# Extensions.
self ext-ca p256 "/CN=Root CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=critical,permitted;DNS:.example.com,excluded;IP:10.0.0.0/255.0.0.0"
self ext-leaf p256 "/CN=leaf" \
    -addext "basicConstraints=CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement,decipherOnly" \
    -addext "extendedKeyUsage=serverAuth,clientAuth,codeSigning,emailProtection,timeStamping,OCSPSigning,1.2.3.4" \
    -addext "crlDistributionPoints=URI:http://crl.example.com/ca.crl" \
    -addext "authorityInfoAccess=OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://ca.example.com/ca.der" \
    -addext "certificatePolicies=1.2.3.4,2.5.29.32.0" \
    -addext "nsComment=a netscape comment" \
    -addext "issuerAltName=DNS:issuer.example.com" \
    -addext "subjectKeyIdentifier=hash"
self ext-eku-any p256 "/CN=any-eku" -addext "extendedKeyUsage=critical,anyExtendedKeyUsage"
self ext-eku-client p256 "/CN=client-only" -addext "extendedKeyUsage=clientAuth"
self ext-big-pathlen rsa2048 "/CN=CA pathlen" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:2147483647"
self ext-no-ext p256 "/CN=no-ext" -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n')
self time-gen p256 "/CN=far-future" -days 30000
self serial-big p256 "/CN=serial" -set_serial 0x00ffeeddccbbaa99887766554433221100ffeeddccbbaa99
self serial-zero p256 "/CN=serial0" -set_serial 0

# A chain: root, intermediate, leaf signed through x509 -req (AKID with
# issuer and serial, a v1 leaf without extensions).
openssl x509 -inform DER -in "$out/ext-ca.der" -out ca.pem
openssl req -new -key rsa2048.key -subj "/CN=chain-int" -out int.csr
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always,issuer:always\n' >int.ext
openssl x509 -req -in int.csr -CA ca.pem -CAkey p256.key -set_serial 0x1234 -days 100 \
    -extfile int.ext -outform DER -out "$out/chain-int.der"
openssl x509 -inform DER -in "$out/chain-int.der" -out int.pem
openssl req -new -key ed25519.key -subj "/CN=v1-leaf/O=Example" -out leaf.csr
openssl x509 -req -in leaf.csr -CA int.pem -CAkey rsa2048.key -set_serial 7 -days 10 \
    -outform DER -out "$out/chain-v1-leaf.der"
ls "$out" | wc -l
