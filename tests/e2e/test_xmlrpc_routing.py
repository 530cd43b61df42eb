"""XML-RPC through the proxy: a stock client gets exactly what the legacy
would have answered, calls are routed per method name, and bodies that are
not XML-RPC still go through untouched."""

import xmlrpc.client

from harness import E2ETestCase, call, free_port, http_request, post_xml


class LegacyThroughProxyTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        # Two shops with their own state: the one behind the proxy, and a
        # twin the test calls directly, so every call has a reference.
        self.legacy = self.start_legacy()
        self.twin = self.start_legacy()
        self.up = self.start_upstream()
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
workers 2
upstream legacy   http://127.0.0.1:{self.legacy}/RPC2
upstream recorder http://127.0.0.1:{self.up.port}/RPC2
route recorded xmlrpc catalog.get -> recorder
route raw      http POST /raw     -> recorder
route rest     *                  -> legacy
""")

    def test_identical_results_and_faults_through_the_proxy(self):
        calls = [
            ("stock.get", "HAM-001"),
            ("stock.get", "NOPE"),
            ("stock.adjust", "NAIL-100", -5),
            ("stock.adjust", "SAW-010", -1000),
            ("stock.list",),
            ("orders.create", "acme", [{"sku": "HAM-001", "qty": 2}, {"sku": "SCR-200", "qty": 1}]),
            ("orders.create", "acme", [{"sku": "MISSING", "qty": 1}]),
            ("orders.list",),
            ("catalog.list",),
            ("test.echo", 1, True, "text <&>", 2.5, None, [1, [2]], {"b": 1, "a": {"z": None}},
             b"\x00\xff bytes", xmlrpc.client.DateTime("20261121T10:11:12")),
            ("test.fault", 4711, "custom failure"),
            ("no.such.method",),
            ("system.listMethods",),
        ]
        for c in calls:
            through = call(self.port, *c)
            direct = call(self.twin, *c)
            if c[0] == "orders.create" and through[0] == "result":
                # created timestamps may differ by a second between the shops
                through[1].pop("created"), direct[1].pop("created")
            self.assertEqual(through, direct, c)

    def test_multicall_passes_through(self):
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/RPC2")
        multi = xmlrpc.client.MultiCall(proxy)
        multi.stock.get("HAM-001")
        multi.stock.get("NOPE")
        results = multi()
        self.assertEqual(results[0]["sku"], "HAM-001")
        with self.assertRaises(xmlrpc.client.Fault) as f:
            results[1]
        self.assertEqual(f.exception.faultCode, 404)

    def test_routes_by_method_name(self):
        body = xmlrpc.client.dumps(("HAM-001",), "catalog.get")
        status, _, _ = post_xml(self.port, body.encode())
        self.assertEqual(status, 200)  # the recorder answers (JSON, not XML-RPC)
        body = self.up.last()["body"]
        self.assertIn("<methodName>catalog.get</methodName>", body)
        before = len(self.up.requests)
        self.assertEqual(call(self.port, "catalog.list")[0], "result")  # the shop answers
        self.assertEqual(len(self.up.requests), before)

    def test_body_that_is_not_xmlrpc_goes_untouched_to_the_first_plain_route(self):
        for body in (b"plain text", b"<notxmlrpc/>"):
            status, _, answer = post_xml(self.port, body, path="/raw")
            self.assertEqual(status, 200)
            self.assertEqual(self.up.last()["body"].encode("latin-1"), body)

    def test_issue4_a_call_whose_method_cannot_be_read_is_refused_when_calls_go_apart(self):
        # Calls go to the recorder or to the legacy by their method name: one
        # without a readable name cannot be placed, so it gets a fault
        # rather than whatever route it would fall to.
        before = len(self.up.requests)
        status, _, answer = post_xml(self.port, b"<methodCall><broken", path="/raw")
        self.assertEqual(status, 200)
        with self.assertRaises(xmlrpc.client.Fault) as f:
            xmlrpc.client.loads(answer)
        self.assertIn("route raw: the call's method cannot be read", f.exception.faultString)
        self.assertEqual(len(self.up.requests), before)

    def test_malformed_params_still_reach_the_legacy_untouched(self):
        body = (b"<?xml version='1.0'?><methodCall><methodName>stock.get</methodName>"
                b"<params><param><value><int>12x</int></value></param></params></methodCall>")
        status, _, answer = post_xml(self.port, body)
        # The shop itself decides what to say about it: a fault, not a proxy error.
        self.assertEqual(status, 200)
        self.assertIn(b"<fault>", answer)


class LegacyFailureTest(E2ETestCase):
    def test_unreachable_legacy_gives_a_transport_fault_and_plain_http_a_502(self):
        dead = free_port()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{dead}/RPC2
route rest * -> legacy
""")
        kind, code, message = call(port, "stock.get", "HAM-001")
        self.assertEqual((kind, code), ("fault", -32300))
        self.assertIn("route rest: upstream legacy", message)
        status, _, _ = http_request(port, "GET", "/")
        self.assertEqual(status, 502)

    def test_call_without_route_is_method_not_found(self):
        legacy = self.start_legacy()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
route stock xmlrpc stock.* -> legacy
""")
        self.assertEqual(call(port, "stock.get", "HAM-001")[0], "result")
        kind, code, message = call(port, "orders.list")
        self.assertEqual((kind, code), ("fault", -32601))
        self.assertIn("orders.list", message)
        status, _, _ = http_request(port, "GET", "/")
        self.assertEqual(status, 404)
