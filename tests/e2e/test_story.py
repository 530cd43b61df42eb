"""The story of the demo, asserted: the legacy answers and its calls are
raised as events; the new stock service builds its model from them; the
stock.get route is flipped and a stock client gets identical answers."""

import re
import signal
import xmlrpc.client

from harness import E2ETestCase, broker_url, eventually, outcome, wait_for_stock_model

SKUS = ["HAM-001", "NAIL-100", "SAW-010", "SCR-200"]


class StoryTest(E2ETestCase):
    def test_intercept_build_model_flip(self):
        legacy_port = self.start_legacy()
        exchange = self.unique("story")
        svc, svc_port = self.start_stock_service(self.unique("stock-service"), exchange)

        conf = f"""
listen 127.0.0.1:0
workers 2
upstream legacy    http://127.0.0.1:{legacy_port}/RPC2
upstream stock-svc http://127.0.0.1:{svc_port}/rpc kind=json timeout=2000
events {broker_url()} exchange={exchange}
route stock-read  xmlrpc stock.get    -> legacy intercept
route stock-write xmlrpc stock.adjust -> legacy intercept
route orders      xmlrpc orders.*     -> legacy intercept=orders.changed
route everything  *                   -> legacy
"""
        proxy, port, path = self.start_proxy(conf)
        client = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2", use_builtin_types=True)
        legacy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{legacy_port}/RPC2",
                                           use_builtin_types=True)

        # 1. The legacy answers; the calls are intercepted.
        for sku in SKUS:
            client.stock.get(sku)
        client.stock.adjust("HAM-001", 4)
        client.orders.create("acme", [{"sku": "NAIL-100", "qty": 7}, {"sku": "SAW-010", "qty": 1}])
        client.stock.adjust("SCR-200", -2)

        # 2. The new service's model catches up with the legacy.
        wait_for_stock_model(svc_port, legacy_port, SKUS)

        # 3. Flip stock.get to the new service.
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"(route stock-read\s+xmlrpc stock\.get\s+->\s+)legacy", r"\1stock-svc",
                           text))
        proxy.send_signal(signal.SIGHUP)
        proxy.wait_for_output("reloaded")
        for sku in SKUS + ["UNKNOWN-1"]:
            self.assertEqual(outcome(client.stock.get, sku), outcome(legacy.stock.get, sku), sku)
        # The new service answered them: its own request log says so.
        self.assertEqual(len(re.findall(r"stock\.get -> 200", svc.output())), len(SKUS))
        self.assertEqual(len(re.findall(r"stock\.get -> 404", svc.output())), 1)
        # Writes still reach the legacy, and their events keep the model current.
        client.stock.adjust("HAM-001", -1)
        after = legacy.stock.get("HAM-001")
        eventually(lambda: outcome(client.stock.get, "HAM-001") == ("result", after),
                   message="new service sees the later write")
