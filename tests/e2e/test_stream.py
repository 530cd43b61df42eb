"""A new service that arrives late reads the whole history from a stream.

A RabbitMQ stream (a queue declared with x-queue-type "stream") is an
append-only log: reading it removes nothing, so a service started long
after interception began can read every event from the first offset, and
so can any number of other services. But a stream holds only what was
published after it was declared. The stream IS the history, so it has to
be declared and bound on the day interception starts (by ops; here with
amqp-tool, in setUp, before the proxy takes its first call), never by the
late service when it finally arrives.

Every test: the legacy shop behind the proxy with stock.adjust intercepted,
events to an exchange of its own, a stream of its own bound to it; then a
history of stock.adjust calls; only then the stock service, with --stream.
"""

import json
import os
import shutil
import subprocess
import time
import xmlrpc.client

from harness import (STATE_DIR, STOCK_SERVICE, E2ETestCase, Process, amqp_tool, broker_url,
                     eventually, stock_model, wait_for_stock_model, xmlrpc_client)
import rabbitmq

# The routing keys the stock service binds by default; ops binds the same.
KEYS = ["stock.#", "orders.#", "legacy.stock.#", "legacy.orders.#"]

# The retention ops chose for the stream. Every declaration of a stream must
# carry the arguments it was created with, the late service's included.
MAX_AGE = "30D"
MAX_BYTES = "1000000000"

# The history: calls made before any new service exists. The last call
# leaves NAIL-100 at a quantity no earlier event gave it, so a model that
# equals the legacy has applied every event.
HISTORY = [("HAM-001", 3), ("SAW-010", -1), ("HAM-001", -2), ("TAPE-025", 5),
           ("NAIL-100", -10), ("SAW-010", 4), ("HAM-001", 1), ("NAIL-100", -40)]
TOUCHED = sorted({sku for sku, _ in HISTORY})
LATER = ("SCR-200", 2)  # a sku no event of the history touched


def close_all_broker_connections():
    """Has the broker drop every client connection, as a broker restart or a
    network cut would (the proxy and the services reconnect by themselves)."""
    broker = rabbitmq.Broker(os.path.join(STATE_DIR, "rabbitmq"))
    ctl = next((p for p in rabbitmq.CTL_CANDIDATES if os.access(p, os.X_OK)),
               None) or shutil.which("rabbitmqctl")
    subprocess.run([ctl, "-n", broker.node, "close_all_connections", "test_stream"],
                   env=broker.env(), check=True, capture_output=True, timeout=60)


class LateServiceStreamTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.exchange = self.unique("stream-events")
        self.stream = self.unique("stock-history")
        # Day one, before the first intercepted call: ops declares the
        # stream with its retention and binds it. Deleted at the end, as a
        # stream keeps its data on the broker's disk.
        args = [broker_url(), "declare", self.stream, "--exchange", self.exchange, "--stream",
                "--max-age", MAX_AGE, "--max-bytes", MAX_BYTES]
        for key in KEYS:
            args += ["--bind", key]
        amqp_tool(*args)
        self.addCleanup(amqp_tool, broker_url(), "delete", self.stream)
        _, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
