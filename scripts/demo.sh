#!/usr/bin/env bash
# demo.sh: a tlsfwd pair on loopback with throwaway certificates, a forward
# sink standing in for Fluentd, and one event sent through.  Leaves nothing
# running.  Ports: DEMO_CLIENT (24224), DEMO_SERVER (24284), DEMO_SINK (24226).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
b=${TLSFWD_BUILD:-$top/build}	# the test suite runs the demo with its own build
d="$b/demo"
client_port=${DEMO_CLIENT:-24224}
server_port=${DEMO_SERVER:-24284}
sink_port=${DEMO_SINK:-24226}
py=/usr/bin/python3

rm -rf "$d" && mkdir -p "$d"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== throwaway CA, server and client certificates in $d"
"$top/scripts/mkcerts.sh" "$d" >/dev/null

# wait_for FILE PATTERN: until a daemon's log shows PATTERN (or 10 s pass).
wait_for() {
	for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "demo: timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

echo "== forward sink (stands in for Fluentd in_forward) on 127.0.0.1:$sink_port"
$py "$top/tests/e2e/fwdsink.py" --listen "127.0.0.1:$sink_port" --print >"$d/sink.out" 2>"$d/sink.log" &
pids+=($!)
wait_for "$d/sink.log" listening

echo "== tlsfwd-server on 127.0.0.1:$server_port -> sink"
"$b/tlsfwd-server" --listen "127.0.0.1:$server_port" --upstream "127.0.0.1:$sink_port" \
	--ca "$d/ca.crt" --cert "$d/server.crt" --key "$d/server.key" 2>"$d/server.log" &
pids+=($!)
wait_for "$d/server.log" msg=listening

echo "== tlsfwd-client on 127.0.0.1:$client_port -> server (mutual TLS)"
"$b/tlsfwd-client" --listen "127.0.0.1:$client_port" --server "localhost:$server_port" \
	--ca "$d/ca.crt" --cert "$d/client.crt" --key "$d/client.key" 2>"$d/client.log" &
pids+=($!)
wait_for "$d/client.log" msg=listening

echo "== sending one event to 127.0.0.1:$client_port with fluent-logger (python3-fluent-logger)"
$py - "$client_port" <<'PY'
import sys
from fluent import sender
s = sender.FluentSender("demo", host="127.0.0.1", port=int(sys.argv[1]), verbose=False)
ok = s.emit("hello", {"message": "hello through tlsfwd"})
s.close()
sys.exit(0 if ok else "fluent-logger could not deliver the event: %s" % s.last_error)
PY
wait_for "$d/sink.out" demo.hello

echo "== a program with Fluentd hard-coded at 127.0.0.77:24224, no tlsfwd-client:"
echo "   LD_PRELOAD=libtlsfwd-preload.so, inline mode (the client runs inside the program)"
cat >"$d/inline.conf" <<CONF
server = localhost:$server_port
ca = $d/ca.crt
cert = $d/client.crt
key = $d/client.key
log-level = warn
CONF
LD_PRELOAD="$b/libtlsfwd-preload.so" TLSFWD_INTERCEPT=127.0.0.77:24224 \
TLSFWD_CONFIG="$d/inline.conf" $py - <<'PY'
import sys
from fluent import sender
s = sender.FluentSender("demo", host="127.0.0.77", port=24224, verbose=False)
ok = s.emit("inline", {"message": "hello from an unmodified program, via the preload shim"})
s.close()
sys.exit(0 if ok else "fluent-logger could not deliver the event: %s" % s.last_error)
PY
wait_for "$d/sink.out" demo.inline

echo "== the sink received:"
cat "$d/sink.out"
echo "== server log:"
cat "$d/server.log"
