"""The process contract: --check, SIGHUP reload (a bad file keeps the
running table), SIGTERM drain (requests in flight finish, exit 0)."""

import signal
import subprocess
import threading
import time

from harness import STRANGLER, E2ETestCase, eventually, http_request


class CheckTest(E2ETestCase):
    def test_valid_file_exits_0(self):
        path = self.write_config("""
listen 127.0.0.1:0
upstream legacy http://127.0.0.1:8000/RPC2
route all * -> legacy
""")
        out = subprocess.run([STRANGLER, "--check", "-c", path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ok", out.stdout)

    def test_errors_are_file_line_message_and_exit_1(self):
        path = self.write_config("listen 127.0.0.1:0\n"
                                 "upstream legacy http://127.0.0.1:8000/RPC2\n"
                                 "route a xmlrpc stock.* -> nowhere\n"
                                 "workers lots\n"
                                 "frobnicate yes\n")
        out = subprocess.run([STRANGLER, "--check", "-c", path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        lines = out.stderr.strip().splitlines()
        self.assertIn(f"{path}:3: route a: unknown upstream 'nowhere'", lines)
        self.assertIn(f"{path}:4: workers: invalid number 'lots'", lines)
        self.assertIn(f"{path}:5: unknown directive 'frobnicate'", lines)

    def test_missing_file(self):
        out = subprocess.run([STRANGLER, "--check", "-c", "/nonexistent/routes.conf"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("/nonexistent/routes.conf:0: cannot open", out.stderr)


class ReloadAndDrainTest(E2ETestCase):
    def conf(self, first, second):
        return f"""
listen 127.0.0.1:0
workers 2
upstream first  http://127.0.0.1:{first}
upstream second http://127.0.0.1:{second}
route api http GET /api/* -> {{target}}
route all * -> first
"""

    def test_sighup_applies_a_good_file_and_keeps_the_table_on_a_bad_one(self):
        a, b = self.start_upstream(), self.start_upstream()
        template = self.conf(a.port, b.port)
        proxy, port, path = self.start_proxy(template.format(target="first"))
        http_request(port, "GET", "/api/x")
        self.assertEqual(len(a.requests), 1)

        with open(path, "w") as f:
            f.write(template.format(target="second"))
        proxy.send_signal(signal.SIGHUP)
        proxy.wait_for_output(r"reloaded")
        http_request(port, "GET", "/api/y")
        self.assertEqual(b.last()["path"], "/api/y")

        with open(path, "w") as f:
            f.write(template.format(target="first") + "route broken\nbogus directive\n")
        proxy.send_signal(signal.SIGHUP)
        proxy.wait_for_output(r"reload rejected: .*routes\.conf:\d+: unknown directive 'bogus'")
        http_request(port, "GET", "/api/z")
        self.assertEqual(b.last()["path"], "/api/z")  # the running table stayed

    def test_sigterm_finishes_requests_in_flight_and_exits_0(self):
        up = self.start_upstream()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream slow http://127.0.0.1:{up.port} timeout=5000
route all * -> slow
""")
        result = {}

        def slow_request():
            result["answer"] = http_request(port, "GET", "/slow?ms=1200")

        t = threading.Thread(target=slow_request)
        t.start()
        eventually(lambda: len(up.requests) == 1, message="request reached the upstream")
        proxy.send_signal(signal.SIGTERM)
        t.join(10)
        self.assertEqual(result["answer"][0], 200)
        self.assertEqual(proxy.proc.wait(10), 0)
        with self.assertRaises(OSError):
            http_request(port, "GET", "/echo", timeout=2)

    def test_sigterm_with_idle_keepalive_clients_exits_promptly(self):
        up = self.start_upstream()
        proxy, port, _ = self.start_proxy(f"""
listen 127.0.0.1:0
upstream u http://127.0.0.1:{up.port}
route all * -> u
""")
        import http.client
        conns = []
        for _ in range(5):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/echo")
            c.getresponse().read()
            conns.append(c)
        start = time.monotonic()
        proxy.send_signal(signal.SIGTERM)
        self.assertEqual(proxy.proc.wait(10), 0)
        self.assertLess(time.monotonic() - start, 3)
        for c in conns:
            c.close()
