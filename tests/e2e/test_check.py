"""`strangler --check -c FILE`: a broken routes.conf exits 1 and names
each error as FILE:LINE: message, on the line that is wrong; a file that
is only suspicious exits 0 with FILE:LINE: warning: message."""

import os
import subprocess

from harness import STRANGLER, E2ETestCase

LEGACY = "upstream legacy http://127.0.0.1:8000/RPC2"
CATCH_ALL = "route everything * -> legacy"

# Each case: (name, lines of the file, line of the error, the message after
# "routes.conf:LINE: "). The broken line sits at a different depth in each,
# behind comments and blank lines, so a line count that is off shows.
ERRORS = [
    ("unknown upstream",
     ["listen 127.0.0.1:0", LEGACY, "route r xmlrpc stock.get -> nope", CATCH_ALL],
     3, "route r: unknown upstream 'nope'"),
    ("invalid match",
     ["# the shop", "", "listen 127.0.0.1:0", LEGACY, "", "route r bogus stock.get -> legacy",
      CATCH_ALL],
     6, "route r: invalid match (expected 'xmlrpc GLOB', 'http METHOD PATH' or '*', then "
        "optional 'header NAME=VALUE' conditions)"),
    ("header condition without a value",
     ["listen 127.0.0.1:0", "# upstreams", LEGACY, "# routes", "",
      "route r xmlrpc stock.get header X-Tenant -> legacy", CATCH_ALL],
     6, "route r: invalid condition 'header X-Tenant' (expected header NAME=VALUE)"),
    ("duplicate route name",
     ["listen 127.0.0.1:0", LEGACY, "", "route dup xmlrpc stock.get -> legacy", "# again:", "",
      "route dup xmlrpc stock.adjust -> legacy", CATCH_ALL],
     7, "route dup is defined twice (first on line 4)"),
    ("unknown directive",
     ["# comment", "# comment", "# comment", "listen 127.0.0.1:0", LEGACY, "", "", "",
      "frobnicate yes", CATCH_ALL],
     9, "unknown directive 'frobnicate'"),
    ("invalid duration",
     ["", "listen 127.0.0.1:0", "", "upstream legacy http://127.0.0.1:8000/RPC2 timeout=fast",
      CATCH_ALL],
     4, "timeout: invalid duration 'fast' (expected milliseconds, or a number with ms, s, m, h or d)"),
    ("admin on a non-loopback address without a token",
     ["listen 127.0.0.1:0", "# admin, open to all", "", "", "", "admin 0.0.0.0:0", LEGACY,
      CATCH_ALL],
     6, "admin: 0.0.0.0:0 is not a loopback address; set token= to expose the admin API"),
    ("upstream URL not http",
     ["listen 127.0.0.1:0", "", "# TLS is not spoken", "upstream legacy https://127.0.0.1:8000/RPC2",
      CATCH_ALL],
     4, "upstream legacy: URL must start with http:// (got 'https://127.0.0.1:8000/RPC2')"),
    ("http match to a json upstream",
     ["listen 127.0.0.1:0", LEGACY, "upstream svc http://127.0.0.1:9001/rpc kind=json", "#", "#",
      "#", "#", "route raw http POST /raw -> svc", CATCH_ALL],
     8, "route raw: upstream svc (kind=json) needs XML-RPC calls; use an xmlrpc match"),
    ("unknown route option",
     ["listen 127.0.0.1:0", LEGACY, "", "", "", "", "", "", "", "",
      "route r xmlrpc stock.get -> legacy intercpt", CATCH_ALL],
     11, "route r: unknown option 'intercpt' (expected intercept, intercept=TYPE, key=KEY, on=success|all, redact=PATHS, map=METHOD:PATH, ignore=PATHS, tolerance=X or rollback=errors|mismatches>N%/DURATION)"),
]

WARNINGS = [
    ("route shadowed by an earlier one",
     ["listen 127.0.0.1:0", LEGACY, "# the catch-all came first by mistake",
      "route everything * -> legacy", "", "route stock-read xmlrpc stock.get -> legacy"],
     6, "warning: route stock-read can never match: route everything (line 4) takes all it would"),
    ("upstream no route uses",
     ["listen 127.0.0.1:0", "", LEGACY, "", "upstream spare http://127.0.0.1:9001/rpc kind=json",
      CATCH_ALL],
     5, "warning: upstream spare is not used by any route"),
]


class CheckTest(E2ETestCase):
    def check(self, name, lines):
        """Runs --check on a routes.conf made of lines; returns (exit code,
        stderr)."""
        folder = os.path.join(self.tmp, name.replace(" ", "-"))
        os.makedirs(folder)
        path = os.path.join(folder, "routes.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        out = subprocess.run([STRANGLER, "--check", "-c", path], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
        return out.returncode, out.stderr

    def test_each_error_exits_1_naming_its_file_and_line(self):
        for name, lines, line, message in ERRORS:
            with self.subTest(name):
                self.assertEqual(lines[line - 1] != "" and not lines[line - 1].startswith("#"),
                                 True, "the case points at a blank or comment line")
                rc, err = self.check(name, lines)
                self.assertEqual(rc, 1, err)
                self.assertIn(f"routes.conf:{line}: {message}\n", err)
                # That is the only error reported.
                errors = [l for l in err.splitlines()
                          if "routes.conf:" in l and ": warning: " not in l]
                self.assertEqual(len(errors), 1, err)

    def test_warnings_exit_0_naming_their_file_and_line(self):
        for name, lines, line, message in WARNINGS:
            with self.subTest(name):
                rc, err = self.check(name, lines)
                self.assertEqual(rc, 0, err)
                self.assertIn(f"routes.conf:{line}: {message}\n", err)
                self.assertNotIn(": error", err)

    def test_the_same_files_without_the_mistake_pass(self):
        # The control: each case's file is fine once its broken line is a
        # comment (when the rest still holds together), so the error above
        # came from that line.
        for name, lines, line, message in ERRORS:
            if name in ("invalid duration", "upstream URL not http"):
                continue  # without the upstream, nothing would route
            with self.subTest(name):
                fixed = list(lines)
                fixed[line - 1] = "# " + fixed[line - 1]
                rc, err = self.check(name + " fixed", fixed)
                self.assertEqual(rc, 0, err)
