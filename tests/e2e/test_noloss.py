"""No loss: under concurrent load, through a broker outage and a SIGKILL of
the proxy, every call an intercepting route answered without a fault ends up
as an event on RabbitMQ (at least once, de-duplicated by event id), no fault
becomes an event, and no event appears for a call nobody sent.

The broker here is a private node of this test (it is stopped and started
under load, which the shared fixture broker must not be), on a fixed port so
the proxy's events URL stays valid across its restart. The proxy listens on
a fixed port too, so that after the SIGKILL it comes back where the clients
reconnect, on the same spool.

Clients: THREADS threads, each one keep-alive HTTP/1.1 connection making
stock.adjust calls with a unique X-Request-Id each, a mix of calls that
succeed and calls that fault (unknown sku, insufficient stock). A call whose
connection broke after it was sent is "unknown": the legacy may or may not
have applied it, so its event may or may not exist. A refused connection is
not a call (nothing was sent); the client retries the connect.

Latency figures are printed for information, never asserted.
"""

import http.client
import json
import os
import random
import re
import threading
import time
import xmlrpc.client

from harness import STRANGLER, E2ETestCase, Process, amqp_tool, eventually, free_port
from rabbitmq import Broker

THREADS = 8
CALL_TIMEOUT_S = 60  # a call that takes this long is a failure, not a figure
SKUS = ("HAM-001", "NAIL-100", "SAW-010", "SCR-200", "TAPE-025")
READY_RE = r"strangler \S+ listening on 127\.0\.0\.1:(\d+)"
CONNECTED_RE = r"publisher \S+: connected; publishing"


class Call:
    __slots__ = ("rid", "sku", "delta", "conn_opened", "start", "end", "outcome", "result",
                 "detail")

    def __init__(self, rid, sku, delta, conn_opened):
        self.rid, self.sku, self.delta, self.conn_opened = rid, sku, delta, conn_opened
        self.start = self.end = None
        self.outcome = None  # "ok", "fault", "unknown" (connection broke), "bad" (not XML-RPC)
        self.result = None
        self.detail = None


class Load:
    """THREADS client threads calling stock.adjust on 127.0.0.1:port until
    stopped; every call they sent is in self.calls once it has ended."""

    def __init__(self, port, tag):
        self.port = port
        self.tag = tag
        self.calls = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.crashes = []  # exceptions that escaped a client thread (test bugs)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                         name=f"noloss-client-{i}") for i in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self, timeout=CALL_TIMEOUT_S + 10):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)
        return [t.name for t in self.threads if t.is_alive()]

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def _choose(self, rng):
        r = rng.random()
        if r < 0.15:
            return "NOSUCH-404", 1  # fault 404: unknown sku
        if r < 0.30:
            return rng.choice(SKUS), -10_000_000  # fault 409: insufficient stock
        return rng.choice(SKUS), rng.choice((1, 1, 2, -1))  # mostly ok (-1 may hit 0: 409)

    def _run(self, index):
        try:
            self._loop(index)
        except Exception as e:  # noqa: BLE001 - reported by the test
            with self.lock:
                self.crashes.append(f"thread {index}: {e!r}")

    def _loop(self, index):
        rng = random.Random(index)
        conn, opened, n = None, None, 0
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CALL_TIMEOUT_S)
                try:
                    conn.connect()
                except OSError:
                    # Refused (the proxy is down): nothing was sent.
                    conn.close()
                    conn = None
                    self.stopping.wait(0.02)
                    continue
                opened = time.monotonic()
            n += 1
            sku, delta = self._choose(rng)
            call = Call(f"{self.tag}-t{index}-{n}", sku, delta, opened)
            body = xmlrpc.client.dumps((sku, delta), "stock.adjust").encode()
            call.start = time.monotonic()
            try:
                conn.request("POST", "/RPC2", body=body,
                             headers={"Content-Type": "text/xml", "X-Request-Id": call.rid})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                call.end = time.monotonic()
                call.outcome, call.detail = "unknown", repr(e)
                conn.close()
                conn = None
            else:
                call.end = time.monotonic()
                if resp.status != 200:
                    call.outcome, call.detail = "bad", f"HTTP {resp.status}: {raw[:200]!r}"
                else:
                    try:
                        (result,), _ = xmlrpc.client.loads(raw, use_builtin_types=True)
                        call.outcome, call.result = "ok", result
                    except xmlrpc.client.Fault as f:
                        call.outcome, call.detail = "fault", f.faultCode
                    except Exception as e:  # noqa: BLE001
                        call.outcome, call.detail = "bad", f"{e!r}: {raw[:200]!r}"
                if resp.will_close:
                    conn.close()
                    conn = None
            with self.lock:
                self.calls.append(call)
        if conn is not None:
            conn.close()


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


class NoLossTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        # Our own broker: stopped and restarted under load, on a fixed port.
        self.broker = Broker(os.path.join(self.tmp, "broker"), port=free_port())
        self.addCleanup(self.broker.stop)
        self.broker.start()
        self.legacy = self.start_legacy()
        self.exchange = self.unique("noloss")
        self.queue = self.unique("noloss-tap")
        amqp_tool(self.broker.url, "declare", self.queue, "--exchange", self.exchange,
                  "--bind", "#")
        self.port = free_port()
        self.spool = os.path.join(self.tmp, "spool")

    def conf(self):
        return f"""
listen 127.0.0.1:{self.port}
workers 2
log_level info
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
events {self.broker.url} exchange={self.exchange} source=//strangler/noloss
spool {self.spool}
route stock-write xmlrpc stock.adjust -> legacy intercept
route rest        *                   -> legacy
"""

    def consume_all(self, quiet_ms):
        out = amqp_tool(self.broker.url, "consume", self.queue, "--timeout-ms", str(quiet_ms),
                        timeout=300)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def drain(self, ok_ids, timeout=180):
        """Consumes until every answered call's event has arrived and then the
        queue stayed quiet for a while (duplicates and the events of unknown
        calls come in spool order, before later ones)."""
        events = []
        deadline = time.monotonic() + timeout
        while True:
            batch = self.consume_all(quiet_ms=3000)
            events += batch
            seen = {e["body"]["data"]["request_id"] for e in events}
            if not (ok_ids - seen) and not batch:
                return events
            if time.monotonic() > deadline:
                return events

    def assertNone(self, items, what, logs):
        """Fails, briefly, when items is not empty."""
        if items:
            self.fail(f"{what}: {len(items)}, e.g. {list(items)[:10]}; {logs}")

    def wait_for_publisher(self, proxy, connects, timeout=60):
        """Waits for the publisher's `connects`-th connection (its log line).
        Only shapes the scenario (the kill should find a publisher at work):
        a publisher that never connects shows up as missing events."""
        try:
            eventually(lambda: len(re.findall(CONNECTED_RE, proxy.output())) >= connects,
                       timeout=timeout, interval=0.1, message=f"publisher connection #{connects}")
        except AssertionError as e:
            print(f"note: {e}")

    def test_nothing_answered_is_lost_through_a_broker_outage_and_a_proxy_kill(self):
        t0 = time.monotonic()
        proxy, port, path = self.start_proxy(self.conf(), name="noloss")
        self.assertEqual(port, self.port)
        self.wait_for_publisher(proxy, 1)

        load = Load(self.port, self.unique("rid"))
        self.addCleanup(load.stop)
        load.start()
        marks = {"load": time.monotonic()}

        def answered_ok_between(lo, hi):
            return sum(1 for c in load.snapshot()
                       if c.outcome == "ok" and c.start >= lo and c.end <= hi)

        def load_for(seconds, since, at_least, message):
            """Keeps the load going for `seconds` and until `at_least` calls
            started after `since` were answered without a fault."""
            until = time.monotonic() + seconds
            eventually(lambda: time.monotonic() >= until
                       and answered_ok_between(since, float("inf")) >= at_least,
                       timeout=seconds + 60, interval=0.05, message=message)

        # 1. Steady state.
        load_for(2, marks["load"], 50, "calls answered before the outage")

        # 2. The broker goes away; answers must keep coming.
        marks["broker_stop"] = time.monotonic()
        self.broker.stop()
        marks["broker_down"] = time.monotonic()
        load_for(2, marks["broker_down"], 50, "calls answered while the broker is down")
        marks["broker_starting"] = time.monotonic()
        self.broker.start()
        marks["broker_up"] = time.monotonic()

        # 3. The publisher reconnects (a second "connected" line) and works
        # through its backlog while the load goes on.
        self.wait_for_publisher(proxy, 2)
        marks["republishing"] = time.monotonic()
        load_for(1, marks["republishing"], 20, "calls answered after the outage")

        # 4. SIGKILL mid-load; back on the same port, config and spool.
        marks["kill"] = time.monotonic()
        proxy.kill()
        marks["killed"] = time.monotonic()
        restarted = self._track(Process("noloss-restarted", [STRANGLER, "-c", path], self.tmp,
                                        ready=READY_RE))
        self.addCleanup(load.stop)  # cleanups run last-first: the load stops before the proxy
        self.assertEqual(int(restarted.wait_ready().group(1)), self.port)
        marks["restarted"] = time.monotonic()
        load_for(2, marks["restarted"], 50, "calls answered by the restarted proxy")

        # 5. Stop the load, let the spool empty, read everything.
        stuck = load.stop()
        marks["load_end"] = time.monotonic()
        self.assertEqual(stuck, [], "client threads still in a call")
        self.assertEqual(load.crashes, [])
        calls = load.snapshot()
        ok = {c.rid: c for c in calls if c.outcome == "ok"}
        faults = {c.rid: c for c in calls if c.outcome == "fault"}
        unknown = {c.rid: c for c in calls if c.outcome == "unknown"}
        bad = [c for c in calls if c.outcome == "bad"]
        sent = {c.rid for c in calls}

        messages = self.drain(set(ok))
        marks["drained"] = time.monotonic()

        by_rid = {}  # request id -> set of event ids
        bodies = {}  # event id -> body (all copies must agree)
        differing = []
        for m in messages:
            ev = m["body"]
            rid, eid = ev["data"]["request_id"], ev["id"]
            by_rid.setdefault(rid, set()).add(eid)
            if eid in bodies and bodies[eid] != ev:
                differing.append(eid)
            bodies.setdefault(eid, ev)
            self.assertEqual(m["properties"]["message_id"], eid)
        event_ids = set(bodies)
        missing = sorted(set(ok) - set(by_rid))
        for_faults = sorted(set(faults) & set(by_rid))
        strangers = sorted(set(by_rid) - set(ok) - set(unknown))
        unknown_with_event = sum(1 for rid in unknown if rid in by_rid)

        # The figures, for the log.
        def phase(c):
            if c.start < marks["broker_stop"]:
                return "before"
            if c.start < marks["broker_up"]:
                return "outage"
            if c.start < marks["kill"]:
                return "after"
            return "restart"

        print(f"\ncalls: {len(sent)} sent: {len(ok)} answered ok, {len(faults)} faults, "
              f"{len(unknown)} unknown ({unknown_with_event} of them with an event), "
              f"{len(bad)} bad")
        print(f"events: {len(messages)} messages, {len(event_ids)} distinct ids, "
              f"{len(messages) - len(event_ids)} duplicates; "
              f"{len(missing)} missing, {len(for_faults)} for faults, {len(strangers)} strangers")
        kinds = {}
        for c in unknown.values():
            kind = c.detail.split("(")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"unknown calls by error: {kinds}")
        for name in ("before", "outage", "after", "restart"):
            lat = [(c.end - c.start) * 1000 for c in calls
                   if phase(c) == name and c.outcome in ("ok", "fault")]
            print(f"latency {name:8s} n={len(lat):5d}  p50={percentile(lat, 0.5):7.1f} ms  "
                  f"p99={percentile(lat, 0.99):7.1f} ms  max={max(lat, default=float('nan')):7.1f} ms")
        print("timeline (s): " + ", ".join(f"{k} {v - t0:.1f}" for k, v in marks.items()))
        for line in restarted.output().splitlines():
            if "publishing" in line:
                print(f"restarted proxy: {line}")

        logs = f"logs: {proxy.log_path}, {restarted.log_path}, {self.broker.dir}/log"
        # Nothing the client was told succeeded is missing.
        by_phase = {}
        for rid in missing:
            by_phase[phase(ok[rid])] = by_phase.get(phase(ok[rid]), 0) + 1
        self.assertNone(missing, f"answered calls without an event (by phase: {by_phase})", logs)
        # A fault is never an event.
        self.assertNone(for_faults, "events for calls answered with a fault", logs)
        # Every event is a call that was sent (answered ok, or cut off by the kill).
        self.assertNone(strangers, "events for calls nobody sent", logs)
        # One event id per call: republishing repeats the id, never makes a new one.
        self.assertEqual(len(event_ids), len(by_rid), "distinct event ids vs. request ids")
        self.assertNone(sorted((rid, sorted(ids)) for rid, ids in by_rid.items() if len(ids) != 1),
                        "calls with more than one event id", logs)
        self.assertNone(sorted(set(differing)), "copies of one event id that differ", logs)
        # Each event says what the client saw.
        for rid, c in ok.items():
            data = bodies[next(iter(by_rid[rid]))]["data"]
            self.assertEqual((data["method"], data["params"], data["result"]),
                             ("stock.adjust", [c.sku, c.delta], c.result), rid)

        # The proxy always answered in XML-RPC; only the kill broke calls, and
        # only on connections to the killed proxy.
        self.assertNone([(c.rid, c.detail) for c in bad], "answers that were not XML-RPC", logs)
        after_kill = [(c.rid, c.detail) for c in unknown.values()
                      if c.conn_opened >= marks["killed"]]
        self.assertNone(after_kill, "calls to the restarted proxy that broke", logs)
        # The broker outage never reached the request path: every call made
        # while it was stopping, stopped or starting was answered.
        during = [c for c in calls if marks["broker_stop"] <= c.start < marks["broker_up"]]
        self.assertNone([(c.rid, c.outcome, c.detail) for c in during
                         if c.outcome not in ("ok", "fault")],
                        "calls not answered during the broker outage", logs)
        self.assertGreater(answered_ok_between(marks["broker_down"], marks["broker_starting"]), 0)
        self.assertGreater(len(faults), 0)
        self.assertGreater(len(ok), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
