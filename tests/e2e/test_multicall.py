"""system.multicall through the proxy: a multicall whose calls route to
different targets is split (one smaller system.multicall per xmlrpc
upstream, one adapted JSON call per call to a new service) and its answers
are put back together in the client's order, so a stock client cannot tell
it was split; a multicall that all goes to one xmlrpc upstream is forwarded
byte for byte; each call on an intercepting route raises its own event."""

import datetime
import json
import re
import sys
import time
import xmlrpc.client

from harness import (SHOP, E2ETestCase, Process, broker_url, consume, declare_queue, eventually,
                     free_port, outcome, post_xml, wait_for_stock_model, xmlrpc_client)

SKUS = ["HAM-001", "NAIL-100", "SAW-010", "SCR-200", "TAPE-025"]

# One line per request the shop served, when it runs with --verbose
# (BaseHTTPRequestHandler's request log).
SHOP_POST_LINE = r'"POST /RPC2 HTTP/1\.1" 200'


def multicall(port, calls):
    """Sends calls [(method, *params)] as one system.multicall with the
    stock client's MultiCall; returns each call's outcome, in order."""
    multi = xmlrpc.client.MultiCall(xmlrpc_client(port))
    for method, *params in calls:
        getattr(multi, method)(*params)
    results = multi()
    if len(results.results) != len(calls):
        raise AssertionError(f"{len(results.results)} answers for {len(calls)} calls: "
                             f"{results.results!r}")
    return [outcome(results.__getitem__, i) for i in range(len(calls))]


def multicall_body(calls):
    """The XML of one system.multicall carrying calls [(method, *params)]."""
    return xmlrpc.client.dumps(
        ([{"methodName": method, "params": list(params)} for method, *params in calls],),
        "system.multicall", allow_none=True).encode()


def answers_of(body):
    """The outcomes in a system.multicall's answer body."""
    (answers,), _ = xmlrpc.client.loads(body, use_builtin_types=True)
    out = []
    for a in answers:
        if isinstance(a, dict):
            out.append(("fault", a["faultCode"], a["faultString"]))
        else:
            if not (isinstance(a, list) and len(a) == 1):
                raise AssertionError(f"answer is neither [value] nor a fault: {a!r}")
            out.append(("result", a[0]))
    return out


def typed(v):
    """A value with the XML-RPC type of every node spelled out, so that an
    int that should have been a double (24 for 24.0) or -0.0 turned into 0.0
    compares unequal."""
    if isinstance(v, dict):
        return ("struct", {k: typed(x) for k, x in v.items()})
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [typed(x) for x in v])
    if isinstance(v, float):
        return ("double", repr(v))
    return (type(v).__name__, v)


def without_created(outcomes):
    """Outcomes with orders' creation times dropped: two shops may create
    the same order a second apart."""
    out = []
    for o in outcomes:
        if o[0] == "result" and isinstance(o[1], dict) and "created" in o[1]:
            o = ("result", {k: v for k, v in o[1].items() if k != "created"})
        out.append(o)
    return out


class MulticallTest(E2ETestCase):
    def start_verbose_legacy(self, name):
        """A demo shop that logs every request it serves, so a test can
        count the requests that reached it."""
        p = self._track(Process(name, [sys.executable, SHOP, "--port", "0", "--verbose"], self.tmp,
                                ready=r"legacy-shop listening on [\d.]+:(\d+)"))
        return p, int(p.wait_ready().group(1))

    def assert_requests_served(self, shop, n):
        """The shop served exactly n requests. Each was logged before its
        answer was sent, and the proxy answered only after all of them, so
        only the log reader may lag."""
        eventually(lambda: len(re.findall(SHOP_POST_LINE, shop.output())) >= n,
                   message=f"{shop.name} logged {n} requests")
        time.sleep(0.3)
        self.assertEqual(len(re.findall(SHOP_POST_LINE, shop.output())), n, shop.output())

    def test_split_between_stock_service_and_legacy_answers_as_the_legacy_would(self):
        legacy = self.start_legacy()
        exchange = self.unique("multicall")
        svc, svc_port = self.start_stock_service(self.unique("stock-service"), exchange)

        # Sync the new service's model: stock.get intercepted at the legacy.
        _, sync_port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
