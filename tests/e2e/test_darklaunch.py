"""Dark launching (issue 6): shadow, canary and fallback routes and the
rollback guard, against the real proxy, the legacy shop and new services
whose answers each test scripts.

What is asserted is behaviour, never timing thresholds: a slow shadow is
shown not to delay clients by every client answer arriving while the
candidate still holds every copy, not by a stopwatch."""

import http.client
import http.server
import json
import signal
import socket
import socketserver
import threading
import time
import xmlrpc.client

from harness import (E2ETestCase, admin, admin_port, broker_url, consume, declare_queue, eventually,
                     free_port, post_xml)
from harness import xmlrpc_client as client

SKUS = ["HAM-001", "NAIL-100", "SAW-010", "SCR-200"]


class ScriptedService:
    """A new service speaking the JSON contract, whose answers the test
    scripts: answer(method, params, headers) -> (status, payload), payload
    a JSON value or raw bytes. Every request is recorded with its headers
    (lower-case names), when it arrived and when it was answered
    (time.monotonic()). hold() makes every request wait for release() (at
    most hold_max seconds) before it is answered."""

    def __init__(self, answer, base="/rpc", hold_max=60):
        self.answer = answer
        self.requests = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.hold_max = hold_max
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                method = self.path[len(base) + 1:] if self.path.startswith(base + "/") else ""
                record = {"path": self.path, "method": method,
                          "params": json.loads(raw) if raw else None,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "arrived": arrived, "answered": None}
                with service.lock:
                    service.requests.append(record)
                service.gate.wait(service.hold_max)
                status, payload = service.answer(method, record["params"], record["headers"])
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                with service.lock:
                    record["answered"] = time.monotonic()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the proxy gave up on it (timeouts, a drained worker)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self):
        self.gate.clear()

    def release(self):
        self.gate.set()

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.requests]

    def stop(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


class Caller:
    """XML-RPC calls over one keep-alive connection: as fast as Python
    goes, for tests that make thousands of calls."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def raw(self, method, params, headers=None):
        body = xmlrpc.client.dumps(tuple(params), methodname=method, allow_none=True).encode()
        self.conn.request("POST", "/RPC2", body=body,
                          headers={"Content-Type": "text/xml", **(headers or {})})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def call(self, method, *params, headers=None):
        """("result", value) or ("fault", code, message)."""
        status, body = self.raw(method, params, headers)
        assert status == 200, (status, body)
        try:
            return ("result", xmlrpc.client.loads(body, use_builtin_types=True)[0][0])
        except xmlrpc.client.Fault as f:
            return ("fault", f.faultCode, f.faultString)

    def close(self):
        self.conn.close()


def sticky_bucket(key):
    """The proxy's sticky hash, written down independently (README): FNV-1a
    64 over the key's bytes, then MurmurHash3's fmix64; the bucket is the
    hash modulo 10000."""
    m = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & m
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & m
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & m
    h ^= h >> 33
    return h % 10000


class DarkLaunchCase(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.records = {sku: client(self.legacy).stock.get(sku) for sku in SKUS}

    def start_service(self, answer, **kw):
        s = ScriptedService(answer, **kw)
        self.addCleanup(s.stop)
        return s

    def route(self, proxy, name):
        status, routes = admin(admin_port(proxy), "GET", "/routes")
        self.assertEqual(status, 200, routes)
        return next(r for r in routes if r["name"] == name)

    def figures(self, proxy, name):
        return self.route(proxy, name)["dark_launch"]

    def settled(self, proxy, name, done):
        """Waits until the route's shadow copies have all ended (matches,
        mismatches and errors add up to `done`); returns the figures."""
        def check():
            f = self.figures(proxy, name)
            ended = f["shadow_matches"] + f["shadow_mismatches"] + f["shadow_errors"]
            return f if ended >= done else None
        return eventually(check, timeout=30, message=f"{done} shadow copies of {name} ended")

    def stock_service(self, change=lambda rec: rec):
        """A new service for stock.get that answers the legacy's records,
        through `change`."""
        def answer(method, params, headers):
            if method != "stock.get" or not params or params[0] not in self.records:
                return 404, {"faultCode": -32601, "faultString": f"no method {method}"}
            return 200, change(dict(self.records[params[0]]))
        return answer


class ShadowTest(DarkLaunchCase):
    def test_mismatches_become_events_naming_the_path_and_clients_get_the_legacys_bytes(self):
        def wrong(rec):
            if rec["sku"] == "HAM-001":
                rec["qty"] += 1
            elif rec["sku"] == "NAIL-100":
                rec["extra"] = True
            return rec
        svc = self.start_service(self.stock_service(wrong))
        exchange, queue = self.unique("shadow"), self.unique("mismatches")
        declare_queue(queue, ["strangler.shadow.mismatch"], exchange=exchange)
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 2
events {broker_url()} exchange={exchange} source=//strangler/shadow
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json timeout=10s
route stock-read xmlrpc stock.get -> shadow legacy svc readonly   intercept redact=name
route rest       *                -> legacy
""")
        rounds = 3
        for n in range(rounds):
            for sku in SKUS:
                body = xmlrpc.client.dumps((sku,), methodname="stock.get")
                status, _, via_proxy = post_xml(port, body, headers={"X-Request-Id": f"r{n}-{sku}"})
                _, _, direct = post_xml(self.legacy, body)
                self.assertEqual(status, 200)
                self.assertEqual(via_proxy, direct, sku)
        total = rounds * len(SKUS)
        f = self.settled(proxy, "stock-read", total)
        self.assertEqual((f["shadow_sent"], f["shadow_matches"], f["shadow_mismatches"],
                          f["shadow_errors"], f["shadow_dropped"]),
                         (total, 2 * rounds, 2 * rounds, 0, 0), f)
        self.assertGreater(f["shadow_latency_ms_avg"], 0)
        route = self.route(proxy, "stock-read")
        self.assertEqual((route["mode"], route["new_side"], route["legacy_side"]),
                         ("shadow", "svc", "legacy"))

        # Every copy said it was one, under the client's request id.
        seen = svc.snapshot()
        self.assertEqual(len(seen), total)
        for r in seen:
            self.assertEqual(r["path"], "/rpc/stock.get")
            self.assertEqual(r["headers"].get("x-strangler-shadow"), "1")
            self.assertRegex(r["headers"]["x-request-id"], rf"^r\d-{r['params'][0]}$")
        self.assertEqual(sorted(r["headers"]["x-request-id"] for r in seen),
                         sorted(f"r{n}-{sku}" for n in range(rounds) for sku in SKUS))

        events = consume(queue, count=2 * rounds + 1, timeout_ms=5000)
        self.assertEqual(len(events), 2 * rounds, [e["body"]["data"]["params"] for e in events])
        for msg in events:
            ev, data = msg["body"], msg["body"]["data"]
            self.assertEqual(msg["routing_key"], "strangler.shadow.mismatch")
            self.assertEqual(ev["type"], "strangler.shadow.mismatch")
            self.assertEqual(ev["source"], "//strangler/shadow")
            self.assertEqual(ev["subject"], "stock.get")
            sku = data["params"][0]
            self.assertIn(sku, ("HAM-001", "NAIL-100"))
            self.assertEqual((data["route"], data["method"]), ("stock-read", "stock.get"))
            self.assertRegex(data["request_id"], rf"^r\d-{sku}$")
            legacy_rec = dict(self.records[sku], name="[redacted]")  # redact=name
            self.assertEqual(data["primary"], {"upstream": "legacy", "result": legacy_rec})
            self.assertEqual(data["candidate"]["upstream"], "svc")
            self.assertEqual(data["differences"], 1)
            if sku == "HAM-001":
                self.assertEqual(data["paths"], ["result.qty: value differs"])
                self.assertEqual(data["candidate"]["result"],
                                 dict(legacy_rec, qty=legacy_rec["qty"] + 1))
            else:
                self.assertEqual(data["paths"], ["result.extra: only in candidate"])
                self.assertEqual(data["candidate"]["result"], dict(legacy_rec, extra=True))

    def test_an_xmlrpc_candidate_gets_the_clients_request_as_it_came(self):
        other = self.start_legacy()  # a second shop, whose stock then drifts for one sku
        client(other).stock.adjust("SCR-200", 7)
        recorder = self.start_upstream()  # records requests; its JSON answers are no XML-RPC
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy   http://127.0.0.1:{self.legacy}/RPC2
upstream other    http://127.0.0.1:{other}/RPC2
upstream recorder http://127.0.0.1:{recorder.port}/RPC2
route stock-read xmlrpc stock.get  -> shadow legacy other readonly
route catalog    xmlrpc catalog.*  -> shadow legacy recorder readonly
route rest       *                 -> legacy
""")
        c = client(port)
        for sku in SKUS:
            self.assertEqual(c.stock.get(sku), self.records[sku])
        f = self.settled(proxy, "stock-read", len(SKUS))
        self.assertEqual((f["shadow_matches"], f["shadow_mismatches"], f["shadow_errors"]),
                         (len(SKUS) - 1, 1, 0), f)
        body = xmlrpc.client.dumps(("HAM-001",), methodname="catalog.get").encode()
        status, _, answer = post_xml(port, body, headers={"X-Request-Id": "cat-1",
                                                          "X-Strangler-Shadow": "0",
                                                          "X-Custom": "kept"})
        self.assertEqual(status, 200)
        self.assertEqual(xmlrpc.client.loads(answer)[0][0], client(self.legacy).catalog.get("HAM-001"))
        f = self.settled(proxy, "catalog", 1)
        self.assertEqual((f["shadow_sent"], f["shadow_errors"]), (1, 1), f)
        seen = recorder.last()
        headers = [(k.lower(), v) for k, v in seen["headers"]]
        self.assertEqual((seen["method"], seen["path"], seen["body"].encode()), ("POST", "/RPC2", body))
        self.assertIn(("x-strangler-shadow", "1"), headers)
        self.assertNotIn(("x-strangler-shadow", "0"), headers)
        self.assertIn(("x-request-id", "cat-1"), headers)
        self.assertIn(("x-custom", "kept"), headers)
        self.assertRegex(proxy.output(), r"request cat-1: route catalog: shadow recorder gave no "
                                         r"usable answer: the answer is not an XML-RPC response")

    def test_a_slow_candidate_adds_no_latency(self):
        svc = self.start_service(self.stock_service())
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json timeout=60s
route stock-read xmlrpc stock.get -> shadow legacy svc readonly
route rest       *                -> legacy
""")
        svc.hold()
        calls = 12
        caller = Caller(port)
        answered_at = []
        for i in range(calls):
            sku = SKUS[i % len(SKUS)]
            self.assertEqual(caller.call("stock.get", sku), ("result", self.records[sku]))
            answered_at.append(time.monotonic())
        caller.close()
        # Every copy reached the candidate, which still holds them all.
        held = eventually(lambda: (lambda s: s if len(s) == calls else None)(svc.snapshot()),
                          message="every copy reached the candidate")
        self.assertTrue(all(r["answered"] is None for r in held))
        self.assertEqual(self.figures(proxy, "stock-read")["shadow_sent"], calls)
        svc.release()
        f = self.settled(proxy, "stock-read", calls)
        self.assertEqual((f["shadow_matches"], f["shadow_errors"]), (calls, 0), f)
        # The candidate answered only after the last client had its answer.
        self.assertGreater(min(r["answered"] for r in svc.snapshot()), max(answered_at))

    def test_copies_beyond_max_shadows_are_dropped_and_counted(self):
        svc = self.start_service(self.stock_service())
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 1
max_shadows 3
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json timeout=60s
route stock-read xmlrpc stock.get -> shadow legacy svc readonly
route rest       *                -> legacy
""")
        svc.hold()
        caller = Caller(port)
        for i in range(8):
            self.assertEqual(caller.call("stock.get", "SAW-010"), ("result", self.records["SAW-010"]))
        f = self.figures(proxy, "stock-read")
        self.assertEqual((f["shadow_sent"], f["shadow_dropped"]), (3, 5), f)
        eventually(lambda: len(svc.snapshot()) == 3, message="three copies at the candidate")
        svc.release()
        f = self.settled(proxy, "stock-read", 3)
        self.assertEqual(f["shadow_matches"], 3, f)
        # Room again: the next copy goes.
        self.assertEqual(caller.call("stock.get", "SAW-010"), ("result", self.records["SAW-010"]))
        caller.close()
        self.assertEqual(self.settled(proxy, "stock-read", 4)["shadow_matches"], 4)
        self.assertEqual(len(svc.snapshot()), 4)

    def test_the_candidates_timeout_ends_a_copy_and_a_sample_is_a_share(self):
        def answer(method, params, headers):
            if params == ["slow"]:
                time.sleep(3)
            return 200, params
        svc = self.start_service(answer)
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json timeout=300ms
route echo   xmlrpc test.echo  -> shadow legacy svc readonly
route sample xmlrpc test.*     -> shadow legacy svc readonly sample=25%
route rest   *                 -> legacy
""")
        caller = Caller(port)
        self.assertEqual(caller.call("test.echo", "slow"), ("result", ["slow"]))
        f = self.settled(proxy, "echo", 1)
        self.assertEqual((f["shadow_sent"], f["shadow_errors"], f["shadow_matches"]), (1, 1, 0), f)
        self.assertIn("timed out", proxy.search_output(r"route echo: shadow svc gave no usable "
                                                        r"answer: .*").group(0))
        # sample=25%: a quarter of the calls, give or take.
        for i in range(400):
            self.assertEqual(caller.call("test.fault", 1, "x")[0], "fault")
        caller.close()
        sent = self.figures(proxy, "sample")["shadow_sent"]
        self.assertTrue(40 <= sent <= 160, sent)

    def test_draining_reloading_and_leaving_clients_are_safe_while_copies_run(self):
        svc = self.start_service(self.stock_service())
        slow = self.start_upstream()  # answers /slow?ms=N after N ms, with JSON: no methodResponse
        proxy, port, path = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 2
