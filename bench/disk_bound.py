#!/usr/bin/env python3
"""The disk bound under sustained writes, from outside.

Starts the release kvserver on 127.0.0.1 with a data directory and
`--fsync never`, lets WRITERS threads overwrite KEYS keys with VALUE_KIB KiB
values as fast as they can for SECONDS seconds, samples the data directory's
size every 10 ms, and compares the largest size seen with the README's
promise: three times the live data plus 24 MiB. Stops its own server by PID.

    cargo build --release -p kvserver
    python3 bench/disk_bound.py [path/to/kvserver]

Environment: WRITERS (4), KEYS (40), VALUE_KIB (64), SECONDS (15).
Standard library only.
"""

import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

WRITERS = int(os.environ.get("WRITERS", 4))
KEYS = int(os.environ.get("KEYS", 40))
VALUE_KIB = int(os.environ.get("VALUE_KIB", 64))
SECONDS = float(os.environ.get("SECONDS", 15))


def directory_bytes(path):
    total = 0
    for name in os.listdir(path):
        try:
            total += os.path.getsize(os.path.join(path, name))
        except FileNotFoundError:
            pass  # removed by a compaction meanwhile
    return total


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "kvserver")
    with tempfile.TemporaryDirectory(prefix="kvstore-disk-bound.") as tmp:
        data = os.path.join(tmp, "data")
        server = subprocess.Popen(
            [binary, "--addr", "127.0.0.1:0", "--data-dir", data, "--fsync", "never",
             "--max-value-bytes", str(VALUE_KIB * 1024 + 1024)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        try:
            port = None
            for line in server.stderr:
                found = re.search(r"127\.0\.0\.1:(\d+)", line)
                if "listening" in line and found:
                    port = int(found.group(1))
                    break
            if port is None:
                sys.exit("kvserver did not start")
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            run(data, port)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def run(data, port):
    stop = time.monotonic() + SECONDS
    writes = [0] * WRITERS
    largest = [0]

    def writer(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        value = bytes([97 + index]) * (VALUE_KIB * 1024)
        i = index
        while time.monotonic() < stop:
            connection.request("PUT", f"/v1/kv/key{i % KEYS}", body=value)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 201):
                sys.exit(f"PUT answered {response.status}")
            writes[index] += 1
            i += WRITERS

    def sampler():
        while time.monotonic() < stop + 0.5:
            largest[0] = max(largest[0], directory_bytes(data))
            time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    threads.append(threading.Thread(target=sampler))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(writes)
    live = KEYS * (VALUE_KIB * 1024 + 40)
    bound = 3 * live + (24 << 20)
    mib = 1 << 20
    print(f"writes: {total} in {SECONDS:.0f} s ({total / SECONDS:.0f}/s, "
          f"{total * VALUE_KIB / 1024 / SECONDS:.0f} MiB/s)")
    print(f"live data: {live / mib:.1f} MiB; largest directory: {largest[0] / mib:.1f} MiB; "
          f"bound (3 x live + 24 MiB): {bound / mib:.1f} MiB")
    print("RESULT", "held" if largest[0] <= bound else "EXCEEDED")
    if largest[0] > bound:
        sys.exit(1)


if __name__ == "__main__":
    main()