events {broker_url()} exchange={exchange}
route stock-read xmlrpc stock.get -> legacy intercept
route everything *                -> legacy
""", name="sync")
        for sku in SKUS:
            self.assertEqual(xmlrpc_client(sync_port).stock.get(sku)["sku"], sku)
        wait_for_stock_model(svc_port, legacy, SKUS)

        # A second proxy, on the same legacy and service, with stock.get flipped.
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy    http://127.0.0.1:{legacy}/RPC2
upstream stock-svc http://127.0.0.1:{svc_port}/rpc kind=json timeout=2000
route stock-read xmlrpc stock.get -> stock-svc
route everything *                -> legacy
""", name="flipped")
        odd = {"nested": {"deeper": [1, {"x": None, "ü": "ünïcödé ✓ 𝄞"}], "empty": {}, "list": []},
               "": "empty key"}
        calls = [
            ("stock.get", "HAM-001"),
            ("catalog.get", "SAW-010"),
            ("stock.get", "SAW-010"),
            ("stock.get", "NOPE-1"),  # a fault on both sides
            ("test.echo", odd, "<&>\"' ]]>", "", "  spaced\tout\n", 2**31 - 1, -2**31, True, False,
             0.1, -1.5e300, 24.0, -0.0, b"\x00\xff bytes", datetime.datetime(2026, 11, 21, 10, 11, 12),
             [[], [[]], {}], None),
            ("stock.list",),
            ("test.fault", 409, "négatif <&> fault ✗"),
            ("stock.get", "TAPE-025"),
            ("no.such.method", 1),
            ("catalog.get", "NOPE-2"),
            ("stock.get", "SCR-200"),
            ("test.echo",),
            ("stock.get", "NAIL-100"),
        ]
        before_ok = len(re.findall(r"POST /rpc/stock\.get -> 200", svc.output()))
        before_missing = len(re.findall(r"POST /rpc/stock\.get -> 404", svc.output()))
        self.assertEqual((before_ok, before_missing), (0, 0), "the service served calls before the flip")

        through = multicall(port, calls)
        direct = multicall(legacy, calls)
        self.assertEqual(len(through), len(calls))
        for c, t, d in zip(calls, through, direct):
            self.assertEqual(typed(t), typed(d), c[0])
        self.assertEqual(through[3], ("fault", 404, "unknown sku: NOPE-1"))

        # The stock service answered exactly the stock.get calls.
        known = sum(1 for c in calls if c[0] == "stock.get" and c[1] in SKUS)
        eventually(lambda: len(re.findall(r"POST /rpc/stock\.get -> 200", svc.output())) >= known,
                   message="stock service logged its answers")
        time.sleep(0.3)
        self.assertEqual(len(re.findall(r"POST /rpc/stock\.get -> 200", svc.output())), known)
        self.assertEqual(len(re.findall(r"POST /rpc/stock\.get -> 404", svc.output())), 1)
        self.assertEqual(re.findall(r"POST /rpc/(?!stock\.get )\S+ ->", svc.output()), [])

    def test_each_intercepted_call_inside_a_multicall_raises_its_own_event(self):
        shop, legacy = self.start_verbose_legacy("legacy-verbose")
        twin = self.start_legacy()
        exchange = self.unique("multicall-events")
        queue = self.unique("tap")
        # Every key, so that an event no call should raise is seen too.
        declare_queue(queue, ["#"], exchange=exchange)
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
events {broker_url()} exchange={exchange}
route stock-write xmlrpc stock.adjust -> legacy intercept
route orders      xmlrpc orders.*     -> legacy intercept=orders.changed
route everything  *                   -> legacy
""")
        calls = [
            ("stock.adjust", "HAM-001", 3),
            ("orders.create", "acme", [{"sku": "NAIL-100", "qty": 2}, {"sku": "SAW-010", "qty": 1}]),
            ("stock.get", "SAW-010"),                # no intercept on its route: no event
            ("stock.adjust", "NOPE-404", 1),         # a fault: no event
            ("stock.adjust", "SCR-200", -2),
        ]
        request_id = self.unique("mc-request")
        status, _, body = post_xml(port, multicall_body(calls), headers={"X-Request-Id": request_id})
        self.assertEqual(status, 200)
        through = answers_of(body)
        direct = answers_of(post_xml(twin, multicall_body(calls))[2])
        self.assertEqual(without_created(through), without_created(direct))
        self.assertEqual(through[3], ("fault", 404, "unknown sku: NOPE-404"))
        # All its calls go to the legacy: it got the multicall as one request.
        self.assert_requests_served(shop, 1)

        expected = [
            ("legacy.stock.adjust", "stock-write", calls[0], through[0][1]),
            ("orders.changed", "orders", calls[1], through[1][1]),
            ("legacy.stock.adjust", "stock-write", calls[4], through[4][1]),
        ]
        events = consume(queue, count=len(expected) + 3, timeout_ms=3000)
        self.assertEqual(len(events), len(expected),
                         [(e["body"]["type"], e["body"]["data"]["method"]) for e in events])
        by_call = {json.dumps([e["body"]["data"]["method"], e["body"]["data"]["params"]]): e
                   for e in events}
        for etype, route, (method, *params), result in expected:
            msg = by_call.get(json.dumps([method, params]))
            self.assertIsNotNone(msg, f"no event for {method}{params}: {list(by_call)}")
            ev = msg["body"]
            data = ev["data"]
            self.assertEqual((ev["type"], msg["routing_key"], ev["subject"]), (etype, etype, method))
            self.assertEqual((data["route"], data["upstream"]), (route, "legacy"))
            self.assertEqual(data["status"], 200)
            self.assertEqual(data["request_id"], request_id)
            if method == "orders.create":
                created = result["created"].strftime("%Y%m%dT%H:%M:%S")
                self.assertEqual(data["result"], dict(result, created={"$datetime": created}))
            else:
                self.assertEqual(data["result"], result)
        self.assertEqual(len({e["body"]["id"] for e in events}), len(expected))

    def test_multicall_to_one_xmlrpc_target_is_forwarded_byte_for_byte(self):
        up = self.start_upstream()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream rec http://127.0.0.1:{up.port}/RPC2
route reads xmlrpc stock.* -> rec intercept
route rest  *              -> rec
""")
        # Formatting a writer would not reproduce: a comment, indentation,
        # an untyped value, members out of the usual order, an entity.
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b"<!-- a comment the proxy must not drop -->\n"
                b"<methodCall>\n  <methodName>system.multicall</methodName>\n"
                b"  <params><param><value><array><data>\n"
                b"    <value><struct>\n"
                b"      <member><name>params</name><value><array><data>"
                b"<value>HAM-001</value></data></array></value></member>\n"
                b"      <member><name>methodName</name><value><string>stock.get</string>"
                b"</value></member>\n"
                b"    </struct></value>\n"
                b"    <value><struct><member><name>methodName</name><value>catalog.list</value>"
                b"</member><member><name>params</name><value><array><data/></array></value>"
                b"</member></struct></value>\n"
                b"    <value><struct><member><name>methodName</name><value>test.echo</value>"
                b"</member><member><name>params</name><value><array><data><value><i4>007</i4>"
                b"</value><value>&#x2713; &amp;</value></data></array></value></member>"
                b"</struct></value>\n"
                b"  </data></array></value></param></params>\n</methodCall>\n")
        status, _, answer = post_xml(port, body)
        self.assertEqual(status, 200)
        self.assertEqual(len(up.requests), 1)
        got = up.last()
        self.assertEqual((got["method"], got["path"]), ("POST", "/RPC2"))
        self.assertEqual(got["body"].encode("latin-1"), body)
        # The answer comes back as the upstream sent it (its JSON echo).
        self.assertEqual(json.loads(answer)["body"].encode("latin-1"), body)

    def test_split_with_a_json_service_keeps_order_and_faults_per_call(self):
        shop, legacy = self.start_verbose_legacy("legacy-verbose")
        twin = self.start_legacy()
        svc = self.start_json_service()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.* -> svc
