"""Seeing the migration: /metrics read by the official Prometheus parser,
the method inventory (GET /methods and `strangler methods`), the JSON access
log and the error log (levels, reopened on SIGUSR1), and --help naming every
directive and option routes.conf and the command line take."""

import json
import os
import re
import signal
import subprocess

import xmlrpc.client

from harness import (SOURCE_DIR, STRANGLER, E2ETestCase, Process, admin, admin_port, call,
                     eventually, free_port, http_request, xmlrpc_client)

# The official client's parser, as Debian packages it (python3-prometheus-client,
# installed by .ci/packages) for Debian's own interpreter.
DEBIAN_PYTHON = "/usr/bin/python3"
PARSE_METRICS = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
json.dump(out, sys.stdout)
"""


def parse_metrics(text):
    """The families the official parser reads from text (it raises on
    anything the format does not allow)."""
    done = subprocess.run([DEBIAN_PYTHON, "-c", PARSE_METRICS], input=text, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError("prometheus_client could not parse /metrics:\n" + done.stderr)
    return {f["name"]: f for f in json.loads(done.stdout)}


def sample(families, family, name=None, **labels):
    """The value of the one sample of `family` named `name` (default: the
    family's own name) whose labels include `labels`; None when there is none."""
    found = [s[2] for s in families[family]["samples"]
             if s[0] == (name or family) and all(s[1].get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, (family, labels, found)
    return found[0] if found else None


class ObservabilityTest(E2ETestCase):
    """One proxy in front of the demo shop (legacy) and a JSON service (new),
    with an access log; calls of every outcome, then what each view shows."""

    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        dead = free_port()
        self.conf = f"""listen 127.0.0.1:0
admin  127.0.0.1:0
workers 2
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{self.svc.port}/rpc  kind=json
upstream dead   http://127.0.0.1:{dead}/rpc  kind=json connect_timeout=2000
access_log ./access.log buffer=4k flush=100ms
route stock    xmlrpc stock.*    -> legacy
route catalog  xmlrpc catalog.*  -> legacy
route echo     xmlrpc test.*     -> svc
route gone     xmlrpc dead.*     -> dead
route status   xmlrpc status.*   -> svc
"""
        self.proxy, self.port, self.path = self.start_proxy(self.conf)
        self.admin = admin_port(self.proxy)
        self.access_log = os.path.join(os.path.dirname(self.path), "access.log")
        # 6 legacy answers, 4 new ones, 2 faults from the new service, a
        # fault from the legacy, a call no route takes, one the new side
        # cannot answer (nothing listens on its port).
        for i in range(6):
            self.assertEqual(call(self.port, "stock.get", "HAM-001")[0], "result")
        for i in range(4):
            self.assertEqual(call(self.port, "test.echo", i), ("result", [i]))
        for i in range(2):
            self.assertEqual(call(self.port, "test.fault", 42, "out of stock")[:2], ("fault", 42))
        self.assertEqual(call(self.port, "catalog.get", "NO-SUCH-SKU")[0], "fault")
        self.assertEqual(call(self.port, "nope.method")[:2], ("fault", -32601))
        self.assertEqual(call(self.port, "dead.call")[:2], ("fault", -32300))
        self.calls = 15

    def metrics(self):
        status, text = admin(self.admin, "GET", "/metrics")
        self.assertEqual(status, 200)
        return parse_metrics(text)

    def test_metrics_parse_and_count_each_outcome_by_route_target_and_side(self):
        m = self.metrics()
        for name, kind in (("strangler_requests", "counter"),
                           ("strangler_request_duration_seconds", "histogram"),
                           ("strangler_new_service_share", "gauge"),
                           ("strangler_upstream_errors", "counter"),
                           ("strangler_adapter_faults", "counter"),
                           ("strangler_shadow_comparisons", "counter"),
                           ("strangler_events_spooled", "counter"),
                           ("strangler_events_published", "counter"),
                           ("strangler_events_confirmed", "counter"),
                           ("strangler_events_failed", "counter"),
                           ("strangler_events_skipped", "counter"),
                           ("strangler_spool_bytes", "gauge"),
                           ("strangler_spool_oldest_unconfirmed_age_seconds", "gauge"),
                           ("strangler_broker_connected", "gauge"),
                           ("strangler_config_reloads", "counter"),
                           ("strangler_route_flips", "counter")):
            self.assertIn(name, m)
            self.assertEqual(m[name]["type"], kind, name)
            self.assertTrue(m[name]["help"], name)
        req = "strangler_requests"
        total = "strangler_requests_total"
        self.assertEqual(sample(m, req, total, route="stock", target="legacy", side="legacy",
                                outcome="ok"), 6)
        self.assertEqual(sample(m, req, total, route="echo", target="svc", side="new",
                                outcome="ok"), 4)
        self.assertEqual(sample(m, req, total, route="echo", target="svc", side="new",
                                outcome="fault"), 2)
        self.assertEqual(sample(m, req, total, route="catalog", target="legacy",
                                outcome="fault"), 1)
        self.assertEqual(sample(m, req, total, route="", target="", outcome="no_route"), 1)
        self.assertEqual(sample(m, req, total, route="gone", target="dead", side="new",
                                outcome="upstream_error"), 1)
        self.assertEqual(sum(s[2] for s in m[req]["samples"]), self.calls)
        self.assertEqual(sample(m, "strangler_upstream_errors", "strangler_upstream_errors_total",
                                upstream="dead", error="connect"), 1)
        self.assertEqual(sample(m, "strangler_adapter_faults", "strangler_adapter_faults_total",
                                upstream="svc", code="42"), 2)
        self.assertEqual(sample(m, "strangler_adapter_faults", "strangler_adapter_faults_total",
                                upstream="dead", code="-32300"), 1)
        # 6 of the 13 calls an upstream answered were answered by the new
        # service: the share a newcomer asks for.
        self.assertAlmostEqual(sample(m, "strangler_new_service_share"), 6 / 13, places=6)

        hist = "strangler_request_duration_seconds"
        buckets = [(float(s[1]["le"]), s[2]) for s in m[hist]["samples"]
                   if s[0] == hist + "_bucket" and s[1]["route"] == "echo"]
        self.assertEqual(buckets, sorted(buckets))
        self.assertEqual([n for _, n in buckets], sorted(n for _, n in buckets))
        self.assertEqual(buckets[-1], (float("inf"), 6))
        self.assertEqual(sample(m, hist, hist + "_count", route="echo", target="svc"), 6)
        self.assertGreater(sample(m, hist, hist + "_sum", route="echo", target="svc"), 0)

    def test_reloads_and_flips_are_counted_and_the_share_follows_a_flip(self):
        self.proxy.send_signal(signal.SIGHUP)
        self.proxy.wait_for_output(r"reloaded .* \(by SIGHUP\)")
        status, _ = admin(self.admin, "PUT", "/routes/stock", {"action": "nowhere"})
        self.assertEqual(status, 400)
        status, _ = admin(self.admin, "PUT", "/routes/stock", {"action": "svc"})
        self.assertEqual(status, 200)
        m = self.metrics()
        reloads, flips = "strangler_config_reloads", "strangler_route_flips"
        self.assertEqual(sample(m, reloads, reloads + "_total", result="success"), 1)
        self.assertEqual(sample(m, reloads, reloads + "_total", result="failure"), 0)
        self.assertEqual(sample(m, flips, flips + "_total", result="success"), 1)
        self.assertEqual(sample(m, flips, flips + "_total", result="failure"), 1)
        # stock.* now goes to the new service (which has no such method: a
        # fault from it, still an answer from the new side).
        for _ in range(7):
            self.assertEqual(call(self.port, "stock.get", "HAM-001")[:2], ("fault", -32601))
        m = self.metrics()
        self.assertEqual(sample(m, "strangler_requests", "strangler_requests_total",
                                route="stock", target="svc", side="new", outcome="fault"), 7)
        self.assertAlmostEqual(sample(m, "strangler_new_service_share"), 13 / 20, places=6)

    def test_the_method_inventory_is_the_migration_backlog(self):
        status, inv = admin(self.admin, "GET", "/methods")
        self.assertEqual(status, 200)
        methods = {m["method"]: m for m in inv["methods"]}
        self.assertEqual(set(methods), {"stock.get", "test.echo", "test.fault", "catalog.get",
                                        "nope.method", "dead.call"})
        # Most called first: what to strangle next heads the list.
        self.assertEqual([m["method"] for m in inv["methods"]][:2], ["stock.get", "test.echo"])
        stock = methods["stock.get"]
        self.assertEqual((stock["calls"], stock["faults"], stock["errors"]), (6, 0, 0))
        self.assertEqual((stock["legacy_calls"], stock["new_calls"], stock["new_share"]), (6, 0, 0))
        self.assertEqual((stock["route"], stock["side"], stock["upstream"], stock["mode"]),
                         ("stock", "legacy", "legacy", "direct"))
        self.assertGreater(stock["bytes_in"], 0)
        self.assertGreater(stock["bytes_out"], 0)
        self.assertLessEqual(stock["first_seen"], stock["last_seen"])
        lat = stock["latency_ms"]
        self.assertTrue(0 < lat["p50"] <= lat["p99"] <= lat["max"] * 1.04, lat)
        fault = methods["test.fault"]
        self.assertEqual((fault["calls"], fault["faults"], fault["new_calls"], fault["side"]),
                         (2, 2, 2, "new"))
        self.assertEqual(methods["test.echo"]["new_share"], 1.0)
        nope = methods["nope.method"]
        self.assertEqual((nope["calls"], nope["errors"], nope["route"], nope["side"]),
                         (1, 1, None, "none"))
        self.assertEqual(methods["dead.call"]["errors"], 1)
        self.assertEqual(inv["totals"], {"calls": 15, "new_calls": 6, "legacy_calls": 7,
                                         "new_share": 6 / 13})
        self.assertEqual(inv["untracked_calls"], 0)

        # The command line prints the headline and the table.
        out = subprocess.run([STRANGLER, "methods", "--admin", f"127.0.0.1:{self.admin}"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertTrue(lines[0].startswith("46.2% of answered calls served by new services "
                                            "(6 new, 7 legacy; 15 calls since "), lines[0])
        self.assertEqual(lines[1].split()[:4], ["METHOD", "SIDE", "ROUTE", "CALLS"])
        self.assertEqual(lines[2].split()[:6], ["stock.get", "legacy", "stock", "6", "0", "0"])

        # After a flip the inventory says who serves the method now.
        self.assertEqual(admin(self.admin, "PUT", "/routes/stock", {"action": "svc"})[0], 200)
        status, inv = admin(self.admin, "GET", "/methods")
        stock = {m["method"]: m for m in inv["methods"]}["stock.get"]
        self.assertEqual((stock["side"], stock["upstream"]), ("new", "svc"))

    def test_a_new_services_http_error_is_labelled_as_the_legacys_would_be(self):
        # An HTML 503 page from a new service is a fault to the client (the
        # adapter makes one), but a server_error in the figures, as the
        # legacy's 503 would be.
        self.assertEqual(call(self.port, "status.503")[0], "fault")
        m = self.metrics()
        self.assertEqual(sample(m, "strangler_requests", "strangler_requests_total",
                                route="status", target="svc", outcome="server_error"), 1)
        self.assertIsNone(sample(m, "strangler_requests", "strangler_requests_total",
                                 route="status", target="svc", outcome="fault"))

    def test_a_multicall_forwarded_whole_counts_each_calls_fault(self):
        mc = xmlrpc.client.MultiCall(xmlrpc_client(self.port))
        mc.stock.get("HAM-001")
        mc.catalog.get("NO-SUCH-SKU")
        answers = mc()
        self.assertIsInstance(answers[0], dict)
        with self.assertRaises(xmlrpc.client.Fault):
            answers[1]
        status, inv = admin(self.admin, "GET", "/methods")
        methods = {m["method"]: m for m in inv["methods"]}
        self.assertEqual((methods["catalog.get"]["calls"], methods["catalog.get"]["faults"]), (2, 2))
        self.assertEqual((methods["stock.get"]["calls"], methods["stock.get"]["faults"]), (7, 0))

    def test_methods_limit_lists_the_busiest_and_totals_cover_every_call(self):
        status, inv = admin(self.admin, "GET", "/methods?limit=2")
        self.assertEqual(status, 200)
        self.assertEqual([m["method"] for m in inv["methods"]], ["stock.get", "test.echo"])
        self.assertEqual(inv["methods_tracked"], 6)
        self.assertEqual(inv["totals"]["calls"], self.calls)
        for bad in ("0", "-1", "x", "2x"):
            self.assertEqual(admin(self.admin, "GET", f"/methods?limit={bad}")[0], 400, bad)
        out = subprocess.run([STRANGLER, "methods", "--limit", "1", "--admin",
                              f"127.0.0.1:{self.admin}"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(the 1 most called of 6 methods; --limit N for more)", out.stdout)

    def test_pages_elsewhere_cannot_use_the_admin_api_through_a_browser(self):
        # No token here: a page on another origin, or one that rebinds its
        # own name to 127.0.0.1, is refused; tools and the dashboard are not.
        for headers in ({"Origin": "http://evil.example"},
                        {"Origin": "null"},
                        {"Host": "evil.example"},
                        {"Host": f"evil.example:{self.admin}",
                         "Origin": f"http://evil.example:{self.admin}"}):
            for method, path in (("POST", "/reload"), ("GET", "/routes"), ("GET", "/methods")):
                status, _, body = http_request(self.admin, method, path, body=b"",
                                               headers=headers)
                self.assertEqual(status, 403, (method, path, headers, body))
        same = {"Origin": f"http://127.0.0.1:{self.admin}"}
        status, _, _ = http_request(self.admin, "GET", "/routes", headers=same)
        self.assertEqual(status, 200)
        status, _, _ = http_request(self.admin, "GET", "/routes",
                                    headers={"Host": f"localhost:{self.admin}"})
        self.assertEqual(status, 200)
        self.proxy.wait_for_output(r"admin: /reload refused: cross-origin requests are refused")

    def read_access_log(self, path=None):
        with open(path or self.access_log) as f:
            return [json.loads(line) for line in f]

    def test_access_log_has_a_json_line_per_request_and_reopens_on_sigusr1(self):
        lines = eventually(lambda: len(self.read_access_log()) == self.calls
                           and self.read_access_log(), message="every request logged")
        by_method = {}
        for line in lines:
            self.assertEqual(set(line), {"time", "request_id", "client", "http_method", "path",
                                         "method", "calls", "route", "target", "side", "status",
                                         "fault_code", "outcome", "duration_ms", "bytes_in",
                                         "bytes_out"})
            self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual((line["client"], line["http_method"], line["path"]),
                             ("127.0.0.1", "POST", "/RPC2"))
            self.assertEqual(line["status"], 200)
            self.assertGreater(line["bytes_in"], 0)
            self.assertGreater(line["bytes_out"], 0)
            self.assertGreaterEqual(line["duration_ms"], 0)
            by_method.setdefault(line["method"], []).append(line)
        self.assertEqual(len({line["request_id"] for line in lines}), self.calls)
        ok = by_method["test.echo"][0]
        self.assertEqual((ok["route"], ok["target"], ok["side"], ok["outcome"], ok["fault_code"]),
                         ("echo", "svc", "new", "ok", None))
        fault = by_method["test.fault"][0]
        self.assertEqual((fault["outcome"], fault["fault_code"]), ("fault", 42))
        legacy_fault = by_method["catalog.get"][0]
        self.assertEqual((legacy_fault["side"], legacy_fault["outcome"]), ("legacy", "fault"))
        self.assertIsInstance(legacy_fault["fault_code"], int)  # read off the streamed answer
        nope = by_method["nope.method"][0]
        self.assertEqual((nope["route"], nope["target"], nope["outcome"], nope["fault_code"]),
                         (None, None, "no_route", -32601))
        dead = by_method["dead.call"][0]
        self.assertEqual((dead["outcome"], dead["fault_code"]), ("upstream_error", -32300))

        # logrotate: the file moves, SIGUSR1, and new lines go to a new file.
        os.rename(self.access_log, self.access_log + ".1")
        self.proxy.send_signal(signal.SIGUSR1)
        self.proxy.wait_for_output(r"SIGUSR1: logs reopened")
        for i in range(3):
            call(self.port, "test.echo", i)
        eventually(lambda: os.path.exists(self.access_log)
                   and len(self.read_access_log()) == 3, message="three lines in the new file")
        self.assertEqual(len(self.read_access_log(self.access_log + ".1")), self.calls)


class ErrorLogTest(E2ETestCase):
    """error_log PATH: the process's errors go to a file, at the level
    log_level says, and the file is reopened on SIGUSR1."""

    def test_error_log_file_levels_and_reopen(self):
        legacy = self.start_legacy()
        folder = os.path.join(self.tmp, "p")
        os.makedirs(folder)
        log = os.path.join(folder, "error.log")
        conf = self.write_config(f"""listen 127.0.0.1:0
admin 127.0.0.1:0 token=env:OBSERVE_TOKEN
error_log ./error.log
log_level info
upstream legacy http://127.0.0.1:{legacy}/RPC2
route stock xmlrpc stock.* -> legacy
""", os.path.join("p", "routes.conf"))
        env = dict(os.environ, OBSERVE_TOKEN="t0ps3cret-token")
        proxy = self._track(Process("strangler", [STRANGLER, "-c", conf], self.tmp, env=env))

        def log_text(path=log):
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return ""
        m = eventually(lambda: re.search(r"\[info\] strangler \S+ listening on 127\.0\.0\.1:(\d+)",
                                         log_text()), message="the start logged to error.log")
        port = int(m.group(1))
        admin_at = int(re.search(r"admin API listening on 127\.0\.0\.1:(\d+)", log_text()).group(1))
        self.assertNotIn("listening", proxy.output())  # nothing left on stderr
        self.assertEqual(call(port, "nope.x")[:2], ("fault", -32601))
        eventually(lambda: "[info] request" in log_text() and "no route for method nope.x"
                   in log_text(), message="an info line for the refused call")

        # log_level warn by reload: info lines stop, warnings still come.
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("log_level info", "log_level warn"))
        proxy.send_signal(signal.SIGHUP)
        eventually(lambda: admin(admin_at, "GET", "/routes", token="t0ps3cret-token")[0] == 200)
        before = log_text()
        self.assertEqual(call(port, "nope.y")[:2], ("fault", -32601))
        self.assertEqual(admin(admin_at, "GET", "/routes", token="wrong")[0], 401)
        eventually(lambda: "[warn] admin: GET /routes refused: wrong token" in log_text())
        self.assertNotIn("nope.y", log_text()[len(before):])
        self.assertNotIn("t0ps3cret", log_text())  # the token is never logged

        os.rename(log, log + ".1")
        proxy.send_signal(signal.SIGUSR1)
        eventually(lambda: os.path.exists(log), message="error.log opened again")
        self.assertEqual(admin(admin_at, "GET", "/routes", token="wrong-again")[0], 401)
        eventually(lambda: "refused: wrong token" in log_text(), message="warning in the new file")
        self.assertEqual(log_text(log + ".1").count("refused: wrong token"), 1)


class HelpTest(E2ETestCase):
    """strangler(8)-style help: --help names every directive of routes.conf
    (read from config.c's own tables), every option they take, and every
    option and command of the command line."""

    def test_help_names_every_directive_and_option(self):
        out = subprocess.run([STRANGLER, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0)
        text = out.stdout
        with open(os.path.join(SOURCE_DIR, "proxy", "config.c")) as f:
            source = f.read()
        table = source[source.index("static const struct directive directives[]"):]
        table = table[:table.index("};")]
        directives = re.findall(r'^\s*(?:\{|LIMIT\()"(\w+)"', table, re.M)
        self.assertIn("route", directives)
        self.assertIn("access_log", directives)
        for d in directives:
            self.assertRegex(text, rf"(?m)^\s+{d}\b|\s{d} ", f"directive {d} missing from --help")
        options = set()
        for block in re.findall(r"static const struct setting \w+_options\[\] = \{(.*?)\};",
                                source, re.S):
            options.update(re.findall(r'\{"(\w+)", set_', block))
        options.update(["intercept", "key", "on", "redact", "map", "ignore", "tolerance",
                        "rollback", "token"])
        self.assertIn("fsync", options)
        for opt in sorted(options):
            self.assertRegex(text, rf"\b{opt}[=\[]", f"option {opt}= missing from --help")
        for word in ("-c, --config", "--check", "--help", "--version", "routes", "flip",
                     "reload", "methods", "events replay", "events tail", "SIGHUP", "SIGTERM",
                     "SIGUSR1", "GET /methods", "GET /metrics", "PUT /routes/NAME"):
            self.assertIn(word, text)
        # The admin commands' own options are in the usage lines.
        for opt in ("--admin HOST:PORT", "--token-file PATH", "--json", "--since", "--type",
                    "--spool"):
            self.assertIn(opt, text)


if __name__ == "__main__":
    import unittest
    unittest.main()
