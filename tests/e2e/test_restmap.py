"""Issue 4: routes with map=METHOD:TEMPLATE call a REST service. An
unchanged XML-RPC client calls stock.get("A") and the service sees
GET /api/stock/A; what it answers comes back as XML-RPC values and faults."""

import http.server
import json
import socketserver
import threading
import urllib.parse
import xmlrpc.client

from harness import E2ETestCase, outcome, post_xml
from harness import xmlrpc_client as client

SKUS = {
    "HAM-001": {"sku": "HAM-001", "name": "Claw hammer", "qty": 17, "price": 19.99,
                "active": True},
    "bolt 6mm/ß?#": {"sku": "bolt 6mm/ß?#", "name": "Bolt, 6 mm", "qty": 500, "price": 0.05,
                     "active": True},
}


class RestStockService:
    """A REST service written without the proxy in mind, over HTTP/1.1
    keep-alive, recording each request (method, raw path, headers, body):
        GET    /api/stock/SKU   200 the record, or 404 {"faultCode": 404, ...}
        PUT    /api/stock/SKU   body {"delta": n}: 200 the updated record
        DELETE /api/stock/SKU   204, no body
        anything else           404 with an HTML page
    """

    def __init__(self):
        self.requests = []
        self.stock = json.loads(json.dumps(SKUS))
        self.lock = threading.Lock()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, code, payload=None, ctype="application/json"):
                self.send_response(code)
                if payload is not None:
                    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if payload is not None:
                    self.wfile.write(body)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with service.lock:
                    service.requests.append({"method": self.command, "path": self.path,
                                             "headers": dict(self.headers),
                                             "body": raw.decode("utf-8")})
                prefix = "/api/stock/"
                if not self.path.startswith(prefix) or "/" in self.path[len(prefix):]:
                    self._send(404, b"<html><body>Not Found</body></html>", "text/html")
                    return
                sku = urllib.parse.unquote(self.path[len(prefix):])
                with service.lock:
                    record = service.stock.get(sku)
                    if record is None:
                        self._send(404, {"faultCode": 404, "faultString": f"unknown sku: {sku}"})
                    elif self.command == "GET":
                        self._send(200, record)
                    elif self.command == "PUT":
                        record["qty"] += json.loads(raw)["delta"]
                        self._send(200, record)
                    elif self.command == "DELETE":
                        del service.stock[sku]
                        self._send(204)

            do_GET = do_PUT = do_DELETE = do_POST = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class RestMappingTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.svc = RestStockService()
        self.addCleanup(self.svc.stop)
        self.proxy, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream rest http://127.0.0.1:{self.svc.port}/api/ kind=json timeout=5000
