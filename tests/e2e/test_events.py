"""Interception: every call an intercepting route answers without a fault
becomes exactly one CloudEvent on RabbitMQ, shaped as DESIGN.md says, and
it is in the spool before the client has its answer."""

import datetime
import xmlrpc.client

from harness import STRANGLER, E2ETestCase, Process, broker_url, consume, declare_queue, free_port
from harness import xmlrpc_client as client


class EventsTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        self.exchange = self.unique("events")
        self.queue = self.unique("tap")
        declare_queue(self.queue, ["#"], exchange=self.exchange)

    def proxy_conf(self, events_url):
        return f"""
listen 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{self.svc.port}/rpc kind=json
events {events_url} exchange={self.exchange} source=//strangler/test
route stock-write xmlrpc stock.adjust -> legacy intercept
route orders      xmlrpc orders.*     -> legacy intercept=orders.changed
route echo        xmlrpc test.echo    -> svc    intercept
route rest        *                   -> legacy
"""

    def test_each_answered_call_is_one_event_shaped_per_the_contract(self):
        proxy, port, _ = self.start_proxy(self.proxy_conf(broker_url()))
        c = client(port)
        answers = []
        answers.append(("stock.adjust", ["HAM-001", 3], c.stock.adjust("HAM-001", 3)))
        answers.append(("stock.adjust", ["SAW-010", -1], c.stock.adjust("SAW-010", -1)))
        order = c.orders.create("acme", [{"sku": "NAIL-100", "qty": 2}])
        answers.append(("orders.create", ["acme", [{"sku": "NAIL-100", "qty": 2}]], order))
        answers.append(("test.echo", [1.5, None, b"\x01"], c.test.echo(1.5, None, b"\x01")))
        # Not intercepted: a route without intercept, and answers that are faults.
        c.stock.get("HAM-001")
        with self.assertRaises(xmlrpc.client.Fault):
            c.stock.adjust("HAM-001", -100000)
        with self.assertRaises(xmlrpc.client.Fault):
            c.orders.get(999)

        events = consume(self.queue, count=len(answers) + 5, timeout_ms=3000)
        self.assertEqual(len(events), len(answers), [e["body"]["type"] for e in events])
        ids = set()
        for (method, params, result), msg in zip(answers, events):
            ev, props = msg["body"], msg["properties"]
            expected_type = "orders.changed" if method.startswith("orders.") else f"legacy.{method}"
            self.assertEqual(ev["specversion"], "1.0")
            self.assertEqual(ev["type"], expected_type)
            self.assertEqual(ev["subject"], method)
            self.assertEqual(ev["source"], "//strangler/test")
            self.assertEqual(ev["datacontenttype"], "application/json")
            when = datetime.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
            self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()), 60)
            self.assertEqual(msg["routing_key"], expected_type)
            self.assertEqual(props["content_type"], "application/cloudevents+json")
            self.assertEqual(props["delivery_mode"], 2)
            self.assertEqual(props["message_id"], ev["id"])
            self.assertEqual(props["type"], expected_type)
            self.assertEqual(props["app_id"], "strangler")
            self.assertGreater(props["timestamp"], 0)
            data = ev["data"]
            self.assertEqual(data["method"], method)
            self.assertEqual(data["status"], 200)
            self.assertTrue(data["request_id"])
            self.assertGreaterEqual(data["duration_ms"], 0)
            ids.add(ev["id"])
            if method == "test.echo":
                self.assertEqual(data["params"], [1.5, None, {"$base64": "AQ=="}])
                self.assertEqual(data["result"], [1.5, None, {"$base64": "AQ=="}])
                self.assertEqual((data["route"], data["upstream"]), ("echo", "svc"))
                continue
            self.assertEqual(data["params"], params)
            if method == "orders.create":
                self.assertEqual(data["result"]["id"], result["id"])
                self.assertEqual(data["result"]["created"],
                                 {"$datetime": result["created"].strftime("%Y%m%dT%H:%M:%S")})
            else:
                self.assertEqual(data["result"], result)
            self.assertEqual(data["upstream"], "legacy")
        self.assertEqual(len(ids), len(answers))

    def test_events_wait_in_the_spool_through_a_broker_outage_and_a_kill(self):
        # The broker is unreachable: answers still come, events stay spooled.
        dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2f"
        proxy, port, path = self.start_proxy(self.proxy_conf(dead), name="outage")
        c = client(port)
        results = [c.stock.adjust("SCR-200", 1) for _ in range(10)]
        self.assertEqual(results[-1]["qty"], results[0]["qty"] + 9)
        proxy.kill()  # SIGKILL: nothing gets a chance to flush
        # Same folder (so the same spool), now with the broker reachable.
        with open(path) as f:
            text = f.read().replace(dead, broker_url())
        with open(path, "w") as f:
            f.write(text)
        restarted = self._track(Process("outage-restarted", [STRANGLER, "-c", path], self.tmp,
                                        ready=r"listening on"))
        restarted.wait_ready()
        events = consume(self.queue, count=10, timeout_ms=10000)
        self.assertEqual(len(events), 10)
        qtys = [e["body"]["data"]["result"]["qty"] for e in events]
        self.assertEqual(qtys, [r["qty"] for r in results])  # spool order kept
        self.assertEqual(consume(self.queue, timeout_ms=1500), [])  # no duplicates
