"""Migration control: the admin API, live flips written back to routes.conf,
reloads, the audit trail, the command-line client, and the promise that no
client notices a flip: under steady keep-alive load, a flip every 100 ms and
a reload every second drop no request and mix no answers."""

import json
import os
import random
import re
import signal
import stat
import subprocess
import threading
import time
import xmlrpc.client

from harness import (STRANGLER, E2ETestCase, admin, admin_port, broker_url, consume,
                     declare_queue, eventually, outcome, post_xml, wait_for_stock_model)
from harness import xmlrpc_client as client

SKUS = ["HAM-001", "NAIL-100", "SAW-010", "SCR-200"]


class AdminApiTest(E2ETestCase):
    """The admin API of DESIGN.md on a proxy with named tokens."""

    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        self.tokens = self.write_config("ops s3cret-ops\nbot s3cret-bot\n", "tokens")
        self.conf = f"""# the strangler in front of the shop
listen 127.0.0.1:0
admin  127.0.0.1:0 token=file:{self.tokens}
upstream legacy  http://127.0.0.1:{self.legacy}/RPC2
upstream svc     http://127.0.0.1:{self.svc.port}/rpc   kind=json

# name        match                  -> action    options
route echo    xmlrpc test.echo       -> legacy    intercept   # flipped during the test
route tenant  * header X-Tenant=acme -> legacy
route rest    *                      -> legacy
"""
        self.proxy, self.port, self.path = self.start_proxy(self.conf)
        self.admin = admin_port(self.proxy)

    def flip(self, route, action, token="s3cret-ops"):
        return admin(self.admin, "PUT", f"/routes/{route}", {"action": action}, token=token)

    def test_healthz_is_open_and_everything_else_needs_a_valid_token(self):
        status, body = admin(self.admin, "GET", "/healthz")
        self.assertEqual((status, body), (200, "ok"))
        for token in (None, "wrong", "s3cret-op", "s3cret-ops2", "S3CRET-OPS"):
            for method, path in (("GET", "/routes"), ("PUT", "/routes/echo"), ("POST", "/reload")):
                status, body = admin(self.admin, method, path, {"action": "svc"}, token=token)
                self.assertEqual(status, 401, (method, path, token))
                self.assertIn("token", body["error"])
        status, routes = admin(self.admin, "GET", "/routes", token="s3cret-bot")
        self.assertEqual(status, 200)
        self.assertEqual([r["name"] for r in routes], ["echo", "tenant", "rest"])
        # Nothing was flipped by the refused requests.
        self.assertEqual(routes[0]["action"], "legacy")
        # The admin API is not reachable through the proxy port.
        status, _, _ = post_xml(self.port, "<x/>", path="/routes")
        self.assertNotEqual(status, 200)
        self.assertNotIn("s3cret", self.proxy.output())

    def test_routes_show_match_action_and_counters(self):
        c = client(self.port)
        c.test.echo("a")
        c.test.echo("b")
        c.stock.get("HAM-001")
        status, routes = admin(self.admin, "GET", "/routes", token="s3cret-ops")
        self.assertEqual(status, 200)
        echo, tenant, rest = routes
        self.assertEqual(echo["match"], "xmlrpc test.echo")
        self.assertEqual(echo["line"], 8)
        self.assertEqual(echo["kind"], "xmlrpc")
        self.assertTrue(echo["intercept"])
        self.assertEqual(echo["counters"]["requests"], 2)
        self.assertEqual(echo["changed"], None)
        self.assertEqual(tenant["conditions"], ["header X-Tenant=acme"])
        self.assertEqual(rest["counters"]["requests"], 1)
        status, text = admin(self.admin, "GET", "/metrics", token="s3cret-ops")
        self.assertEqual(status, 200)
        self.assertIn('strangler_route_requests_total{route="echo"} 2\n', text)
        self.assertIn('strangler_route_requests_total{route="rest"} 1\n', text)
        self.assertIn("# TYPE strangler_route_events_total counter\n", text)
        self.assertEqual(admin(self.admin, "GET", "/metrics")[0], 401)
        status, one = admin(self.admin, "GET", "/routes/echo", token="s3cret-ops")
        self.assertEqual((status, one["name"]), (200, "echo"))
        status, body = admin(self.admin, "GET", "/routes/nope", token="s3cret-ops")
        self.assertEqual(status, 404)

    def test_a_flip_is_live_written_back_with_the_layout_and_audited(self):
        os.chmod(self.path, 0o640)
        before = client(self.port).test.echo("x")
        self.assertEqual(before, ["x"])  # the shop echoes its params
        status, route = self.flip("echo", "svc")
        self.assertEqual(status, 200, route)
        self.assertEqual(route["action"], "svc")
        self.assertEqual(route["kind"], "json")
        self.assertEqual(route["changed"]["by"], "ops")
        self.assertEqual(route["changed"]["before"], "legacy")
        # Live: the next call goes to the new service (which echoes too, so
        # the proof is its request log).
        self.assertEqual(client(self.port).test.echo("y"), ["y"])
        self.assertEqual([r["path"] for r in self.svc.requests], ["/rpc/test.echo"])
        # Written back: only the action changed, columns and comments kept,
        # permissions kept, no temporary file left behind.
        with open(self.path) as f:
            text = f.read()
        self.assertEqual(text, self.conf.replace(
            "route echo    xmlrpc test.echo       -> legacy    intercept",
            "route echo    xmlrpc test.echo       -> svc       intercept"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))), ["routes.conf", "var"])
        # Audited: who, what, before -> after.
        self.proxy.wait_for_output(r"audit: flip by ops: route echo: legacy -> svc")
        # A reload reads the same file: the flip stays.
        status, body = admin(self.admin, "POST", "/reload", token="s3cret-bot")
        self.assertEqual((status, body["changed"]), (200, []))
        self.assertEqual(client(self.port).test.echo("z"), ["z"])
        self.assertEqual(len(self.svc.requests), 2)
        # Flipping to what it already is changes nothing.
        status, route = self.flip("echo", "svc", token="s3cret-bot")
        self.assertEqual((status, route["changed"]["by"]), (200, "ops"))
        # And back.
        status, route = self.flip("echo", "legacy", token="s3cret-bot")
        self.assertEqual((status, route["changed"]["by"], route["changed"]["before"]),
                         (200, "bot", "svc"))
        client(self.port).test.echo("w")
        self.assertEqual(len(self.svc.requests), 2)
        with open(self.path) as f:
            self.assertEqual(f.read(), self.conf)

    def test_a_restart_keeps_the_flip(self):
        self.assertEqual(self.flip("echo", "svc")[0], 200)
        self.proxy.stop()
        proxy, port, _ = self.start_proxy(open(self.path).read(), name="second")
        self.assertEqual(client(port).test.echo(1), [1])
        self.assertEqual(len(self.svc.requests), 1)

    def test_bad_flips_are_refused_with_the_reason_and_change_nothing(self):
        with open(self.path) as f:
            original = f.read()
        status, body = self.flip("nope", "svc")
        self.assertEqual(status, 404)
        self.assertIn("no route named 'nope'", body["error"])
        status, body = self.flip("echo", "missing")
        self.assertEqual(status, 400)
        self.assertEqual(body["messages"], [f"{self.path}:8: route echo: unknown upstream 'missing'"])
        status, body = self.flip("echo", "svc intercept")
        self.assertEqual(status, 400)
        self.assertIn("is not an action", body["error"])
        status, body = self.flip("echo", "svc # comment")
        self.assertEqual(status, 400)
        for raw in ("not json", "{\"action\": 3}", "[]", "{}"):
            status, _, _ = self._put_raw("echo", raw)
            self.assertEqual(status, 400, raw)
        with open(self.path) as f:
            self.assertEqual(f.read(), original)
        self.assertEqual(client(self.port).test.echo(1), [1])
        self.assertEqual(self.svc.requests, [])

    def _put_raw(self, route, raw):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        try:
            conn.request("PUT", f"/routes/{route}", body=raw,
                         headers={"Authorization": "Bearer s3cret-ops"})
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def test_a_file_edited_on_disk_must_be_reloaded_before_a_flip(self):
        with open(self.path, "a") as f:
            f.write("# an edit nobody reloaded yet\n")
        status, body = self.flip("echo", "svc")
        self.assertEqual(status, 409)
        self.assertIn("changed on disk", body["error"])
        status, _ = admin(self.admin, "POST", "/reload", token="s3cret-ops")
        self.assertEqual(status, 200)
        status, _ = self.flip("echo", "svc")
        self.assertEqual(status, 200)
        with open(self.path) as f:
            self.assertTrue(f.read().endswith("# an edit nobody reloaded yet\n"))

    def test_a_bad_file_is_refused_on_reload_and_the_running_table_stays(self):
        with open(self.path) as f:
            good = f.read()
        with open(self.path, "w") as f:
            f.write(good.replace("route rest    *", "route rest    bogus"))
        status, body = admin(self.admin, "POST", "/reload", token="s3cret-ops")
        self.assertEqual(status, 400)
        self.assertEqual(body["messages"], [
            f"{self.path}:10: route rest: invalid match (expected 'xmlrpc GLOB', "
            "'http METHOD PATH' or '*', then optional 'header NAME=VALUE' conditions)"])
        self.proxy.send_signal(signal.SIGHUP)
        self.proxy.wait_for_output(r"reload rejected: .*routes\.conf:10: route rest: invalid match")
        self.assertEqual(outcome(client(self.port).stock.get, "HAM-001")[0], "result")
        # Fixed and reloaded: the reload reports what moved.
        with open(self.path, "w") as f:
            f.write(good.replace("-> legacy    intercept", "-> svc       intercept"))
        status, body = admin(self.admin, "POST", "/reload", token="s3cret-ops")
        self.assertEqual(status, 200)
        self.assertEqual(body["changed"], [{"route": "echo", "before": "legacy", "after": "svc"}])
        self.proxy.wait_for_output(r"audit: reload by ops: route echo: legacy -> svc")

    def test_issue3_a_reload_cannot_open_the_api_where_it_listens(self):
        """The API listens where it started until a restart: a reload that
        drops or moves the admin line keeps the tokens it started with."""
        with open(self.path) as f:
            text = f.read()
        for edit in ("", "admin  127.0.0.1:1\n"):
            with open(self.path, "w") as f:
                f.write(re.sub(r"^admin .*\n", edit, text, flags=re.M))
            status, body = admin(self.admin, "POST", "/reload", token="s3cret-ops")
            self.assertEqual(status, 200, body)
            self.assertEqual(admin(self.admin, "GET", "/routes")[0], 401)
            self.assertEqual(admin(self.admin, "GET", "/routes", token="s3cret-bot")[0], 200)
        # A reload that keeps the address rotates the tokens.
        rotated = self.write_config("ops n3w-secret\n", "tokens")
        with open(self.path, "w") as f:
            f.write(text)
        self.assertEqual(rotated, self.tokens)
        self.assertEqual(admin(self.admin, "POST", "/reload", token="s3cret-ops")[0], 200)
        self.assertEqual(admin(self.admin, "GET", "/routes", token="s3cret-ops")[0], 401)
        self.assertEqual(admin(self.admin, "GET", "/routes", token="n3w-secret")[0], 200)

    def test_header_conditions_route_a_tenant_to_a_new_service(self):
        with open(self.path) as f:
            text = f.read()
        with open(self.path, "w") as f:
            f.write(text.replace("route echo    xmlrpc test.echo       -> legacy",
                                 "route echo    xmlrpc test.* header X-Tenant=acme -> svc"))
        self.assertEqual(admin(self.admin, "POST", "/reload", token="s3cret-ops")[0], 200)
        body = xmlrpc.client.dumps(("hi",), "test.echo")
        status, _, raw = post_xml(self.port, body, headers={"X-Tenant": "acme"})
        self.assertEqual(status, 200)
        self.assertEqual(xmlrpc.client.loads(raw)[0], (["hi"],))
        self.assertEqual(len(self.svc.requests), 1)
        post_xml(self.port, body, headers={"X-Tenant": "other"})
        post_xml(self.port, body)
        self.assertEqual(len(self.svc.requests), 1)


