#!/usr/bin/env python3
"""Black-box attacks on a release kvserver: slow bodies, junk methods, header
floods, huge listings and malformed requests, each checked against what
the README promises (The REST API, Errors, Operations, Security).

    python3 tests/attack/attack.py [--bin PATH]

Without --bin it builds the release binary (`cargo build --release -p
kvserver`) and uses `$CARGO_TARGET_DIR/release/kvserver` (or
`target/release/kvserver`). It starts the server on 127.0.0.1 on a free port,
in memory, runs every check (each prints PASS or FAIL and one line of
detail), stops the server by its PID and exits 1 if any check failed. The
attacks are bounded: a few hundred requests and one 300 MiB listing, about
30 s in all, with a hard stop at 120 s.

Python 3.11 standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The server's settings for the run: short timeouts so the slow-client checks
# take seconds, and limits raised so 1 MiB values fit with room to spare.
BODY_TIMEOUT_S = 2
MAX_CONNECTIONS = 50
MAX_VALUE_BYTES = 2 * 1024 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
# actix-web's default time to receive a request head; kvserver keeps it.
HEADER_TIMEOUT_S = 5

# The huge listing: this many values of this size, listed in one request.
HUGE_VALUES = 300
HUGE_VALUE_BYTES = 1024 * 1024
# What a page may cost. The stored values alone keep about 310 MiB resident,
# so the bound is on what answering the listing adds to the server's resident
# memory (peak during the request minus RSS before it), and on the size of
# the page itself: both well under the 300 MiB an unbounded page costs.
HUGE_PAGE_MAX_BYTES = 96 * 1024 * 1024
HUGE_RSS_GROWTH_MAX_BYTES = 160 * 1024 * 1024

METHOD_LABELS = {"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "other"}
HARD_STOP_S = 120


class HardStop(BaseException):
    """The whole run took too long (raised by SIGALRM, so no check's
    `except Exception` swallows it)."""


class Response:
    """One HTTP response read off a raw socket."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        # Bytes that came after the response on its connection (a body sent
        # where none belongs, such as after a HEAD answer).
        self.trailing = b""

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def is_json_error(self):
        """Whether the body is the README's error shape (Errors): `error` and `code`."""
        body = self.json()
        return (
            isinstance(body, dict)
            and isinstance(body.get("error"), str)
            and isinstance(body.get("code"), str)
        )

    def __str__(self):
        body = self.body[:120]
        return f"{self.status} {self.reason} body={body!r}"


class Exchange:
    """What came back on one connection: every response (1xx included), in
    order, and whether the server then closed the connection."""

    def __init__(self, responses, closed, error=None):
        self.responses = responses
        self.closed = closed
        self.error = error

    @property
    def final(self):
        finals = [r for r in self.responses if r.status >= 200]
        return finals[0] if finals else None

    def describe(self):
        if self.final is not None:
            return str(self.final)
        if self.responses:
            return f"only {[r.status for r in self.responses]}"
        return f"no response ({self.error or 'connection closed'})"


