#!/usr/bin/python3
"""A Fluentd forward-protocol sink: what in_forward does, minus Fluentd.

Accepts TCP connections, decodes each msgpack stream and records the events.
Understands every request mode in the Forward Protocol Specification v1:

    Message                   [tag, time, record, option?]
    Forward                   [tag, [[time, record], ...], option?]
    PackedForward             [tag, bin|str (concatenated [time, record]), option?]
    CompressedPackedForward   the same with option {"compressed": "gzip"} (several
                              members) or {"compressed": "zstd"} (several frames)

Time is an integer or an EventTime (ext type 0: seconds, nanoseconds, both
uint32 big-endian); `nil` is a no-op request; non-minimal encodings (a map32
header for a one-entry map, ...) are accepted because msgpack.Unpacker accepts
them.  When the option map carries `chunk`, the sink answers {"ack": chunk}
exactly like in_forward with require_ack_response.

With `shared_key`, the sink is an in_forward with a <security> section: it
sends HELO (['HELO', {nonce, auth, keepalive}], nonce and auth salt as 16
random bytes packed as bin, as in_forward does), checks the PING (6 elements;
sha512_hex(salt + hostname + nonce + shared_key); with `users`, user_auth:
sha512_hex(auth_salt + username + password)) and answers PONG, true with its
own digest, or false with in_forward's reason before closing.  `dribble`
sends HELO and PONG one byte at a time; `helo=False` never sends HELO;
`pong_key` proves a different key in the PONG (a Fluentd that says yes
without knowing ours).

Importable:

    sink = ForwardSink().start()            # listens on 127.0.0.1:<free port>
    ...                                     # point a sender at sink.port
    events = sink.wait_events(1000, timeout=20)
    sink.close()

Runnable (used by `make demo`):

    fwdsink.py --listen 127.0.0.1:24224 --print

prints each event like Fluentd's stdout output: `TIME TAG: {json}`.
"""

import argparse
import datetime
import hashlib
import json
import os
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass

import msgpack


@dataclass(frozen=True)
class EventTime:
    """Fluentd's EventTime: ext type 0, seconds and nanoseconds."""
    seconds: int
    nanoseconds: int

    def __float__(self):
        return self.seconds + self.nanoseconds / 1e9


@dataclass(frozen=True)
class Event:
    tag: str
    time: object       # int, float or EventTime, as sent
    record: dict
    mode: str          # "Message", "Forward", "PackedForward", "CompressedPackedForward"


class ProtocolError(Exception):
    pass


def _ext_hook(code, data):
    if code == 0 and len(data) == 8:
        return EventTime(int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big"))
    return msgpack.ExtType(code, data)


def _unpacker():
    # surrogateescape keeps str payloads that are not UTF-8 (PackedForward
    # entries sent as str by old clients) byte-exact.
    return msgpack.Unpacker(raw=False, ext_hook=_ext_hook, strict_map_key=False,
                            unicode_errors="surrogateescape",
                            max_buffer_size=256 * 1024 * 1024)


def _as_bytes(blob):
    if isinstance(blob, str):
        return blob.encode("utf-8", "surrogateescape")
    return bytes(blob)


def _gunzip_all(data):
    """Decompress concatenated gzip members (Fluentd appends one per chunk)."""
    out = []
    while data:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out.append(d.decompress(data))
        if not d.eof:
            raise ProtocolError("truncated gzip member")
        data = d.unused_data
    return b"".join(out)


def _unzstd_all(data):
    """Decompress concatenated zstd frames (python3-zstandard)."""
    import zstandard
    out, d = [], zstandard.ZstdDecompressor()
    while data:
        obj = d.decompressobj()
        out.append(obj.decompress(data))
        if not obj.eof:
            raise ProtocolError("truncated zstd frame")
        data = obj.unused_data
    return b"".join(out)


def _is_time(value):
    return isinstance(value, (int, float, EventTime)) and not isinstance(value, bool)


def _entries(tag, entries, mode):
    events = []
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and _is_time(entry[0])
                and isinstance(entry[1], dict)):
            raise ProtocolError(f"bad entry in {mode}: {entry!r:.80}")
        events.append(Event(tag, entry[0], entry[1], mode))
    return events