class OpenAdminTest(E2ETestCase):
    def test_without_a_token_the_api_is_open_on_loopback_only(self):
        legacy = self.start_legacy()
        conf = f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
route rest * -> legacy
"""
        proxy, _, _ = self.start_proxy(conf)
        self.assertEqual(admin(admin_port(proxy), "GET", "/routes")[0], 200)
        path = self.write_config(conf.replace("admin 127.0.0.1:0", "admin 0.0.0.0:0"), "open.conf")
        out = subprocess.run([STRANGLER, "--check", "-c", path], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"{path}:2: admin: 0.0.0.0:0 is not a loopback address", out.stderr)


class AuditEventTest(E2ETestCase):
    def test_flips_and_reloads_raise_route_changed_events(self):
        legacy = self.start_legacy()
        svc = self.start_json_service()
        exchange = self.unique("audit")
        queue = self.unique("route-changes")
        declare_queue(queue, ["strangler.route.changed"], exchange=exchange)
        tokens = self.write_config("alice a-secret\n", "tokens")
        conf = f"""listen 127.0.0.1:0
admin 127.0.0.1:0 token=file:{tokens}
events {broker_url()} exchange={exchange} source=//strangler/audit
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream svc http://127.0.0.1:{svc.port}/rpc kind=json
route stock-read xmlrpc stock.get -> legacy
route rest * -> legacy
"""
        proxy, _, path = self.start_proxy(conf)
        port = admin_port(proxy)
        status, _ = admin(port, "PUT", "/routes/stock-read", {"action": "svc"}, token="a-secret")
        self.assertEqual(status, 200)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("stock.get -> svc", "stock.get -> legacy"))
        proxy.send_signal(signal.SIGHUP)
        events = consume(queue, count=2, timeout_ms=10000)
        self.assertEqual(len(events), 2, events)
        flip, reload = (e["body"] for e in events)
        for e in (flip, reload):
            self.assertEqual(e["type"], "strangler.route.changed")
            self.assertEqual(e["subject"], "stock-read")
            self.assertEqual(e["source"], "//strangler/audit")
        self.assertEqual(events[0]["routing_key"], "strangler.route.changed")
        self.assertNotEqual(flip["id"], reload["id"])
        self.assertEqual(flip["data"], {"route": "stock-read", "match": "xmlrpc stock.get",
                                        "before": "legacy", "after": "svc", "by": "alice",
                                        "reason": "flip", "config": path, "line": 6})
        self.assertEqual(reload["data"]["by"], "SIGHUP")
        self.assertEqual(reload["data"]["reason"], "reload")
        self.assertEqual((reload["data"]["before"], reload["data"]["after"]), ("svc", "legacy"))


class CommandLineTest(E2ETestCase):
    def run_cli(self, path, *args, env=None):
        return subprocess.run([STRANGLER, "-c", path, *args], capture_output=True, text=True,
                              timeout=30, env=env)

    def test_routes_and_flip_talk_to_the_admin_api(self):
        legacy = self.start_legacy()
        svc = self.start_json_service()
        tokens = self.write_config("ops cli-secret\n", "tokens")
        conf = f"""listen 127.0.0.1:0
