#!/usr/bin/env python3
"""A keep-alive GET load whose bodies never reach user space: each response head is read, then its
Content-Length bytes are discarded inside the kernel with recv(MSG_TRUNC) (tcp(7): the data is
dropped, not copied). The client's cost per byte is then close to nothing, so on 2 cores the server
under test, not the client, is what saturates. Used for the server-bound figure of segment-hit
(lib/trunc-load.ts); prints one JSON line. Bounded by --duration; loopback only.

usage: trunc-client.py HOST PORT PATH CONNECTIONS DURATION_S [HEADER_LINE ...]
"""
import json
import selectors
import socket
import sys
import time

HEAD_MAX = 65536


def main() -> None:
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    connections, duration_s = int(sys.argv[4]), float(sys.argv[5])
    if not host.startswith("127.") and host != "::1":
        raise SystemExit("trunc-client: loopback only")
    extra = "".join(f"{h}\r\n" for h in sys.argv[6:])
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("latin1")
    sel = selectors.DefaultSelector()
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    stats = {"requests": 0, "bytes": 0, "non2xx": 0, "errors": 0}
    latencies = []

    class Conn:
        __slots__ = ("sock", "left", "started")

    def send(c: Conn) -> None:
        c.left = None  # reading the head
        c.started = time.perf_counter()
        c.sock.sendall(request)

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