events {broker_url()} exchange={self.exchange}
route stock-write xmlrpc stock.adjust -> legacy intercept
route rest        *                   -> legacy
""")
        self.client = xmlrpc_client(port)

    def read_stream(self, offset, stream=None, timeout_ms=1000):
        """Reads the stream from offset with amqp-tool until it is quiet for
        timeout_ms: a list of messages, each with its stream_offset."""
        out = amqp_tool(broker_url(), "consume", stream or self.stream, "--offset", offset,
                        "--timeout-ms", str(timeout_ms), timeout=120)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def make_history(self):
        """Makes the HISTORY calls, checks that a fault is no event, and waits
        until the stream holds all of it: only then is a service late.
        Returns the answers."""
        answers = [self.client.stock.adjust(sku, delta) for sku, delta in HISTORY]
        with self.assertRaises(xmlrpc.client.Fault):
            self.client.stock.adjust("TAPE-025", -100000)  # 409: not intercepted
        eventually(lambda: len(self.read_stream("first")) >= len(HISTORY), timeout=30,
                   message="the history is in the stream")
        return answers

    def start_late_service(self, name, offset="first", stream=None, max_age=MAX_AGE,
                           max_bytes=MAX_BYTES, subscribed=True):
        """Starts a stock service reading the stream from offset; returns
        (process, HTTP port) once it is subscribed (when `subscribed`)."""
        argv = [STOCK_SERVICE, "--listen", "127.0.0.1:0", "--amqp", broker_url(),
                "--exchange", self.exchange, "--stream", stream or self.stream,
                "--stream-offset", offset, "--log-level", "debug"]
        if max_age:
            argv += ["--stream-max-age", max_age]
        if max_bytes:
            argv += ["--stream-max-bytes", max_bytes]
        p = self._track(Process(name, argv, self.tmp,
                                ready=r"stock-service listening on [\d.]+:(\d+)"))
        port = int(p.wait_ready().group(1))
        if subscribed:
            eventually(lambda: stock_model(port)["feed_connected"],
                       message=f"{name} subscribed to the stream")
        return p, port

    def assert_model(self, port, skus, applied, name):
        """The service's model is exactly the legacy's stock of `skus`, built
        from `applied` events, none of them seen twice."""
        wait_for_stock_model(port, self.legacy, skus)
        eventually(lambda: stock_model(port)["events_applied"] >= applied,
                   message=f"{name} applied {applied} events")
        model = stock_model(port)
        self.assertEqual(sorted(model["skus"]), sorted(skus), name)
        self.assertEqual(model["events_applied"], applied, name)
        self.assertEqual(model["duplicates_ignored"], 0, name)
        self.assertEqual(model["events_ignored"], 0, name)

    def test_late_services_read_the_whole_history_from_first(self):
        answers = self.make_history()

        # The stream holds one event per answered call, in call order, from
        # position 0: nothing published before it existed, nothing lost.
        history = self.read_stream("first")
        self.assertEqual([m["stream_offset"] for m in history], list(range(len(HISTORY))))
        self.assertEqual({m["routing_key"] for m in history}, {"legacy.stock.adjust"})
        self.assertEqual([m["body"]["data"]["result"] for m in history], answers)

        # The late service: its model is the legacy's stock of every sku
        # the history touched, though it did not exist when they changed.
        first, first_port = self.start_late_service("late-1")
        self.assert_model(first_port, TOUCHED, len(HISTORY), "late-1")
        self.assertIn(f"reading stream {self.stream} from first", first.output())

        # Reading removed nothing: a second late service gets it all too.
        second, second_port = self.start_late_service("late-2")
        self.assert_model(second_port, TOUCHED, len(HISTORY), "late-2")
        self.assertEqual(len(self.read_stream("first")), len(HISTORY))

        # Having caught up, both follow the live events.
        self.client.stock.adjust(*LATER)
        for name, port in (("late-1", first_port), ("late-2", second_port)):
            self.assert_model(port, TOUCHED + [LATER[0]], len(HISTORY) + 1, name)

    def test_offset_next_sees_only_new_events(self):
        self.make_history()
        _, port = self.start_late_service("late-next", offset="next")
        self.client.stock.adjust(*LATER)
        # The stream is read in order: had any of the history been read, it
        # would be in the model by the time the new event is.
        self.assert_model(port, [LATER[0]], 1, "late-next")

    def test_offset_last_starts_at_the_last_chunk(self):
        self.make_history()
        # Published once the history was stored, so in a chunk of its own:
        # the last chunk, and with `last` the one thing the service reads.
        self.client.stock.adjust(*LATER)
        eventually(lambda: len(self.read_stream("first")) == len(HISTORY) + 1,
                   message="the later event is in the stream")
        _, port = self.start_late_service("late-last", offset="last")
        self.assert_model(port, [LATER[0]], 1, "late-last")

    def test_offset_by_position(self):
        self.make_history()
        # Positions count from 0: from the fourth event on.
        _, port = self.start_late_service("late-at-3", offset="3")
        rest = HISTORY[3:]
        self.assert_model(port, sorted({sku for sku, _ in rest}), len(rest), "late-at-3")

    def test_offset_by_time(self):
        early, late = HISTORY[:4], HISTORY[4:]
        for sku, delta in early:
            self.client.stock.adjust(sku, delta)
        eventually(lambda: len(self.read_stream("first")) == len(early), timeout=30,
                   message="the early events are in the stream")
        # A second that starts after the early events were written (the
        # broker stamps each chunk as it writes it) and ends before the
        # late ones are.
        since = int(time.time()) + 1
        while time.time() < since + 0.2:
            time.sleep(0.05)
        for sku, delta in late:
            self.client.stock.adjust(sku, delta)
        eventually(lambda: len(self.read_stream("first")) == len(HISTORY), timeout=30,
                   message="the late events are in the stream")
        _, port = self.start_late_service(
            "late-since", offset=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)))
        self.assert_model(port, sorted({sku for sku, _ in late}), len(late), "late-since")

    def test_a_reconnect_resumes_after_the_last_event_applied(self):
        self.make_history()
        svc, port = self.start_late_service("late-reconnect")
        self.assert_model(port, TOUCHED, len(HISTORY), "before the reconnect")

        close_all_broker_connections()
        # It resumes at the next position rather than at "first": replaying
        # the history over a model that holds it would roll quantities back
        # until it caught up again.
        svc.wait_for_output(rf"reading stream {self.stream} from offset {len(HISTORY)}\b",
                            timeout=30)
        eventually(lambda: stock_model(port)["feed_connected"], message="resubscribed")
        self.client.stock.adjust(*LATER)
        self.assert_model(port, TOUCHED + [LATER[0]], len(HISTORY) + 1, "after the reconnect")

    def test_a_declaration_with_other_retention_is_refused(self):
        self.make_history()
        svc, port = self.start_late_service("late-7d", max_age="7D", subscribed=False)
        # The broker keeps the stream's own arguments and refuses the
        # declaration; the service says so and how to fix it, keeps trying,
        # and its HTTP side is unaffected.
        svc.wait_for_output(r"406 PRECONDITION_FAILED - inequivalent arg 'x-max-age'.*"
                            rf"received '7D' but current is '{MAX_AGE}'.*"
                            r"declare the stream with the arguments it already has")
        model = stock_model(port)
        self.assertFalse(model["feed_connected"])
        self.assertEqual(model["skus"], {})

    def test_a_stream_the_late_service_creates_has_no_history(self):
        self.make_history()
        mine = self.unique("created-late")
        self.addCleanup(amqp_tool, broker_url(), "delete", mine)
        svc, port = self.start_late_service("late-creator", stream=mine, max_age=None,
                                            max_bytes=None)
        self.assertIn(f"stream {mine} did not exist", svc.output())
        # Only what was published once it existed: the history is not in it.
        self.client.stock.adjust(*LATER)
        self.assert_model(port, [LATER[0]], 1, "late-creator")
        self.assertEqual(len(self.read_stream("first", stream=mine)), 1)
