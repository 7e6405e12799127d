#!/usr/bin/env python3
"""/v1/watch clients for bench/watch.sh (standard library only).

    watch_clients.py URL MODE COUNT SECONDS

MODE:
  read  COUNT watchers of every key that read their stream and count events;
        prints "EVENTS total=N per_second=R watchers=COUNT" at the end
        (events summed over watchers, per second of the run).
  idle  COUNT watchers of a prefix no key has ("idle/"): connections that
        stay open and see only keep-alive comments.
  slow  COUNT watchers of every key that never read: their socket buffers
        fill, and the server must cut them off rather than buffer for them.
Every connection opens, then the script holds them SECONDS seconds and
exits; it prints "OPEN n" once all are open.
"""

import asyncio
import socket
import sys
import time
from urllib.parse import urlsplit


async def open_watch(host, port, prefix, small_buffer):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    query = f"?prefix={prefix}" if prefix else ""
    writer.write(f"GET /v1/watch{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"watch refused: {status!r}")
    return reader, writer


async def count_events(reader, counts, index):
    while True:
        line = await reader.readline()
        if not line:
            return
        # `event:`, not `id:`: a watch from now opens with an id alone.
        if line.startswith(b"event: "):
            counts[index] += 1


async def main():
    url, mode, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    prefix = "idle/" if mode == "idle" else ""
    connections = []
    # Opened in batches, so the server's accept queue is not overrun.
    for start in range(0, count, 100):
        batch = [open_watch(host, port, prefix, mode == "slow") for _ in range(start, min(count, start + 100))]
        connections += await asyncio.gather(*batch)
    print(f"OPEN {len(connections)}", flush=True)
    counts = [0] * len(connections)
    tasks = []
    if mode in ("read", "idle"):
        tasks = [asyncio.create_task(count_events(r, counts, i)) for i, (r, _) in enumerate(connections)]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    took = time.monotonic() - started
    for task in tasks:
        task.cancel()
    if mode == "read":
        total = sum(counts)
        print(f"EVENTS total={total} per_second={total / took:.0f} watchers={len(connections)}", flush=True)
    for _, writer in connections:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