class Server:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.log_path = workdir / "kvserver.log"
        self.log = open(self.log_path, "wb")
        args = [
            str(binary),
            "--addr", f"127.0.0.1:{self.port}",
            "--workers", "2",
            "--max-connections", str(MAX_CONNECTIONS),
            "--body-timeout", f"{BODY_TIMEOUT_S}s",
            "--max-value-bytes", str(MAX_VALUE_BYTES),
            "--max-body-bytes", str(MAX_BODY_BYTES),
            "--shutdown-timeout", "2s",
        ]
        env = dict(os.environ, RUST_LOG="warn")
        self.process = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        self.pid = self.process.pid

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"kvserver exited with {self.process.returncode}")
            try:
                if request("GET", "/readyz", port=self.port, timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("kvserver did not become ready")

    def alive(self):
        return self.process.poll() is None

    def status_kib(self, field):
        """VmRSS, VmHWM, ... from /proc/<pid>/status, in bytes."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak_rss(self):
        """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as refs:
                refs.write("5")
            return True
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = None


def connect(timeout=5):
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(method, path, body=None, headers=None, port=None, timeout=10):
    """A well-formed request through http.client; returns a Response."""
    conn = http.client.HTTPConnection("127.0.0.1", port or PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        body = answer.read()
        return Response(answer.status, answer.reason, dict(answer.getheaders()), body)
    finally:
        conn.close()


def read_exchange(sock, timeout, head_only=False, close_wait=1.0):
    """Reads responses off `sock` until a final (non-1xx) one is complete, then
    waits up to `close_wait` seconds to see whether the server closes."""
    sock.settimeout(timeout)
    buffer = b""
    responses = []
    closed = False
    deadline = time.monotonic() + timeout

    def fill():
        nonlocal buffer, closed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            closed = True
            return False
        buffer += chunk
        return True

    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                if not fill():
                    return Exchange(responses, True, "closed before a full response head")
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                responses.append(Response(status, reason, headers, b""))
                continue
            body = b""
            if head_only or status in (204, 304):
                pass
            elif "content-length" in headers:
                length = int(headers["content-length"])
                while len(buffer) < length:
                    if not fill():
                        break
                body, buffer = buffer[:length], buffer[length:]
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    while b"\r\n" not in buffer:
                        if not fill():
                            break
                    size_line, _, rest = buffer.partition(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    while len(rest) < size + 2:
                        if not fill():
                            break
                        size_line, _, rest = buffer.partition(b"\r\n")
                    body += rest[:size]
                    buffer = rest[size + 2:]
                    if size == 0:
                        break
            else:
                while fill():
                    pass
                body, buffer = buffer, b""
            responses.append(Response(status, reason, headers, body))
            break
        # After the final response: does the server close the connection?
        extra = buffer
        if not closed and close_wait > 0:
            sock.settimeout(close_wait)
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    extra += chunk
            except socket.timeout:
                pass
        responses[-1].trailing = extra
        return Exchange(responses, closed)
    except TimeoutError:  # socket.timeout is TimeoutError
        error = f"timed out after {timeout}s"
    except (ConnectionResetError, BrokenPipeError) as err:
        closed = True
        error = type(err).__name__
    except (ValueError, IndexError) as err:
        error = f"unparsable response: {err}"
    return Exchange(responses, closed, error)


def closes_within(sock, exchange, seconds):
    """Marks `exchange` closed if the server closes `sock` within `seconds`
    (bytes it sends meanwhile are ignored)."""
    deadline = time.monotonic() + seconds
    try:
        while not exchange.closed and time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            if not sock.recv(65536):
                exchange.closed = True
    except TimeoutError:
        pass
    except (ConnectionResetError, BrokenPipeError):
        exchange.closed = True
    return exchange


def raw(data, timeout=10, head_only=False, close_wait=0.3):
    """Sends `data` as is on a new connection and reads what comes back."""
    with connect(timeout) as sock:
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            # The server may answer and close before taking everything.
            pass
        return read_exchange(sock, timeout, head_only=head_only, close_wait=close_wait)


# ---------------------------------------------------------------------------
# The checks. Each returns (ok, detail).


def check_slow_chunked_body():
    """A chunked body that stalls gets 408 with a JSON body after
    --body-timeout, and the connection is closed."""
    with connect() as sock:
        sock.sendall(
            b"PUT /v1/kv/attack/slow HTTP/1.1\r\nHost: attack\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel"
        )
        started = time.monotonic()
        exchange = read_exchange(sock, BODY_TIMEOUT_S + 8, close_wait=0)
        waited = time.monotonic() - started
        exchange = closes_within(sock, exchange, 2)
    final = exchange.final
    ok = (
        final is not None
        and final.status == 408
        and final.is_json_error()
        and exchange.closed
    )
    closed = "closed" if exchange.closed else "left open 2 s later"
    return ok, f"{exchange.describe()} after {waited:.1f}s, connection {closed}"


def check_stalled_clients_do_not_lock_out():
    """MAX_CONNECTIONS clients stalling their bodies: each gets 408 once the
    body timeout passes, and a request made while they hold every slot is
    served then."""
    stalled = []
    for n in range(MAX_CONNECTIONS):
        sock = connect()
        sock.sendall(
            f"PUT /v1/kv/attack/stall/{n} HTTP/1.1\r\nHost: attack\r\n"
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhel".encode()
        )
        stalled.append(sock)
    time.sleep(0.3)  # every stalled request is in, holding its connection
    started = time.monotonic()
    late = {}

    def late_request():
        try:
            late["response"] = request("GET", "/healthz", timeout=BODY_TIMEOUT_S + 10)
        except OSError as err:
            late["error"] = err
        late["after"] = time.monotonic() - started

    worker = threading.Thread(target=late_request)
    worker.start()
    results = [None] * len(stalled)

    def collect(n, sock):
        with sock:
            results[n] = read_exchange(sock, BODY_TIMEOUT_S + 8, close_wait=0.5)

    readers = [threading.Thread(target=collect, args=(n, s)) for n, s in enumerate(stalled)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    worker.join()
    timed_out = sum(
        1
        for exchange in results
        if exchange.final is not None
        and exchange.final.status == 408
        and exchange.final.is_json_error()
    )
    answer = late.get("response")
    served = answer is not None and answer.status == 200
    detail = (
        f"{timed_out}/{len(stalled)} stalled clients got 408 JSON; the late request "
        + (f"got {answer.status}" if answer else f"failed ({late.get('error')})")
        + f" after {late.get('after', 0):.1f}s"
    )
    if timed_out < len(stalled):
        others = [r.describe() for r in results if r.final is None or r.final.status != 408]
        detail += f"; e.g. {others[0]}"
    return served and timed_out == len(stalled), detail


def check_junk_methods():
    """Unknown methods are counted under `other`: /metrics keeps its method
    label within the known set."""
    rng = random.Random(12)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    methods = ["FOO", "GETX", "get", "PATCH", "TRACE", "PROPFIND", "M-SEARCH"]
    methods += ["".join(rng.choice(letters) for _ in range(rng.randint(3, 12))) for _ in range(200)]
    for method in methods:
        raw(
            f"{method} /v1/kv/attack/junk HTTP/1.1\r\nHost: attack\r\nConnection: close\r\n\r\n".encode(),
            timeout=5,
            close_wait=0,
        )
    metrics = request("GET", "/metrics").body.decode()
    labels = set()
    for line in metrics.splitlines():
        if line.startswith("kv_http_requests_total{"):
            for pair in line[line.index("{") + 1: line.index("}")].split(","):
                name, _, value = pair.partition("=")
                if name == "method":
                    labels.add(value.strip('"'))
    unknown = sorted(labels - METHOD_LABELS)
    detail = f"{len(methods)} junk methods sent; method labels: {len(labels)}"
    if unknown:
        detail += f", {len(unknown)} outside the known set (e.g. {unknown[:5]})"
    return not unknown, detail


def expect_json_error(exchange, status):
    final = exchange.final
    ok = final is not None and final.status == status and final.is_json_error()
    return ok, exchange.describe()


def check_errors_are_json():
    """Errors the HTTP layer produces before routing are JSON like the rest."""
    cases = []
    cases.append(("unparsable request line", 400, raw(b"THIS IS NOT HTTP\r\n\r\n")))
    # actix-http takes a request head of up to 128 KiB and 96 headers.
    cases.append(
        ("oversized headers", 431,
         raw(b"GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"))
    )
    # Over the 64 KiB the http crate takes: 400, 414 or 431 would all be
    # right, as long as the body is JSON.
    long_uri = raw(b"GET /healthz?" + b"q" * 65536 + b" HTTP/1.1\r\nHost: attack\r\n\r\n")
    status = long_uri.final.status if long_uri.final else 400
    cases.append(("request target over 64 KiB", status if status in (400, 414, 431) else 414, long_uri))
    # The head never ends: the header timeout answers.
    with connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Slow: ")
        cases.append(
            ("header timeout", 408, read_exchange(sock, HEADER_TIMEOUT_S + 5, close_wait=0.5))
        )
    big = MAX_BODY_BYTES + 1024 * 1024
    cases.append(
        ("oversized body", 413,
         raw(f"PUT /v1/kv/attack/big HTTP/1.1\r\nHost: attack\r\nContent-Length: {big}\r\n\r\n".encode()
             + b"x" * 65536))
    )
    cases.append(("unknown route", 404, raw(b"GET /no/such/route HTTP/1.1\r\nHost: attack\r\n\r\n")))
    failed = []
    for name, status, exchange in cases:
        ok, what = expect_json_error(exchange, status)
        if not ok:
            failed.append(f"{name}: wanted {status} JSON, got {what}")
    return not failed, "; ".join(failed) or f"{len(cases)} errors, each JSON with error and code"


def check_head():
    """HEAD answers 200 with no body on the read routes."""
    put = request("PUT", "/v1/kv/attack/head", body=b"some value")
    if put.status not in (200, 201):
        return False, f"could not write the key: {put}"
    failed = []
    paths = ["/healthz", "/readyz", "/v1/info", "/v1/kv/attack/head", "/v1/kv", "/v1/kv?prefix=attack/"]
    for path in paths:
        exchange = raw(
            f"HEAD {path} HTTP/1.1\r\nHost: attack\r\nConnection: close\r\n\r\n".encode(),
            head_only=True,
            close_wait=0.5,
        )
        final = exchange.final
        if final is None or final.status != 200 or final.trailing:
            body = len(final.trailing) if final else 0
            failed.append(f"HEAD {path}: {exchange.describe()}, {body} body bytes")
    return not failed, "; ".join(failed) or f"{len(paths)} routes: 200, no body"


def check_huge_listing(server):
    """A listing with values stops at a byte budget: the page is a small part
    of the 300 MiB stored, `next` is set, and answering costs the server little
    memory."""
    value = b"v" * HUGE_VALUE_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        for n in range(HUGE_VALUES):
            conn.request("PUT", f"/v1/kv/huge/{n:04}", body=value)
            answer = conn.getresponse()
            answer.read()
            if answer.status not in (200, 201):
                return False, f"writing value {n} got {answer.status}"
    finally:
        conn.close()
    before = server.status_kib("VmRSS")
    reset = server.reset_peak_rss()
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    try:
        conn.request("GET", "/v1/kv?prefix=huge/&values=true&limit=1000")
        answer = conn.getresponse()
        size = 0
        head = b""
        tail = b""
        while True:
            chunk = answer.read(1024 * 1024)
            if not chunk:
                break
            if size < HUGE_PAGE_MAX_BYTES:
                head += chunk
            tail = (tail + chunk)[-4096:]
            size += len(chunk)
        status = answer.status
    finally:
        conn.close()
    took = time.monotonic() - started
    peak = server.status_kib("VmHWM") if reset else None
    after = server.status_kib("VmRSS")
    total = HUGE_VALUES * HUGE_VALUE_BYTES
    mib = 1024 * 1024
    detail = (
        f"page {size / mib:.1f} MiB of {total / mib:.0f} MiB stored in {took:.1f}s; "
        f"RSS {before / mib:.0f} MiB before"
    )
    growth = (peak if peak is not None else after) - before
    detail += f", peak {'during' if reset else 'after'} listing +{growth / mib:.0f} MiB"
    if status != 200:
        return False, f"status {status}; {detail}"
    if size > HUGE_PAGE_MAX_BYTES:
        return False, f"no byte budget: {detail}"
    try:
        page = json.loads(head)
    except ValueError as err:
        return False, f"not JSON ({err}); {detail}"
    items = len(page.get("items", []))
    detail += f"; {items} items, next={'set' if page.get('next') else page.get('next')}"
    ok = page.get("next") is not None and 0 < items < HUGE_VALUES and growth <= HUGE_RSS_GROWTH_MAX_BYTES
    return ok, detail


def check_header_floods(server):
    """Many headers, or huge header lines, get 431 JSON; the server stays up."""
    many = b"".join(b"X-Flood-%d: v\r\n" % n for n in range(500))
    floods = [
        ("500 headers", b"GET /healthz HTTP/1.1\r\nHost: attack\r\n" + many + b"\r\n"),
        ("one 1 MiB header line",
         b"GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Huge: " + b"h" * (1024 * 1024) + b"\r\n\r\n"),
        ("100 headers of 1 KiB",
         b"GET /healthz HTTP/1.1\r\nHost: attack\r\n"
         + b"".join(b"X-Wide-%d: %s\r\n" % (n, b"w" * 1024) for n in range(100)) + b"\r\n"),
    ]
    failed = []
    for name, data in floods:
        ok, what = expect_json_error(raw(data), 431)
        if not ok:
            failed.append(f"{name}: wanted 431 JSON, got {what}")
    # The same floods from 30 connections at once.
    threads = [
        threading.Thread(target=raw, args=(data,), kwargs={"close_wait": 0})
        for _, data in floods * 10
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        alive = server.alive() and request("GET", "/healthz").status == 200
    except OSError:
        alive = False
    if not alive:
        failed.append("the server is down after the floods")
    return not failed, "; ".join(failed) or f"{len(floods)} kinds, 431 JSON each; still serving"


def check_invalid_utf8_query():
    """A query parameter that is not UTF-8 once decoded is 400."""
    paths = [
        ("GET", "/store?key=%FF"),
        ("DELETE", "/store?key=%FF"),
        ("GET", "/v1/kv?prefix=%FF"),
        ("GET", "/v1/kv?prefix=ok%C3"),
    ]
    failed = []
    for method, path in paths:
        answer = request(method, path)
        if answer.status != 400 or not answer.is_json_error():
            failed.append(f"{method} {path}: {answer}")
    return not failed, "; ".join(failed) or f"{len(paths)} requests: 400 JSON"


def check_expect_continue():
    """`Expect: 100-continue` with a Content-Length over the limit is refused
    with 413 at once, without inviting the body with `100 Continue`."""
    failed = []
    big = MAX_BODY_BYTES * 5
    for method, path in [("PUT", "/v1/kv/attack/expect"), ("POST", "/store")]:
        with connect() as sock:
            sock.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: attack\r\nContent-Type: application/json\r\n"
                f"Content-Length: {big}\r\nExpect: 100-continue\r\n\r\n".encode()
            )
            exchange = read_exchange(sock, 5, close_wait=0.2)
        statuses = [r.status for r in exchange.responses]
        if statuses != [413] or not exchange.final.is_json_error():
            failed.append(f"{method} {path}: statuses {statuses} ({exchange.describe()})")
    return not failed, "; ".join(failed) or "413 JSON, no 100 Continue"


def check_token_in_query():
    """A token in the query string is refused with 400 on every route."""
    paths = [
        "/healthz?token=abc",
        "/readyz?token=abc",
        "/metrics?token=abc",
        "/v1/info?access_token=abc",
        "/v1/kv/attack/head?token=abc",
        "/v1/kv?prefix=attack/&token=abc",
        "/store?key=attack/head&token=abc",
    ]
    failed = []
    for path in paths:
        answer = request("GET", path)
        if answer.status != 400 or not answer.is_json_error():
            failed.append(f"{path}: {answer.status}")
    return not failed, ("refused: " if failed else "") + ("; ".join(failed) or f"{len(paths)} routes: 400 JSON")


def main():
    global PORT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", help="the kvserver binary (default: build the release one)")
    args = parser.parse_args()
    if args.bin:
        binary = Path(args.bin)
    else:
        subprocess.run(["cargo", "build", "--release", "-p", "kvserver"], cwd=REPO, check=True)
        target = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
        binary = target / "release" / "kvserver"
    if not binary.is_file():
        sys.exit(f"no kvserver binary at {binary}")

    workdir = Path(tempfile.mkdtemp(prefix="kv-attack-"))
    server = Server(binary, workdir)
    PORT = server.port

    def hard_stop(_signum, _frame):
        raise HardStop(f"the attack script ran over {HARD_STOP_S}s")

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(HARD_STOP_S)
    started = time.monotonic()
    checks = [
        ("slow chunked body gets 408 JSON and a close", check_slow_chunked_body),
        (f"{MAX_CONNECTIONS} stalled bodies do not lock out a later request",
         check_stalled_clients_do_not_lock_out),
        ("junk methods do not grow /metrics", check_junk_methods),
        ("every error is JSON (400, 431, 408, 413, 404, 414)", check_errors_are_json),
        ("HEAD is 200 without a body", check_head),
        ("a huge listing stops at a byte budget", lambda: check_huge_listing(server)),
        ("header floods get 431 JSON, the server stays up", lambda: check_header_floods(server)),
        ("invalid UTF-8 in ?key= and ?prefix= is 400", check_invalid_utf8_query),
        ("Expect: 100-continue over the limit is 413 without 100", check_expect_continue),
        ("?token= is refused with 400", check_token_in_query),
    ]
    passed = failed = 0
    try:
        server.wait_ready()
        print(f"kvserver {binary} pid {server.pid} on 127.0.0.1:{server.port}", flush=True)
        for name, check in checks:
            if not server.alive():
                ok, detail = False, "the server is no longer running"
            else:
                try:
                    ok, detail = check()
                except Exception as err:  # a check that crashes is a failure
                    ok, detail = False, f"{type(err).__name__}: {err}"
            print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
            passed += ok
            failed += not ok
    except (HardStop, RuntimeError) as err:
        print(f"FAIL {err}", flush=True)
        failed += 1
    finally:
        signal.alarm(0)
        server.stop()
    code = server.process.returncode
    if code != 0:
        print(f"FAIL kvserver exited with {code} on SIGTERM (see {server.log_path})")
        failed += 1
    print(f"{passed} passed, {failed} failed in {time.monotonic() - started:.0f}s")
    if failed:
        with open(server.log_path, "rb") as log:
            lines = log.read().decode(errors="replace").splitlines()
        print(f"kvserver's log ({server.log_path}), last lines:")
        for line in lines[-10:]:
            print("  " + line[:300])
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