admin 127.0.0.1:0 token=file:{tokens}
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream svc http://127.0.0.1:{svc.port}/rpc kind=json
route echo xmlrpc test.echo -> legacy
route rest * -> legacy
"""
        proxy, port, path = self.start_proxy(conf)
        # The CLI finds the admin API from routes.conf; with port 0 there,
        # it is told the real address.
        addr = f"127.0.0.1:{admin_port(proxy)}"
        client(port).test.echo(1)
        out = self.run_cli(path, "routes", "--admin", addr)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertRegex(lines[0], r"^ROUTE\s+MATCH\s+ACTION\s+REQUESTS\s+FAULTS\s+ERRORS\s+EVENTS")
        self.assertRegex(lines[1], r"^echo\s+xmlrpc test\.echo\s+legacy\s+1\s+0\s+0\s+0")
        out = self.run_cli(path, "flip", "echo", "svc", "--admin", addr)
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "echo: legacy -> svc"),
                         out.stderr)
        client(port).test.echo(2)
        self.assertEqual(len(svc.requests), 1)
        out = self.run_cli(path, "routes", "--json", "--admin", addr)
        self.assertEqual(json.loads(out.stdout)[0]["action"], "svc")
        out = self.run_cli(path, "flip", "echo", "nowhere", "--admin", addr)
        self.assertEqual(out.returncode, 1)
        self.assertIn("unknown upstream 'nowhere'", out.stderr)
        out = self.run_cli(path, "reload", "--admin", addr)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("reloaded: 2 routes, 2 upstreams", out.stdout)
        # A wrong token is refused, and says so.
        bad = self.write_config("nobody wrong\n", "bad-token")
        out = self.run_cli(path, "routes", "--admin", addr, "--token-file", bad)
        self.assertEqual(out.returncode, 1)
        proxy.stop()
        out = self.run_cli(path, "routes", "--admin", addr)
        self.assertEqual(out.returncode, 3)
        self.assertIn("cannot reach the admin API", out.stderr)


class InFlightTest(E2ETestCase):
    def test_a_request_in_flight_finishes_on_the_table_it_started_with(self):
        legacy = self.start_legacy()
        svc = self.start_json_service()  # its "slow" method answers after 3 s
        conf = f"""listen 127.0.0.1:0