drain_timeout 30s
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream slow   http://127.0.0.1:{slow.port}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json timeout=60s
route stock-read xmlrpc stock.get  -> shadow legacy svc readonly
route slow-read  xmlrpc stock.list -> shadow slow svc readonly
route rest       *                 -> legacy
""")
        svc.hold()
        caller = Caller(port)
        for sku in SKUS:
            self.assertEqual(caller.call("stock.get", sku), ("result", self.records[sku]))
        # A client that leaves before its primary answers.
        body = xmlrpc.client.dumps((), methodname="stock.list").encode()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"POST /slow?ms=300 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        # A flip and a reload replace the snapshot the copies hold.
        aport = admin_port(proxy)
        status, r = admin(aport, "PUT", "/routes/stock-read", {"action": "legacy"})
        self.assertEqual(status, 200, r)
        self.assertEqual(admin(aport, "POST", "/reload")[0], 200)
        self.assertEqual(caller.call("stock.get", "HAM-001"), ("result", self.records["HAM-001"]))
        eventually(lambda: len(svc.snapshot()) == len(SKUS) + 3, message="every copy in flight")
        svc.release()
        f = self.settled(proxy, "stock-read", len(SKUS))
        self.assertEqual((f["shadow_sent"], f["shadow_matches"]), (len(SKUS), len(SKUS)), f)
        # The slow primary's answer is no methodResponse (or its client
        # left first): nothing to compare, an error each.
        f = self.settled(proxy, "slow-read", 3)
        self.assertEqual((f["shadow_sent"], f["shadow_errors"]), (3, 3), f)

        # Draining: copies held at the candidate do not hold the exit.
        status, r = admin(aport, "PUT", "/routes/stock-read",
                          {"action": "shadow legacy svc readonly"})
        self.assertEqual(status, 200, r)
        svc.hold()
        for sku in SKUS:
            self.assertEqual(caller.call("stock.get", sku), ("result", self.records[sku]))
        caller.close()
        eventually(lambda: len(svc.snapshot()) == 2 * len(SKUS) + 3, message="copies in flight")
        self.assertEqual(proxy.stop(signal.SIGTERM), 0)
        self.assertTrue(all(r["answered"] is None for r in svc.snapshot()[-len(SKUS):]),
                        "the proxy waited for the candidate")
        self.assertRegex(proxy.output(), r"dropping \d+ shadow cop(y|ies) still in flight")

    def test_calls_inside_a_multicall_go_to_the_primary_only(self):
        svc = self.start_service(self.stock_service())
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json
route stock-read xmlrpc stock.get  -> shadow legacy svc readonly
route canary     xmlrpc test.echo  -> canary 100% svc legacy
route direct     xmlrpc stock.list -> svc
route rest       *                 -> legacy
""")
        c = client(port)
        m = xmlrpc.client.MultiCall(c)
        m.stock.get("HAM-001")
        m.test.echo("a")
        m.stock.get("SAW-010")
        self.assertEqual(list(m()), [self.records["HAM-001"], ["a"], self.records["SAW-010"]])
        # Split across targets (the direct route to svc): still no copy,
        # and the canary's call went to its upstream.
        m = xmlrpc.client.MultiCall(c)
        m.stock.get("NAIL-100")
        m.stock.list()
        m.test.echo("b")
        out = m()
        self.assertEqual(out[0], self.records["NAIL-100"])
        self.assertEqual(out[2], ["b"])
        self.assertEqual(self.figures(proxy, "stock-read")["shadow_sent"], 0)
        self.assertEqual(self.figures(proxy, "canary")["canary_new"], 0)
        self.assertEqual([r["method"] for r in svc.snapshot()], ["stock.list"])
        # Outside a multicall the same call is shadowed.
        self.assertEqual(c.stock.get("HAM-001"), self.records["HAM-001"])
        self.assertEqual(self.settled(proxy, "stock-read", 1)["shadow_matches"], 1)