route rest *             -> legacy
""")
        echo_params = [1, "two ✓", {"x": [1.5, None, True]}, []]
        calls = [
            ("stock.adjust", "HAM-001", 5),
            ("test.echo", *echo_params),
            ("stock.get", "HAM-001"),
            ("test.fault", 4711, "boom <&>"),
            ("stock.adjust", "HAM-001", -3),
            ("test.nothing",),
            ("catalog.get", "SAW-010"),
        ]
        through = multicall(port, calls)

        # The new service's calls: each its own POST with a JSON body, one
        # after the other in the client's order.
        self.assertEqual(through[1], ("result", echo_params))
        self.assertEqual(through[3], ("fault", 4711, "boom <&>"))
        self.assertEqual(through[5], ("fault", -32601, "no method test.nothing"))
        with svc.lock:
            requests = list(svc.requests)
        self.assertEqual([r["path"] for r in requests],
                         ["/rpc/test.echo", "/rpc/test.fault", "/rpc/test.nothing"])
        bodies = {r["path"]: json.loads(r["body"]) for r in requests}
        self.assertEqual(bodies, {"/rpc/test.echo": echo_params,
                                  "/rpc/test.fault": [4711, "boom <&>"],
                                  "/rpc/test.nothing": []})
        for r in requests:
            self.assertTrue(r["headers"]["Content-Type"].startswith("application/json"), r)
            self.assertEqual(r["headers"]["X-Strangler-Method"], r["path"][len("/rpc/"):])

        # The legacy's calls run in the client's order too (the quantities
        # show it), answers in their places: no two of them are consecutive
        # here, so each is a part of its own.
        legacy_calls = [c for c in calls if not c[0].startswith("test.")]
        direct = multicall(twin, legacy_calls)
        self.assertEqual([through[i] for i in (0, 2, 4, 6)], direct)
        self.assertEqual([through[i][1]["qty"] for i in (0, 2, 4)], [17, 17, 14])
        self.assert_requests_served(shop, 4)

    def test_xmlrpc_part_goes_on_the_clients_path_with_its_headers(self):
        up = self.start_upstream()
        svc = self.start_json_service()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream rec http://127.0.0.1:{up.port}/RPC2
upstream svc http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.echo -> svc
route rest *                -> rec
""")
        calls = [("stock.get", "HAM-001"), ("test.echo", "hi"), ("catalog.list",),
                 ("stock.adjust", "SAW-010", -1)]
        status, _, body = post_xml(port, multicall_body(calls), path="/shop/RPC2?v=1",
                                   headers={"X-Tenant": "acme"})
        self.assertEqual(status, 200)
        # One part per run of consecutive calls for the upstream: the call
        # before test.echo, then the two after it.
        self.assertEqual(len(up.requests), 2)
        parts = []
        for part in up.requests:
            self.assertEqual((part["method"], part["path"]), ("POST", "/shop/RPC2?v=1"))
            self.assertIn(["X-Tenant", "acme"], part["headers"])
            params, method = xmlrpc.client.loads(part["body"].encode("latin-1"))
            self.assertEqual(method, "system.multicall")
            parts.append(params)
        self.assertEqual(parts, [([{"methodName": "stock.get", "params": ["HAM-001"]}],),
                                 ([{"methodName": "catalog.list", "params": []},
                                   {"methodName": "stock.adjust", "params": ["SAW-010", -1]}],)])
        answers = answers_of(body)
        self.assertEqual(answers[1], ("result", ["hi"]))
        # The recorder answers JSON, not XML-RPC: each of its calls gets a
        # fault that says which route and upstream failed.
        for i in (0, 2, 3):
            self.assertEqual(answers[i][0], "fault", answers[i])
            self.assertTrue(answers[i][2].startswith("route rest: upstream rec: "), answers[i])

    def test_call_without_a_route_gets_no_route_fault_in_its_place(self):
        legacy = self.start_legacy()
        twin = self.start_legacy()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
