"""TLS 1.3 resumption on the client: one session per server, shared by every
worker, taken from a full handshake once its ticket has arrived."""

from conftest import recv_exact, wait_time


def accepted(server, n):
    """The server's first n accepted lines, waiting for them."""
    server.wait_for(lambda r: len([x for x in server.records() if x.get("msg") == "accepted"]) >= n,
                    wait_time(15), f"{n} accepted lines")
    return [r for r in server.records() if r.get("msg") == "accepted"][:n]


def round_trips(tf, client, sink, n):
    """n connections one after the other, each with a request and a reply."""
    for i in range(n):
        app = tf.connect(client)
        far = sink.accept(timeout=wait_time(15))
        msg = b"event %d" % i
        app.sendall(msg)
        assert recv_exact(far, len(msg)) == msg
        far.sendall(b"ack")
        assert recv_exact(app, 3) == b"ack"
        app.close()
        far.close()


def test_one_full_handshake_for_all_workers(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, workers=4)
    round_trips(tf, client, sink, 12)
    resumed = [r.get("resumed") for r in accepted(server, 12)]
    # The first connection's session (ticket) serves every worker's next ones;
    # a cache per worker would make a full handshake on each worker first.
    assert resumed == ["0"] + ["1"] * 11, resumed


def test_no_tls_resume_makes_every_handshake_full(tf):
    sink = tf.tcp_sink()
    server = tf.server(sink)
    client = tf.client(server, workers=2, no_tls_resume=True)
    round_trips(tf, client, sink, 4)
    assert [r.get("resumed") for r in accepted(server, 4)] == ["0"] * 4
