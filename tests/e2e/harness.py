"""Shared machinery for the end-to-end tests.

Every test runs real processes: the strangler binary, the demo legacy shop
(Python's xmlrpc.server), the demo stock service (C), a private RabbitMQ
node (started once per ctest run by the rabbitmq fixture), and, where a test
needs an upstream it can inspect, small HTTP servers defined here. Clients
are Python's standard xmlrpc.client and http.client.

Each test writes its own routes.conf, binds everything to 127.0.0.1:0 and
reads the real port back, waits for readiness with a deadline, and stops
every process it started by pid, even when it fails.
"""

import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import warnings
import xmlrpc.client

# xmlrpc.client keeps its connection open until garbage collection; that is
# the client library's habit, not a leak of the code under test.
warnings.simplefilter("ignore", ResourceWarning)

HERE = os.path.dirname(os.path.abspath(__file__))

SOURCE_DIR = os.environ.get("STRANGLER_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("STRANGLER_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
STRANGLER = os.environ.get("STRANGLER_BIN", os.path.join(BUILD_DIR, "strangler"))
STOCK_SERVICE = os.environ.get("STRANGLER_STOCK_SERVICE",
                               os.path.join(BUILD_DIR, "examples", "stock-service", "stock-service"))
AMQP_TOOL = os.environ.get("STRANGLER_AMQP_TOOL", os.path.join(BUILD_DIR, "tests", "tools", "amqp-tool"))
STATE_DIR = os.environ.get("STRANGLER_E2E_STATE", os.path.join(BUILD_DIR, "tests", "e2e-state"))
SHOP = os.path.join(SOURCE_DIR, "examples", "legacy-shop", "shop.py")

READY_TIMEOUT_S = 20


class Process:
    """A child process whose output goes to a log file, watched line by line
    for a readiness pattern."""

    def __init__(self, name, argv, log_dir, ready=None, env=None, cwd=None):
        self.name = name
        self.killed = False
        self.argv = argv
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.ready_re = re.compile(ready) if ready else None
        self.match = None
        self._ready = threading.Event()
        self._lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.log_path, "ab") as log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self._lock:
                    self._lines.append(line)
                if self.ready_re and not self._ready.is_set():
                    m = self.ready_re.search(line)
                    if m:
                        self.match = m
                        self._ready.set()

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.05):
                return self.match
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"{self.name} not ready (exit {self.proc.poll()}); output:\n"
                             + self.output())

    def output(self):
        with self._lock:
            return "\n".join(self._lines)

    def wait_for_output(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if rx.search(self.output()):
                return True
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no output matching {pattern!r}; output:\n"
                             + self.output())

    def search_output(self, pattern, timeout=10):
        """Waits for a line matching pattern and returns its match."""
        self.wait_for_output(pattern, timeout)
        return re.search(pattern, self.output())

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process; returns its exit code (SIGKILL after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        self.proc.stdout.close()
        return self.proc.returncode

    def kill(self):
        self.killed = True
        return self.stop(signal.SIGKILL)

    def sanitizer_reports(self):
        """Lines where AddressSanitizer, LeakSanitizer or UBSan complained."""
        return [line for line in self.output().splitlines()
                if "runtime error:" in line or "Sanitizer" in line]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_url():
    state = os.path.join(STATE_DIR, "rabbitmq", "state.json")
    with open(state) as f:
        return json.load(f)["url"]


def amqp_tool(*args, timeout=60):
    out = subprocess.run([AMQP_TOOL, *args], capture_output=True, timeout=timeout, text=True)
    if out.returncode != 0:
        raise AssertionError(f"amqp-tool {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def declare_queue(queue, keys, exchange="strangler.events"):
    args = [broker_url(), "declare", queue, "--exchange", exchange]
    for k in keys:
        args += ["--bind", k]
    amqp_tool(*args)
    amqp_tool(broker_url(), "purge", queue)


def consume(queue, count=None, timeout_ms=3000):
    """Reads messages off a queue (acking them): a list of dicts with
    routing_key, properties and body (parsed JSON)."""
    args = [broker_url(), "consume", queue, "--timeout-ms", str(timeout_ms)]
    if count is not None:
        args += ["--count", str(count)]
    out = amqp_tool(*args, timeout=120)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def http_request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def post_xml(port, body, path="/RPC2", headers=None):
    """POSTs an XML body as an XML-RPC client would; returns (status,
    headers, body)."""
    if isinstance(body, str):
        body = body.encode()
    return http_request(port, "POST", path, body=body,
                        headers={"Content-Type": "text/xml", **(headers or {})})


def raw_exchange(port, data, timeout=5, read_until_close=True):
    """Sends raw bytes and returns everything the proxy answers (until it
    closes or goes quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        s.settimeout(timeout if read_until_close else 1.0)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def status_of(raw):
    """The status code of the first response in raw bytes."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


class RecordingUpstream:
    """An HTTP/1.1 upstream that records every request and answers by path:
         /echo...          200, JSON of what it received
         /chunked          200, a chunked body
         .../slow?ms=N     waits N ms, then like /echo
         /status/N         status N with a short body
         /close            answers with Connection: close
         anything else     200, JSON echo
    It runs in the test process, on its own threads."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.connections = 0
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def setup(self):
                super().setup()
                with upstream.lock:
                    upstream.connections += 1

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path,
                          "headers": [[k, v] for k, v in self.headers.items()],
                          "body": body.decode("latin-1")}
                with upstream.lock:
                    upstream.requests.append(record)
                path = self.path.split("?")[0]
                if path.endswith("/slow"):
                    ms = int(self.path.split("ms=")[1]) if "ms=" in self.path else 1000
                    time.sleep(ms / 1000)
                if path.startswith("/status/"):
                    code = int(path.split("/")[2])
                    payload = f"status {code}\n".encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                payload = json.dumps(record).encode()
                if path == "/chunked":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("X-Upstream", "chunked")
                    self.end_headers()
                    for i in range(0, len(payload), 7):
                        piece = payload[i:i + 7]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Upstream", "recording")
                self.send_header("Set-Cookie", "a=1")
                self.send_header("Set-Cookie", "b=2")
                if path == "/close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last(self):
        with self.lock:
            return self.requests[-1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class JsonService:
    """A new service speaking the JSON contract (DESIGN.md), written
    independently of the proxy's adapter:
        POST /rpc/test.echo   [params...] -> 200 the params array
        POST /rpc/test.fault  [code, msg] -> 4xx {"faultCode", "faultString"}
        POST /rpc/status.N    -> status N, a non-JSON body
        POST /rpc/garbage     -> 200 with a body that is not JSON
        POST /rpc/slow        -> sleeps, then echoes
        anything else         -> 404 {"faultCode": -32601, ...}
    Every request is recorded with its headers."""

    def __init__(self, base="/rpc"):
        self.requests = []
        self.lock = threading.Lock()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, code, payload, ctype="application/json"):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass  # the proxy gave up waiting (timeout tests)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with service.lock:
                    service.requests.append({"path": self.path, "headers": dict(self.headers),
                                             "body": raw.decode("utf-8")})
                method = self.path[len(base) + 1:] if self.path.startswith(base + "/") else ""
                if method == "test.echo":
                    self._send(200, raw)
                elif method == "slow":
                    time.sleep(3)
                    self._send(200, raw)
                elif method == "test.fault":
                    code, message = json.loads(raw)
                    self._send(500, json.dumps({"faultCode": code, "faultString": message}).encode())
                elif method.startswith("status."):
                    self._send(int(method.split(".")[1]), b"<html>oops</html>", "text/html")
                elif method == "garbage":
                    self._send(200, b"{not json")
                else:
                    self._send(404, json.dumps({"faultCode": -32601,
                                                "faultString": f"no method {method}"}).encode())

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class E2ETestCase(unittest.TestCase):
    """Base class: a scratch directory per test and helpers that start the
    real processes and stop them when the test ends, pass or fail."""

    def setUp(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f"{self.id().split('.')[-1]}-", dir=STATE_DIR)

    def _track(self, proc):
        self.addCleanup(self._stop_and_check, proc)
        return proc

    def _stop_and_check(self, proc):
        """Stops a process the test started and fails the test if it did not
        exit cleanly: a crash or a sanitizer report (the suite also runs
        against an ASan+UBSan build) is a failure even when every answer was
        right."""
        rc = proc.stop()
        if proc.killed:
            return
        reports = proc.sanitizer_reports()
        self.assertEqual(reports, [], f"{proc.name}: sanitizer reports; see {proc.log_path}")
        self.assertEqual(rc, 0, f"{proc.name} exited with {rc}; see {proc.log_path}")

    def start_legacy(self, *options):
        p = self._track(Process("legacy", [sys.executable, SHOP, "--port", "0", *options], self.tmp,
                                ready=r"legacy-shop listening on [\d.]+:(\d+)"))
        return int(p.wait_ready().group(1))

    def start_stock_service(self, queue, exchange="strangler.events"):
        """The demo new service, logging each request it serves (debug),
        once it is subscribed to the events."""
        p = self._track(Process("stock-service",
                                [STOCK_SERVICE, "--listen", "127.0.0.1:0", "--amqp", broker_url(),
                                 "--exchange", exchange, "--queue", queue,
                                 "--log-level", "debug"],
                                self.tmp, ready=r"stock-service listening on [\d.]+:(\d+)"))
        port = int(p.wait_ready().group(1))
        eventually(lambda: stock_model(port)["feed_connected"], message="stock service subscribed")
        return p, port

    def write_config(self, text, name="routes.conf"):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_proxy(self, text, name="strangler", extra_env=None):
        """Starts strangler on a routes.conf made of `text` (which should say
        `listen 127.0.0.1:0`) in a folder of its own, so its default spool
        (var/spool beside the file) is its own; returns (process, port,
        config path)."""
        path = self.write_config(text, os.path.join(name, "routes.conf"))
        env = dict(os.environ, **(extra_env or {}))
        p = self._track(Process(name, [STRANGLER, "-c", path], self.tmp, env=env,
                                ready=r"strangler \S+ listening on 127\.0\.0\.1:(\d+)"))
        return p, int(p.wait_ready().group(1)), path

    def start_upstream(self):
        u = RecordingUpstream()
        self.addCleanup(u.stop)
        return u

    def start_json_service(self):
        s = JsonService()
        self.addCleanup(s.stop)
        return s

    def unique(self, prefix):
        return f"{prefix}-{os.getpid()}-{int(time.monotonic() * 1000)}"


def admin_port(proxy):
    """The port of the admin API a proxy started with `admin 127.0.0.1:0`."""
    return int(proxy.search_output(r"admin API listening on 127\.0\.0\.1:(\d+)").group(1))


def admin(port, method, path, body=None, token=None, timeout=10):
    """One admin API request; returns (status, decoded JSON or text)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    status, _, raw = http_request(port, method, path, body=body, headers=headers,
                                  timeout=timeout)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def stock_model(port):
    """The demo stock service's GET /model."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=5) as r:
        return json.load(r)


def wait_for_stock_model(svc_port, legacy_port, skus):
    """Waits until the stock service's model agrees with the legacy on every
    sku (its events have arrived); returns the legacy's records."""
    legacy = xmlrpc_client(legacy_port)
    expected = {sku: legacy.stock.get(sku) for sku in skus}
    eventually(lambda: all(stock_model(svc_port)["skus"].get(s) == expected[s] for s in skus),
               message="the stock service's model agrees with the legacy")
    return expected


def eventually(check, timeout=15, interval=0.1, message="condition"):
    """Polls check() until it returns a true value; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


def xmlrpc_client(port):
    """A stock XML-RPC client, as an unchanged legacy client would use it."""
    return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2", allow_none=True,
                                     use_builtin_types=True)


def outcome(fn, *args):
    """What a call ends in, comparable across servers: ("result", value) or
    ("fault", code, message)."""
    try:
        return ("result", fn(*args))
    except xmlrpc.client.Fault as f:
        return ("fault", f.faultCode, f.faultString)


def call(port, method, *params):
    return outcome(getattr(xmlrpc_client(port), method), *params)
