#!/usr/bin/env python3
"""A keep-alive GET load whose bodies never reach user space: each response head is read, then its
Content-Length bytes are discarded inside the kernel with recv(MSG_TRUNC) (tcp(7): the data is
dropped, not copied). The client's cost per byte is then close to nothing, so on 2 cores the server
under test, not the client, is what saturates. Used for the server-bound figure of segment-hit
(lib/trunc-load.ts); prints one JSON line. Bounded by --duration; loopback only.

usage: trunc-client.py [--paths FILE [--zipf S] [--seed N]] HOST PORT PATH CONNECTIONS DURATION_S [HEADER_LINE ...]

With --paths, every request's path is drawn from FILE (one path a line; PATH is then ignored):
from a Zipf distribution of exponent S over the lines in file order (P(line k) ∝ 1/k^S, line 1 the
most popular; S = 0 is uniform), with a random.Random seeded with N, so every server under
comparison gets the same sequence of draws per connection order.
"""
import bisect
import itertools
import json
import random
import selectors
import socket
import sys
import time

HEAD_MAX = 65536


def options(argv: list) -> tuple:
    """Leading --paths/--zipf/--seed flags, then the positional arguments."""
    flags = {"--paths": None, "--zipf": "0.9", "--seed": "1"}
    while argv and argv[0] in flags:
        if len(argv) < 2:
            raise SystemExit(f"trunc-client: {argv[0]} needs a value")
        flags[argv[0]] = argv[1]
        argv = argv[2:]
    return flags, argv


def main() -> None:
    flags, args = options(sys.argv[1:])
    host, port, path = args[0], int(args[1]), args[2]
    connections, duration_s = int(args[3]), float(args[4])
    if not host.startswith("127.") and host != "::1":
        raise SystemExit("trunc-client: loopback only")
    extra = "".join(f"{h}\r\n" for h in args[5:])

    def request_for(p: str) -> bytes:
        return f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("latin1")

    if flags["--paths"] is None:
        one = request_for(path)
        next_request = lambda: one  # noqa: E731
        distinct = 1
    else:
        with open(flags["--paths"], encoding="utf-8") as f:
            requests = [request_for(line.strip()) for line in f if line.strip()]
        if not requests:
            raise SystemExit("trunc-client: --paths file is empty")
        s = float(flags["--zipf"])
        cum = list(itertools.accumulate(1.0 / (k**s) for k in range(1, len(requests) + 1)))
        rng = random.Random(int(flags["--seed"]))
        total = cum[-1]
        last = len(requests) - 1
        next_request = lambda: requests[min(last, bisect.bisect_right(cum, rng.random() * total))]  # noqa: E731
        distinct = len(requests)
    sel = selectors.DefaultSelector()
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    stats = {"requests": 0, "bytes": 0, "non2xx": 0, "errors": 0, "paths": distinct}
    latencies = []

    class Conn:
        __slots__ = ("sock", "left", "started")

    def send(c: Conn) -> None:
        c.left = None  # reading the head
        c.started = time.perf_counter()
        c.sock.sendall(next_request())

    for _ in range(connections):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn()
        c.sock = s
        send(c)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, c)

    t0 = time.perf_counter()
    deadline = t0 + duration_s
    while time.perf_counter() < deadline and sel.get_map():
        for key, _ in sel.select(0.5):
            c = key.data
            try:
                if c.left is None:
                    n = c.sock.recv_into(buf, HEAD_MAX, socket.MSG_PEEK)
                    if n == 0:
                        raise ConnectionError("closed")
                    end = bytes(view[:n]).find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    head = bytes(view[:end]).decode("latin1").split("\r\n")
                    c.sock.recv_into(buf, end + 4)
                    stats["bytes"] += end + 4
                    if not head[0].startswith("HTTP/1.1 2"):
                        stats["non2xx"] += 1
                    length = [int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")]
                    c.left = length[0] if length else 0
                if c.left > 0:
                    n = c.sock.recv_into(buf, min(c.left, len(buf)), socket.MSG_TRUNC)
                    if n == 0:
                        raise ConnectionError("closed mid-body")
                    c.left -= n
                    stats["bytes"] += n
                if c.left == 0:
                    stats["requests"] += 1
                    latencies.append(time.perf_counter() - c.started)
                    send(c)
            except BlockingIOError:
                continue
            except OSError:
                stats["errors"] += 1
                sel.unregister(c.sock)
                c.sock.close()
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1) if latencies else 0.0

    print("TRUNC_JSON " + json.dumps({**stats, "durationS": elapsed, "p50Ms": pct(0.5), "p99Ms": pct(0.99)}))


if __name__ == "__main__":
    main()