admin 127.0.0.1:0
upstream legacy http://127.0.0.1:{legacy}/RPC2
upstream svc http://127.0.0.1:{svc.port}/rpc kind=json
route slow xmlrpc slow -> svc
route rest * -> legacy
"""
        proxy, port, _ = self.start_proxy(conf)
        result = {}
        t = threading.Thread(target=lambda: result.update(slow=outcome(client(port).slow, "p")))
        t.start()
        eventually(lambda: svc.requests, message="the slow call reached the service")
        self.assertEqual(admin(admin_port(proxy), "PUT", "/routes/slow", {"action": "legacy"})[0],
                         200)
        # New calls take the new table at once: the legacy has no such method.
        after = outcome(client(port).slow, "q")
        self.assertEqual(after[0], "fault")
        t.join(10)
        self.assertEqual(result["slow"], ("result", ["p"]))


class FlipUnderLoadTest(E2ETestCase):
    """The acceptance test of the issue: stock.get flipped between the legacy
    and the new stock service every 100 ms, routes.conf reloaded every
    second, while keep-alive clients call without pause. Every answer must
    arrive and be the right one."""

    CLIENTS = 8
    SECONDS = 6

    def test_no_request_is_lost_or_mixed_under_flips_and_reloads(self):
        legacy_port = self.start_legacy()
        exchange = self.unique("load")
        svc, svc_port = self.start_stock_service(self.unique("stock-service"), exchange)

        conf = f"""listen 127.0.0.1:0
