"""Plain HTTP through the proxy: what goes in comes out, in both directions,
and failures of the upstream become clear errors while the proxy keeps
serving."""

import http.client
import json
import socket
import threading
import time

from harness import E2ETestCase, free_port, http_request, raw_exchange, status_of


class PassThroughTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.up = self.start_upstream()
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.up.port}/RPC2 timeout=1500
route everything * -> legacy
""")

    def test_request_reaches_upstream_unchanged_but_for_hop_by_hop_headers(self):
        body = b"\x00binary\xffbody" * 100
        status, headers, answer = http_request(
            self.port, "PUT", "/some/path?q=1&r=%20x", body=body,
            headers={"X-Custom": "value, with comma", "Connection": "keep-alive, X-Hop",
                     "X-Hop": "must not pass", "Keep-Alive": "timeout=5",
                     "X-Forwarded-For": "10.0.0.1", "X-Request-Id": "req-123",
                     "Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200)
        seen = self.up.last()
        self.assertEqual(seen["method"], "PUT")
        self.assertEqual(seen["path"], "/some/path?q=1&r=%20x")
        self.assertEqual(seen["body"].encode("latin-1"), body)
        names = {k.lower(): v for k, v in seen["headers"]}
        self.assertEqual(names["x-custom"], "value, with comma")
        self.assertEqual(names["content-type"], "application/octet-stream")
        self.assertEqual(names["x-request-id"], "req-123")
        self.assertEqual(names["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        self.assertEqual(names["content-length"], str(len(body)))
        for hop in ("connection", "keep-alive", "x-hop"):
            self.assertNotIn(hop, names)
        self.assertEqual(json.loads(answer)["body"].encode("latin-1"), body)

    def test_request_id_is_generated_when_missing(self):
        http_request(self.port, "GET", "/echo")
        names = {k.lower(): v for k, v in self.up.last()["headers"]}
        self.assertRegex(names["x-request-id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-")
        self.assertEqual(names["x-forwarded-for"], "127.0.0.1")

    def test_answer_comes_back_unchanged(self):
        status, headers, body = http_request(self.port, "GET", "/echo")
        self.assertEqual(status, 200)
        self.assertIn(("X-Upstream", "recording"), headers)
        cookies = [v for k, v in headers if k == "Set-Cookie"]
        self.assertEqual(cookies, ["a=1", "b=2"])
        self.assertEqual(json.loads(body)["path"], "/echo")
        status, headers, body = http_request(self.port, "GET", "/status/418")
        self.assertEqual((status, body), (418, b"status 418\n"))
        status, headers, body = http_request(self.port, "DELETE", "/status/503")
        self.assertEqual((status, body), (503, b"status 503\n"))

    def test_chunked_answer_is_rechunked_for_http11_and_closed_for_http10(self):
        status, headers, body = http_request(self.port, "GET", "/chunked")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["path"], "/chunked")
        self.assertIn(("Transfer-Encoding", "chunked"), headers)
        raw = raw_exchange(self.port, b"GET /chunked HTTP/1.0\r\n\r\n")
        head, _, payload = raw.partition(b"\r\n\r\n")
        self.assertEqual(status_of(raw), 200)
        self.assertNotIn(b"transfer-encoding", head.lower())
        self.assertEqual(json.loads(payload)["path"], "/chunked")

    def test_chunked_request_body_is_forwarded_with_a_length(self):
        raw = raw_exchange(self.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n"
                                      b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        self.assertEqual(status_of(raw), 200)
        seen = self.up.last()
        self.assertEqual(seen["body"], "hello world")
        names = {k.lower(): v for k, v in seen["headers"]}
        self.assertEqual(names["content-length"], "11")
        self.assertNotIn("transfer-encoding", names)

    def test_head_keeps_the_upstreams_content_length(self):
        status, headers, body = http_request(self.port, "HEAD", "/echo")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertTrue(any(k == "Content-Length" and int(v) > 0 for k, v in headers))

    def test_keep_alive_reuses_client_and_upstream_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        before = self.up.connections
        for i in range(20):
            conn.request("POST", f"/echo/{i}", body=f"body {i}")
            resp = conn.getresponse()
            self.assertEqual(json.loads(resp.read())["body"], f"body {i}")
        conn.close()
        # Two workers may each open one; twenty requests must not open twenty.
        self.assertLessEqual(self.up.connections - before, 2)

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
        raw = raw_exchange(self.port, reqs + b"GET /echo/last HTTP/1.1\r\nHost: x\r\n"
                                             b"Connection: close\r\n\r\n")
        paths = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["path"]
                 for part in raw.split(b"HTTP/1.1 200")[1:]]
        self.assertEqual(paths, [f"/echo/{i}" for i in range(5)] + ["/echo/last"])

    def test_http10_without_keep_alive_is_closed_after_the_answer(self):
        raw = raw_exchange(self.port, b"GET /echo HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(raw), 200)
        self.assertIn(b"Connection: close", raw)
        self.assertEqual(self.up.last()["path"], "/echo")

    def test_bad_requests_get_clear_errors_and_the_proxy_keeps_serving(self):
        cases = [
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: x\n\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT evil:443 HTTP/1.1\r\nHost: evil\r\n\r\n", 405),
            (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
        ]
        for data, expected in cases:
            raw = raw_exchange(self.port, data)
            self.assertEqual(status_of(raw), expected, data[:60])
            self.assertIn(b"strangler:", raw)
        status, _, _ = http_request(self.port, "GET", "/echo")
        self.assertEqual(status, 200)

    def test_oversized_body_is_413(self):
        raw = raw_exchange(self.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 999999999999\r\n\r\n")
        self.assertEqual(status_of(raw), 413)

    def test_slow_header_client_times_out_with_408(self):
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.up.port}
route everything * -> legacy
client_header_timeout 700
""", name="strangler-slow")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            start = time.monotonic()
            s.sendall(b"GET / HTTP/1.1\r\n")
            answer = b""
            # Trickle bytes: the deadline is not reset by progress.
            for _ in range(20):
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.1)
                s.setblocking(False)
                try:
                    answer += s.recv(4096)
                except BlockingIOError:
                    pass
                s.setblocking(True)
                if answer:
                    break
            self.assertEqual(status_of(answer), 408)
            self.assertLess(time.monotonic() - start, 1.9)


