"""A connection flood from one source address, for test_preauth.py.

    python3 connflood.py HOST:PORT SOURCE COUNT [RATE]

Opens COUNT bare TCP connections to HOST:PORT from SOURCE (never sending a
byte) and, whenever the server closes or resets one, opens another at once
(or, with RATE, as soon as that keeps the reopens under RATE a second):
what a client that never finishes its handshake and reconnects does.  Prints
"opened N" once the first COUNT connects were started, then a line
"closed N" every second with how many the server has closed so far.  Runs
until killed.
"""

import selectors
import socket
import sys
import time


def main(target, source, count, rate=0):
    host, _, port = target.rpartition(":")
    host, port = host.strip("[]"), int(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sel = selectors.DefaultSelector()
    closed = 0
    owed = 0                             # reopens held back by RATE

    def open_one():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source, 0))
        s.connect_ex((host, port))       # EINPROGRESS; a refusal shows as readable
        sel.register(s, selectors.EVENT_READ)

    for _ in range(count):
        open_one()
    print(f"opened {count}", flush=True)
    start = last = time.monotonic()
    while True:
        for key, _ in sel.select(0.01 if owed else 0.2):
            s = key.fileobj
            sel.unregister(s)
            s.close()
            closed += 1
            owed += 1
        if rate:
            allowed = int((time.monotonic() - start) * rate) - (closed - owed)
            n = min(owed, max(0, allowed))
        else:
            n = owed
        for _ in range(n):
            open_one()
        owed -= n
        if time.monotonic() - last >= 1:
            last = time.monotonic()
            print(f"closed {closed}", flush=True)


if __name__ == "__main__":
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]),
         int(sys.argv[4]) if len(sys.argv) > 4 else 0)
