#!/usr/bin/env bash
# deps.sh [system]: install what tlsfwd needs to build and test on Debian 12,
# and build wolfSSL from Debian's patched source package into build/wolfssl.
# Idempotent: a second run installs nothing and builds nothing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-static}
build="$top/build"
prefix="$build/wolfssl"

pkgs=(build-essential clang pkg-config libev-dev libcmocka-dev libmsgpack-dev libssl-dev
      libseccomp-dev
      zlib1g-dev libzstd-dev libmicrohttpd-dev
      dpkg-dev autoconf automake libtool
      python3 python3-pytest python3-msgpack python3-fluent-logger python3-zstandard
      stunnel4 socat openssl valgrind procps psmisc libnss-wrapper tinyproxy)
pkgs+=(gdb)    # test_sandbox: makes a sandboxed daemon call what seccomp denies
pkgs+=(iproute2 nftables)    # make faults: ip netns, veth, nft
pkgs+=(systemd)              # test_systemd.py: systemd-analyze verify and security (no running systemd needed)
pkgs+=(prometheus)           # tests/e2e/test_metrics.py: promtool and a real Prometheus
[ "$mode" = system ] && pkgs+=(libwolfssl-dev)
command -v npm >/dev/null || pkgs+=(npm)
# make fuzz: libFuzzer and clang's sanitizer runtimes, which clang only
# recommends (not installed with --no-install-recommends).
pkgs+=(libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
		|| missing+=("$p")
done

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
updated=
apt_update() { [ -n "$updated" ] || { $sudo apt-get update -qq; updated=1; }; }

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt_update
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The e2e suite's Node sender: @fluent-org/logger, pinned by package-lock.json.
if [ ! -d "$top/tests/node/node_modules" ]; then
	echo "deps: npm ci in tests/node"
	(cd "$top/tests/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# apt-get source needs a deb-src entry for the same archive as the deb one.
ensure_deb_src() {
	if ! grep -rqs '^\s*\(Types:.*deb-src\|deb-src\)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo "deps: adding deb-src entries"
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
				| $sudo tee /etc/apt/sources.list.d/tlsfwd-deb-src.sources >/dev/null
		else
			grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
				| $sudo tee /etc/apt/sources.list.d/tlsfwd-deb-src.list >/dev/null
		fi
		updated=
	fi
	apt_update
}

# fetch_source PKG DIR: Debian's source package PKG, unpacked, into DIR/PKG-*.
# Call ensure_deb_src first.
fetch_source() {
	rm -rf "$2" && mkdir -p "$2"
	echo "deps: fetching Debian's $1 source package" >&2
	(cd "$2" && apt-get source -qq "$1" >/dev/null 2>&1) || {
		echo "deps: apt-get source $1 failed" >&2; exit 1; }
	find "$2" -mindepth 1 -maxdepth 1 -type d -name "$1-*" | head -n1
}

# libev's source, for the preload shim: it links libev into a shared object,
# and Debian's libev.a is built for executables (not position-independent).
# The Makefile compiles build/libev/ev.c itself.
if [ ! -f "$build/libev/ev.c" ]; then
	ensure_deb_src
	dir=$(fetch_source libev "$build/libev-src")
	[ -n "$dir" ] && [ -f "$dir/ev.c" ] || { echo "deps: no libev source tree" >&2; exit 1; }
	rm -rf "$build/libev" && mv "$dir" "$build/libev" && rm -rf "$build/libev-src"
	echo "deps: libev source in $build/libev"
fi

[ "$mode" = system ] && exit 0

# The features tlsfwd uses, named one by one, with Intel assembly for
# AES-GCM/SHA and the SP math x86_64 assembly for P-256/P-384/RSA.  Not
# --enable-distro: that forces SESSION_CERTS (a 37 KiB session object per
# connection) and the generic ECC code with its per-thread point cache; this
# set takes wolfSSL's per-connection state from 48 KiB to under 9 KiB and
# doubles full handshakes per second.  KEEP_PEER_CERT: the peer's subject in
# logs; ALT_NAMES, IP_ALT_NAME: SAN handling (certificate generation, IP
# SAN verification); DER_LOAD: DER CA files.
flags="--enable-static --disable-shared --enable-intelasm --enable-aesni \
--enable-sp --enable-sp-asm --enable-tls13 --enable-opensslextra \
--enable-session-ticket --enable-sni --enable-alpn --enable-crl \
--enable-certgen --enable-certreq --enable-certext --enable-keygen \
--enable-pwdbased --enable-chacha --enable-poly1305 --enable-ecc \
--enable-supportedcurves --enable-des3 --enable-aesctr --enable-aescbc \
--disable-examples --disable-crypttests"
cflags="-O2 -fPIC -DKEEP_PEER_CERT -DWOLFSSL_ALT_NAMES -DWOLFSSL_IP_ALT_NAME -DWOLFSSL_DER_LOAD"
# configure puts HAVE___UINT128_T only in the uninstalled config.h (it does
# define it whenever the compiler has __uint128_t), yet it sets the size of
# sp_int digits and so of RsaKey and ecc_key: users of those structs must see
# it too, or wolfSSL writes past them.  Idempotent.
fix_options_h() {
	local h="$1/include/wolfssl/options.h"
	grep -q 'tlsfwd: HAVE___UINT128_T' "$h" && return 0
	cat >>"$h" <<'H'

/* tlsfwd: HAVE___UINT128_T, as configure found it (see scripts/deps.sh) */
#if !defined(HAVE___UINT128_T) && defined(__SIZEOF_INT128__)
#define HAVE___UINT128_T 1
#endif
H
}

if [ -f "$prefix/lib/libwolfssl.a" ] &&
   [ "$(cat "$prefix/configure-flags" 2>/dev/null)" = "$flags $cflags" ]; then
	fix_options_h "$prefix"
	exit 0
fi

ensure_deb_src
dir=$(fetch_source wolfssl "$build/wolfssl-src")
[ -n "$dir" ] || { echo "deps: no wolfssl source tree in $build/wolfssl-src" >&2; exit 1; }

echo "deps: building wolfSSL ($flags) in $dir"
cd "$dir"
./autogen.sh >/dev/null 2>&1
# shellcheck disable=SC2086
./configure -q --prefix="$prefix.new" $flags CFLAGS="$cflags" >/dev/null
make -s -j"$(nproc)" >/dev/null 2>&1
rm -rf "$prefix.new"
make -s install >/dev/null
# wolfSSL's distro build does not install the generated options.h, yet every
# user of the headers must see the build's defines; install it ourselves.
install -m 0644 wolfssl/options.h "$prefix.new/include/wolfssl/options.h"
fix_options_h "$prefix.new"
printf '%s' "$flags $cflags" >"$prefix.new/configure-flags"
rm -rf "$prefix" && mv "$prefix.new" "$prefix"
echo "deps: wolfSSL installed in $prefix"
