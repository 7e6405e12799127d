#!/usr/bin/env python3
"""The memory bound under a write flood, from outside.

For each eviction policy, starts the release kvserver on 127.0.0.1 in
memory with `--max-memory BOUND_MIB MiB`, notes its resident set once it
listens (the fixed overhead), then lets WRITERS threads PUT new keys with
values of random sizes (log-uniform from 16 B to MAX_VALUE_KIB KiB) for at
most SECONDS seconds or WRITES writes. The server's VmRSS is sampled from
/proc/PID/status every 20 ms. The promise checked: the largest RSS seen
stays within the fixed overhead plus 110% of the bound. The script then
prints what /v1/info says (used, bound, evicted) and stops its own server
by PID. Under `evict-ttl` every write sets a TTL (a random 1 to 2 hours, so
none expires during the run and every eviction is a nearest-deadline-first
one); under the other policies no write has a TTL.

Then, unless KVCORE_BENCHES=0, it runs kvcore's two benches that belong to
the bound: `eviction` (evict-lru's hit rate against exact LRU on a zipf
trace) and `memory` (bytes per key with and without a bound).

    cargo build --release -p kvserver
    python3 bench/memory_bound.py [path/to/kvserver]

Environment: BOUND_MIB (256), POLICIES ("evict-lru evict-ttl reject"), WRITERS (4),
SECONDS (60), WRITES (300000), MAX_VALUE_KIB (64), KVCORE_BENCHES (1).
The server inherits the environment: a bounded kvserver limits glibc malloc
to one arena itself, unless MALLOC_ARENA_MAX (or GLIBC_TUNABLES) chooses.
Standard library only.
"""

import http.client
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

BOUND_MIB = int(os.environ.get("BOUND_MIB", 256))
POLICIES = os.environ.get("POLICIES", "evict-lru evict-ttl reject").split()
WRITERS = int(os.environ.get("WRITERS", 4))
SECONDS = float(os.environ.get("SECONDS", 60))
WRITES = int(os.environ.get("WRITES", 300_000))
MAX_VALUE_KIB = int(os.environ.get("MAX_VALUE_KIB", 64))
MIB = 1 << 20


def resident_bytes(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def start(binary, policy):
    server = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", "--max-memory", f"{BOUND_MIB}MiB",
         "--eviction", policy, "--max-value-bytes", str(MAX_VALUE_KIB * 1024)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn,kvserver=info,kvserver::request=warn"},
    )
    for line in server.stderr:
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if "listening" in line and found:
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, int(found.group(1))
    server.kill()
    sys.exit("kvserver did not start")


def flood(pid, port, policy):
    stop = time.monotonic() + SECONDS
    counts = {"written": 0, "refused": 0, "bytes": 0}
    lock = threading.Lock()
    largest = [0]
    done = threading.Event()

    def writer(index):
        rng = random.Random(index)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        low, high = math.log(16), math.log(MAX_VALUE_KIB * 1024)
        while time.monotonic() < stop and not done.is_set():
            size = int(math.exp(rng.uniform(low, high)))
            key = f"flood/{index}/{rng.getrandbits(48):012x}"
            query = f"?ttl={rng.randint(3600, 7200)}s" if policy == "evict-ttl" else ""
            connection.request("PUT", f"/v1/kv/{key}{query}", body=b"x" * size)
            response = connection.getresponse()
            response.read()
            with lock:
                if response.status in (200, 201):
                    counts["written"] += 1
                    counts["bytes"] += size
                elif response.status == 507:
                    counts["refused"] += 1
                else:
                    sys.exit(f"PUT answered {response.status}")
                if counts["written"] + counts["refused"] >= WRITES:
                    done.set()

    def sampler():
        while not done.is_set() and time.monotonic() < stop + 0.5:
            largest[0] = max(largest[0], resident_bytes(pid))
            time.sleep(0.02)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    sampling = threading.Thread(target=sampler)
    started = time.monotonic()
    for thread in threads + [sampling]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampling.join()
    counts["seconds"] = time.monotonic() - started
    return counts, largest[0]


def info(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/v1/info")
    return json.loads(connection.getresponse().read())


def run_policy(binary, policy):
    server, port = start(binary, policy)
    try:
        time.sleep(0.5)
        idle = resident_bytes(server.pid)
        counts, largest = flood(server.pid, port, policy)
        peak = resident_bytes(server.pid, "VmHWM")
        figures = info(port)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    bound = BOUND_MIB * MIB
    limit = idle + 1.10 * bound
    memory = figures["memory"]
    print(f"\n{policy}: {counts['written']} writes ({counts['bytes'] / MIB:.0f} MiB of values) "
          f"and {counts['refused']} refused (507) in {counts['seconds']:.1f} s")
    print(f"  idle RSS {idle / MIB:.1f} MiB; largest sampled RSS {largest / MIB:.1f} MiB; "
          f"VmHWM {peak / MIB:.1f} MiB; bound {bound / MIB:.0f} MiB")
    print(f"  /v1/info: used {memory['used_bytes'] / MIB:.1f} MiB of {memory['bound_bytes'] / MIB:.0f}, "
          f"{figures['keys']} keys, {memory['evicted_keys']} evicted")
    print(f"  (VmHWM - idle) / bound = {(peak - idle) / bound:.3f}; "
          f"promise: VmHWM <= idle + 1.10 x bound = {limit / MIB:.1f} MiB")
    held = peak <= limit
    print("RESULT", policy, "held" if held else "EXCEEDED")
    return held


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "kvserver")
    held = all([run_policy(binary, policy) for policy in POLICIES])
    if os.environ.get("KVCORE_BENCHES", "1") != "0":
        for bench in ["eviction", "memory"]:
            subprocess.run(["cargo", "bench", "-p", "kvcore", "--bench", bench],
                           cwd=repo, check=True)
    if not held:
        sys.exit(1)


if __name__ == "__main__":
    main()