class CanaryTest(DarkLaunchCase):
    def new_side(self):
        """A new service whose every answer says it is the new side."""
        return self.start_service(lambda method, params, headers: (200, ["new", *params]))

    def conf(self, svc, action, legacy=None):
        return f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{legacy or self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.echo -> {action}
route rest *                -> legacy
"""

    def side(self, outcome):
        self.assertEqual(outcome[0], "result", outcome)
        return "new" if outcome[1][:1] == ["new"] else "rest"

    def test_the_share_holds_over_ten_thousand_calls(self):
        svc = self.new_side()
        proxy, port, _ = self.start_proxy(self.conf(svc, "canary 30% svc legacy"))
        threads, per_thread = 4, 2500
        counts = [None] * threads

        def run(k):
            caller = Caller(port)
            n = {"new": 0, "rest": 0}
            for i in range(per_thread):
                out = caller.call("test.echo", i)
                n[self.side(out)] += 1
                expected = ["new", i] if self.side(out) == "new" else [i]
                assert out[1] == expected, out
            caller.close()
            counts[k] = n

        workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        self.assertTrue(all(counts), counts)
        new = sum(c["new"] for c in counts)
        rest = sum(c["rest"] for c in counts)
        self.assertEqual(new + rest, threads * per_thread)
        print(f"\ncanary 30%: {new} of {new + rest} calls to the new side")
        self.assertTrue(2800 <= new <= 3200, new)
        f = self.figures(proxy, "echo")
        self.assertEqual((f["canary_new"], f["canary_rest"]), (new, rest))
        self.assertEqual(len(svc.snapshot()), new)
        route = self.route(proxy, "echo")
        self.assertEqual((route["mode"], route["share"], route["new_side"]), ("canary", 30, "svc"))

    def test_sticky_param_keeps_each_key_on_one_side_across_instances(self):
        svc = self.new_side()
        conf = self.conf(svc, "canary 50% svc legacy sticky=param:1")
        proxy, port, _ = self.start_proxy(conf)
        keys = [f"cust-{i}" for i in range(150)] + list(range(1000, 1050))
        sides = {}
        caller = Caller(port)
        for _ in range(3):  # every key several times, interleaved with the others
            for key in keys:
                side = self.side(caller.call("test.echo", key, "more"))
                self.assertEqual(sides.setdefault(str(key), side), side, key)
        caller.close()
        self.assertEqual(set(sides.values()), {"new", "rest"})
        # The side is the fixed hash's: what another proxy, or this one after
        # a restart, computes too. An int key is its decimal text.
        for key, side in sides.items():
            self.assertEqual(side, "new" if sticky_bucket(key) < 5000 else "rest", key)
        caller = Caller(port)
        self.assertEqual(self.side(caller.call("test.echo", "1000")), sides["1000"])
        # A call without the parameter goes to the rest, always.
        for _ in range(20):
            self.assertEqual(self.side(caller.call("test.echo")), "rest")
        caller.close()
        other, other_port, _ = self.start_proxy(conf, name="second")
        caller = Caller(other_port)
        for key in keys:
            self.assertEqual(self.side(caller.call("test.echo", key)), sides[str(key)], key)
        caller.close()

    def test_sticky_header_keeps_each_customer_on_one_side(self):
        svc = self.new_side()
        proxy, port, _ = self.start_proxy(
            self.conf(svc, "canary 25% svc legacy sticky=header:X-Customer"))
        customers = [f"acme-{i}" for i in range(200)]
        sides = {}
        caller = Caller(port)
        for n in range(3):
            for cust in customers:
                side = self.side(caller.call("test.echo", n, headers={"X-Customer": cust}))
                self.assertEqual(sides.setdefault(cust, side), side, cust)
        for _ in range(20):
            self.assertEqual(self.side(caller.call("test.echo", 1)), "rest")
        caller.close()
        for cust, side in sides.items():
            self.assertEqual(side, "new" if sticky_bucket(cust) < 2500 else "rest", cust)
        new = sum(1 for s in sides.values() if s == "new")
        self.assertTrue(20 <= new <= 80, new)


class FallbackTest(DarkLaunchCase):
    def test_a_readonly_fallback_answers_from_the_backup_when_the_primary_gives_no_answer(self):
        hang = self.start_service(lambda method, params, headers: (200, "too late"))
        hang.hold()
        proxy, port, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{free_port()}/rpc kind=json
upstream oldbox http://127.0.0.1:{free_port()}/RPC2
upstream hang   http://127.0.0.1:{hang.port}/rpc kind=json timeout=300ms
route stock-read  xmlrpc stock.get    -> fallback svc legacy readonly
route catalog     xmlrpc catalog.get  -> fallback oldbox legacy readonly
route slow-list   xmlrpc stock.list   -> fallback hang legacy readonly
route stock-write xmlrpc stock.adjust -> fallback svc legacy
route rest        *                   -> legacy
""")
        legacy, c = client(self.legacy), client(port)
        for sku in SKUS * 2:
            self.assertEqual(c.stock.get(sku), self.records[sku])
            self.assertEqual(c.catalog.get(sku), legacy.catalog.get(sku))
        self.assertEqual(c.stock.list(), legacy.stock.list())
        self.assertEqual(self.figures(proxy, "stock-read")["fallbacks"], 2 * len(SKUS))
        self.assertEqual(self.figures(proxy, "catalog")["fallbacks"], 2 * len(SKUS))
        self.assertEqual(self.figures(proxy, "slow-list")["fallbacks"], 1)
        self.assertEqual(self.route(proxy, "stock-read")["counters"]["errors"], 2 * len(SKUS))
        self.assertRegex(proxy.output(), r"request \S+: route stock-read: upstream svc: "
                                         r"connection refused.*; asking legacy instead")
        self.assertRegex(proxy.output(), r"route slow-list: upstream hang: timed out.*; asking "
                                         r"legacy instead")
        # Without readonly, no second try: the transport fault, and the
        # backup never ran the call.
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            c.stock.adjust("HAM-001", 5)
        self.assertEqual(caught.exception.faultCode, -32300)
        self.assertIn("route stock-write: upstream svc", caught.exception.faultString)
        self.assertEqual(legacy.stock.get("HAM-001"), self.records["HAM-001"])
        self.assertEqual(self.figures(proxy, "stock-write")["fallbacks"], 0)


