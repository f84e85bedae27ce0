#!/usr/bin/env python3
"""RSS per idle connection of a running server.

Opens N connections to ADDR, checks that a sample of them is really served (one echo each), waits
a second, and reports how much the server's VmRSS (from /proc/PID/status) grew per connection.
Loopback only; closes every connection before it exits.

    target/release/ringport echo --listen 127.0.0.1:7777 --threads 1 &
    bench/idle_rss.py 127.0.0.1:7777 $! 10000
"""
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    pid, n = int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 64)), hard))
    before = rss_kib(pid)
    socks = [socket.create_connection((host, int(port))) for _ in range(n)]
    for s in socks[:: max(1, n // 20)]:  # a sample is really served
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
    time.sleep(1)
    after = rss_kib(pid)
    print(f"connections={n} rss_before={before} KiB rss_after={after} KiB "
          f"per_connection={(after - before) * 1024 / n:.0f} B")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