def decode_request(req):
    """One decoded msgpack object -> (events, option map or {}).

    Raises ProtocolError on anything in_forward would reject.
    """
    if req is None:
        return [], {}
    if not isinstance(req, (list, tuple)) or len(req) < 2 or not isinstance(req[0], str):
        raise ProtocolError(f"not a forward request: {req!r:.80}")
    tag, second = req[0], req[1]
    if _is_time(second):
        if len(req) not in (3, 4) or not isinstance(req[2], dict):
            raise ProtocolError("bad Message")
        events, option = [Event(tag, second, req[2], "Message")], (req[3] if len(req) == 4 else {})
    else:
        if len(req) not in (2, 3):
            raise ProtocolError("bad request length")
        option = req[2] if len(req) == 3 else {}
        if option is None:
            option = {}
        if not isinstance(option, dict):
            raise ProtocolError("option is not a map")
        if isinstance(second, (list, tuple)):
            events = _entries(tag, second, "Forward")
        elif isinstance(second, (bytes, str)):
            blob, mode = _as_bytes(second), "PackedForward"
            compressed = option.get("compressed")
            if compressed == "gzip":
                blob, mode = _gunzip_all(blob), "CompressedPackedForward"
            elif compressed == "zstd":
                blob, mode = _unzstd_all(blob), "CompressedPackedForward"
            elif compressed not in (None, "text"):
                raise ProtocolError(f"unsupported compression {compressed!r}")
            u = _unpacker()
            u.feed(blob)
            events = _entries(tag, list(u), mode)
        else:
            raise ProtocolError(f"bad second element: {type(second).__name__}")
    if option is None:
        option = {}
    if not isinstance(option, dict):
        raise ProtocolError("option is not a map")
    return events, option


def _jsonable(v):
    if isinstance(v, dict):
        return {str(_jsonable(k)): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(v, (EventTime, msgpack.ExtType)):
        return repr(v)
    return v


def format_event(event):
    """Fluentd stdout output style: `2026-11-22 08:00:00.123456789 +0000 tag: {json}`."""
    if isinstance(event.time, EventTime):
        sec, nsec = event.time.seconds, event.time.nanoseconds
    else:
        sec, nsec = int(event.time), int(round((event.time - int(event.time)) * 1e9))
    t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).astimezone()
    stamp = f"{t:%Y-%m-%d %H:%M:%S}.{nsec:09d} {t:%z}"
    record = json.dumps(_jsonable(event.record), separators=(",", ":"), ensure_ascii=False)
    return f"{stamp} {event.tag}: {record}"


