"""The admin API's security properties (issue 9), against a real proxy:
the API is reachable only on its own address, loopback unless a token is
set, refuses every wrong token, validates flips and keeps routes.conf's
permissions when it rewrites it, never leaks the admin token or the
broker's password, and refuses cross-origin requests.

test_migration.py's AdminApiTest covers the basic token checks (no token,
a few wrong ones, a flip's refusals with a comment or a newline in the
body); these tests go further and do not repeat them.
"""

import json
import os
import socket
import stat
import subprocess
import time
import unittest

from harness import (STRANGLER, E2ETestCase, admin, admin_port, eventually, http_request,
                     post_xml)

TOKEN = "Adm1nT0ken-9f3e7c21"          # recognisable in any output
AMQP_PASSWORD = "S3cretPw"
# Nothing listens on port 1: the publisher's connection fails.
EVENTS_URL = f"amqp://user:{AMQP_PASSWORD}@127.0.0.1:1/%2f"

ADMIN_PATHS = ("/routes", "/routes/rest", "/routes/x", "/reload", "/metrics", "/methods",
               "/healthz", "/events/replay", "/")


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ProxyPortIsNotTheAdminApiTest(E2ETestCase):
    """Every admin path on the listen port is an ordinary request."""

    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.tokens = self.write_config(f"ops {TOKEN}\n", "tokens")

    def proxy(self, routes):
        conf = f"""listen 127.0.0.1:0
admin  127.0.0.1:0 token=file:{self.tokens}
upstream legacy http://127.0.0.1:{self.upstream.port}
{routes}
"""
        proxy, port, path = self.start_proxy(conf)
        return proxy, port, path, admin_port(proxy)

    def test_with_a_catch_all_every_admin_path_goes_to_the_legacy(self):
        proxy, port, path, api = self.proxy("route rest * -> legacy\n")
        before = read(path)
        sent = []
        for p in ADMIN_PATHS:
            for method in ("GET", "PUT", "POST"):
                body = None if method == "GET" else json.dumps({"action": "legacy"}).encode()
                headers = {"Authorization": f"Bearer {TOKEN}"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                status, hdrs, raw = http_request(port, method, p, body=body, headers=headers)
                self.assertEqual(status, 200, (method, p, raw))
                # The answer is the recording upstream's echo, not the API's.
                self.assertEqual(dict(hdrs).get("X-Upstream"), "recording", (method, p))
                echoed = json.loads(raw)
                self.assertEqual((echoed["method"], echoed["path"]), (method, p))
                sent.append((method, p))
        with self.upstream.lock:
            received = [(r["method"], r["path"]) for r in self.upstream.requests]
        self.assertEqual(received, sent)
        # No flip, no reload happened.
        self.assertEqual(read(path), before)
        status, routes = admin(api, "GET", "/routes", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(routes[0]["changed"], None)
        status, text = admin(api, "GET", "/metrics", token=TOKEN)
        for family in ("strangler_config_reloads_total", "strangler_route_flips_total"):
            for result in ("success", "failure"):
                self.assertIn(f'{family}{{result="{result}"}} 0\n', text)

    def test_without_a_catch_all_admin_paths_get_404(self):
        proxy, port, path, api = self.proxy("route echo xmlrpc test.echo -> legacy\n")
        before = read(path)
        for p in ADMIN_PATHS:
            for method in ("GET", "PUT", "POST"):
                body = None if method == "GET" else b'{"action": "legacy"}'
                status, hdrs, raw = http_request(port, method, p, body=body,
                                                 headers={"Authorization": f"Bearer {TOKEN}"})
                self.assertEqual(status, 404, (method, p, raw))
                self.assertNotEqual(dict(hdrs).get("WWW-Authenticate"), 'Bearer realm="strangler"')
        with self.upstream.lock:
            self.assertEqual(self.upstream.requests, [])
        self.assertEqual(read(path), before)


class LoopbackByDefaultTest(E2ETestCase):

    def test_an_admin_line_without_an_address_listens_on_loopback(self):
        # The default address is 127.0.0.1:8081; skip if something holds it.
        probe = socket.socket()
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", 8081))
        except OSError:
            self.skipTest("127.0.0.1:8081 (the default admin address) is in use")
        finally:
            probe.close()
        upstream = self.start_upstream()
        proxy, _, _ = self.start_proxy(f"""listen 127.0.0.1:0
admin
upstream legacy http://127.0.0.1:{upstream.port}
route rest * -> legacy
""")
        m = proxy.search_output(r"admin API listening on (\S+):(\d+)")
        self.assertEqual(m.group(1), "127.0.0.1")
        self.assertEqual(admin(int(m.group(2)), "GET", "/healthz"), (200, "ok"))

    def check(self, text):
        path = self.write_config(text, "check.conf")
        out = subprocess.run([STRANGLER, "--check", "-c", path], capture_output=True, text=True,
                             timeout=30)
        return out.returncode, out.stdout + out.stderr

    def test_a_non_loopback_admin_address_needs_a_token(self):
        for addr in ("0.0.0.0:0", "10.1.2.3:8081", "[::]:8081"):
            rc, err = self.check(f"""listen 127.0.0.1:0
admin {addr}
upstream legacy http://127.0.0.1:9
route rest * -> legacy
""")
            self.assertEqual(rc, 1, (addr, err))
            self.assertIn("not a loopback address", err, addr)
            self.assertIn("token=", err, addr)
        # With a token the same address is accepted.
        tokens = self.write_config(f"{TOKEN}\n", "tokens")
        rc, err = self.check(f"""listen 127.0.0.1:0
admin 0.0.0.0:0 token=file:{tokens}
upstream legacy http://127.0.0.1:9
route rest * -> legacy
""")
        self.assertEqual(rc, 0, err)
        self.assertNotIn(TOKEN, err)


class AdminSecurityTest(E2ETestCase):
    """A proxy with a token, an intercepting route whose events cannot reach
    their broker, and an access log."""

    def setUp(self):
        super().setUp()
        self.legacy = self.start_legacy()
        self.svc = self.start_json_service()
        self.tokens = self.write_config(f"ops {TOKEN}\n", "tokens")
        self.access = os.path.join(self.tmp, "access.log")
        self.conf = f"""listen 127.0.0.1:0
admin  127.0.0.1:0 token=file:{self.tokens}
upstream legacy http://127.0.0.1:{self.legacy}/RPC2
upstream svc    http://127.0.0.1:{self.svc.port}/rpc kind=json
events {EVENTS_URL} exchange=strangler.events
access_log {self.access} buffer=0
route echo xmlrpc test.echo -> legacy intercept
route rest * -> legacy
"""
        self.proxy, self.port, self.path = self.start_proxy(self.conf)
        self.api = admin_port(self.proxy)

    def flip(self, route, action, token=TOKEN):
        return admin(self.api, "PUT", f"/routes/{route}", {"action": action}, token=token)

    def raw_admin(self, method, path, headers, body=None):
        return http_request(self.api, method, path, body=body, headers=headers)

    def test_every_wrong_token_is_refused_and_the_right_one_works(self):
        wrong = [
            "",                                   # empty
            TOKEN[:1], TOKEN[:-1],                # shorter
            TOKEN + "0", TOKEN + TOKEN,           # longer
            "X" + TOKEN[1:],                      # same length, first byte
            TOKEN[:-1] + ("2" if TOKEN[-1] != "2" else "3"),  # same length, last byte
            TOKEN + " x", " " + TOKEN[1:],        # spaces inside the secret
            TOKEN.upper(), "ops",                 # case; the token's name
            "A" * 4096,                           # far longer
        ]
        for token in wrong:
            for method, path in (("GET", "/routes"), ("GET", "/metrics"), ("POST", "/reload"),
                                 ("PUT", "/routes/echo")):
                body = b'{"action": "svc"}' if method == "PUT" else None
                status, hdrs, raw = self.raw_admin(method, path, {"Authorization": f"Bearer {token}"},
                                                   body)
                self.assertEqual(status, 401, (method, path, token[:20], raw))
        # Other shapes of the header.
        for header in (TOKEN, f"Basic {TOKEN}", f"bearer{TOKEN}", f"Bearer  {TOKEN}x"):
            status, _, _ = self.raw_admin("GET", "/routes", {"Authorization": header})
            self.assertEqual(status, 401, header)
        status, routes = admin(self.api, "GET", "/routes", token=TOKEN)
        self.assertEqual(status, 200)
        self.assertEqual(routes[0]["action"], "legacy")  # nothing was flipped
        # Trailing spaces are not part of a header's value (RFC 9110 5.5,
        # OWS) and admin_authorize trims them deliberately, so "TOKEN   " is
        # the right token, not a wrong one.
        status, _, _ = self.raw_admin("GET", "/routes", {"Authorization": f"Bearer {TOKEN}   "})
        self.assertEqual(status, 200)

    def test_invalid_flips_are_400_and_leave_routes_conf_byte_identical(self):
        before = read(self.path)
        for action in ("missing", "svc intercept", "intercept", "", "   ", "svc\nroute x * -> svc",
                       "svc\n", "svc # comment", "#", "svc\r\nx"):
            status, body = self.flip("echo", action)
            self.assertEqual(status, 400, (action, body))
            self.assertEqual(read(self.path), before, action)
        status, routes = admin(self.api, "GET", "/routes", token=TOKEN)
        self.assertEqual([r["action"] for r in routes], ["legacy", "legacy"])

    def test_a_flip_keeps_mode_and_owner_of_routes_conf(self):
        os.chmod(self.path, 0o640)
        uid = gid = None
        if os.geteuid() == 0:
            uid, gid = 1, 1                     # daemon on Debian
            os.chown(self.path, uid, gid)
        st = os.stat(self.path)
        status, route = self.flip("echo", "svc")
        self.assertEqual(status, 200, route)
        after = os.stat(self.path)
        self.assertNotEqual(after.st_ino, st.st_ino, "rewritten atomically (a new file)")
        self.assertEqual(stat.S_IMODE(after.st_mode), 0o640)
        self.assertEqual((after.st_uid, after.st_gid), (st.st_uid, st.st_gid))
        if uid is not None:
            self.assertEqual((after.st_uid, after.st_gid), (uid, gid))
        self.assertIn(b"-> svc", read(self.path))

    def test_a_symlinked_routes_conf_stays_a_symlink(self):
        # Move the file elsewhere and point a link at it, then reload so the
        # proxy sees the same content through the link.
        real_dir = os.path.join(self.tmp, "real")
        os.makedirs(real_dir)
        target = os.path.join(real_dir, "routes.conf")
        os.rename(self.path, target)
        os.chmod(target, 0o600)
        os.symlink(target, self.path)
        status, body = admin(self.api, "POST", "/reload", token=TOKEN)
        self.assertEqual(status, 200, body)
        status, route = self.flip("echo", "svc")
        self.assertEqual(status, 200, route)
        self.assertTrue(os.path.islink(self.path), "routes.conf is still a symlink")
        self.assertEqual(os.readlink(self.path), target)
        self.assertIn(b"-> svc", read(target))
        self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o600)
        # Nothing was left beside the link or the target.
        self.assertEqual(sorted(os.listdir(real_dir)), ["routes.conf"])

    def test_no_secret_in_logs_routes_metrics_or_events(self):
        # A wrong token, an intercepted call (an event the broker never gets),
        # a flip, a reload.
        status, _ = admin(self.api, "GET", "/routes", token=TOKEN + "-wrong")
        self.assertEqual(status, 401)
        status, _, _ = post_xml(self.port, "<?xml version='1.0'?><methodCall><methodName>test.echo"
                                "</methodName><params><param><value><string>a</string></value>"
                                "</param></params></methodCall>")
        self.assertEqual(status, 200)
        status, route = self.flip("echo", "svc")
        self.assertEqual(status, 200, route)
        # A reload that changes the events line restarts the publisher on
        # another password-bearing URL.
        text = read(self.path).replace(b"@127.0.0.1:1/", b"@127.0.0.1:2/")
        with open(self.path, "wb") as f:
            f.write(text)
        status, body = admin(self.api, "POST", "/reload", token=TOKEN)
        self.assertEqual(status, 200, body)
        views = {"reload answer": json.dumps(body).encode()}
        # Both broker connections have failed (and are logged) by now.
        for port in (1, 2):
            eventually(lambda: f"@127.0.0.1:{port}/%2f: cannot connect" in self.proxy.output(),
                       message=f"the failed connection to 127.0.0.1:{port} is logged")
        time.sleep(0.5)
        check = subprocess.run([STRANGLER, "--check", "-c", self.path], capture_output=True,
                               timeout=30)
        self.assertEqual(check.returncode, 0, check.stderr)
        views["--check"] = check.stdout + check.stderr
        status, views["/routes"] = self.raw_admin("GET", "/routes",
                                                  {"Authorization": f"Bearer {TOKEN}"})[0::2]
        status, views["/metrics"] = self.raw_admin("GET", "/metrics",
                                                   {"Authorization": f"Bearer {TOKEN}"})[0::2]
        status, views["/methods"] = self.raw_admin("GET", "/methods",
                                                   {"Authorization": f"Bearer {TOKEN}"})[0::2]
        spool = os.path.join(os.path.dirname(self.path), "var", "spool")
        tail = subprocess.run([STRANGLER, "events", "tail", "--spool", spool],
                              capture_output=True, timeout=30)
        self.assertEqual(tail.returncode, 0, tail.stderr)
        self.assertIn(b"legacy.test.echo", tail.stdout)  # the event is there
        views["events tail"] = tail.stdout + tail.stderr
        views["stderr"] = self.proxy.output().encode()
        views["access log"] = read(self.access)
        self.assertIn(b"test.echo", views["access log"])
        self.assertIn(b"refused", views["stderr"])  # the wrong token was logged
        for name, text in views.items():
            for secret in (TOKEN, AMQP_PASSWORD):
                self.assertNotIn(secret.encode(), text, f"{secret} appears in {name}")

    def test_cross_origin_requests_are_refused_even_with_the_right_token(self):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        host = f"127.0.0.1:{self.api}"
        for origin in ("http://evil.example", "https://evil.example", "null",
                       f"http://localhost:{self.api}", f"https://{host}", f"http://{host}.evil"):
            for method, path in (("GET", "/routes"), ("PUT", "/routes/echo"),
                                 ("POST", "/reload"), ("GET", "/metrics")):
                body = b'{"action": "svc"}' if method == "PUT" else None
                status, _, raw = self.raw_admin(method, path, dict(auth, Origin=origin), body)
                self.assertEqual(status, 403, (origin, method, path, raw))
                self.assertIn(b"cross-origin", raw)
        # A page that rebinds its own name to 127.0.0.1 is "same origin" but
        # cannot know the token: 401, never served.
        rebound = {"Host": f"evil.example:{self.api}", "Origin": f"http://evil.example:{self.api}"}
        for method, path in (("GET", "/routes"), ("POST", "/reload"), ("GET", "/methods")):
            status, _, raw = self.raw_admin(method, path, rebound, b"" if method == "POST" else None)
            self.assertEqual(status, 401, (method, path, raw))
        # Same origin (the dashboard's own page) is served.
        status, _, _ = self.raw_admin("GET", "/routes", dict(auth, Origin=f"http://{host}"))
        self.assertEqual(status, 200)
        status, routes = admin(self.api, "GET", "/routes", token=TOKEN)
        self.assertEqual(routes[0]["action"], "legacy")


if __name__ == "__main__":
    unittest.main()
