"""A headless Chromium driven over the DevTools protocol, for the tests that
look at the dashboard as an operator's browser does.

No Selenium, no extra Python package: Chromium is started with
--remote-debugging-pipe, which speaks the Chrome DevTools Protocol (CDP) as
NUL-terminated JSON messages, reading commands on its fd 3 and writing
answers and events on its fd 4. One page is opened in a fresh profile and
attached in flat mode, so every command for it carries its sessionId.

Every wait has a deadline; close() kills the browser by its process group
even when a test failed half-way.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CHROMIUM = os.environ.get("STRANGLER_CHROMIUM", "/usr/bin/chromium")

COMMAND_TIMEOUT_S = 15


class BrowserError(AssertionError):
    pass


class Browser:
    """A headless Chromium with one page.

        b = Browser(log_dir)
        b.navigate("http://127.0.0.1:8081/")
        b.wait_for("document.querySelector('#token') !== null")
        b.close()
    """

    def __init__(self, log_dir, width=1400, height=1000):
        self._profile = tempfile.mkdtemp(prefix="chromium-", dir=log_dir)
        self._log = open(os.path.join(log_dir, "chromium.log"), "wb")
        self._next_id = 0
        self._answers = {}
        self._cond = threading.Condition()
        self._closed = False
        self.session = None
        self.events = []  # (method, params) of every event, in order
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--mute-audio", "--password-store=basic",
                f"--window-size={width},{height}", f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe", "about:blank"]
        # The pipe must be fds 3 and 4 in Chromium. A small Python program
        # moves the two ends there and execs it: no preexec_fn (unsafe in a
        # threaded process), and no shell (dash takes one-digit fds only).
        trampoline = ("import os, sys\n"
                      "r, w = int(sys.argv[1]), int(sys.argv[2])\n"
                      "r2, w2 = os.dup(r), os.dup(w)\n"  # neither dup2 below clobbers the other
                      "os.dup2(r2, 3)\n"
                      "os.dup2(w2, 4)\n"
                      "os.set_inheritable(3, True)\n"  # dup2 onto itself keeps close-on-exec
                      "os.set_inheritable(4, True)\n"
                      "for fd in {r, w, r2, w2} - {3, 4}:\n"
                      "    os.close(fd)\n"
                      "os.execv(sys.argv[3], sys.argv[3:])\n")
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", trampoline, str(to_browser_r),
                                          str(from_browser_w), *argv],
                                         pass_fds=(to_browser_r, from_browser_w),
                                         stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"},
                               session=False)["targetId"]
            self.session = self.send("Target.attachToTarget",
                                     {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    # ---- the pipe ----

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                with self._cond:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append((msg.get("method"), msg.get("params", {})))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, method, params=None, session=True, timeout=COMMAND_TIMEOUT_S):
        """Sends one CDP command (to the page unless session=False) and
        returns its result; raises BrowserError on an error answer."""
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_browser, data):]
        except OSError as e:
            raise BrowserError(f"chromium is gone ({e}); see {self._log.name}") from None
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no answer to {method} within {timeout}s")
                if self._closed:
                    raise BrowserError(f"chromium exited; see {self._log.name}")
                self._cond.wait(left)
            answer = self._answers.pop(mid)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    # ---- the page ----

    def navigate(self, url, timeout=15):
        """Loads url and waits until the document and its scripts are in."""
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigate {url}: {result['errorText']}")
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
                      timeout=timeout, message=f"{url} loaded")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises
        awaited); a thrown exception becomes BrowserError."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} threw: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression, timeout=10, message=None, interval=0.1):
        """Polls a JavaScript expression until it is truthy; returns its
        value."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = self.evaluate(expression)
            if last:
                return last
            if time.monotonic() >= deadline:
                raise BrowserError(f"{message or expression} not met within {timeout}s "
                                   f"(last: {last!r})")
            time.sleep(interval)

    def text(self, selector):
        """The text of the first element matching selector, or None."""
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " return e ? e.textContent : null; })()")

    def visible(self, selector):
        """Whether an element matching selector is rendered (not hidden, in
        a rendered ancestor)."""
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " return !!e && e.getClientRects().length > 0; })()")

    def type_into(self, selector, text):
        """Replaces an input's text the way typing does: focus, select all,
        insert (the page sees input events)."""
        self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      " e.focus(); e.select(); return true; })()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector):
        """Clicks the element at its position on screen, as a mouse would,
        after scrolling it into view."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                            " if (!e) return null; e.scrollIntoView({block: 'center'});"
                            " const r = e.getBoundingClientRect();"
                            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()")
        if box is None:
            raise BrowserError(f"nothing matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})

    def problems(self):
        """What the page complained about: uncaught exceptions, and console
        or browser errors (a CSP refusal is one), leaving out failed
        network requests, which the tests cause on purpose (401s)."""
        found = []
        with self._cond:
            events = list(self.events)
        for method, params in events:
            if method == "Runtime.exceptionThrown":
                found.append(params.get("exceptionDetails", {}).get("text"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", a.get("description")))
                                      for a in params.get("args", [])))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") == "error" and entry.get("source") != "network":
                    found.append(entry.get("text"))
        return found

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # The reader sees end-of-file once every process of the group is
        # gone; its fd is closed only after it stopped reading.
        self._reader.join(5)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)


def available():
    return os.access(CHROMIUM, os.X_OK)
