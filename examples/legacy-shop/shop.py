#!/usr/bin/env python3
"""legacy-shop: the demo legacy monolith Strangler stands in front of.

A small XML-RPC "shop" written the way such systems usually are: one
endpoint (/RPC2), a threaded server, HTTP/1.1 keep-alive, nil allowed, and
every method living in one process with its state in memory. Python 3
standard library only.

    shop.py [--host 127.0.0.1] [--port 8000] [--verbose]

--port 0 picks a free port. Once the socket is bound the shop prints exactly
one line, "legacy-shop listening on HOST:PORT", to stdout (tests read it to
learn the port); request logs go to stderr, and only with --verbose.

Methods (faults carry HTTP-like codes: 400 malformed arguments, 404 unknown,
409 insufficient stock):

    stock.get(sku)                 -> {sku, name, qty, price}
    stock.adjust(sku, delta)       -> the updated record; qty never below 0
    stock.list()                   -> records sorted by sku
    orders.create(customer, items) -> {id, customer, items, total, created}
                                      items: [{sku, qty}], all or nothing
    orders.get(id), orders.list()
    catalog.list()                 -> [{sku, name, price}] sorted by sku
    catalog.get(sku)               -> {sku, name, price}
    test.echo(*args)               -> args as a list, unchanged
    test.fault(code, message)      -> raises that fault
    system.listMethods, system.methodHelp, system.methodSignature,
    system.multicall
"""

import argparse
import copy
import datetime
import signal
import socketserver
import sys
import threading
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

# The initial stock, identical on every start so tests can rely on it.
# Prices are floats on purpose, including whole ones (24.0), so that doubles
# have to survive every hop as doubles.
INITIAL_STOCK = (
    ("HAM-001", "Claw hammer", 12, 19.99),
    ("NAIL-100", "Box of 100 nails", 250, 4.5),
    ("SAW-010", "Hand saw", 7, 24.0),
    ("SCR-200", "Screwdriver set", 30, 12.5),
    ("TAPE-025", "Tape measure, 25 ft", 3, 8.75),
)

# XML-RPC <int> is a signed 32-bit value; refuse anything the marshaller
# could not send back.
INT_MAX = 2**31 - 1


def _is_int(v):
    # bool is a subclass of int; a <boolean> is not a quantity.
    return isinstance(v, int) and not isinstance(v, bool)


def _bad_params(signature):
    return Fault(400, f"invalid params: expected {signature}")


class Shop:
    """The shop's state. One lock guards everything: the shop is small and a
    single lock makes orders trivially all-or-nothing."""

    def __init__(self, clock=None):
        # clock() gives the current UTC time; a stopped clock makes the
        # answers reproducible, so that tests can compare two shops.
        self._clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self._lock = threading.Lock()
        self._stock = {}
        for sku, name, qty, price in INITIAL_STOCK:
            self._stock[sku] = {"sku": sku, "name": name, "qty": qty, "price": price}
        self._orders = {}
        self._next_order_id = 1

    # Records handed to the marshaller are copies: it runs outside the lock.

    def _record(self, sku):
        if not isinstance(sku, str):
            raise _bad_params("(sku: string)")
        rec = self._stock.get(sku)
        if rec is None:
            raise Fault(404, f"unknown sku: {sku}")
        return rec

    def stock_get(self, *args):
        """stock.get(sku) -> {sku, name, qty, price}"""
        if len(args) != 1:
            raise _bad_params("(sku: string)")
        with self._lock:
            return dict(self._record(args[0]))

    def stock_adjust(self, *args):
        """stock.adjust(sku, delta) -> the updated {sku, name, qty, price}"""
        if len(args) != 2 or not _is_int(args[1]):
            raise _bad_params("(sku: string, delta: int)")
        sku, delta = args
        with self._lock:
            rec = self._record(sku)
            new_qty = rec["qty"] + delta
            if new_qty < 0:
                raise Fault(409, f"insufficient stock for {sku}: have {rec['qty']}, need {-delta}")
            if new_qty > INT_MAX:
                raise Fault(400, f"quantity out of range for {sku}")
            rec["qty"] = new_qty
            return dict(rec)

    def stock_list(self, *args):
        """stock.list() -> [{sku, name, qty, price}] sorted by sku"""
        if args:
            raise _bad_params("()")
        with self._lock:
            return [dict(self._stock[sku]) for sku in sorted(self._stock)]

    def orders_create(self, *args):
        """orders.create(customer, [{sku, qty}]) -> {id, customer, items, total, created}"""
        signature = "(customer: string, items: [{sku: string, qty: int > 0}])"
        if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], list):
            raise _bad_params(signature)
        customer, items = args
        if not items:
            raise Fault(400, "order has no items")
        wanted = []
        for item in items:
            if (not isinstance(item, dict) or not isinstance(item.get("sku"), str)
                    or not _is_int(item.get("qty")) or item["qty"] <= 0
                    or item["qty"] > INT_MAX):
                raise _bad_params(signature)
            wanted.append((item["sku"], item["qty"]))

        with self._lock:
            # Check everything first (the same sku may appear twice), then
            # apply: an order either happens entirely or not at all.
            need = {}
            for sku, qty in wanted:
                self._record(sku)
                need[sku] = need.get(sku, 0) + qty
            for sku, qty in need.items():
                have = self._stock[sku]["qty"]
                if have < qty:
                    raise Fault(409, f"insufficient stock for {sku}: have {have}, need {qty}")
            for sku, qty in need.items():
                self._stock[sku]["qty"] -= qty

            total = 0.0
            lines = []
            for sku, qty in wanted:
                rec = self._stock[sku]
                total += rec["price"] * qty
                lines.append({"sku": sku, "qty": qty, "remaining": rec["qty"]})
            # XML-RPC dateTime.iso8601 has no zone and no fraction: send UTC
            # to the second, as naive datetime.
            now = self._clock()
            order = {
                "id": self._next_order_id,
                "customer": customer,
                "items": lines,
                "total": round(total, 2),
                "created": now.replace(microsecond=0, tzinfo=None),
            }
            self._orders[order["id"]] = order
            self._next_order_id += 1
            return copy.deepcopy(order)

    def orders_get(self, *args):
        """orders.get(id) -> {id, customer, items, total, created}"""
        if len(args) != 1 or not _is_int(args[0]):
            raise _bad_params("(id: int)")
        with self._lock:
            order = self._orders.get(args[0])
            if order is None:
                raise Fault(404, f"unknown order: {args[0]}")
            return copy.deepcopy(order)

    def orders_list(self, *args):
        """orders.list() -> [order] sorted by id"""
        if args:
            raise _bad_params("()")
        with self._lock:
            return [copy.deepcopy(self._orders[i]) for i in sorted(self._orders)]

    @staticmethod
    def _catalog_entry(rec):
        return {"sku": rec["sku"], "name": rec["name"], "price": rec["price"]}

    def catalog_list(self, *args):
        """catalog.list() -> [{sku, name, price}] sorted by sku"""
        if args:
            raise _bad_params("()")
        with self._lock:
            return [self._catalog_entry(self._stock[sku]) for sku in sorted(self._stock)]

    def catalog_get(self, *args):
        """catalog.get(sku) -> {sku, name, price}"""
        if len(args) != 1:
            raise _bad_params("(sku: string)")
        with self._lock:
            return self._catalog_entry(self._record(args[0]))

    @staticmethod
    def test_echo(*args):
        """test.echo(...) -> its params as an array, unchanged"""
        return list(args)

    @staticmethod
    def test_fault(*args):
        """test.fault(code, message) -> raises that fault"""
        if len(args) != 2 or not _is_int(args[0]) or not isinstance(args[1], str):
            raise _bad_params("(code: int, message: string)")
        raise Fault(args[0], args[1])


