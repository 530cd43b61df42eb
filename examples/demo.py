#!/usr/bin/env python3
"""make demo: the whole strangler-fig story, on real processes.

Starts a private RabbitMQ node, the legacy XML-RPC shop, the new stock
service and Strangler (with a working copy of the repository's routes.conf),
then drives a stock XML-RPC client through the three steps of event
interception:

  1. the legacy answers every call; Strangler intercepts the stock and order
     calls and raises them as CloudEvents on RabbitMQ;
  2. the new stock service, subscribed to those events, builds its own model
     until it agrees with the legacy;
  3. the stock.get route is flipped to the new service, live, with
     `strangler flip stock-read stock-svc` (the admin API writes it back to
     routes.conf), and the client gets the same answers, now from the new
     service.

It prints what happens at each step and stops everything it started.

    examples/demo.py [--build DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "e2e"))
import rabbitmq  # noqa: E402

SKUS = ["HAM-001", "NAIL-100", "SAW-010"]


def say(text=""):
    print(text, flush=True)


def step(n, title):
    say()
    say(f"== Step {n}: {title}")


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Demo:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.dir = os.path.join(self.build, "demo")
        self.procs = []
        self.broker = None

    # --- setup ------------------------------------------------------------

    def ports(self):
        """The ports routes.conf names; any that is taken is replaced by a
        free one in the demo's working copy (and said so)."""
        with open(os.path.join(SOURCE, "routes.conf")) as f:
            text = f.read()
        wanted = {"proxy": 8080, "admin": 8081, "legacy": 8000, "service": 9001, "amqp": 5672}
        chosen = {}
        for name, port in wanted.items():
            if port_free(port):
                chosen[name] = port
            else:
                chosen[name] = rabbitmq.free_port()
                say(f"   (port {port} for {name} is taken here; the demo uses {chosen[name]})")
                text = re.sub(rf"127\.0\.0\.1:{port}\b", f"127.0.0.1:{chosen[name]}", text)
        return text, chosen

    def start(self, name, argv, ready):
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                start_new_session=True)
        self.procs.append((name, proc, log))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if ready in line:
                return proc
            if not line and proc.poll() is not None:
                break
        raise SystemExit(f"demo: {name} did not start; see {self.dir}/{name}.log")

    def start_proxy(self, config):
        log = open(os.path.join(self.dir, "strangler.log"), "w")
        proc = subprocess.Popen([os.path.join(self.build, "strangler"), "-c", config],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(("strangler", proc, log))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(os.path.join(self.dir, "strangler.log")) as f:
                if "listening on" in f.read():
                    return proc
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"demo: strangler did not start; see {self.dir}/strangler.log")

    def stop_all(self):
        for name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
        self.procs = []
        if self.broker is not None:
            self.broker.stop()

    # --- the story ----------------------------------------------------------

    def model(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports_['service']}/model",
                                    timeout=5) as r:
            return json.load(r)

    def run(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        text, self.ports_ = self.ports()
        config = os.path.join(self.dir, "routes.conf")
        with open(config, "w") as f:
            f.write(text)
        amqp = f"amqp://guest:guest@127.0.0.1:{self.ports_['amqp']}/%2f"

        say("Strangler demo: retiring stock.get from a legacy XML-RPC shop")
        say(f"   working copy of routes.conf: {config}")
        say("   starting RabbitMQ (a private node under build/demo)...")
        self.broker = rabbitmq.Broker(os.path.join(self.dir, "rabbitmq"),
                                      port=self.ports_["amqp"]).start()
        self.start("legacy-shop", [sys.executable, os.path.join(HERE, "legacy-shop", "shop.py"),
                                   "--port", str(self.ports_["legacy"])], "listening")
        service = os.path.join(self.build, "examples", "stock-service", "stock-service")
        self.start("stock-service", [service, "--listen", f"127.0.0.1:{self.ports_['service']}",
                                     "--amqp", amqp, "--log-level", "debug"], "listening")
        self.start_proxy(config)
        say(f"   legacy shop :{self.ports_['legacy']}, stock service :{self.ports_['service']}, "
            f"strangler :{self.ports_['proxy']}, RabbitMQ :{self.ports_['amqp']}")
        self.wait_for_feed()

        client = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.ports_['proxy']}/RPC2",
                                           use_builtin_types=True)
        legacy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.ports_['legacy']}/RPC2",
                                           use_builtin_types=True)

        step(1, "the legacy answers; Strangler raises events from what it intercepts")
        for sku in SKUS:
            say(f"   stock.get({sku!r}) -> {client.stock.get(sku)}")
        say(f"   stock.adjust('HAM-001', 5) -> {client.stock.adjust('HAM-001', 5)}")
        order = client.orders.create("acme", [{"sku": "NAIL-100", "qty": 10}])
        say(f"   orders.create('acme', [NAIL-100 x 10]) -> order {order['id']}, "
            f"NAIL-100 remaining {order['items'][0]['remaining']}")
        say("   each call above went to the legacy and was raised as a CloudEvent "
            "(legacy.stock.get, legacy.stock.adjust, orders.changed)")

        step(2, "the new stock service builds its own model from the events")
        expected = {sku: legacy.stock.get(sku) for sku in SKUS}
        deadline = time.monotonic() + 30
        while True:
            model = self.model()
            known = model.get("skus", {})
            if all(known.get(s) == expected[s] for s in SKUS):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: the model did not catch up: {model}")
            time.sleep(0.2)
        say(f"   events applied: {model['events_applied']}, duplicates ignored: "
            f"{model['duplicates_ignored']}")
        for sku in SKUS:
            say(f"   model[{sku}] = {known[sku]}   (legacy says qty {expected[sku]['qty']})")
        say("   the model agrees with the legacy for every sku it has seen")

        step(3, "flip stock.get to the new service; the client cannot tell")
        self.flip(config)
        for sku in SKUS + ["NOPE-404"]:
            through, direct = outcome(client.stock.get, sku), outcome(legacy.stock.get, sku)
            mark = "same as the legacy" if through == direct else f"DIFFERENT from {direct}"
            say(f"   stock.get({sku!r}) -> {through}   ({mark})")
            if through != direct:
                raise SystemExit("demo: the flipped route answered differently")
        served = open(os.path.join(self.dir, "stock-service.log")).read().count("stock.get -> ")
        say(f"   the stock service answered {served} stock.get calls itself (its log)")
        say(f"   stock.adjust still goes to the legacy: "
            f"{client.stock.adjust('SAW-010', -1)}")

        step(4, "what share of the traffic is strangled, and what to strangle next")
        argv = [os.path.join(self.build, "strangler"), "-c", config, "methods"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise SystemExit(f"demo: strangler methods failed: {out.stderr.strip()}")
        say("   $ strangler -c routes.conf methods")
        for line in out.stdout.splitlines():
            say(f"   {line}")
        say(f"   the same, live, with a flip control per route: "
            f"http://127.0.0.1:{self.ports_['admin']}/ (and /metrics for Prometheus)")
        say()
        say("The route is flipped and no client changed. Logs: " + self.dir)

    def wait_for_feed(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.model().get("feed_connected"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("demo: the stock service did not subscribe to the events")

    def flip(self, config):
        """The migration team's command: strangler flip, through the admin API."""
        argv = [os.path.join(self.build, "strangler"), "-c", config, "flip", "stock-read",
                "stock-svc"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise SystemExit(f"demo: the flip was refused: {out.stderr.strip()}")
        say(f"   $ strangler -c routes.conf flip stock-read stock-svc")
        say(f"   {out.stdout.strip()}")
        with open(config) as f:
            line = next(l for l in f if l.startswith("route stock-read"))
        say(f"   routes.conf now says: {line.strip()}")


def outcome(fn, *args):
    try:
        return fn(*args)
    except xmlrpc.client.Fault as f:
        return f"fault {f.faultCode}: {f.faultString}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    args = ap.parse_args()
    demo = Demo(args.build)
    try:
        demo.run()
    finally:
        say("   stopping everything the demo started...")
        demo.stop_all()


if __name__ == "__main__":
    main()