route stock   xmlrpc stock.*   -> legacy
route catalog xmlrpc catalog.* -> legacy
""")
        calls = [
            ("stock.get", "HAM-001"),
            ("orders.create", "acme", [{"sku": "HAM-001", "qty": 1}]),
            ("catalog.get", "SAW-010"),
            ("test.echo", "x"),
            ("stock.get", "NOPE"),
        ]
        through = multicall(port, calls)
        self.assertEqual(through[1], ("fault", -32601, "no route for method orders.create"))
        self.assertEqual(through[3], ("fault", -32601, "no route for method test.echo"))
        routed = [c for c in calls if c[0].startswith(("stock.", "catalog."))]
        self.assertEqual([through[i] for i in (0, 2, 4)], multicall(twin, routed))
        # The call without a route never ran: no order, no stock taken.
        self.assertEqual(xmlrpc_client(legacy).orders.list(), [])
        self.assertEqual(xmlrpc_client(legacy).stock.get("HAM-001")["qty"], 12)

    def test_multicall_of_calls_without_routes_gets_a_fault_for_each(self):
        legacy = self.start_legacy()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
route stock xmlrpc stock.* -> legacy
""")
        through = multicall(port, [("orders.list",), ("test.echo", 1)])
        self.assertEqual(through, [("fault", -32601, "no route for method orders.list"),
                                   ("fault", -32601, "no route for method test.echo")])

    def test_malformed_multicall_reaches_the_legacy_and_gets_its_own_answer(self):
        legacy = self.start_legacy()
        svc = self.start_json_service()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.echo -> svc
