"""Event shaping per route (type, key, on=all, redact), the spool as a
history (`strangler events tail`, `strangler events replay`), events no
queue takes (returned, counted, replayable), and the spool's cap with both
of its policies, all against the real binary, a JSON service and RabbitMQ."""

import json
import os
import subprocess
import xmlrpc.client

from harness import (STRANGLER, E2ETestCase, admin, admin_port, broker_url, consume, declare_queue,
                     eventually, free_port, post_xml)
from harness import xmlrpc_client as client

SECRET_CARD = "4111-1111-1111-1111"


def metrics(port):
    """GET /metrics as {name: value} for the lines without labels."""
    status, text = admin(port, "GET", "/metrics")
    assert status == 200, text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def run_cli(*args, timeout=30):
    return subprocess.run([STRANGLER, *args], capture_output=True, text=True, timeout=timeout)


def tail(config, *args):
    out = run_cli("-c", config, "events", "tail", *args)
    if out.returncode != 0:
        raise AssertionError(f"events tail failed ({out.returncode}): {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines()]


class EventLogCase(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.svc = self.start_json_service()
        self.exchange = self.unique("evlog")

    def conf(self, events_url, routes, spool=""):
        return (f"listen 127.0.0.1:0\nadmin 127.0.0.1:0\nworkers 2\n"
                f"upstream svc http://127.0.0.1:{self.svc.port}/rpc kind=json\n"
                f"events {events_url} exchange={self.exchange}\n"
                f"spool var/spool {spool}\n{routes}")

    @staticmethod
    def unreachable_broker():
        return f"amqp://guest:guest@127.0.0.1:{free_port()}/%2f"


class ShapingTest(EventLogCase):
    ROUTES = ("route login xmlrpc test.echo -> svc intercept=user.login key=users.login "
              "redact=password,card.number\n"
              "route loud xmlrpc test.fault -> svc intercept=loud on=all redact=secret\n"
              "route quiet xmlrpc test.* -> svc intercept=quiet\n")

    def test_type_key_redaction_and_request_id(self):
        queue = self.unique("shaped")
        declare_queue(queue, ["#"], exchange=self.exchange)
        proxy, port, _ = self.start_proxy(self.conf(broker_url(), self.ROUTES))
        param = {"user": "ann", "password": "s3cret",
                 "card": {"number": SECRET_CARD, "exp": "12/29"},
                 "history": [{"card": {"number": "5555-4444"}}, {"number": 7}]}
        body = xmlrpc.client.dumps((param,), "test.echo").encode()
        status, _, answer = post_xml(port, body, headers={"X-Request-Id": "req-shaping-1"})
        self.assertEqual(status, 200)
        # The client's answer is untouched: redaction is for events only.
        self.assertEqual(xmlrpc.client.loads(answer)[0], ([param],))
        events = consume(queue, count=2, timeout_ms=3000)
        self.assertEqual(len(events), 1, [e["routing_key"] for e in events])
        msg = events[0]
        self.assertEqual(msg["routing_key"], "users.login")
        ev = msg["body"]
        self.assertEqual(ev["type"], "user.login")
        self.assertEqual(msg["properties"]["type"], "user.login")
        self.assertEqual(ev["data"]["request_id"], "req-shaping-1")
        for where in (ev["data"]["params"][0], ev["data"]["result"][0]):
            self.assertEqual(where["password"], "[redacted]")
            self.assertEqual(where["card"], {"number": "[redacted]", "exp": "12/29"})
            self.assertEqual(where["history"][0]["card"]["number"], "[redacted]")
            self.assertEqual(where["history"][1]["number"], 7)  # not under "card"
            self.assertEqual(where["user"], "ann")
        raw = json.dumps(ev)
        self.assertNotIn("s3cret", raw)
        self.assertNotIn(SECRET_CARD, raw)
        self.assertNotIn("5555-4444", raw)

    def test_on_all_records_faults_and_the_default_does_not(self):
        queue = self.unique("faults")
        declare_queue(queue, ["#"], exchange=self.exchange)
        proxy, port, _ = self.start_proxy(self.conf(broker_url(), self.ROUTES))
        c = client(port)
        with self.assertRaises(xmlrpc.client.Fault) as quiet:
            c.test.missing(1)  # the service has no such method: a -32601 fault
        self.assertEqual(quiet.exception.faultCode, -32601)
        with self.assertRaises(xmlrpc.client.Fault) as loud:
            c.test.fault(42, "out of stock")
        self.assertEqual(loud.exception.faultCode, 42)
        self.assertEqual(c.test.echo("fine"), ["fine"])
        events = consume(queue, count=4, timeout_ms=3000)
        self.assertEqual([m["routing_key"] for m in events], ["loud", "users.login"])
        data = events[0]["body"]["data"]
        self.assertIsNone(data["result"])
        self.assertEqual(data["fault"], {"faultCode": 42, "faultString": "out of stock"})
        self.assertEqual(data["params"], [42, "out of stock"])

    def test_check_refuses_shaping_without_intercept(self):
        path = self.write_config(
            "listen 127.0.0.1:0\nupstream svc http://127.0.0.1:9/rpc kind=json\n"
            "route a xmlrpc a.* -> svc key=users.login\n"
            "route b xmlrpc b.* -> svc intercept redact=card..number\n"
            "route c xmlrpc c.* -> svc intercept on=sometimes\n"
            "route d xmlrpc d.* -> svc intercept key=bad/key\n")
        out = run_cli("-c", path, "--check")
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"{path}:3: route a: key= and on= shape intercepted events: add intercept",
                      out.stderr)
        self.assertIn(f"{path}:4: route b: redact=card..number:", out.stderr)
        self.assertIn(f"{path}:5: route c: on=sometimes: expected on=success", out.stderr)
        self.assertIn(f"{path}:6: route d: invalid routing key 'bad/key'", out.stderr)


class HistoryTest(EventLogCase):
    def test_tail_prints_the_spool_and_replay_feeds_a_late_queue(self):
        routes = ("route stock xmlrpc test.echo -> svc intercept=legacy.stock.adjust\n"
                  "route orders xmlrpc test.* -> svc intercept=orders.changed\n")
        proxy, port, config = self.start_proxy(self.conf(broker_url(), routes))
        aport = admin_port(proxy)
        c = client(port)
        for i in range(6):
            self.assertEqual(c.test.echo(i), [i])
        # No queue is bound yet: the broker returns each event (mandatory),
        # the proxy counts them, and they stay in the spool.
        eventually(lambda: metrics(aport).get("strangler_events_returned_total", 0) >= 6,
                   message="6 events returned by the broker")
        m = metrics(aport)
        self.assertEqual(m["strangler_events_spooled_total"], 6)
        eventually(lambda: metrics(aport)["strangler_spool_unconfirmed_events"] == 0,
                   message="everything confirmed")

        lines = tail(config)
        self.assertEqual([l["seq"] for l in lines], [1, 2, 3, 4, 5, 6])
        self.assertTrue(all(l["confirmed"] for l in lines))
        self.assertEqual([l["event"]["data"]["params"] for l in lines], [[i] for i in range(6)])
        self.assertEqual({l["key"] for l in lines}, {"legacy.stock.adjust"})
        self.assertEqual(tail(config, "--type", "orders.*"), [])
        self.assertEqual(len(tail(config, "--type", "legacy.stock.*", "--since", "1h")), 6)
        self.assertEqual(tail(config, "--since", "2999-01-01T00:00:00Z"), [])

        # A service arrives late: binds its queue, then asks for the history.
        queue = self.unique("late")
        declare_queue(queue, ["legacy.stock.*"], exchange=self.exchange)
        out = run_cli("-c", config, "events", "replay", "--type", "legacy.stock.*",
                      "--since", "1h", "--admin", f"127.0.0.1:{aport}")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "replayed 6 events: the publisher sends them again\n")
        events = consume(queue, count=7, timeout_ms=3000)
        self.assertEqual([e["body"]["id"] for e in events], [l["event"]["id"] for l in lines])
        self.assertEqual([e["body"]["data"]["params"] for e in events], [[i] for i in range(6)])

        # A filter that matches nothing replays nothing; a bad --since is
        # refused with the reason.
        status, answer = admin(aport, "POST", "/events/replay", {"type": "nothing.*"})
        self.assertEqual((status, answer), (200, {"replayed": 0}))
        status, answer = admin(aport, "POST", "/events/replay", {"since": "yesterday"})
        self.assertEqual(status, 400)
        self.assertIn("'yesterday' is neither an RFC 3339 time", answer["error"])
        status, answer = admin(aport, "POST", "/events/replay", {"type": 5})
        self.assertEqual(status, 400)

    def test_tail_reads_a_spool_whose_broker_is_away(self):
        routes = "route echo xmlrpc test.echo -> svc intercept\n"
        proxy, port, config = self.start_proxy(self.conf(self.unreachable_broker(), routes))
        c = client(port)
        for i in range(3):
            c.test.echo("x" * i)
        lines = tail(config)
        self.assertEqual(len(lines), 3)
        self.assertFalse(any(l["confirmed"] for l in lines))
        self.assertEqual(lines[2]["event"]["data"]["result"], ["xx"])
        # --spool reads a spool without a config.
        spool = os.path.join(os.path.dirname(config), "var", "spool")
        out = run_cli("events", "tail", "--spool", spool)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(out.stdout.splitlines()), 3)
        out = run_cli("-c", config, "events", "tail", "--since", "soon")
        self.assertEqual(out.returncode, 2)
        self.assertIn("--since", out.stderr)