class Handler(SimpleXMLRPCRequestHandler):
    # Legacy clients keep their connections open; so does the proxy.
    protocol_version = "HTTP/1.1"
    rpc_paths = ("/RPC2",)

    # The largest body of a wrong-path request worth reading to keep the
    # connection usable; anything bigger closes the connection instead.
    DRAIN_LIMIT = 1 << 20

    def report_404(self):
        # The stock handler answers 404 without reading the request body,
        # which leaves the body on a keep-alive connection to be parsed as
        # the next request. Drain it, or give up on the connection.
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= self.DRAIN_LIMIT:
            self.rfile.read(length)
        else:
            self.close_connection = True
        super().report_404()

    def log_message(self, format, *args):
        # Errors as well as requests: stderr stays quiet unless --verbose.
        if self.server.logRequests:
            super().log_message(format, *args)


class Server(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True
    allow_reuse_address = True


def build_server(host, port, verbose, clock=None):
    server = Server((host, port), requestHandler=Handler, logRequests=verbose,
                    allow_none=True, use_builtin_types=True)
    shop = Shop(clock)
    methods = {
        "stock.get": shop.stock_get,
        "stock.adjust": shop.stock_adjust,
        "stock.list": shop.stock_list,
        "orders.create": shop.orders_create,
        "orders.get": shop.orders_get,
        "orders.list": shop.orders_list,
        "catalog.list": shop.catalog_list,
        "catalog.get": shop.catalog_get,
        "test.echo": shop.test_echo,
        "test.fault": shop.test_fault,
    }
    for name, func in methods.items():
        server.register_function(func, name)
    server.register_multicall_functions()
    server.register_introspection_functions()
    return server


def stopped_clock(text):
    """--clock's value, an ISO 8601 UTC time, as a clock that stays there."""
    when = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
    return lambda: when


def add_clock_argument(parser):
    parser.add_argument("--clock", type=stopped_clock, default=None, metavar="ISO-TIME",
                        help="stop the shop's clock at this UTC time (reproducible answers)")


def main(argv=None):
    parser = argparse.ArgumentParser(description="The demo legacy XML-RPC shop.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    add_clock_argument(parser)
    args = parser.parse_args(argv)

    server = build_server(args.host, args.port, args.verbose, args.clock)

    def stop(signum, frame):
        # serve_forever() runs in this (main) thread, so shutdown() would
        # deadlock here; leaving through an exception unwinds it instead.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host, port = server.server_address[:2]
    print(f"legacy-shop listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