class UpstreamFailureTest(E2ETestCase):
    def test_down_upstream_is_502_and_slow_one_504(self):
        up = self.start_upstream()
        dead = free_port()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream dead http://127.0.0.1:{dead}
upstream slow http://127.0.0.1:{up.port} timeout=300
route to-dead http GET /dead -> dead
route everything * -> slow
""")
        status, _, body = http_request(port, "GET", "/dead")
        self.assertEqual(status, 502)
        self.assertIn(b"upstream dead", body)
        status, _, body = http_request(port, "GET", "/slow?ms=1500")
        self.assertEqual(status, 504)
        self.assertIn(b"timed out", body)
        status, _, _ = http_request(port, "GET", "/echo")
        self.assertEqual(status, 200)

    def test_concurrent_clients_all_get_their_own_answers(self):
        up = self.start_upstream()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{up.port}
route everything * -> legacy
""")
        errors = []

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                for i in range(50):
                    body = f"client {n} request {i}"
                    conn.request("POST", f"/echo/{n}/{i}", body=body)
                    got = json.loads(conn.getresponse().read())
                    if got["body"] != body or got["path"] != f"/echo/{n}/{i}":
                        errors.append((n, i, got))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append((n, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(up.requests), 400)


class Issue2RegressionTest(E2ETestCase):
    """Defects found in review of the walking skeleton (issue 2)."""

    def setUp(self):
        super().setUp()
        self.up = self.start_upstream()
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.up.port} timeout=5000
upstream quick  http://127.0.0.1:{self.up.port} timeout=300
route quick http GET /quick/* -> quick
route api   http * /api/* -> legacy
route any   xmlrpc * -> legacy
""")

    def test_issue2_many_pipelined_answers_made_by_the_proxy(self):
        # A large body makes the input buffer large; the read that ends it
        # then brings tens of thousands of pipelined requests, each answered
        # at once (no route). Serving them by recursion overflowed the stack.
        n = 40000
        data = (b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000\r\n\r\n"
                + b"x" * 3000000 + b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n" * n
                + b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            answer = bytearray()
            while chunk := s.recv(1 << 20):
                answer += chunk
            sender.join()
        self.assertEqual(answer.count(b"HTTP/1.1 404 "), n + 2)

    def test_issue2_empty_lines_before_a_request_count_against_the_head_limit(self):
        raw = raw_exchange(self.port, b"\r\n" * 20000)
        self.assertEqual(status_of(raw), 431)

    def test_issue2_answer_to_head_made_by_the_proxy_has_no_body(self):
        raw = raw_exchange(self.port, b"HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                                      b"GET /api/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        first, _, rest = raw.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 404"))
        self.assertTrue(rest.startswith(b"HTTP/1.1 200"), rest[:80])

    def test_issue2_connection_cannot_strip_host_or_request_id(self):
        raw_exchange(self.port, b"GET /api/x HTTP/1.1\r\nHost: legacy.example\r\n"
                                b"X-Request-Id: keep-me\r\nConnection: close, host, x-request-id\r\n\r\n")
        names = [(k.lower(), v) for k, v in self.up.last()["headers"]]
        self.assertIn(("host", "legacy.example"), names)
        self.assertIn(("x-request-id", "keep-me"), names)

    def test_issue2_an_unusable_request_id_is_replaced_not_doubled(self):
        http_request(self.port, "GET", "/api/x", headers={"X-Request-Id": "x" * 300})
        ids = [v for k, v in self.up.last()["headers"] if k.lower() == "x-request-id"]
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids[0], "x" * 300)

    def test_issue2_close_wins_over_keep_alive(self):
        raw = raw_exchange(self.port, b"GET /api/x HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n")
        self.assertEqual(status_of(raw), 200)
        self.assertIn(b"Connection: close", raw)

    def test_issue2_a_timeout_on_a_reused_connection_is_not_retried(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/quick/warm")  # leaves a pooled connection behind
        conn.getresponse().read()
        before = len(self.up.requests)
        conn.request("GET", "/quick/slow?ms=1000")
        self.assertEqual(conn.getresponse().status, 504)
        conn.close()
        time.sleep(1.2)
        self.assertEqual(len(self.up.requests) - before, 1)

    def test_issue2_upstreams_at_one_address_keep_their_own_timeouts(self):
        status, _, _ = http_request(self.port, "GET", "/api/slow?ms=800")
        self.assertEqual(status, 200)  # legacy: 5 s
        status, _, _ = http_request(self.port, "GET", "/quick/slow?ms=800")
        self.assertEqual(status, 504)  # quick: 300 ms

    def test_issue2_expect_100_continue(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
            s.sendall(b"hello")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        self.assertEqual(status_of(answer), 200)
        self.assertEqual(self.up.last()["body"], "hello")