class FullSpoolTest(EventLogCase):
    ROUTES = "route echo xmlrpc test.echo -> svc intercept\n"
    BIG = "y" * (256 * 1024)  # an event of about half a megabyte (params and result)

    def fill(self, port, aport):
        """Calls until the spool says it is full; every one of them answered."""
        c = client(port)
        for calls in range(1, 9):
            self.assertEqual(c.test.echo(self.BIG), [self.BIG])
            if metrics(aport)["strangler_spool_full"] == 1:
                return calls
        self.fail("8 events of half a megabyte did not fill a spool of 1 MB")

    def test_skip_keeps_serving_and_counts_what_it_skipped(self):
        proxy, port, _ = self.start_proxy(
            self.conf(self.unreachable_broker(), self.ROUTES, "max=1MB segment=256KB"))
        aport = admin_port(proxy)
        self.fill(port, aport)
        self.assertEqual(client(port).test.echo(self.BIG), [self.BIG])  # skipped, not refused
        m = metrics(aport)
        self.assertEqual(m["strangler_spool_full"], 1)
        self.assertGreaterEqual(m["strangler_events_skipped_full_total"], 1)
        self.assertGreaterEqual(m["strangler_events_skipped_total"], 1)
        # Still serving, and saying so in the log.
        self.assertEqual(client(port).test.echo("small"), ["small"])
        proxy.search_output(r"spool .*full.*skipped")

    def test_refuse_keeps_intercepted_calls_out_until_the_broker_catches_up(self):
        proxy, port, config = self.start_proxy(
            self.conf(self.unreachable_broker(), self.ROUTES, "max=1MB segment=256KB full=refuse"))
        aport = admin_port(proxy)
        self.fill(port, aport)
        served = len(self.svc.requests)
        with self.assertRaises(xmlrpc.client.Fault) as refused:
            client(port).test.echo("one more")
        self.assertEqual(refused.exception.faultCode, -32400)
        self.assertIn("full=refuse", refused.exception.faultString)
        self.assertEqual(len(self.svc.requests), served, "the refused call reached the service")
        self.assertEqual(metrics(aport)["strangler_spool_full"], 1)
        # The broker comes back (the events line now names a real one): the
        # backlog drains and calls are taken again.
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace(text.split("events ")[1].split()[0], broker_url()))
        self.assertEqual(admin(aport, "POST", "/reload")[0], 200)
        eventually(lambda: metrics(aport)["strangler_spool_full"] == 0, timeout=30,
                   message="the spool drained below its cap")
        self.assertEqual(client(port).test.echo("after"), ["after"])
