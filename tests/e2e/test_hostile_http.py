"""Hostile HTTP against the real proxy (issue 9, part 2): request smuggling,
oversize heads and bodies, slow clients, open-proxy attempts, odd methods,
HTTP/1.0 and pipelining. Every case expects a clear error (a status and a
one-line reason from the proxy), nothing smuggled reaching the upstream, and
the proxy still serving right after.

test_passthrough.py already covers two different Content-Lengths, CL with TE,
a bare-LF head, CONNECT to a foreign host, an oversized header, a slow head
(one connection), simple pipelining and HTTP/1.0 without keep-alive; the
cases here extend those rather than repeat them."""

import json
import re
import socket
import unittest
import threading
import time

from harness import E2ETestCase, http_request, raw_exchange, status_of

MAX_HEADER = 2048
MAX_BODY = 65536
HEADER_TIMEOUT_MS = 800
BODY_TIMEOUT_MS = 800
# A request that must never reach the upstream, glued after each hostile one.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def answers(raw):
    """How many responses raw holds (status lines; a reason in a body that
    names a version does not count)."""
    return len(re.findall(rb"HTTP/1\.[01] \d{3} ", raw))


class Listener:
    """A TCP listener that counts the connections it accepts: where a client
    tries to make the proxy connect somewhere it was not configured to."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn.close()

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


class HostileHttpTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.up = self.start_upstream()
        self.foreign = Listener()
        self.addCleanup(self.foreign.stop)
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.up.port}/RPC2 timeout=3000
route everything * -> legacy
max_header_size {MAX_HEADER}
max_headers 20
max_body_size {MAX_BODY}
client_header_timeout {HEADER_TIMEOUT_MS}
client_body_timeout {BODY_TIMEOUT_MS}
""")

    # --- helpers -------------------------------------------------------

    def paths_seen(self):
        with self.up.lock:
            return [r["path"] for r in self.up.requests]

    def assert_still_serving(self):
        status, _, body = http_request(self.port, "POST", "/after", body=b"still here")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["body"], "still here")

    def assert_refused(self, data, expected, label=None):
        """Sends a hostile request with a smuggled one behind it: the proxy
        answers `expected` with a reason, closes, and nothing of either
        request reaches the upstream."""
        before = len(self.up.requests)
        start = time.monotonic()
        raw = raw_exchange(self.port, data + SMUGGLED)
        label = label or data[:80]
        self.assertLess(time.monotonic() - start, 4, label)
        self.assertEqual(status_of(raw), expected, (label, raw[:200]))
        self.assertIn(b"strangler:", raw, label)
        # One answer only: the connection is closed after the error, so the
        # bytes behind it are never read as a request.
        self.assertEqual(answers(raw), 1, (label, raw[:400]))
        self.assertEqual(self.paths_seen()[before:], [], label)

    # --- smuggling: framing headers -----------------------------------

    def test_content_length_and_transfer_encoding_in_either_order(self):
        chunked = b"5\r\nhello\r\n0\r\n\r\n"
        self.assert_refused(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"Content-Length: 4\r\n\r\n" + chunked, 400)
        self.assert_refused(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n" + chunked, 400)
        # CL with an unsupported coding too: refused either way.
        raw = raw_exchange(self.port, b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                      b"Transfer-Encoding: gzip\r\n\r\nhello" + SMUGGLED)
        self.assertIn(status_of(raw), (400, 501))
        self.assertEqual(self.paths_seen(), [])
        self.assert_still_serving()

    def test_duplicate_and_malformed_content_lengths(self):
        for cl in (b"Content-Length: 5\r\nContent-Length: 5\r\n",   # same value twice
                   b"Content-Length: 5, 5\r\n",                      # list form
                   b"Content-Length: 5,5\r\n",
                   b"Content-Length: +5\r\n",
                   b"Content-Length: -5\r\n",
                   b"Content-Length: 0x5\r\n",
                   b"Content-Length: 5 5\r\n",
                   b"Content-Length: 5\x00\r\n",
                   b"Content-Length: 99999999999999999999999\r\n",  # overflows 64 bits
                   b"content-length: 5\r\nCONTENT-LENGTH: 6\r\n"):    # case variants
            before = len(self.up.requests)
            raw = raw_exchange(self.port, b"POST /a HTTP/1.1\r\nHost: x\r\n" + cl + b"\r\nhello"
                               + SMUGGLED)
            # The 23-digit length may be refused as too large (413): either
            # way it is refused and nothing passes.
            self.assertIn(status_of(raw), (400, 413), (cl, raw[:200]))
            self.assertIn(b"strangler:", raw, cl)
            self.assertEqual(answers(raw), 1, cl)
            self.assertEqual(self.paths_seen()[before:], [], cl)
        self.assert_still_serving()

    def test_obfuscated_transfer_encodings_are_refused(self):
        body = b"5\r\nhello\r\n0\r\n\r\n"
        cases = [
            (b"Transfer-Encoding: xchunked\r\n", 501),
            (b"Transfer-Encoding: chunkedx\r\n", 501),
            (b"Transfer-Encoding: chunked, identity\r\n", 501),
            (b"Transfer-Encoding: identity, chunked\r\n", 501),
            (b"Transfer-Encoding: gzip, chunked\r\n", 501),
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
            (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400),
            (b"Transfer-Encoding : chunked\r\n", 400),    # space before the colon
            (b"Transfer-Encoding\t: chunked\r\n", 400),
            (b" Transfer-Encoding: chunked\r\n", 400),     # obs-fold of the line before
            (b"Transfer-Encoding:\r\n chunked\r\n", 400),  # obs-fold of the value
            (b"Transfer-Encoding: \x0bchunked\r\n", 400),  # vertical tab is not OWS
            (b"Transfer-Encoding: chunked\x00\r\n", 400),
            (b"Transfer_Encoding: chunked\r\nContent-Length: 0\r\n", None),  # another header
            (b"Content-Length : 15\r\n", 400),
            (b"Content-Length\r\n", 400),                   # no colon
            (b": chunked\r\n", 400),                        # empty header name
        ]
        for te, expected in cases:
            data = b"POST /a HTTP/1.1\r\nHost: x\r\n" + te + b"\r\n" + body
            if expected is None:
                # Not a framing header at all: CL 0, and the chunk bytes that
                # follow are the next "request", which is malformed: 200 for
                # the first, 400 for the garbage, nothing smuggled.
                raw = raw_exchange(self.port, data + SMUGGLED)
                self.assertEqual(status_of(raw), 200, te)
                self.assertIn(b" 400 ", raw, te)
                self.assertNotIn("/smuggled", self.paths_seen(), te)
                continue
            self.assert_refused(data, expected, te)
        self.assert_still_serving()

    def test_transfer_encoding_with_odd_but_legal_whitespace_is_chunked(self):
        # OWS (space, tab) around a field value is legal: these are plain
        # "chunked", decoded by the proxy and forwarded with a length; the
        # request after the last chunk is a second, separate request.
        for te in (b"Transfer-Encoding:  chunked\r\n", b"Transfer-Encoding:\tchunked\r\n",
                   b"Transfer-Encoding: chunked \t\r\n", b"transfer-encoding: CHUNKED\r\n"):
            before = len(self.up.requests)
            raw = raw_exchange(self.port, b"POST /ows HTTP/1.1\r\nHost: x\r\n" + te +
                               b"\r\n5\r\nhello\r\n0\r\n\r\n"
                               b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(raw.count(b"HTTP/1.1 200 "), 2, (te, raw[:300]))
            seen = self.up.requests[before:]
            self.assertEqual([r["path"] for r in seen], ["/ows", "/second"], te)
            self.assertEqual(seen[0]["body"], "hello")
            names = {k.lower(): v for k, v in seen[0]["headers"]}
            self.assertEqual(names.get("content-length"), "5")
            self.assertNotIn("transfer-encoding", names)

    def test_transfer_encoding_in_http10_is_refused(self):
        self.assert_refused(b"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n", 400)
        self.assert_still_serving()

    def test_bare_lf_anywhere_in_the_head_is_refused(self):
        for head in (b"GET /a HTTP/1.1\nHost: x\r\n\r\n",
                     b"GET /a HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
                     b"GET /a HTTP/1.1\r\nHost: x\r\n\n",
                     b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",  # bare CR
                     b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\n\r\nhello"):
            self.assert_refused(head, 400)
        self.assert_still_serving()

    # --- smuggling: chunked bodies -------------------------------------

    def chunked(self, chunks):
        return (b"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunks)

    def test_chunk_size_overflow_and_malformed_sizes(self):
        for chunks in (b"ffffffffffffffff1\r\nhello\r\n0\r\n\r\n",  # wraps to 1 in 64 bits
                       b"10000000000000005\r\nhello\r\n0\r\n\r\n",  # wraps to 5
                       b"fffffffffffffffff\r\n",
                       b"0x5\r\nhello\r\n0\r\n\r\n",
                       b"-0\r\n\r\n",
                       b"+5\r\nhello\r\n0\r\n\r\n",
                       b" 5\r\nhello\r\n0\r\n\r\n",
                       b"g\r\nhello\r\n0\r\n\r\n",
                       b"\r\nhello\r\n0\r\n\r\n"):
            self.assert_refused(self.chunked(chunks), 400)
        self.assert_still_serving()

    # RFC 9112 7.1.1: after the size only BWS then ";" (an extension): a
    # parser that read "5 5" otherwise would see another body.
    def test_chunk_size_followed_by_blank_and_junk_is_refused(self):
        for chunks in (b"5 5\r\nhello\r\n0\r\n\r\n", b"5 junk\r\nhello\r\n0\r\n\r\n"):
            raw = raw_exchange(self.port, self.chunked(chunks), timeout=1)
            self.assertEqual(status_of(raw), 400, (chunks, raw[:200]))

    def test_invalid_chunk_terminators(self):
        for chunks in (b"5\r\nhelloXX0\r\n\r\n",            # data not followed by CRLF
                       b"3\r\nhello\r\n0\r\n\r\n",          # more data than declared
                       b"5\r\nhello\n0\r\n\r\n",            # bare LF after data
                       b"5\nhello\r\n0\r\n\r\n",            # bare LF after the size
                       b"5\r\nhello\r\n0\r\n\n",            # bare LF ending the body
                       b"5\r\nhello\r\n0\n\r\n",
                       b"5\r\nhello\r\n0\r\nTrailer: x\n\r\n",
                       b"5\r\nhello\r\n0\r\r\n\r\n"):
            self.assert_refused(self.chunked(chunks), 400)
        self.assert_still_serving()

    def test_chunk_extensions_are_skipped_but_bounded(self):
        # Legal extensions (and trailers) are skipped: the body is the data.
        raw = raw_exchange(self.port, self.chunked(
            b"5;name=value;x=\"q\"\r\nhello\r\n6 ; ext\r\n world\r\n0;last\r\n"
            b"X-Trailer: t\r\n\r\n") + b"GET /after-ext HTTP/1.1\r\nHost: x\r\n"
                                       b"Connection: close\r\n\r\n")
        self.assertEqual(raw.count(b"HTTP/1.1 200 "), 2, raw[:300])
        self.assertEqual(self.up.requests[-2]["body"], "hello world")
        self.assertEqual(self.up.requests[-1]["path"], "/after-ext")
        # Abuse: an extension longer than any sane line, a bare LF inside
        # one, and a body that is almost all framing (1-byte chunks with
        # big extensions) beyond max_body_size.
        self.assert_refused(self.chunked(b"5;" + b"e" * 20000 + b"\r\nhello\r\n0\r\n\r\n"), 400)
        self.assert_refused(self.chunked(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), 400)
        self.assert_refused(self.chunked(b"0\r\nX-T: " + b"t" * 20000 + b"\r\n\r\n"), 400)
        start = time.monotonic()
        framing = (b"1;" + b"e" * 4000 + b"\r\nx\r\n") * 200  # 800 KB framing, 200 bytes data
        raw = raw_exchange(self.port, self.chunked(framing + b"0\r\n\r\n")
                           + b"GET /after-framing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn(status_of(raw), (200, 400, 413), raw[:200])
        if status_of(raw) == 200:
            self.assertEqual(self.up.requests[-2]["body"], "x" * 200)
        self.assert_still_serving()

    # --- limits ---------------------------------------------------------

    def test_oversize_head_is_431_and_within_limit_passes(self):
        ok = b"GET /fits HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (MAX_HEADER - 200) + \
             b"\r\nConnection: close\r\n\r\n"
        self.assertEqual(status_of(raw_exchange(self.port, ok)), 200)
        self.assertEqual(self.paths_seen()[-1], "/fits")
        before = len(self.up.requests)
        self.assert_refused(b"GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (MAX_HEADER + 10)
                            + b"\r\n\r\n", 431)
        # Many small headers adding up past the limit, and too many headers.
        self.assert_refused(b"GET /many HTTP/1.1\r\nHost: x\r\n" +
                            b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(19)) +
                            b"\r\n", 431)
        self.assert_refused(b"GET /count HTTP/1.1\r\nHost: x\r\n" +
                            b"".join(b"X-%d: v\r\n" % i for i in range(30)) + b"\r\n", 431)
        # A request line alone over the limit.
        self.assert_refused(b"GET /" + b"u" * (MAX_HEADER + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                            431)
        # A head that never ends, sent all at once well past the limit: the
        # proxy does not wait for the blank line.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (4 * MAX_HEADER))
            answer = s.recv(4096)
        self.assertEqual(status_of(answer), 431)
        self.assertEqual(self.paths_seen()[before:], [])
        self.assert_still_serving()

    def test_oversize_body_is_413_and_within_limit_passes(self):
        body = b"b" * MAX_BODY
        status, _, answer = http_request(self.port, "POST", "/exact", body=body)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(answer)["body"]), MAX_BODY)
        before = len(self.up.requests)
        # Declared too large: refused before a byte of the body is read.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
            answer = s.recv(4096)
        self.assertEqual(status_of(answer), 413)
        self.assertIn(b"strangler:", answer)
        # Chunked, growing past the limit: refused when it gets there.
        piece = b"%x\r\n%s\r\n" % (4096, b"c" * 4096)
        raw = raw_exchange(self.port, self.chunked(piece * (MAX_BODY // 4096 + 2) + b"0\r\n\r\n"))
        self.assertEqual(status_of(raw), 413)
        self.assertEqual(self.paths_seen()[before:], [])
        self.assert_still_serving()

    def test_slowloris_heads_are_cut_at_the_deadline_and_others_are_served(self):
        socks = []
        try:
            start = time.monotonic()
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /slow HTTP/1.1\r\n")
                socks.append(s)
            closed_at = {}
            # Trickle a byte per connection every 100 ms: an idle timer would
            # never fire; the deadline from the first byte must.
            while len(closed_at) < len(socks) and time.monotonic() - start < 5:
                for i, s in enumerate(socks):
                    if i in closed_at:
                        continue
                    try:
                        s.sendall(b"X")
                    except OSError:
                        closed_at[i] = (time.monotonic() - start, b"")
                        continue
                    s.setblocking(False)
                    try:
                        got = s.recv(4096)
                        closed_at[i] = (time.monotonic() - start, got)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed_at[i] = (time.monotonic() - start, b"")
                    s.setblocking(True)
                if len(closed_at) == 0 and time.monotonic() - start < 0.5:
                    # Others are served while the slow heads trickle.
                    self.assert_still_serving()
                time.sleep(0.1)
            self.assertEqual(len(closed_at), len(socks), "every slow head is cut")
            for i, (when, got) in closed_at.items():
                self.assertLess(when, HEADER_TIMEOUT_MS / 1000 + 1.5, i)
                if got:
                    self.assertEqual(status_of(got), 408, got[:100])
        finally:
            for s in socks:
                s.close()
        self.assertNotIn("/slow", self.paths_seen())
        self.assert_still_serving()

    def test_slow_body_is_cut_at_the_deadline(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            start = time.monotonic()
            s.sendall(b"POST /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            answer = b""
            for _ in range(60):
                try:
                    s.sendall(b"y")
                except OSError:
                    break
                time.sleep(0.1)
                s.setblocking(False)
                try:
                    answer += s.recv(4096)
                except BlockingIOError:
                    pass
                except OSError:
                    break
                s.setblocking(True)
                if answer:
                    break
            elapsed = time.monotonic() - start
        self.assertEqual(status_of(answer), 408, answer[:100])
        self.assertLess(elapsed, BODY_TIMEOUT_MS / 1000 + 1.5)
        # Same for a chunked body trickled chunk by chunk.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            start = time.monotonic()
            s.sendall(b"POST /slowchunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            answer = b""
            for _ in range(60):
                try:
                    s.sendall(b"1\r\nz\r\n")
                except OSError:
                    break
                time.sleep(0.1)
                s.setblocking(False)
                try:
                    answer += s.recv(4096)
                except BlockingIOError:
                    pass
                except OSError:
                    break
                s.setblocking(True)
                if answer:
                    break
            elapsed = time.monotonic() - start
        self.assertEqual(status_of(answer), 408, answer[:100])
        self.assertLess(elapsed, BODY_TIMEOUT_MS / 1000 + 1.5)
        self.assertFalse({"/slowbody", "/slowchunks"} & set(self.paths_seen()))
        self.assert_still_serving()

    # --- no open proxy ----------------------------------------------------

    def test_absolute_uri_goes_to_the_configured_upstream_only(self):
        foreign = f"127.0.0.1:{self.foreign.port}".encode()
        for target, path in ((b"http://" + foreign + b"/RPC2", "/RPC2"),
                             (b"http://evil.example/RPC2?x=1", "/RPC2?x=1"),
                             (b"https://" + foreign + b"/other", "/other"),
                             (b"HTTP://" + foreign, "/")):
            before = len(self.up.requests)
            raw = raw_exchange(self.port, b"POST " + target + b" HTTP/1.1\r\nHost: " + foreign +
                               b"\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody")
            self.assertEqual(status_of(raw), 200, (target, raw[:200]))
            seen = self.up.requests[before:]
            self.assertEqual([r["path"] for r in seen], [path], target)
            self.assertEqual(seen[0]["body"], "body")
        # "//host/x" is an origin-form path (it starts with "/"): forwarded
        # as a path to the configured upstream, never used as an authority.
        before = len(self.up.requests)
        raw = raw_exchange(self.port, b"GET //" + foreign + b"/x HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
        self.assertEqual(status_of(raw), 200)
        # (Python's http.server, the recording upstream, collapses the
        # leading "//" itself.)
        self.assertEqual([p.lstrip("/") for p in self.paths_seen()[before:]],
                         [foreign.decode() + "/x"])
        for target in (b"ftp://" + foreign + b"/x", foreign,
                       b"http:/x", b"evil.example:80"):
            self.assert_refused(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, target)
        time.sleep(0.2)
        self.assertEqual(self.foreign.accepted, 0, "the proxy connected to a foreign address")
        self.assert_still_serving()

    def test_connect_is_never_tunnelled(self):
        foreign = f"127.0.0.1:{self.foreign.port}".encode()
        for line in (b"CONNECT " + foreign + b" HTTP/1.1\r\nHost: " + foreign + b"\r\n\r\n",
                     b"CONNECT " + foreign + b" HTTP/1.0\r\n\r\n",
                     b"CONNECT /RPC2 HTTP/1.1\r\nHost: x\r\n\r\n"):
            self.assert_refused(line, 405, line)
        # Methods are case-sensitive (RFC 9110 9.1), so "connect" is not
        # CONNECT; the proxy refuses it all the same rather than pass a
        # method that a lenient server behind it could take as CONNECT.
        raw = raw_exchange(self.port, b"connect " + foreign + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(status_of(raw), (400, 405), raw[:200])
        time.sleep(0.2)
        self.assertEqual(self.foreign.accepted, 0, "the proxy connected to a foreign address")
        self.assert_still_serving()

    # --- methods ------------------------------------------------------------

    def test_invalid_methods_are_400(self):
        for line in (b"G@T / HTTP/1.1", b"GE T / HTTP/1.1", b"GET\t/ HTTP/1.1",
                     b"G(T / HTTP/1.1", b"\x00GET / HTTP/1.1", b"G\xc3\x89T / HTTP/1.1",
                     b" GET / HTTP/1.1", b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ",
                     b"M" * 100 + b" / HTTP/1.1", b"GET /a b HTTP/1.1", b"GET / http/1.1"):
            self.assert_refused(line + b"\r\nHost: x\r\n\r\n", 400, line)
        self.assert_still_serving()

    def test_unknown_but_valid_method_tokens_are_forwarded_as_they_are(self):
        # A lowercase "get" is a valid token and a different method from GET
        # (RFC 9110 9.1: case-sensitive). A reverse proxy passes it on
        # unchanged and lets the origin refuse it; here the recording
        # upstream (Python's http.server) answers 501 naming the method it
        # got, which proves the case was kept.
        raw = raw_exchange(self.port, b"get /lower HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(raw), 501, raw[:200])
        self.assertIn(b"Unsupported method ('get')", raw)
        # A less common method the upstream knows passes as it is.
        raw = raw_exchange(self.port, b"PATCH /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                      b"Connection: close\r\n\r\nz")
        self.assertEqual(status_of(raw), 200)
        self.assertEqual(self.up.last()["method"], "PATCH")
        self.assert_still_serving()

    # --- HTTP/1.0 and pipelining -----------------------------------------------

    def test_http10_post_is_answered_then_closed_and_nothing_after_is_read(self):
        raw = raw_exchange(self.port, b"POST /ten HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
                           + SMUGGLED)
        self.assertEqual(status_of(raw), 200)
        self.assertEqual(answers(raw), 1)
        self.assertIn(b"Connection: close", raw)
        self.assertEqual(self.up.last()["body"], "hello")
        self.assertNotIn("/smuggled", self.paths_seen())
        # HTTP/1.0 asking for keep-alive gets it: a second request is served.
        raw = raw_exchange(self.port, b"GET /ka1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                      b"GET /ka2 HTTP/1.0\r\n\r\n")
        self.assertEqual(raw.count(b" 200 "), 2, raw[:400])
        self.assertEqual(self.paths_seen()[-2:], ["/ka1", "/ka2"])
        self.assert_still_serving()

    def test_pipelined_mixed_requests_in_one_write_are_answered_in_order(self):
        reqs = [
            b"POST /p/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /p/2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nde\r\n1;x\r\nf\r\n0\r\n\r\n",
            b"PUT /p/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"HEAD /p/4 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /p/5 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"g" * 2000,
            b"GET /p/6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET /p/never HTTP/1.1\r\nHost: x\r\n\r\n",  # after close: never read
        ]
        raw = raw_exchange(self.port, b"".join(reqs))
        self.assertEqual(raw.count(b"HTTP/1.1 200 "), 7, raw[:500])
        self.assertEqual(self.paths_seen()[-7:], [f"/p/{i}" for i in range(7)])
        bodies = [r["body"] for r in self.up.requests[-7:]]
        self.assertEqual(bodies, ["abc", "", "def", "", "", "g" * 2000, ""])
        # The answers' bodies come back in the same order.
        order = [json.loads(m)["path"] for m in
                 (part.split(b"\r\n\r\n", 1)[1] for part in raw.split(b"HTTP/1.1 200 OK")[1:])
                 if m.startswith(b"{")]
        self.assertEqual(order, ["/p/0", "/p/1", "/p/2", "/p/3", "/p/5", "/p/6"])
        self.assertNotIn("/p/never", self.paths_seen())

    def test_pipelined_request_behind_a_refused_one_is_not_served(self):
        good = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
        raw = raw_exchange(self.port, good + b"GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                             b"Content-Length: 2\r\n\r\nab" + SMUGGLED)
        self.assertEqual(status_of(raw), 200)
        self.assertIn(b"HTTP/1.1 400 ", raw)
        self.assertEqual(raw.count(b"HTTP/1.1 "), 2)
        self.assertNotIn("/smuggled", self.paths_seen())
        self.assertNotIn("/bad", self.paths_seen())
        self.assert_still_serving()


if __name__ == "__main__":
    unittest.main()