route stock-read   xmlrpc stock.get     -> rest  map=GET:/stock/{{1}}
route stock-adjust xmlrpc stock.adjust  -> rest  map=PUT:/stock/{{1}}
route stock-drop   xmlrpc stock.drop    -> rest  map=DELETE:/stock/{{1}}
route stock-find   xmlrpc stock.find    -> rest  map=GET:/search/{{1}}
route everything   *                    -> rest
""")
        self.client = client(self.port)

    def last(self):
        return self.svc.received()[-1]

    def assert_headers(self, req, method, body):
        headers = req["headers"]
        self.assertEqual(headers["Accept"], "application/json")
        self.assertEqual(headers["X-Strangler-Method"], method)
        self.assertTrue(headers["X-Request-Id"])
        self.assertEqual(headers["Host"], f"127.0.0.1:{self.svc.port}")
        if body:
            self.assertEqual(headers["Content-Type"], "application/json")
        else:
            self.assertNotIn("Content-Type", headers)
        self.assertEqual(int(headers.get("Content-Length", "0")), len(req["body"].encode()))
        if req["method"] in ("GET", "DELETE") and not body:
            # no framing for a body these methods do not have (RFC 9110 8.6)
            self.assertNotIn("Content-Length", headers)

    def test_get_put_delete_on_the_wire_and_back(self):
        record = self.client.stock.get("HAM-001")
        self.assertEqual(record, SKUS["HAM-001"])
        self.assertEqual([type(record[k]) for k in ("qty", "price", "active")], [int, float, bool])
        req = self.last()
        self.assertEqual((req["method"], req["path"], req["body"]), ("GET", "/api/stock/HAM-001", ""))
        self.assert_headers(req, "stock.get", body=False)

        record = self.client.stock.adjust("HAM-001", {"delta": -2})
        self.assertEqual(record["qty"], 15)
        req = self.last()
        self.assertEqual((req["method"], req["path"]), ("PUT", "/api/stock/HAM-001"))
        self.assertEqual(req["body"], '{"delta":-2}')
        self.assert_headers(req, "stock.adjust", body=True)

        # 204 No Content is XML-RPC's nil; the record is gone afterwards.
        self.assertIsNone(self.client.stock.drop("HAM-001"))
        req = self.last()
        self.assertEqual((req["method"], req["path"], req["body"]),
                         ("DELETE", "/api/stock/HAM-001", ""))
        self.assert_headers(req, "stock.drop", body=False)
        self.assertEqual(outcome(self.client.stock.get, "HAM-001"),
                         ("fault", 404, "unknown sku: HAM-001"))
        self.assertEqual(len(self.svc.received()), 4)

    def test_parameters_are_percent_encoded(self):
        sku = "bolt 6mm/ß?#"
        self.assertEqual(self.client.stock.get(sku)["qty"], 500)
        self.assertEqual(self.last()["path"], "/api/stock/bolt%206mm%2F%C3%9F%3F%23")
        self.assertEqual(self.client.stock.adjust(sku, {"delta": 25})["qty"], 525)
        self.assertEqual(self.last()["path"], "/api/stock/bolt%206mm%2F%C3%9F%3F%23")
        # Numbers and booleans go in as their text.
        self.assertEqual(outcome(self.client.stock.get, 42)[:2], ("fault", 404))
        self.assertEqual(self.last()["path"], "/api/stock/42")
        self.assertEqual(outcome(self.client.stock.get, 2.5)[:2], ("fault", 404))
        self.assertEqual(self.last()["path"], "/api/stock/2.5")
        self.assertEqual(outcome(self.client.stock.get, True)[:2], ("fault", 404))
        self.assertEqual(self.last()["path"], "/api/stock/true")

    def test_the_request_id_is_passed_on(self):
        body = xmlrpc.client.dumps(("HAM-001",), "stock.get").encode()
        status, _, answer = post_xml(self.port, body, headers={"X-Request-Id": "trace-4"})
        self.assertEqual(status, 200)
        self.assertEqual(xmlrpc.client.loads(answer, use_builtin_types=True)[0][0]["sku"],
                         "HAM-001")
        self.assertEqual(self.last()["headers"]["X-Request-Id"], "trace-4")

    def test_the_services_faults_and_interop_faults(self):
        self.assertEqual(outcome(self.client.stock.get, "NOPE"),
                         ("fault", 404, "unknown sku: NOPE"))
        self.assertEqual(outcome(self.client.stock.drop, "NOPE"),
                         ("fault", 404, "unknown sku: NOPE"))
        # A path the service does not know: its HTML 404 page, quoted.
        self.assertEqual(outcome(self.client.stock.find, "hammer"),
                         ("fault", -32601, "route stock-find: upstream rest: answered HTTP 404: "
                                           "<html><body>Not Found</body></html>"))
        self.assertEqual(self.last()["path"], "/api/search/hammer")

    def test_calls_the_map_cannot_express_never_reach_the_service(self):
        prefix = "route stock-read: upstream rest: map: "
        SEGMENT = ("; an empty, '.' or '..' segment (or one hidden behind an encoded slash) "
                   "would address another resource")
        cases = [
            ((), -32602, prefix + "the call has 0 parameters, the template uses {1}"),
            (({"sku": "HAM-001"},), -32602,
             prefix + "parameter 1 is a struct; only strings, numbers, booleans and dates go "
                      "into a path"),
            ((["HAM-001"],), -32602,
             prefix + "parameter 1 is an array; only strings, numbers, booleans and dates go "
                      "into a path"),
            ((None,), -32602,
             prefix + "parameter 1 is nil; only strings, numbers, booleans and dates go into "
                      "a path"),
            (("..",), -32602,
             prefix + "parameter 1 makes the path segment '..'" + SEGMENT),
            (("",), -32602,
             prefix + "parameter 1 makes the path segment ''" + SEGMENT),
            (("../admin",), -32602,
             prefix + "parameter 1 makes the path segment '..%2Fadmin'" + SEGMENT),
            (("HAM-001", 2), -32602,
             prefix + "GET takes 1 parameter (all in its template), the call has 2"),
        ]
        for params, code, message in cases:
            with self.subTest(params=params):
                self.assertEqual(outcome(self.client.stock.get, *params), ("fault", code, message))
        self.assertEqual(self.svc.received(), [])
        # and the proxy still serves
        self.assertEqual(self.client.stock.get("HAM-001")["qty"], 17)

    def test_mapped_calls_inside_a_multicall(self):
        # The calls of a multicall may run at once: each touches its own sku.
        multi = xmlrpc.client.MultiCall(self.client)
        multi.stock.get("HAM-001")
        multi.stock.adjust("bolt 6mm/ß?#", {"delta": 3})
        multi.stock.get("NOPE")
        results = multi()
        self.assertEqual(results[0], SKUS["HAM-001"])
        self.assertEqual(results[1]["qty"], 503)
        with self.assertRaises(xmlrpc.client.Fault) as f:
            results[2]
        self.assertEqual((f.exception.faultCode, f.exception.faultString),
                         (404, "unknown sku: NOPE"))
        self.assertEqual(sorted((r["method"], r["path"]) for r in self.svc.received()),
                         [("GET", "/api/stock/HAM-001"), ("GET", "/api/stock/NOPE"),
                          ("PUT", "/api/stock/bolt%206mm%2F%C3%9F%3F%23")])