workers 2
admin 127.0.0.1:0
upstream legacy    http://127.0.0.1:{legacy_port}/RPC2
upstream stock-svc http://127.0.0.1:{svc_port}/rpc kind=json timeout=5000
events {broker_url()} exchange={exchange}
route stock-read xmlrpc stock.get -> legacy intercept
route rest       *                -> legacy
"""
        proxy, port, path = self.start_proxy(conf)
        aport = admin_port(proxy)
        for sku in SKUS:
            client(port).stock.get(sku)
        expected = wait_for_stock_model(svc_port, legacy_port, SKUS)

        stop = threading.Event()
        counts = {"ok": 0, "failed": 0, "mixed": 0}
        problems = []
        lock = threading.Lock()

        def load(n):
            rng = random.Random(n)
            c = client(port)  # one keep-alive connection per client
            while not stop.is_set():
                if rng.random() < 0.7:
                    sku = rng.choice(SKUS)
                    want, got_fn, args = expected[sku], c.stock.get, (sku,)
                else:
                    token = f"client-{n}-{rng.random()}"
                    want, got_fn, args = [token], c.test.echo, (token,)
                try:
                    got = got_fn(*args)
                    kind = "ok" if got == want else "mixed"
                    detail = (args, got, want)
                except Exception as e:  # noqa: BLE001 - every failure counts
                    kind, detail = "failed", (args, repr(e))
                with lock:
                    counts[kind] += 1
                    if kind != "ok" and len(problems) < 10:
                        problems.append(detail)

        flips = {"n": 0, "refused": 0}
        reloads = {"n": 0}

        def flipper():
            target = "stock-svc"
            while not stop.wait(0.1):
                status, body = admin(aport, "PUT", "/routes/stock-read", {"action": target})
                if status == 200:
                    flips["n"] += 1
                    target = "legacy" if target == "stock-svc" else "stock-svc"
                else:
                    flips["refused"] += 1
                    problems.append(("flip", status, body))

        def reloader():
            while not stop.wait(1.0):
                if reloads["n"] % 2 == 0:
                    status, body = admin(aport, "POST", "/reload")
                    self.assertEqual(status, 200, body)
                else:
                    proxy.send_signal(signal.SIGHUP)
                reloads["n"] += 1

        threads = [threading.Thread(target=load, args=(i,)) for i in range(self.CLIENTS)]
        threads += [threading.Thread(target=flipper), threading.Thread(target=reloader)]
        for t in threads:
            t.start()
        time.sleep(self.SECONDS)
        stop.set()
        for t in threads:
            t.join(30)

        served_new = len(re.findall(r"stock\.get -> 200", svc.output()))
        total = sum(counts.values())
        print(f"\nflip under load: {total} calls, {counts['ok']} ok, {counts['failed']} failed, "
              f"{counts['mixed']} mixed; {flips['n']} flips, {reloads['n']} reloads; "
              f"{served_new} stock.get served by the new service")
        self.assertEqual(counts["failed"], 0, problems)
        self.assertEqual(counts["mixed"], 0, problems)
        self.assertEqual(flips["refused"], 0, problems)
        self.assertGreaterEqual(flips["n"], self.SECONDS * 5)
        self.assertGreaterEqual(reloads["n"], self.SECONDS - 1)
        self.assertGreater(total, 200)
        # Both sides really served: the flips took effect.
        self.assertGreater(served_new, 0)
        status, routes = admin(aport, "GET", "/routes")
        self.assertGreater(routes[0]["counters"]["requests"], served_new)
        self.assertIn(routes[0]["action"], ("legacy", "stock-svc"))
        # routes.conf is whole and matches the table in force.
        with open(path) as f:
            self.assertIn(f"route stock-read xmlrpc stock.get -> {routes[0]['action']}", f.read())
