"""Hostile XML against the real proxy (issue 9, part 3): entity expansion
(billion laughs, quadratic blowup), XXE (file and network), deep nesting,
huge base64 and invalid UTF-8.

(a) On a route that has to parse the call (an adapter route to a JSON
    service), each is refused with an XML-RPC fault saying what was wrong,
    in bounded time, with the proxy's memory bounded, nothing of
    /etc/passwd anywhere, nothing fetched from the network, and the proxy
    still serving.
(b) On a route that does not parse (pass-through `*` to the legacy, no
    intercept), each is forwarded untouched: the upstream records the exact
    bytes."""

import os
import socket
import threading
import time
import unittest
import xmlrpc.client

from harness import E2ETestCase, post_xml, status_of, raw_exchange

XML_MAX_DEPTH = 32
MAX_BODY = 4 * 1024 * 1024
ANSWER_BOUND_S = 5          # a behaviour bound, not a benchmark
RSS_GROWTH_BOUND_KB = 100 * 1024
PASSWD_MARKERS = (b"root:x:0:0", b"/bin/bash", b"/usr/sbin/nologin", b"daemon:x:")


class Listener:
    """A TCP listener that must see no connection (network XXE)."""

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


def call_xml(method, params_xml, prolog=b""):
    if isinstance(params_xml, str):
        params_xml = params_xml.encode()
    return (b'<?xml version="1.0"?>\n' + prolog +
            b"<methodCall><methodName>" + method.encode() + b"</methodName><params>" +
            params_xml + b"</params></methodCall>")


def string_param(text):
    if isinstance(text, str):
        text = text.encode()
    return b"<param><value><string>" + text + b"</string></value></param>"


def billion_laughs(method="test.echo"):
    """Ten levels of ten references: 10^9 "lol"s (3 GB) once expanded."""
    ents = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        ents.append(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10))
    prolog = b"<!DOCTYPE lolz [" + b"".join(ents) + b"]>\n"
    return call_xml(method, string_param(b"&lol9;"), prolog)


def quadratic_blowup(method="test.echo"):
    big = b"a" * 50000
    prolog = b'<!DOCTYPE q [<!ENTITY a "' + big + b'">]>\n'
    return call_xml(method, string_param(b"&a;" * 5000), prolog)


def xxe_file(method="test.echo"):
    prolog = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
    return call_xml(method, string_param(b"&e;"), prolog)


def xxe_net(port, method="test.echo"):
    prolog = (b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:%d/e">'
              b'<!ENTITY %% p SYSTEM "http://127.0.0.1:%d/p"> %%p;]>\n' % (port, port))
    return call_xml(method, string_param(b"&e;"), prolog)


def xxe_external_dtd(port, method="test.echo"):
    prolog = b'<!DOCTYPE methodCall SYSTEM "http://127.0.0.1:%d/dtd">\n' % port
    return call_xml(method, string_param(b"x"), prolog)


def nested(depth, method="test.echo"):
    return call_xml(method, b"<param>" + b"<value><array><data>" * depth + b"<value><int>1</int></value>"
                    + b"</data></array></value>" * depth + b"</param>")


