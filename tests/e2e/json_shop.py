#!/usr/bin/env python3
"""json-shop: the demo legacy shop served as a *new service*, over the JSON
contract of DESIGN.md, for the fidelity suite (test_fidelity.py).

It runs the very same Shop class as examples/legacy-shop/shop.py (imported
from that file, which stays untouched) behind a different front:

    POST {base}/{method}   body: the JSON array of the params
        200  the JSON result
        500  {"faultCode": N, "faultString": "..."} for every fault
    POST anything else  404 {"faultCode": -32601, ...}

Only the front is new; the dispatch mirrors the legacy's exactly. The
legacy is a SimpleXMLRPCServer with allow_none and use_builtin_types, the
shop's methods registered one by one (register_function), plus the
multicall and introspection functions. So is this service's dispatcher: a
SimpleXMLRPCDispatcher (the mixin that does the legacy's dispatching,
without its socket), registered the same way. Each request is handled the
way SimpleXMLRPCDispatcher._marshaled_dispatch handles one, with JSON in
place of XML on both sides:

    - decoding the params, dispatching and encoding the result happen in
      one try block;
    - an xmlrpc.client.Fault is that fault;
    - any other exception, including an unknown method (the dispatcher
      raises Exception('method "x" is not supported')), a params text it
      cannot decode, a {"$datetime"} that is not "%Y%m%dT%H:%M:%S" or a
      result it cannot encode, is faultCode 1 with faultString
      "%s:%s" % (type(exc), exc), as the legacy sends it.

Every fault is answered with HTTP 500 (the contract lets a service choose
any 4xx/5xx; one status for all keeps the service as simple as the legacy,
whose faults all travel with HTTP 200).

Values (DESIGN.md, the JSON contract): {"$base64": "..."} is bytes,
{"$datetime": "YYYYMMDDTHH:MM:SS"} a naive datetime.datetime (parsed as
xmlrpc.client parses dateTime.iso8601), null None; objects keep their
member order (a duplicate key keeps the first place and the last value, as
xmlrpc.client does with duplicate struct members). Results go back the same
way; floats are written with repr (json's own), so -0.0, 5e-324 and
1.7976931348623157e308 survive, ints as ints. Unlike the legacy's
marshaller, an int beyond 32 bits is answered as it is (the proxy writes
it as <i8>), which the contract allows and the legacy cannot do.

    json_shop.py [--host 127.0.0.1] [--port 0] [--base /rpc] [--shop PATH] [--verbose]

--shop defaults to harness.SHOP, the demo legacy's shop.py.

Prints "json-shop listening on HOST:PORT" once bound, like shop.py.
"""

import argparse
import base64
import datetime
import http.server
import importlib.util
import json
import signal
import socketserver
import sys
import urllib.parse
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCDispatcher

from harness import SHOP


# xmlrpc.client's own format for dateTime.iso8601 (its _datetime_type and
# _iso8601_format), so a bad text fails here exactly as it fails there.
XMLRPC_DATETIME = "%Y%m%dT%H:%M:%S"


def load_shop_module(path):
    """Imports the legacy shop's source file as a module, without running
    its main()."""
    spec = importlib.util.spec_from_file_location("legacy_shop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shop_methods(shop):
    """The shop's XML-RPC methods, named as shop.py registers them: each
    public method `area_verb` of Shop is the XML-RPC method `area.verb`."""
    return {name.replace("_", ".", 1): getattr(shop, name)
            for name in dir(type(shop)) if not name.startswith("_")}


def build_dispatcher(module, clock=None):
    """A dispatcher registered as shop.py's build_server registers its
    server: the shop's methods, then multicall, then introspection."""
    dispatcher = SimpleXMLRPCDispatcher(allow_none=True, use_builtin_types=True)
    for name, func in shop_methods(module.Shop(clock)).items():
        dispatcher.register_function(func, name)
    dispatcher.register_multicall_functions()
    dispatcher.register_introspection_functions()
    return dispatcher


# --- the JSON contract's values ---------------------------------------------

def from_json_object(pairs):
    """object_pairs_hook: a JSON object as the Python value the legacy's
    unmarshaller would have made of the XML-RPC value it stands for."""
    if len(pairs) == 1:
        key, value = pairs[0]
        if key == "$base64" and isinstance(value, str):
            # xmlrpc.client reads <base64> with base64.decodebytes.
            return base64.decodebytes(value.encode("ascii"))
        if key == "$datetime" and isinstance(value, str):
            return datetime.datetime.strptime(value, XMLRPC_DATETIME)
    return dict(pairs)


def to_json_value(value):
    """json.dumps(default=...): the tagged forms of the two types JSON has
    no literal for. Anything else cannot be answered, as the legacy's
    marshaller cannot answer it."""
    if isinstance(value, (bytes, bytearray)):
        return {"$base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime.datetime):
        # xmlrpc.client writes years below 1000 with four digits too.
        return {"$datetime": "%04d%s" % (value.year, value.strftime(XMLRPC_DATETIME[2:]))}
    raise TypeError(f"cannot marshal {type(value)} objects")


def decode_params(raw):
    params = json.loads(raw.decode("utf-8"), object_pairs_hook=from_json_object)
    if not isinstance(params, list):
        raise TypeError("the params must be a JSON array")
    return params


def encode(value):
    # allow_nan=False: NaN and Infinity have no JSON form (RFC 8259, 6).
    return json.dumps(value, default=to_json_value, ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def answer(dispatcher, method, raw):
    """(status, JSON body) for one call, as _marshaled_dispatch would have
    answered it in XML."""
    try:
        return 200, encode(dispatcher._dispatch(method, decode_params(raw)))
    except Fault as fault:
        fault_code, fault_string = fault.faultCode, fault.faultString
    except BaseException as exc:  # what the legacy catches
        fault_code, fault_string = 1, "%s:%s" % (type(exc), exc)
    return 500, encode({"faultCode": fault_code, "faultString": fault_string})


class Handler(http.server.BaseHTTPRequestHandler):
    # Keep-alive with Content-Length on every answer, as the proxy expects.
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        prefix = self.server.base + "/"
        path = self.path.split("?", 1)[0]
        if path.startswith(prefix):
            status, payload = answer(self.server.dispatcher,
                                     urllib.parse.unquote(path[len(prefix):]), raw)
        else:
            status, payload = 404, encode({"faultCode": -32601,
                                           "faultString": f"no such path: {path}"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    parser = argparse.ArgumentParser(description="The demo shop as a JSON new service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--base", default="/rpc", help="the path the methods live under")
    parser.add_argument("--shop", default=SHOP, help="the legacy shop's shop.py")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--clock", default=None, metavar="ISO-TIME",
                        help="stop the shop's clock at this UTC time (reproducible answers)")
    args = parser.parse_args(argv)

    shop_module = load_shop_module(args.shop)
    server = Server((args.host, args.port), Handler)
    clock = shop_module.stopped_clock(args.clock) if args.clock else None
    server.dispatcher = build_dispatcher(shop_module, clock)
    server.base = args.base.rstrip("/")
    server.verbose = args.verbose

    # SIGTERM and SIGINT leave serve_forever() (which runs in this thread,
    # so shutdown() would wait for itself) through SystemExit: exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(0))
    print("json-shop listening on %s:%d" % server.server_address[:2], flush=True)
    with server:
        server.serve_forever()
    return 0

if __name__ == "__main__":
    sys.exit(main())
