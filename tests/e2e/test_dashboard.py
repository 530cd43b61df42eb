"""The migration dashboard, in a real browser: a headless Chromium (driven
over the DevTools pipe, browser.py) opens the admin address, asks for the
token, shows the routes, the method inventory and the share of traffic the
new services answer, and flips a route the way an operator would. Every
effect of a flip is then checked without the browser: the admin API,
routes.conf on disk, and who answers the next XML-RPC call.

Skipped only when /usr/bin/chromium is missing; CI installs it
(.ci/packages)."""

import json
import re
import unittest

import browser
from harness import (E2ETestCase, admin, admin_port, broker_url, eventually, http_request,
                     wait_for_stock_model)
from harness import xmlrpc_client as client

SKUS = ["HAM-001", "NAIL-100", "SAW-010", "SCR-200"]
TOKEN = "dash-s3cret"
TOKEN_VAR = "STRANGLER_DASHBOARD_TOKEN"

# How long the page may take to show what the API says: it polls every 2 s.
PAGE_TIMEOUT_S = 10


def js(value):
    """A Python value as a JavaScript literal (selectors, expected text)."""
    return json.dumps(value)


@unittest.skipUnless(browser.available(),
                     f"{browser.CHROMIUM} is missing (apt-get install chromium)")
class DashboardTest(E2ETestCase):

    def start_strangler(self, svc_port, admin_line=f"admin 127.0.0.1:0 token=env:{TOKEN_VAR}",
                        events=""):
        """The demo's routes, stock.get still on the legacy; returns (proxy
        port, admin port, routes.conf path)."""
        self.conf = f"""# the demo's routes, stock.get not flipped yet
listen 127.0.0.1:0
{admin_line}
upstream legacy    http://127.0.0.1:{self.legacy_port}/RPC2
upstream stock-svc http://127.0.0.1:{svc_port}/rpc kind=json timeout=5000
{events}
route stock-read  xmlrpc stock.get    -> legacy intercept
route stock-write xmlrpc stock.adjust -> legacy intercept
route orders      xmlrpc orders.*     -> legacy intercept=orders.changed
route everything  *                   -> legacy
"""
        self.proxy, port, path = self.start_proxy(self.conf, extra_env={TOKEN_VAR: TOKEN})
        return port, admin_port(self.proxy), path

    def open_browser(self):
        b = browser.Browser(self.tmp)
        self.addCleanup(b.close)
        return b

    # ---- what the page shows ----

    def cell(self, b, row, col):
        return b.text(f'{row} td[data-col={js(col)}]')

    def wait_cell(self, b, row, col, want, message=None):
        sel = f'{row} td[data-col={js(col)}]'
        b.wait_for(f"(() => {{ const e = document.querySelector({js(sel)});"
                   f" return !!e && e.textContent.trim() === {js(want)}; }})()",
                   timeout=PAGE_TIMEOUT_S, message=message or f"{sel} shows {want!r}")

    def shows_no_data(self, b):
        return b.evaluate("document.getElementById('data').hidden"
                          " && !document.querySelector('tr[data-route], tr[data-method]')"
                          " && document.getElementById('new-share').dataset.share === ''")

    def enter_token(self, b, token):
        b.wait_for("!document.getElementById('token-panel').hidden", timeout=PAGE_TIMEOUT_S,
                   message="the token form shows")
        b.type_into("#token", token)
        b.click("#token-save")

    def flip_input(self, b, route):
        """What the route's flip input holds."""
        return b.evaluate(f"document.querySelector('input[data-flip={js(route)}]').value")

    def flip(self, b, route, action):
        """Types an action into the route's flip input and clicks Flip;
        returns the answer shown beside the route once it is in."""
        b.type_into(f'input[data-flip={js(route)}]', action)
        b.click(f'button[data-flip={js(route)}]')
        sel = f'[data-flip-result={js(route)}]'
        state = b.wait_for(f"(() => {{ const s = document.querySelector({js(sel)}).dataset.state;"
                           " return s === 'ok' || s === 'error' ? s : null; })()",
                           timeout=PAGE_TIMEOUT_S, message=f"the flip of {route} answered")
        return state, b.text(sel)

    def assert_no_page_errors(self, b):
        self.assertEqual(b.problems(), [], "the page reported errors (a CSP refusal is one)")

    # ---- the tests ----

    def test_an_operator_sees_the_migration_and_flips_a_route_from_the_page(self):
        self.legacy_port = self.start_legacy()
        exchange = self.unique("dashboard")
        svc, svc_port = self.start_stock_service(self.unique("stock-service"), exchange)
        port, aport, path = self.start_strangler(
            svc_port, events=f"events {broker_url()} exchange={exchange}")
        c = client(port)
        for sku in SKUS:
            c.stock.get(sku)
        c.stock.get("HAM-001")
        c.test.echo("a")
        c.test.echo("b")
        expected = wait_for_stock_model(svc_port, legacy_port=self.legacy_port, skus=SKUS)

        b = self.open_browser()
        b.navigate(f"http://127.0.0.1:{aport}/")
        self.enter_token(b, TOKEN)

        # Routes, in the file's order, with their side and counters.
        b.wait_for("document.querySelectorAll('tr[data-route]').length === 4",
                   timeout=PAGE_TIMEOUT_S, message="four routes shown")
        self.assertEqual(b.evaluate("[...document.querySelectorAll('tr[data-route]')]"
                                    ".map(r => r.dataset.route)"),
                         ["stock-read", "stock-write", "orders", "everything"])
        read = 'tr[data-route="stock-read"]'
        self.wait_cell(b, read, "requests", "5")
        self.assertEqual(self.cell(b, read, "action"), "legacy")
        self.assertEqual(self.cell(b, read, "side"), "legacy")
        self.assertEqual(self.cell(b, read, "match"), "xmlrpc stock.get")
        self.assertEqual(self.flip_input(b, "stock-read"), "legacy")
        # The inventory: every method seen, busiest first.
        method = 'tr[data-method="stock.get"]'
        self.wait_cell(b, method, "calls", "5")
        self.wait_cell(b, 'tr[data-method="test.echo"]', "calls", "2")
        self.assertEqual(b.evaluate("[...document.querySelectorAll('tr[data-method]')]"
                                    ".map(r => r.dataset.method)"), ["stock.get", "test.echo"])
        self.assertEqual(self.cell(b, method, "side"), "legacy")
        self.assertTrue(self.cell(b, method, "route").startswith("stock-read"))
        # Nothing strangled yet.
        b.wait_for("document.getElementById('new-share').dataset.share === '0'",
                   timeout=PAGE_TIMEOUT_S, message="a share of 0 shown")
        self.assertEqual(b.text("#new-share"), "0.0 %")
        # The event pipeline: the five stock.get calls were intercepted (the
        # route says so; test.echo's does not).
        b.wait_for("document.getElementById('ev-spooled').textContent === '5'",
                   timeout=PAGE_TIMEOUT_S, message="five events spooled")

        # The flip, from the page.
        state, text = self.flip(b, "stock-read", "stock-svc")
        self.assertEqual(state, "ok", text)
        self.assertIn("legacy → stock-svc", text)
        self.wait_cell(b, read, "side", "new")
        self.assertEqual(b.text(f"{read} td[data-col=action] code"), "stock-svc")

        # Its effects, seen without the browser: the API, the file, the
        # audit line, and who answers.
        status, routes = admin(aport, "GET", "/routes", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(routes[0]["name"], "stock-read")
        self.assertEqual(routes[0]["action"], "stock-svc")
        self.assertEqual(routes[0]["changed"]["before"], "legacy")
        with open(path) as f:
            flipped = f.read()
        self.assertEqual(flipped, self.conf.replace("xmlrpc stock.get    -> legacy",
                                                    "xmlrpc stock.get    -> stock-svc"))
        self.proxy.wait_for_output(r"audit: flip by \S+: route stock-read: legacy -> stock-svc")
        for sku in SKUS + ["HAM-001", "SAW-010"]:
            self.assertEqual(c.stock.get(sku), expected[sku])
        # The stock service's own request log says it answered them.
        eventually(lambda: len(re.findall(r"stock\.get -> 200", svc.output())) == 6,
                   message="the stock service answered six calls")

        # The page follows: six of the thirteen calls came from a new service.
        b.wait_for("document.getElementById('new-share').dataset.newCalls === '6'",
                   timeout=PAGE_TIMEOUT_S, message="six new calls shown")
        share = float(b.evaluate("document.getElementById('new-share').dataset.share"))
        self.assertAlmostEqual(share, 6 / 13, places=3)
        self.assertEqual(b.text("#new-share"), "46.2 %")
        self.wait_cell(b, method, "calls", "11")
        self.assertEqual(self.cell(b, method, "side"), "new")
        self.assertAlmostEqual(float(b.evaluate(
            f"document.querySelector('{method} td[data-col=\"new-share\"]').dataset.value")),
            6 / 11, places=3)
        status, inventory = admin(aport, "GET", "/methods", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual((inventory["totals"]["new_calls"], inventory["totals"]["calls"]), (6, 13))

        # A bad flip: the API's reason shows beside the route, nothing moves.
        state, text = self.flip(b, "stock-read", "no-such-upstream")
        self.assertEqual(state, "error", text)
        self.assertIn("400", text)
        self.assertIn("unknown upstream 'no-such-upstream'", text)
        status, routes = admin(aport, "GET", "/routes", token=TOKEN)
        self.assertEqual(routes[0]["action"], "stock-svc")
        with open(path) as f:
            self.assertEqual(f.read(), flipped)
        self.assertEqual(c.stock.get("NAIL-100"), expected["NAIL-100"])
        eventually(lambda: len(re.findall(r"stock\.get -> 200", svc.output())) == 7,
                   message="the stock service still answers")
        # The page keeps showing what is in force, and what was typed stays
        # for the operator to correct.
        self.assertEqual(b.text(f"{read} td[data-col=action] code"), "stock-svc")
        self.assertEqual(self.flip_input(b, "stock-read"), "no-such-upstream")
        self.assert_no_page_errors(b)

    def test_without_the_token_the_page_shows_only_the_token_form(self):
        self.legacy_port = self.start_legacy()
        _, aport, _ = self.start_strangler(svc_port=1)

        # The files are served without a token, under a strict CSP; the
        # data is not.
        for path, ctype in (("/", "text/html; charset=utf-8"),
                            ("/dashboard.js", "text/javascript; charset=utf-8"),
                            ("/dashboard.css", "text/css; charset=utf-8")):
            status, headers, body = http_request(aport, "GET", path)
            headers = {k.lower(): v for k, v in headers}
            self.assertEqual(status, 200, path)
            self.assertEqual(headers["content-type"], ctype)
            self.assertIn("default-src 'self'", headers["content-security-policy"])
            self.assertGreater(len(body), 100)
        for path in ("/routes", "/methods", "/metrics"):
            self.assertEqual(admin(aport, "GET", path)[0], 401, path)

        b = self.open_browser()
        b.navigate(f"http://127.0.0.1:{aport}/")
        b.wait_for("!document.getElementById('token-panel').hidden", timeout=PAGE_TIMEOUT_S,
                   message="the token form shows")
        self.assertTrue(b.visible("#token"))
        self.assertEqual(b.evaluate("document.getElementById('token').type"), "password")
        self.assertTrue(self.shows_no_data(b))
        self.assertEqual(b.evaluate("document.getElementById('status').dataset.state"), "auth")

        # A wrong token is refused and still shows nothing.
        self.enter_token(b, "not-the-token")
        b.wait_for("(() => { const e = document.getElementById('token-error');"
                   " return !e.hidden && e.textContent.includes('refused'); })()",
                   timeout=PAGE_TIMEOUT_S, message="the wrong token refused")
        self.assertTrue(self.shows_no_data(b))

        # The right one shows the data; it is kept for the tab, never in
        # the address.
        self.enter_token(b, TOKEN)
        b.wait_for("document.querySelectorAll('tr[data-route]').length === 4",
                   timeout=PAGE_TIMEOUT_S, message="the routes shown")
        self.assertTrue(b.evaluate("document.getElementById('token-panel').hidden"))
        self.assertEqual(b.evaluate("sessionStorage.getItem('strangler.admin-token')"), TOKEN)
        self.assertNotIn(TOKEN, b.evaluate("location.href"))
        # A reload of the page keeps it (same tab).
        b.navigate(f"http://127.0.0.1:{aport}/")
        b.wait_for("document.querySelectorAll('tr[data-route]').length === 4",
                   timeout=PAGE_TIMEOUT_S, message="the routes shown after a reload")
        self.assertTrue(b.evaluate("document.getElementById('token-panel').hidden"))

        # Forgetting it hides everything again.
        b.click("#token-forget")
        b.wait_for("!document.getElementById('token-panel').hidden", timeout=PAGE_TIMEOUT_S,
                   message="the token form back")
        self.assertTrue(self.shows_no_data(b))
        self.assertIsNone(b.evaluate("sessionStorage.getItem('strangler.admin-token')"))
        self.assertNotIn(TOKEN, self.proxy.output())
        self.assert_no_page_errors(b)

    def test_an_admin_api_without_a_token_needs_no_form(self):
        self.legacy_port = self.start_legacy()
        port, aport, _ = self.start_strangler(svc_port=1, admin_line="admin 127.0.0.1:0")
        client(port).test.echo("x")
        b = self.open_browser()
        b.navigate(f"http://127.0.0.1:{aport}/")
        self.wait_cell(b, 'tr[data-route="everything"]', "requests", "1")
        self.assertTrue(b.evaluate("document.getElementById('token-panel').hidden"))
        self.assertTrue(b.evaluate("document.getElementById('token-forget').hidden"))
        self.assertEqual(b.evaluate("document.getElementById('status').dataset.state"), "live")
        # Once the proxy is gone the page says its figures are stale.
        self.proxy.stop()
        b.wait_for("document.getElementById('status').dataset.state === 'down'",
                   timeout=PAGE_TIMEOUT_S, message="the page notices the proxy is gone")
        self.assertIn("unreachable", b.text("#status"))
        self.assertTrue(b.evaluate("document.getElementById('data').classList.contains('stale')"))
        self.assertEqual(self.cell(b, 'tr[data-route="everything"]', "requests"), "1")
        self.assert_no_page_errors(b)


if __name__ == "__main__":
    unittest.main()