class GuardTest(DarkLaunchCase):
    def test_a_failing_new_service_is_rolled_back_by_the_guard(self):
        svc = self.start_service(lambda method, params, headers: (500, b"<html>oops</html>"))
        exchange, queue = self.unique("guard"), self.unique("route-changes")
        declare_queue(queue, ["strangler.route.changed"], exchange=exchange)
        proxy, port, path = self.start_proxy(f"""listen 127.0.0.1:0
admin 127.0.0.1:0
workers 2
events {broker_url()} exchange={exchange}
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{svc.port}/rpc kind=json
route stock-read xmlrpc stock.get -> canary 50% svc legacy  rollback=errors>5%/1m
route rest       *                -> legacy
""")
        caller = Caller(port)
        faults = 0
        for i in range(400):
            out = caller.call("stock.get", SKUS[i % len(SKUS)])
            if out[0] == "fault":
                faults += 1
                self.assertEqual(out[1], -32500, out)  # the new side's unusable answer
            if i % 10 == 9 and self.route(proxy, "stock-read")["action"] == "legacy":
                break
        route = eventually(lambda: (lambda r: r if r["action"] == "legacy" else None)(
            self.route(proxy, "stock-read")), message="the guard rolled the route back")
        self.assertGreater(faults, 0)
        self.assertEqual(route["mode"], "direct")
        self.assertEqual(route["dark_launch"]["rollbacks"], 1)
        self.assertEqual(route["changed"]["by"], "rollback guard")
        with open(path) as f:
            self.assertRegex(f.read(), r"route stock-read xmlrpc stock\.get -> legacy\b")
        proxy.wait_for_output(r"flip by rollback guard: route stock-read")
        events = consume(queue, count=1, timeout_ms=10000)
        self.assertEqual(len(events), 1, events)
        data = events[0]["body"]["data"]
        self.assertEqual((data["route"], data["after"], data["by"]),
                         ("stock-read", "legacy", "rollback guard"))
        # From now on the legacy answers every call.
        before = len(svc.snapshot())
        for i in range(60):
            sku = SKUS[i % len(SKUS)]
            self.assertEqual(caller.call("stock.get", sku), ("result", self.records[sku]))
        caller.close()
        self.assertEqual(len(svc.snapshot()), before)
