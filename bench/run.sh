#!/usr/bin/env bash
# bench/run.sh: the tlsfwd benchmark (issue #3) against direct TCP, stunnel and socat, on
# loopback.  `make bench` builds tlsfwd and runs this.  BENCH_QUICK=1 for a ~1 minute smoke run.
# Results: build/bench/results.json and build/bench/results.md (also printed), and the forward
# reader's table in build/bench/fwd.md (bench/fwd.py).  See bench/README.md.
#
#   BENCH_QUICK=1          small sizes, one round
#   BENCH_ROUNDS=N         interleaved rounds (default 3; 1 when quick)
#   BENCH_IDLE_ROUNDS=N    rounds of the idle-memory test (default: BENCH_ROUNDS)
#   BENCH_PORT_BASE=P      first port to try (default 27000-28999, below the ephemeral range)
#   BENCH_TLSFWD_NO_RESUME="--opt value"   client option that turns session resumption off
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
b=${TLSFWD_BUILD:-$top/build}
out=$b/bench
py=/usr/bin/python3	# Debian's, not a pyenv one on PATH

for x in "$b/tlsfwd-client" "$b/tlsfwd-server"; do
	[ -x "$x" ] || { echo "bench: $x is missing: run make" >&2; exit 2; }
done
for t in stunnel4 socat openssl cc "$py"; do
	command -v "$t" >/dev/null || { echo "bench: $t is not installed (scripts/deps.sh installs it)" >&2; exit 2; }
done
mkdir -p "$out"

# Anything bench.py started and could not stop (it is killed with SIGKILL, say): each daemon
# runs in its own process group, listed in $out/pids while it runs.  Only groups whose leader
# is still one of ours are signalled.
cleanup() {
	local pid pgid cmd left=()
	[ -f "$out/pids" ] || return 0
	while read -r pid; do
		[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
		pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
		[ "$pgid" = "$pid" ] || continue
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		case $cmd in
		*tlsfwd-client*|*tlsfwd-server*|stunnel4*|socat*|*/bench/loadgen*)
			kill -TERM -- "-$pid" 2>/dev/null && left+=("$pid") ;;
		esac
	done <"$out/pids"
	if [ ${#left[@]} -gt 0 ]; then
		sleep 1
		for pid in "${left[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
	fi
	rm -f "$out/pids"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The load generator, sink and counting relay.
if [ ! -x "$out/loadgen" ] || [ "$top/bench/loadgen.c" -nt "$out/loadgen" ]; then
	cc -O2 -g -Wall -Wextra -Werror -pthread -o "$out/loadgen" "$top/bench/loadgen.c"
fi

# Throwaway ECDSA P-256 certificates, fresh every run (they are valid for 30 days).
rm -rf "$out/certs"
"$top/scripts/mkcerts.sh" "$out/certs" >/dev/null

# 10000 idle connections: every process holds up to two descriptors per connection.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
	ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
[ "$hard" = unlimited ] || [ "$hard" -ge "$want" ] || want=$(ulimit -Hn)
ulimit -Sn "$want"

rc=0
"$py" "$top/bench/bench.py" || rc=$?
# The forward reader's cost (issue 15): PackedForward traffic plain, stamped, and through stunnel.
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
	export FWD_GIB=${FWD_GIB:-0.125} FWD_ROUNDS=${FWD_ROUNDS:-1}
fi
echo
echo "== the forward reader (bench/fwd.py)"
TLSFWD_BUILD="$b" "$py" "$top/bench/fwd.py" 2>"$out/fwd.log" | tee "$out/fwd.md" || rc=1
exit "$rc"
