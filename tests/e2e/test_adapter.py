"""Calls routed to a new service through the JSON adapter: the client gets
the same values, types and faults the legacy would have sent."""

import json
import xmlrpc.client

from harness import E2ETestCase, free_port, outcome, post_xml
from harness import xmlrpc_client as client

# Values the legacy's test.echo returns unchanged; through the adapter the
# JSON service echoes its params, so both sides must come back identical.
ECHO_CASES = [
    (1, -1, 0, 2147483647, -2147483648),
    (True, False),
    ("", "plain", "xml <&> \"quotes\" 'single'", "tab\tnewline\nreturn\r", "µñíçødé ∑ 漢字 🎉"),
    (0.0, -0.0, 1.5, 1e-300, 1.7976931348623157e308, 0.1, 24.0),
    (None,),
    ([], {}, [1, "two", 3.0, None, [True]], {"z": 1, "a": 2, "m": {"nested": [{}]}}),
    (b"", b"\x00\x01\xfe\xff", bytes(range(256)) * 3),
    (xmlrpc.client.DateTime("20261121T10:11:12"), xmlrpc.client.DateTime("19991231T23:59:59")),
    ([[[[[["deep"]]]]]],),
    ({"key with spaces": "v", "": "empty key", "ünï": "code"},),
]


class AdapterFidelityTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        self.dead = free_port()
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{self.svc.port}/rpc kind=json timeout=1000
upstream gone   http://127.0.0.1:{self.dead}/rpc kind=json
route echo    xmlrpc test.*    -> svc
route broken  xmlrpc broken.*  -> svc
route slow    xmlrpc slow      -> svc
route garbage xmlrpc garbage   -> svc
route status  xmlrpc status.*  -> svc
route gone    xmlrpc gone.*    -> gone
route rest    *                -> legacy
""")

    def test_values_and_types_are_identical_to_the_legacy(self):
        legacy, proxied = client(self.legacy), client(self.port)
        for params in ECHO_CASES:
            direct = legacy.test.echo(*params)
            through = proxied.test.echo(*params)
            self.assertEqual(through, direct, params)
            # same Python types, element by element (1 vs 1.0 vs True differ)
            self.assertEqual(json.dumps(through, default=repr, sort_keys=False),
                             json.dumps(direct, default=repr, sort_keys=False))
            self.assertEqual([type(x) for x in through], [type(x) for x in direct])

    def test_big_integers_come_back_as_i8(self):
        body = (b"<?xml version='1.0'?><methodCall><methodName>test.echo</methodName><params>"
                b"<param><value><i8>9007199254740993</i8></value></param></params></methodCall>")
        status, _, answer = post_xml(self.port, body)
        self.assertEqual(status, 200)
        self.assertIn(b"<i8>9007199254740993</i8>", answer)
        self.assertEqual(xmlrpc.client.loads(answer)[0][0], [9007199254740993])

    def test_the_json_contract_on_the_wire(self):
        client(self.port).test.echo(1, "a", b"\x01", xmlrpc.client.DateTime("20260101T00:00:00"))
        req = self.svc.requests[-1]
        self.assertEqual(req["path"], "/rpc/test.echo")
        self.assertEqual(req["headers"]["Content-Type"], "application/json")
        self.assertEqual(req["headers"]["X-Strangler-Method"], "test.echo")
        self.assertTrue(req["headers"]["X-Request-Id"])
        self.assertEqual(json.loads(req["body"]),
                         [1, "a", {"$base64": "AQ=="}, {"$datetime": "20260101T00:00:00"}])

    def test_request_id_is_passed_on(self):
        body = xmlrpc.client.dumps((1,), "test.echo").encode()
        post_xml(self.port, body, headers={"X-Request-Id": "trace-42"})
        self.assertEqual(self.svc.requests[-1]["headers"]["X-Request-Id"], "trace-42")

    def test_service_faults_are_the_legacys_faults(self):
        direct = outcome(client(self.legacy).test.fault, 4711, "custom failure ünï")
        through = outcome(client(self.port).test.fault, 4711, "custom failure ünï")
        self.assertEqual(through, direct)
        self.assertEqual(through, ("fault", 4711, "custom failure ünï"))

    def test_failures_become_interop_faults_naming_route_and_cause(self):
        proxied = client(self.port)
        cases = [
            (proxied.broken.method, -32601, "no method broken.method"),  # the service's own fault
            (proxied.gone.away, -32300, "route gone: upstream gone"),
            (proxied.garbage, -32700, "route garbage: upstream svc"),
            (getattr(proxied, "status.503"), -32500, "503"),
            (getattr(proxied, "status.404"), -32601, "404"),
            (proxied.slow, -32300, "route slow: upstream svc"),
        ]
        for fn, code, text in cases:
            kind, got_code, message = outcome(fn)
            self.assertEqual((kind, got_code), ("fault", code), message)
            self.assertIn(text, message)
        # and the proxy still serves
        self.assertEqual(proxied.test.echo("still"), ["still"])

    def test_malformed_call_to_a_new_service_is_a_parse_fault(self):
        body = (b"<?xml version='1.0'?><methodCall><methodName>test.echo</methodName>"
                b"<params><param><value><int>12x</int></value></param></params></methodCall>")
        status, _, answer = post_xml(self.port, body)
        self.assertEqual(status, 200)
        with self.assertRaises(xmlrpc.client.Fault) as f:
            xmlrpc.client.loads(answer)
        self.assertIn(f.exception.faultCode, (-32700, -32602))
        self.assertIn("12x", f.exception.faultString)