def base64_param(raw_len, method="test.echo"):
    import base64
    data = base64.b64encode(os.urandom(raw_len // 4) * 4)
    return call_xml(method, b"<param><value><base64>" + data + b"</base64></value></param>")


INVALID_UTF8 = {
    "lone continuation byte": b"\x80abc",
    "truncated sequence": b"abc\xc3",
    "overlong slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
    "0xff": b"\xff\xfe",
}


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class ParsingRouteTest(E2ETestCase):
    """(a): a route that must parse the call: the adapter to a JSON service."""

    def setUp(self):
        super().setUp()
        self.svc = self.start_json_service()
        self.up = self.start_upstream()
        self.net = Listener()
        self.addCleanup(self.net.stop)
        self.proxy, self.port, self.conf = self.start_proxy(f"""
listen 127.0.0.1:0
workers 1
upstream legacy http://127.0.0.1:{self.up.port}/RPC2 timeout=3000
upstream svc    http://127.0.0.1:{self.svc.port}/rpc kind=json timeout=3000
route adapted  xmlrpc test.* -> svc
route rest     * -> legacy
xml_max_depth {XML_MAX_DEPTH}
max_body_size {MAX_BODY}
""")
        self.addCleanup(self.assert_no_passwd_anywhere)

    def assert_no_passwd_anywhere(self):
        """Nothing of /etc/passwd in the proxy's log, spool, or anything it
        sent to the services."""
        blobs = [self.proxy.output().encode()]
        for root, _, files in os.walk(self.tmp):
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as f:
                        blobs.append(f.read())
                except OSError:
                    pass
        with self.svc.lock:
            blobs += [r["body"].encode() for r in self.svc.requests]
        with self.up.lock:
            blobs += [r["body"].encode("latin-1") for r in self.up.requests]
        for blob in blobs:
            for marker in PASSWD_MARKERS:
                self.assertNotIn(marker, blob)

    def fault_of(self, body, expect_in=None):
        """Posts a hostile call; asserts a fault arrives within the bound
        without the proxy's RSS growing much; returns (code, message)."""
        pid = self.proxy.proc.pid
        rss_before = vmrss_kb(pid)
        before_svc = len(self.svc.requests)
        start = time.monotonic()
        status, _, answer = post_xml(self.port, body)
        elapsed = time.monotonic() - start
        rss_after = vmrss_kb(pid)
        self.assertLess(elapsed, ANSWER_BOUND_S, body[:80])
        self.assertLess(rss_after - rss_before, RSS_GROWTH_BOUND_KB,
                        f"RSS {rss_before} kB -> {rss_after} kB")
        self.assertEqual(status, 200, answer[:300])
        for marker in PASSWD_MARKERS:
            self.assertNotIn(marker, answer)
        with self.assertRaises(xmlrpc.client.Fault, msg=answer[:300]) as ctx:
            xmlrpc.client.loads(answer)
        fault = ctx.exception
        self.assertTrue(fault.faultString.strip(), "the fault says what was wrong")
        if expect_in:
            self.assertRegex(fault.faultString, expect_in)
        # The hostile call never reached the service.
        self.assertEqual(len(self.svc.requests), before_svc)
        self.assert_still_serving()
        return fault.faultCode, fault.faultString

    def assert_still_serving(self):
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/RPC2")
        self.assertEqual(proxy.test.echo("still", 1), ["still", 1])

    def test_billion_laughs(self):
        code, msg = self.fault_of(billion_laughs(), expect_in="DOCTYPE")
        self.assertIn(code, (-32700, -32600), msg)
        self.assertNotIn("lollol", msg)

    def test_quadratic_blowup(self):
        code, msg = self.fault_of(quadratic_blowup(), expect_in="DOCTYPE")
        self.assertIn(code, (-32700, -32600), msg)

    def test_xxe_file(self):
        code, msg = self.fault_of(xxe_file(), expect_in="DOCTYPE")
        self.assertIn(code, (-32700, -32600), msg)

    def test_xxe_network_connects_nowhere(self):
        self.fault_of(xxe_net(self.net.port), expect_in="DOCTYPE")
        self.fault_of(xxe_external_dtd(self.net.port), expect_in="DOCTYPE")
        time.sleep(0.3)
        self.assertEqual(self.net.accepted, 0, "the proxy fetched an external entity")

    def test_entities_after_a_readable_method_name_are_refused_too(self):
        # The method name is readable (it comes first in the body), so the
        # call is placed on the adapter route, where the DOCTYPE (declared
        # inside, which is not well-formed XML) still stops it.
        body = (b'<?xml version="1.0"?><methodCall><methodName>test.echo</methodName>'
                b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b"<params>" + string_param(b"&e;") + b"</params></methodCall>")
        self.fault_of(body)
        # An undeclared entity reference in a value.
        self.fault_of(call_xml("test.echo", string_param(b"&e;")), expect_in="entity")

    def test_deep_nesting_beyond_xml_max_depth(self):
        # Within the limit: served.
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/RPC2")
        value = 1
        for _ in range(5):
            value = [value]
        self.assertEqual(proxy.test.echo(value), [value])
        self.fault_of(nested(XML_MAX_DEPTH + 5), expect_in=r"(?i)depth|deep|nest")
        # Far beyond any limit: 80,000 levels, about 3.4 MB of markup, just
        # within max_body_size.
        self.fault_of(nested(80000))

    def test_huge_base64_within_and_beyond_the_limits(self):
        body = base64_param(2 * 1024 * 1024)   # about 2.8 MB of base64: within
        self.assertLess(len(body), MAX_BODY)
        rss_before = vmrss_kb(self.proxy.proc.pid)
        start = time.monotonic()
        status, _, answer = post_xml(self.port, body)
        self.assertLess(time.monotonic() - start, ANSWER_BOUND_S)
        self.assertEqual(status, 200)
        (result,), _ = xmlrpc.client.loads(answer, use_builtin_types=True)
        self.assertEqual(len(result[0]), 2 * 1024 * 1024)
        self.assertLess(vmrss_kb(self.proxy.proc.pid) - rss_before, RSS_GROWTH_BOUND_KB)
        # Beyond max_body_size: 413 before the body is read, and served after.
        big = base64_param(4 * 1024 * 1024)
        self.assertGreater(len(big), MAX_BODY)
        head = (b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                b"Content-Length: %d\r\n\r\n" % len(big))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(head)
            answer = s.recv(4096)
        self.assertEqual(status_of(answer), 413)
        self.assertIn(b"max_body_size", answer)
        # Broken base64 inside the limits: a fault naming the problem.
        self.fault_of(call_xml("test.echo", b"<param><value><base64>abc!@#$</base64></value></param>"),
                      expect_in=r"(?i)base64")
        self.assert_still_serving()

    def test_invalid_utf8(self):
        for name, bad in INVALID_UTF8.items():
            with self.subTest(name):
                code, msg = self.fault_of(call_xml("test.echo", string_param(b"ok" + bad + b"ok")),
                                          expect_in=r"(?i)utf-8|encoding|char")
                self.assertIn(code, (-32700, -32702, -32600, -32602), (name, msg))
        # In the method name itself.
        self.fault_of(b'<?xml version="1.0"?><methodCall><methodName>test.\xffecho</methodName>'
                      b"<params></params></methodCall>")

    def test_many_hostile_calls_leave_memory_bounded(self):
        pid = self.proxy.proc.pid
        rss_before = vmrss_kb(pid)
        bodies = [billion_laughs(), quadratic_blowup(), xxe_file(), nested(5000),
                  call_xml("test.echo", string_param(b"\xff"))]
        for _ in range(10):
            for body in bodies:
                status, _, answer = post_xml(self.port, body)
                self.assertEqual(status, 200)
                self.assertIn(b"<fault>", answer)
        self.assertLess(vmrss_kb(pid) - rss_before, RSS_GROWTH_BOUND_KB)
        self.assert_still_serving()


class PassThroughRouteTest(E2ETestCase):
    """(b): a route that does not parse forwards every one of them untouched."""

    def setUp(self):
        super().setUp()
        self.up = self.start_upstream()
        self.net = Listener()
        self.addCleanup(self.net.stop)
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.up.port}/RPC2 timeout=3000
route everything * -> legacy
xml_max_depth {XML_MAX_DEPTH}
max_body_size {MAX_BODY}
""")

    def test_hostile_bodies_reach_the_legacy_byte_for_byte(self):
        bodies = {
            "billion laughs": billion_laughs("shop.order"),
            "quadratic blowup": quadratic_blowup("shop.order"),
            "xxe file": xxe_file("shop.order"),
            "xxe network": xxe_net(self.net.port, "shop.order"),
            "external dtd": xxe_external_dtd(self.net.port, "shop.order"),
            "deep nesting": nested(XML_MAX_DEPTH + 5, "shop.order"),
            "very deep nesting": nested(80000, "shop.order"),
            "huge base64": base64_param(2 * 1024 * 1024, "shop.order"),
        }
        for name, bad in INVALID_UTF8.items():
            bodies["invalid utf-8: " + name] = call_xml("shop.order", string_param(b"x" + bad))
        pid = self.proxy.proc.pid
        rss_before = vmrss_kb(pid)
        for name, body in bodies.items():
            with self.subTest(name):
                start = time.monotonic()
                status, _, answer = post_xml(self.port, body)
                self.assertLess(time.monotonic() - start, ANSWER_BOUND_S)
                self.assertEqual(status, 200, answer[:200])
                seen = self.up.last()
                self.assertEqual(seen["path"], "/RPC2")
                self.assertEqual(seen["body"].encode("latin-1"), body, name)
        self.assertLess(vmrss_kb(pid) - rss_before, RSS_GROWTH_BOUND_KB)
        time.sleep(0.3)
        self.assertEqual(self.net.accepted, 0, "the proxy fetched an external entity")
        # Beyond max_body_size it is refused even here (413), and the proxy
        # keeps serving.
        big = base64_param(4 * 1024 * 1024, "shop.order")
        raw = raw_exchange(self.port, b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                      b"Connection: close\r\n\r\n" % len(big) + big[:1000],
                           timeout=3)
        self.assertEqual(status_of(raw), 413)
        status, _, _ = post_xml(self.port, call_xml("shop.ping", b""))
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
