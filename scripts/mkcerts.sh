#!/usr/bin/env bash
# mkcerts.sh DIR: a throwaway CA (ECDSA P-256) with a server certificate for
# localhost/127.0.0.1/::1 and a client certificate, for the demo and quick tries.
set -euo pipefail
d=$1
mkdir -p "$d"
cd "$d"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days 30 -subj "/CN=tlsfwd demo CA" \
	-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
for who in server client; do
	key "$who.key"
	openssl req -new -key "$who.key" -out "$who.csr" -subj "/CN=tlsfwd demo $who"
done
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 \
	-extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n') 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30 \
	-extfile <(printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n') 2>/dev/null
rm -f server.csr client.csr ca.srl
chmod 644 ./*.crt
echo "certificates in $d"
