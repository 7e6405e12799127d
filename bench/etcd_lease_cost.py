"""etcd's memory per lease: what one lease per key with a TTL (the etcd
backend's scheme) costs etcd itself.

Starts a fresh single etcd member on 127.0.0.1 (ports 23790-23801, data in
a temporary directory) twice: once writing N keys of 16-byte values
without a lease, once with a lease of its own each (granted first, as
kvserver does), through etcd's gRPC gateway (JSON over HTTP). Prints the
growth of etcd's RSS per key for both, and the difference. Go's garbage
collector makes RSS a rough figure: compare the two lines of one run.

    N=20000 python3 bench/etcd_lease_cost.py

Standard library only; needs the `etcd` binary (Debian's etcd-server).
"""
import base64, http.client, json, os, subprocess, sys, tempfile, time

N = int(os.environ.get("N", 100000))

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def b64(s):
    return base64.b64encode(s.encode()).decode()

def run(with_lease, port):
    d = tempfile.mkdtemp()
    p = subprocess.Popen(["etcd", "--data-dir", d, "--listen-client-urls", f"http://127.0.0.1:{port}",
                          "--advertise-client-urls", f"http://127.0.0.1:{port}",
                          "--listen-peer-urls", f"http://127.0.0.1:{port+1}",
                          "--initial-advertise-peer-urls", f"http://127.0.0.1:{port+1}",
                          "--initial-cluster", f"default=http://127.0.0.1:{port+1}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = None
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/v3/kv/range", body=json.dumps({"key": b64("x")}))
                c.getresponse().read()
                break
            except Exception:
                time.sleep(0.1)
        time.sleep(1)
        before = rss(p.pid)
        t = time.time()
        for i in range(N):
            body = {"key": b64(f"kvstore/k{i:08d}"), "value": b64("v" * 16)}
            if with_lease:
                c.request("POST", "/v3/lease/grant", body=json.dumps({"TTL": 3600}))
                lease = json.loads(c.getresponse().read())["ID"]
                body["lease"] = lease
            c.request("POST", "/v3/kv/put", body=json.dumps(body))
            c.getresponse().read()
        took = time.time() - t
        time.sleep(2)
        after = rss(p.pid)
        print(f"{'leases' if with_lease else 'no leases'}: {N} keys in {took:.0f} s; etcd RSS {before/2**20:.1f} -> {after/2**20:.1f} MiB: {(after-before)/N:.0f} B/key", flush=True)
        return (after - before) / N
    finally:
        p.terminate(); p.wait()
        subprocess.run(["rm", "-rf", d])

a = run(False, 23790)
b = run(True, 23800)
print(f"a lease costs etcd about {b-a:.0f} B of RSS")