class ForwardSink:
    """A threaded forward-protocol server on `host:port` (port 0 picks one)."""

    def __init__(self, host="127.0.0.1", port=0, *, ack=True, out=None, shared_key=None,
                 users=None, self_hostname="fwdsink", dribble=False, helo=True,
                 pong_key=None):
        self.ack = ack
        self.out = out                  # a text stream to print events to, or None
        self.shared_key = shared_key    # <security>: None, or the shared key (str)
        self.users = users              # user_auth: {username: password}, or None
        self.self_hostname = self_hostname
        self.dribble = dribble          # HELO and PONG one byte at a time
        self.helo = helo                # False: accept, then never speak
        self.pong_key = pong_key        # the key the PONG proves (default: shared_key)
        self.pings = []                 # every PING received, as decoded
        self.handshakes = 0             # PONGs that said yes
        self.auth_failures = []         # in_forward's reason of each PONG that said no
        self.events = []
        self.requests = []              # (mode of its events or "nil", option map, count)
        self.acks_sent = 0
        self.connections = 0
        self.errors = []
        self._cond = threading.Condition()
        self._threads = []
        self._conns = set()
        self._closing = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._lsock = socket.socket(family, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(512)
        self.host, self.port = self._lsock.getsockname()[:2]

    @property
    def address(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self):
        t = threading.Thread(target=self._accept_loop, name="fwdsink-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def serve_forever(self):
        self._accept_loop()

    def _accept_loop(self):
        while not self._closing:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            with self._cond:
                if self._closing:
                    conn.close()
                    return
                self.connections += 1
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="fwdsink-conn",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _send_slowly(self, conn, data):
        if not self.dribble:
            conn.sendall(data)
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(0.002)

    def _next(self, conn, unpacker):
        """The next msgpack object of conn, or None at its end."""
        while True:
            for obj in unpacker:
                return obj
            data = conn.recv(65536)
            if not data:
                return None
            unpacker.feed(data)

    def _handshake(self, conn, unpacker):
        """in_forward's <security> handshake; True once the PONG said yes."""
        if not self.helo:
            while conn.recv(65536):
                pass
            return False
        nonce, auth_salt = os.urandom(16), os.urandom(16)
        self._send_slowly(conn, msgpack.packb(
            ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": True}],
            use_bin_type=True))
        ping = self._next(conn, unpacker)
        if ping is None:
            return False
        with self._cond:
            self.pings.append(ping)
        if not (isinstance(ping, list) and len(ping) == 6 and ping[0] == "PING"):
            raise ProtocolError(f"invalid ping message: {ping!r:.200}")
        _, hostname, salt, digest, username, password_digest = ping

        def b(v):
            return v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")

        def sha(*parts):
            return hashlib.sha512(b"".join(b(p) for p in parts)).hexdigest()

        reason = None
        if digest != sha(salt, hostname, nonce, self.shared_key):
            reason = "shared_key mismatch"
        elif self.users is not None and not any(
                u == username and sha(auth_salt, username, pw) == password_digest
                for u, pw in self.users.items()):
            reason = "username/password mismatch"
        if reason is not None:
            self._send_slowly(conn, msgpack.packb(["PONG", False, reason, "", ""]))
            with self._cond:
                self.auth_failures.append(reason)
                self._cond.notify_all()
            return False
        key = self.pong_key if self.pong_key is not None else self.shared_key
        self._send_slowly(conn, msgpack.packb(
            ["PONG", True, "", self.self_hostname, sha(salt, self.self_hostname, nonce, key)]))
        with self._cond:
            self.handshakes += 1
        return True

    def _serve(self, conn):
        unpacker = _unpacker()
        try:
            if self.shared_key is not None and not self._handshake(conn, unpacker):
                return
            while True:
                data = conn.recv(256 * 1024)
                if not data:
                    break
                unpacker.feed(data)
                for req in unpacker:
                    events, option = decode_request(req)
                    with self._cond:
                        self.requests.append((events[0].mode if events else
                                              "nil" if req is None else "empty",
                                              option, len(events)))
                    self._record(events)
                    if self.ack and "chunk" in option:
                        conn.sendall(msgpack.packb({"ack": option["chunk"]}))
                        with self._cond:
                            self.acks_sent += 1
        except (ProtocolError, ValueError, msgpack.UnpackException) as e:
            with self._cond:
                self.errors.append(repr(e))
                self._cond.notify_all()
            print(f"fwdsink: closing connection: {e!r}", file=sys.stderr, flush=True)
        except OSError:
            pass
        finally:
            with self._cond:
                self._conns.discard(conn)
            conn.close()

    def _record(self, events):
        if not events:
            return
        with self._cond:
            self.events.extend(events)
            if self.out is not None:
                for e in events:
                    print(format_event(e), file=self.out, flush=True)
            self._cond.notify_all()

    def wait_events(self, count, timeout=20.0):
        """Wait until at least `count` events arrived; return them all (a copy)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fwdsink: {len(self.events)} of {count} events "
                                       f"after {timeout}s (errors: {self.errors})")
                self._cond.wait(left)
            return list(self.events)

    def close(self):
        with self._cond:
            self._closing = True
            conns = list(self._conns)
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def _parse_listen(value):
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT or [V6]:PORT")
    return host.strip("[]"), int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fluentd forward-protocol sink")
    ap.add_argument("--listen", type=_parse_listen, default=("127.0.0.1", 24224),
                    metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:24224)")
    ap.add_argument("--print", action="store_true", dest="print_events",
                    help="print each event like Fluentd's stdout output")
    ap.add_argument("--no-ack", action="store_true", help="never answer {'ack': chunk}")
    args = ap.parse_args(argv)
    sink = ForwardSink(*args.listen, ack=not args.no_ack,
                       out=sys.stdout if args.print_events else None)
    print(f"fwdsink: listening on {sink.address}", file=sys.stderr, flush=True)
    try:
        sink.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
