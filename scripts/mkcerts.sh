#!/usr/bin/env bash
# mkcerts.sh DIR: a throwaway CA (ECDSA P-256) with a server certificate for
# localhost/127.0.0.1/::1 and a client certificate, made with tlsfwd-certs,
# for the demo and quick tries.  Valid 30 days.
set -euo pipefail
d=$1
certs="$(cd "$(dirname "$0")/.." && pwd)/build/tlsfwd-certs"
[ -x "$certs" ] || { echo "mkcerts: $certs is missing: run make first" >&2; exit 1; }
"$certs" ca --out "$d" --cn "tlsfwd demo CA" --days 30 --force
"$certs" server --ca "$d" --cn "tlsfwd demo server" --san DNS:localhost,IP:127.0.0.1,IP:::1 \
	--out "$d" --days 30 --force
"$certs" client --ca "$d" --cn "tlsfwd demo client" --out "$d" --days 30 --force
echo "certificates in $d"