route rest *                -> legacy
""")
        malformed = [
            ("x",),
            (),
            ("x", "y"),
            ([1, "two"],),
            ([{"methodName": "test.echo"}],),
            ([{"methodName": 5, "params": []}],),
            ([{"methodName": "test.echo", "params": "not an array"}],),
            ({"methodName": "test.echo", "params": [1]},),
            ([],),
        ]
        for params in malformed:
            through = outcome(xmlrpc_client(port).system.multicall, *params)
            direct = outcome(xmlrpc_client(legacy).system.multicall, *params)
            self.assertEqual(through, direct, params)
        self.assertEqual(svc.requests, [])

    def test_malformed_multicall_is_forwarded_untouched(self):
        up = self.start_upstream()
        svc = self.start_json_service()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream rec http://127.0.0.1:{up.port}/RPC2
upstream svc http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.echo -> svc
route rest *                -> rec
""")
        for params in [("x",), ([{"methodName": "test.echo"}],), ([1, {"methodName": "test.echo",
                                                                     "params": [1]}],)]:
            body = xmlrpc.client.dumps(params, "system.multicall").encode()
            status, _, _ = post_xml(port, body)
            self.assertEqual(status, 200)
            self.assertEqual(up.last()["body"].encode("latin-1"), body, params)
        self.assertEqual(svc.requests, [])

    def test_new_service_down_faults_only_its_calls(self):
        legacy = self.start_legacy()
        twin = self.start_legacy()
        dead = free_port()
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream new-svc http://127.0.0.1:{dead}/rpc kind=json timeout=2000
route moved xmlrpc test.echo -> new-svc
route rest  *                -> legacy
""")
        calls = [("stock.get", "HAM-001"), ("test.echo", 1), ("catalog.get", "SAW-010"),
                 ("test.echo", "two"), ("stock.adjust", "NAIL-100", -1)]
        through = multicall(port, calls)
        for i in (1, 3):
            self.assertEqual(through[i][0], "fault", through[i])
            self.assertEqual(through[i][1], -32300, through[i])
            self.assertTrue(through[i][2].startswith("route moved: upstream new-svc: "), through[i])
        legacy_calls = [c for c in calls if c[0] != "test.echo"]
        self.assertEqual([through[i] for i in (0, 2, 4)], multicall(twin, legacy_calls))


class MulticallLimitsTest(E2ETestCase):
    """A multicall is bounded: in calls (max_multicall_calls) and in the
    exchanges it runs at once, so one request cannot exhaust the proxy."""

    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        _, self.port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
max_multicall_calls 300
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{self.svc.port}/rpc kind=json
route echo xmlrpc test.echo -> svc
route rest *                -> legacy
""")

    def test_many_calls_for_a_new_service_are_all_answered_in_order(self):
        calls = [("test.echo", i) for i in range(299)] + [("stock.get", "HAM-001")]
        through = multicall(self.port, calls)
        self.assertEqual(through[:299], [("result", [i]) for i in range(299)])
        self.assertEqual(through[299][0], "result")
        self.assertEqual(len(self.svc.requests), 299)

    def test_more_calls_than_the_limit_is_one_invalid_request_fault(self):
        calls = [("test.echo", i) for i in range(301)]
        body = multicall_body(calls)
        status, _, raw = post_xml(self.port, body)
        self.assertEqual(status, 200)
        with self.assertRaises(xmlrpc.client.Fault) as f:
            xmlrpc.client.loads(raw)
        self.assertEqual(f.exception.faultCode, -32600)
        self.assertEqual(f.exception.faultString,
                         "system.multicall: 301 calls, more than max_multicall_calls (300)")
        self.assertEqual(self.svc.requests, [])

    def test_an_empty_multicall_is_an_empty_answer(self):
        status, _, raw = post_xml(self.port, multicall_body([]))
        self.assertEqual(status, 200)
        self.assertEqual(xmlrpc.client.loads(raw)[0], ([],))
