#!/usr/bin/env python3
"""proxy-bench: Strangler next to nginx and HAProxy in front of one backend,
in one run, in interleaved rounds.

Issue 8 sets the proxy's performance goals against the reverse proxies people
already run: pass-through at least as fast as nginx with a p99 latency at
most 1.2 times nginx's, routing with interception at least 0.8 times
nginx's pass-through, the JSON adapter at least 0.7 times, 1.6 times the
throughput with 2 workers as with 1, and at most 64 MB of memory with
10,000 idle keep-alive connections. This script measures every side of
those sentences on the same machine, against the same backend, and prints
the figures with the goals next to them. It never fails because of them
(benchmarks report; tests assert): it exits non-zero only when something
could not be run (a server that does not start, a call answered wrongly, a
broker error).

What runs, all in a scratch directory removed afterwards (--keep keeps it):
static-backend (answers every XML-RPC call at once with a fixed
methodResponse, and every call under /json with the JSON string "ok");
nginx and HAProxy, each from a config of its own in the foreground, as plain
keep-alive reverse proxies to the backend with the same worker count as
Strangler; Strangler from the build, one routes.conf per scenario; for the
intercept scenario a private RabbitMQ node (tests/e2e/rabbitmq.py) with a
durable queue bound to the events exchange, so that a confirm means the
broker stored the event; and wrk driving keep-alive POSTs of XML-RPC calls.

The scenarios (--scenarios takes their names or numbers, comma separated):
  1 passthrough  `route all * -> backend`, 1 worker: the backend alone,
                 nginx, HAProxy, Strangler
  2 routing      six routes, five of them `xmlrpc GLOB`, the call matching
                 the fifth: Strangler
  3 intercept    the same routes with `intercept`, events to RabbitMQ:
                 Strangler (calls/s, and how the events kept up)
  4 adapter      `route r xmlrpc bench.* -> svc`, svc a `kind=json`
                 upstream (the backend's /json): Strangler
  5 workers2     pass-through with 2 workers: nginx, HAProxy, Strangler
  6 body100k     pass-through of a ~100 KB call (an array of strings),
                 1 worker: the backend alone, nginx, HAProxy, Strangler
  7 idle10k      10,000 keep-alive connections, each having made one call,
                 then idle: each server's resident memory (VmRSS, summed over
                 its processes) before and with them, 1 worker

Every server is started for its measurement and stopped after it (the
backend and the broker run throughout). Before each measurement one call is
made with http.client and its answer read as XML-RPC: a server that answers
wrongly ends the run. Then wrk runs --warmup seconds (not counted) and
--seconds seconds with --latency. Each round measures every server of every
scenario, the servers of a scenario in an order rotated from round to
round; medians over the rounds are reported, and each ratio is the median
of the rounds' ratios (both sides measured in the same round). A
measurement during which processes the run did not start and the
hypervisor's steal took more than --noise-limit CPUs is made once more.
wrk's socket errors and non-2xx answers are counted in the table.
bench/README.md says how to read the figures.

    bench/proxy_bench.py --build build [--rounds R] [--seconds T]
                         [--scenarios passthrough,workers2,...] [--quick]
"""

import argparse
import errno
import http.client
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
# The process, broker, spool and CPU helpers events_bench.py already has
# (importing it also puts tests/e2e on the path for rabbitmq.py).
from events_bench import (BenchError, Child, CpuMeter, autogroup_state, build_type,  # noqa: E402
                          checkpoint, command_output, dpkg_version, last_seq, run)
from rabbitmq import Broker, free_port  # noqa: E402

METHOD = "bench.echo"
EXCHANGE = "bench"
QUEUE = "bench-tap"
BODY_TARGET = 100 * 1024  # the large call is the smallest past 100 KiB

READY_TIMEOUT_S = 30
CHECK_ATTEMPTS = 3  # a check call refused is tried again, 0.2 s later
CATCH_UP_TIMEOUT_S = 300
SETTLE_S = 1.0  # after a purge, before the intercept measurement
QUIET_CPUS = 0.05  # a started broker is quiet once it uses less than this
QUIET_TIMEOUT_S = 60
IDLE_PARALLEL = 256  # idle connections being opened at once
IDLE_TIMEOUT_S = 120  # to open them all
IDLE_SETTLE_S = 1.0  # with them open, before reading the memory
OVERHEAD_S = 0.5  # start, check and stop of a server, for the estimate

# Scenario name, number, title; the throughput ones list their servers.
SCENARIOS = [
    ("passthrough", "pass-through, 1 worker", ("backend", "nginx", "haproxy", "strangler")),
    ("routing", "method routing (5th of 6 routes), 1 worker", ("strangler",)),
    ("intercept", "routing + intercept, events to RabbitMQ, 1 worker", ("strangler",)),
    ("adapter", "adapter route to a JSON service, 1 worker", ("strangler",)),
    ("workers2", "pass-through, 2 workers", ("nginx", "haproxy", "strangler")),
    ("body100k", "pass-through of a ~100 KB call, 1 worker",
     ("backend", "nginx", "haproxy", "strangler")),
    ("idle10k", "idle keep-alive connections, 1 worker", ("nginx", "haproxy", "strangler")),
]
SCENARIO_NAMES = [s[0] for s in SCENARIOS]
TITLES = {s[0]: s[1] for s in SCENARIOS}
SERVERS = {s[0]: s[2] for s in SCENARIOS}
SHORT = {"passthrough": "pass-through", "routing": "routing", "intercept": "routing + intercept",
         "adapter": "adapter", "workers2": "pass-through", "body100k": "100 KB calls",
         "idle10k": "idle connections"}
WORKERS = {"workers2": 2}  # the others run 1 worker

# The routes of the routing and intercept scenarios: the call (bench.echo)
# is tried against four xmlrpc routes before the fifth takes it.
ROUTED = [("stock-read", "stock.get"), ("stock-write", "stock.adjust"),
          ("orders", "orders.*"), ("customers", "customer.*"), ("bench", "bench.*")]


def small_call():
    """What Python's xmlrpc.client sends for bench.echo("SKU-0042", 3):
    207 bytes, the call events_bench.py uses."""
    return xmlrpc.client.dumps(("SKU-0042", 3), METHOD).encode()


def large_call():
    """bench.echo with one parameter, an array of strings, grown until the
    call passes 100 KiB. Deterministic, so every run sends the same bytes."""
    items = []
    while True:
        i = len(items)
        items.append(f"line {i:05d}: 12 x SKU-{i * 7919 % 100000:05d} "
                     f"at {i % 97}.{i % 100:02d} EUR, shelf {chr(65 + i % 26)}{i % 40}")
        body = xmlrpc.client.dumps((items,), METHOD).encode()
        if len(body) >= BODY_TARGET:
            return body


# ---- processes, from outside --------------------------------------------

def session_pids(sid):
    """Every process in session sid: a server we started in a session of its
    own, with whatever it forked (nginx's workers)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(d))
    return pids


def session_cpu(sid):
    """CPU seconds (user + system) of the processes in session sid."""
    total = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def session_rss(sid):
    """(bytes of VmRSS summed over the processes of session sid, how many)."""
    total, n = 0, 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        n += 1
                        break
        except OSError:
            continue
    return total, n


def raise_nofile():
    """Raises this process's open-file limit to its hard limit (children
    inherit it): 10,000 idle connections need as many descriptors here and in
    the server. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def wait_port(child, port, timeout=READY_TIMEOUT_S):
    """Waits until something accepts on port while child runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    status = child.proc.poll()
    why = f"exited ({status})" if status is not None else f"nothing listens after {timeout}s"
    raise BenchError(f"{child.name} on port {port}: {why}; see {child.log_path}")


class Server:
    """One running server: the process (None for the shared backend), its
    port, the session whose processes are its own."""

    def __init__(self, kind, child, port, sid, own=True, spool=None):
        self.kind = kind
        self.child = child
        self.port = port
        self.sid = sid
        self.own = own
        self.spool = spool

    def stop(self):
        if self.own and self.child is not None:
            self.child.stop()


# ---- the bench ----------------------------------------------------------

class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        build = os.path.abspath(args.build)
        self.strangler = args.strangler or os.path.join(build, "strangler")
        self.backend_bin = os.path.join(build, "bench", "static-backend")
        self.amqp_tool = os.path.join(build, "tests", "tools", "amqp-tool")
        need = [self.strangler, self.backend_bin]
        if "intercept" in args.scenarios:
            need.append(self.amqp_tool)
        for path in need:
            if not os.access(path, os.X_OK):
                raise BenchError(f"{path} not found: build with -DSTRANGLER_BENCH=ON "
                                 "(amqp-tool comes with STRANGLER_TESTS=ON, the default)")
        self.nginx = args.nginx
        self.haproxy = args.haproxy
        self.wrk_bin = shutil.which("wrk")
        if self.wrk_bin is None:
            raise BenchError("wrk not found: install the Debian package wrk")
        for kind, path in (("nginx", self.nginx), ("haproxy", self.haproxy)):
            if self.uses(kind) and not os.access(path, os.X_OK):
                raise BenchError(f"{path} not found: install the Debian package {kind} "
                                 f"(or give --{kind} PATH)")
        self.nofile = raise_nofile()
        self.idle_n = args.idle_connections
        if "idle10k" in args.scenarios and self.idle_n + 200 > self.nofile:
            self.idle_n = max(100, self.nofile - 200)
            print(f"proxy-bench: the open-file limit is {self.nofile}: {self.idle_n:,} idle "
                  f"connections instead of {args.idle_connections:,}", flush=True)
        self.broker = None
        self.backend = None
        self.backend_port = 0
        self.bodies = {"small": small_call(), "large": large_call()}
        self.lua = {}
        self.starts = 0  # servers started, to name their directories and logs

    def uses(self, kind):
        return any(kind in SERVERS[s] for s in self.args.scenarios)

    # -- setup and teardown

    def start(self):
        print(f"proxy-bench: scratch directory {self.tmp}", flush=True)
        threads = str(self.args.backend_threads)
        self.backend = Child("static-backend", [self.backend_bin, "--listen", "127.0.0.1:0",
                                                "--threads", threads], self.tmp)
        self.backend_port = int(self.backend.wait_for(r"listening on [\d.]+:(\d+)").group(1))
        if "intercept" in self.args.scenarios:
            self.broker = Broker(os.path.join(self.tmp, "rabbitmq"))
            try:
                self.broker.start()
            except RuntimeError as e:
                raise BenchError(str(e)) from e
            run([self.amqp_tool, self.broker.url, "declare", QUEUE, "--exchange", EXCHANGE,
                 "--bind", "#"])
            self.wait_quiet(self.broker.pid, "the broker")
        for name, body in self.bodies.items():
            path = os.path.join(self.tmp, f"{name}.xml")
            with open(path, "wb") as f:
                f.write(body)
            self.lua[name] = os.path.join(self.tmp, f"{name}.lua")
            with open(self.lua[name], "w") as f:
                f.write(wrk_script(path))

    @staticmethod
    def wait_quiet(sid, what):
        """Waits until the processes of session sid use less than
        QUIET_CPUS over a second: a broker that just started keeps a CPU
        busy for a while, which the first measurements would pay for."""
        t0 = time.monotonic()
        last = session_cpu(sid)
        used = None
        while time.monotonic() - t0 < QUIET_TIMEOUT_S:
            time.sleep(1.0)
            now = session_cpu(sid)
            used, last = now - last, now
            if used < QUIET_CPUS:
                break
        print(f"proxy-bench: {what} settled for {time.monotonic() - t0:.0f} s "
              f"(last second: {fmt(used, '.2f')} CPUs)", flush=True)

    def stop(self):
        if self.backend is not None:
            self.backend.stop()
        if self.broker is not None:
            self.broker.stop()

    def new_dir(self, what):
        self.starts += 1
        path = os.path.join(self.tmp, f"{self.starts:03d}-{what}")
        os.makedirs(path)
        return path

    # -- the servers

    def start_server(self, kind, scenario, workers):
        if kind == "backend":
            return Server("backend", self.backend, self.backend_port, self.backend.pid, own=False)
        if kind == "strangler":
            return self.start_strangler(scenario, workers)
        if kind == "nginx":
            return self.start_nginx(workers)
        return self.start_haproxy(workers)

    def strangler_conf(self, scenario, workers, spool):
        b = f"http://127.0.0.1:{self.backend_port}"
        lines = [f"# proxy-bench: {scenario}",
                 "listen 127.0.0.1:0",
                 f"workers {workers}",
                 f"upstream backend {b}/RPC2",
                 f"spool {spool}"]
        if scenario == "adapter":
            lines += [f"upstream svc {b}/json kind=json",
                      "route r    xmlrpc bench.* -> svc",
                      "route rest *              -> backend"]
        elif scenario in ("routing", "intercept"):
            if scenario == "intercept":
                lines.append(f"events {self.broker.url} exchange={EXCHANGE}")
            opt = " intercept" if scenario == "intercept" else ""
            lines += [f"route {name:<12} xmlrpc {glob:<13} -> backend{opt}"
                      for name, glob in ROUTED]
            lines.append(f"route {'rest':<12} {'*':<20} -> backend")
        else:
            lines.append("route all * -> backend")
        return "\n".join(lines) + "\n"

    def start_strangler(self, scenario, workers):
        d = self.new_dir(f"strangler-{scenario}")
        spool = os.path.join(d, "spool")
        conf = os.path.join(d, "routes.conf")
        with open(conf, "w") as f:
            f.write(self.strangler_conf(scenario, workers, spool))
        child = Child(os.path.basename(d), [self.strangler, "-c", conf], d)
        port = int(child.wait_for(r"strangler \S+ listening on 127\.0\.0\.1:(\d+)").group(1))
        return Server("strangler", child, port, child.pid, spool=spool)

    def start_nginx(self, workers):
        d = self.new_dir("nginx")
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        os.makedirs(os.path.join(d, "tmp"))  # nginx makes the folders inside
        with open(conf, "w") as f:
            f.write(nginx_conf(d, port, self.backend_port, workers, self.nofile, self.idle_n))
        child = Child(os.path.basename(d),
                      [self.nginx, "-p", d + "/", "-c", conf, "-e", os.path.join(d, "error.log")],
                      d)
        wait_port(child, port)
        return Server("nginx", child, port, child.pid)

    def start_haproxy(self, workers):
        d = self.new_dir("haproxy")
        port = free_port()
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(haproxy_conf(d, port, self.backend_port, workers, self.idle_n + 1000,
                                 self.nofile))
        child = Child(os.path.basename(d), [self.haproxy, "-db", "-f", conf], d)
        wait_port(child, port)
        return Server("haproxy", child, port, child.pid)

    # -- one call, to know the figures are about right answers

    def check_call(self, server, body):
        """One POST of body; the answer must be 200 and the methodResponse
        the backend sends ("ok"), whoever sent it on."""
        where = f"; see {server.child.log_path}" if server.child else ""
        for attempt in range(CHECK_ATTEMPTS):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
                resp = conn.getresponse()
                answer = resp.read()
                break
            except ConnectionRefusedError as e:
                # Seen once right after a start, the server saying it
                # listened: say so, with who listens on the port, and retry.
                listeners = command_output(["ss", "-Htlnp", f"sport = :{server.port}"])
                print(f"proxy-bench: {server.kind} on port {server.port}: the check call was "
                      f"refused (attempt {attempt + 1}); listening there: "
                      f"{listeners or 'nothing'}", file=sys.stderr, flush=True)
                if attempt + 1 == CHECK_ATTEMPTS:
                    raise BenchError(f"{server.kind}: the check call failed: {e}{where}") from e
                time.sleep(0.2)
            except OSError as e:
                raise BenchError(f"{server.kind}: the check call failed: {e}{where}") from e
            finally:
                conn.close()
        if resp.status != 200:
            raise BenchError(f"{server.kind}: the check call was answered {resp.status}: "
                             f"{answer[:300]!r}{where}")
        try:
            params, _ = xmlrpc.client.loads(answer)
        except Exception as e:  # a Fault, or no XML-RPC at all (ExpatError, ...)
            raise BenchError(f"{server.kind}: the check call got no XML-RPC result "
                             f"({e}): {answer[:300]!r}{where}") from e
        if params != ("ok",):
            raise BenchError(f"{server.kind}: the check call was answered {params!r}, "
                             f"not ('ok',){where}")

    # -- wrk

    def wrk(self, port, lua, seconds):
        argv = [self.wrk_bin, "-t", str(self.args.wrk_threads), "-c", str(self.args.connections),
                "-d", f"{seconds}s", "--latency", "-s", lua, f"http://127.0.0.1:{port}/RPC2"]
        # A session of its own, as the servers have: with the scheduler's
        # autogroups each session gets one share of the CPUs.
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                             start_new_session=True)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise BenchError(f"wrk failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        res = parse_wrk(out.stdout)
        # The CPUs wrk kept busy: near wrk's thread count, the load
        # generator is what limits the figure.
        res["wrk_cpus"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
        return res

    # -- the measurements

    def measure(self, scenario, kind):
        """One server in one scenario: start, check, warm up, measure, stop."""
        workers = WORKERS.get(scenario, 1)
        body = "large" if scenario == "body100k" else "small"
        server = self.start_server(kind, scenario, workers)
        try:
            self.check_call(server, self.bodies[body])
            if self.args.warmup:
                self.wrk(server.port, self.lua[body], self.args.warmup)
            events = None
            if scenario == "intercept":
                # The warm-up's events published, the queue empty: the
                # measurement starts with nothing behind it.
                self.catch_up(server)
                run([self.amqp_tool, self.broker.url, "purge", QUEUE])
                time.sleep(SETTLE_S)
                c0, s0 = checkpoint(server.spool), last_seq(server.spool)
            # The broker is the run's own only where events flow: elsewhere
            # what it does (it should do nothing) counts as others' CPU.
            sessions = {self.backend.pid, server.sid}
            if scenario == "intercept":
                sessions.add(self.broker.pid)
            meter = CpuMeter(sessions)
            cpu0 = session_cpu(server.sid)
            backend0 = session_cpu(self.backend.pid)
            broker0 = session_cpu(self.broker.pid) if self.broker is not None else 0
            started = meter.start()
            t0 = time.monotonic()
            res = self.wrk(server.port, self.lua[body], self.args.seconds)
            t1 = time.monotonic()
            res["cpu"] = meter.stop(started)
            broker = (session_cpu(self.broker.pid) - broker0) if self.broker is not None else 0
            cpu = session_cpu(server.sid) - cpu0
            res["server_cpus"] = cpu / (t1 - t0)
            res["backend_cpus"] = (session_cpu(self.backend.pid) - backend0) / (t1 - t0)
            res["server_cpu_us"] = cpu * 1e6 / res["requests"] if res["requests"] else None
            if scenario == "intercept":
                c1, s1 = checkpoint(server.spool), last_seq(server.spool)
                t_done = self.catch_up(server)
                events = {"spooled": (s1 - s0) / (t1 - t0), "confirmed": (c1 - c0) / (t1 - t0),
                          "lag": s1 - c1, "catch_up": t_done - t1,
                          "broker_cpus": broker / (t1 - t0)}
            res["events"] = events
            return res
        finally:
            server.stop()
            if server.spool is not None:
                shutil.rmtree(server.spool, ignore_errors=True)

    def catch_up(self, server):
        """Waits until the broker confirmed every event in the spool; returns
        the time (monotonic) it had."""
        target = last_seq(server.spool)
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while checkpoint(server.spool) < target:
            if server.child.proc.poll() is not None:
                raise BenchError(f"the proxy exited ({server.child.proc.returncode}); "
                                 f"see {server.child.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"the broker confirmed only up to {checkpoint(server.spool)} "
                                 f"of {target} events in {CATCH_UP_TIMEOUT_S}s; see "
                                 f"{server.child.log_path}")
            time.sleep(0.01)
        return time.monotonic()

    def idle(self, kind):
        """The server's memory before and with idle_n idle keep-alive
        connections, each of which made one call."""
        server = self.start_server(kind, "idle10k", 1)
        try:
            self.check_call(server, self.bodies["small"])
            time.sleep(IDLE_SETTLE_S)
            before, nproc = session_rss(server.sid)
            t0 = time.monotonic()
            held, failures = open_idle(server.port, self.idle_n, self.bodies["small"])
            opened_in = time.monotonic() - t0
            try:
                time.sleep(IDLE_SETTLE_S)
                alive = sum(1 for s in held if still_open(s))
                with_conns, _ = session_rss(server.sid)
                # The server must still serve with all of them open.
                self.check_call(server, self.bodies["small"])
            finally:
                for s in held:
                    close_hard(s)
            return {"before": before, "with": with_conns, "processes": nproc,
                    "held": len(held), "alive": alive, "failures": failures,
                    "open_s": opened_in}
        finally:
            server.stop()

    def plan(self, r):
        """The measurements of round r (0-based): each scenario's servers in
        an order rotated by the round."""
        steps = []
        for scenario in self.args.scenarios:
            servers = list(SERVERS[scenario])
            k = r % len(servers)
            for kind in servers[k:] + servers[:k]:
                steps.append((scenario, kind))
        return steps


def wrk_script(body_path):
    """wrk's Lua: keep-alive POSTs of the call in body_path, as a legacy
    XML-RPC client sends them."""
    quoted = body_path.replace("\\", "\\\\").replace('"', '\\"')
    return ('wrk.method = "POST"\n'
            'wrk.path = "/RPC2"\n'
            'wrk.headers["Content-Type"] = "text/xml"\n'
            f'local f = assert(io.open("{quoted}", "rb"))\n'
            'wrk.body = f:read("*a")\n'
            'f:close()\n')


def nginx_conf(d, port, backend_port, workers, nofile, idle_n):
    """A plain keep-alive reverse proxy: nginx's defaults but for what a
    benchmark of keep-alive proxying needs (README.md lists each)."""
    tmp = os.path.join(d, "tmp")
    # The idle scenario holds idle_n client connections on one worker, and
    # nginx allocates every connection slot it may use at start: as many as
    # that needs, not more.
    conns = max(1024, min(nofile - 100, idle_n + 1024))
    # Started by root, nginx would run its workers as nobody, who cannot
    # enter the scratch directory; started by anyone else, as that user.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""# proxy-bench: nginx as a plain keep-alive reverse proxy
daemon off;
master_process on;
{user}worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections {conns};
}}

http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # 100 KB calls stay in memory, as in the other proxies (the default,
    # 16k, writes each one to a temporary file).
    client_body_buffer_size 128k;
    keepalive_timeout 75s;
    # No connection is closed during a run, client's or upstream's (the
    # default closes them after 1000 requests).
    keepalive_requests 1000000;

    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        # One listening socket per worker (SO_REUSEPORT), as Strangler has.
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def haproxy_conf(d, port, backend_port, workers, maxconn, nofile):
    # HAProxy reserves two descriptors per connection (client and server
    # side) and by default refuses to start when the open-file limit is
    # below that; idle client connections need one each, and the server
    # side is a few reused connections, so the limit this script has is
    # enough: `no strict-limits` makes the refusal a warning in its log.
    return f"""# proxy-bench: HAProxy as a plain keep-alive reverse proxy
global
    nbthread {workers}
    maxconn {maxconn}
    ulimit-n {nofile}
    no strict-limits
    pidfile {d}/haproxy.pid

defaults
    mode http
    option http-keep-alive
    http-reuse always
    maxconn {maxconn}
    timeout connect 5s
    timeout client 75s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 75s

frontend fe
    bind 127.0.0.1:{port}
    default_backend be

backend be
    server backend 127.0.0.1:{backend_port}
"""


# ---- wrk's output -------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def latency_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise BenchError(f"wrk: cannot read the latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not rps or not total:
        raise BenchError(f"wrk printed no figures:\n{out}")
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    if "50" not in pct or "99" not in pct:
        raise BenchError(f"wrk printed no latency distribution:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    err = [int(x) for x in errors.groups()] if errors else [0, 0, 0, 0]
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)),
            "p50": latency_ms(pct["50"]), "p99": latency_ms(pct["99"]),
            "errors": sum(err), "error_kinds": err, "non2xx": int(bad.group(1)) if bad else 0}


# ---- idle connections ---------------------------------------------------

def open_idle(port, n, body, timeout=IDLE_TIMEOUT_S):
    """Opens n keep-alive connections to port, each sending one call and
    reading its whole answer (200), at most IDLE_PARALLEL at a time. Returns
    the sockets that got there and a count of failures by reason."""
    request = (f"POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/xml\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sel = selectors.DefaultSelector()
    held, failures = [], {}
    started = pending = 0
    deadline = time.monotonic() + timeout

    def count(why):
        if isinstance(why, int):
            why = errno.errorcode.get(why, str(why))
        failures[why] = failures.get(why, 0) + 1

    def fail(sock, why):
        nonlocal pending
        count(why)
        sel.unregister(sock)
        sock.close()
        pending -= 1

    try:
        while started < n or pending:
            while started < n and pending < IDLE_PARALLEL:
                started += 1
                try:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                except OSError as e:
                    count(e.errno if e.errno is not None else str(e))
                    continue
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", port))
                if rc not in (0, errno.EINPROGRESS):
                    count(rc)
                    s.close()
                    continue
                sel.register(s, selectors.EVENT_WRITE, {"sent": False, "buf": bytearray()})
                pending += 1
            if time.monotonic() > deadline:
                for key in list(sel.get_map().values()):
                    fail(key.fileobj, "timeout")
                break
            for key, _ in sel.select(timeout=1.0):
                s, st = key.fileobj, key.data
                if not st["sent"]:
                    rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if rc:
                        fail(s, rc)
                        continue
                    try:
                        if s.send(request) != len(request):
                            fail(s, "short write")
                            continue
                    except OSError as e:
                        fail(s, e.errno if e.errno is not None else str(e))
                        continue
                    st["sent"] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                try:
                    data = s.recv(65536)
                except OSError as e:
                    fail(s, e.errno if e.errno is not None else str(e))
                    continue
                if not data:
                    fail(s, "closed before the answer")
                    continue
                st["buf"] += data
                done = answer_complete(st["buf"])
                if done is None:
                    continue
                if not done:
                    fail(s, "not answered 200")
                    continue
                sel.unregister(s)
                pending -= 1
                held.append(s)
    finally:
        sel.close()
    return held, failures


def answer_complete(buf):
    """None while the answer is incomplete; then True for a 200 with all of
    its Content-Length body, False for anything else."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 200"):
        return False
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        return False  # the servers here all answer with a length
    if len(buf) < end + 4 + length:
        return None
    return True


def still_open(s):
    """True when the server has not closed the connection."""
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def close_hard(s):
    """Closes with a reset: no TIME_WAIT left behind for 10,000 ports."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


# ---- the report ---------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=",.0f"):
    return "-" if v is None else format(v, spec)


def nginx_version(path):
    """"nginx 1.22.1" out of `nginx -v` (which writes to stderr)."""
    try:
        out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "nginx (not found)"
    m = re.search(r"nginx/(\S+)", out.stderr + out.stdout)
    return f"nginx {m.group(1)}" if m else "nginx (version unknown)"


def haproxy_version(path):
    """"HAProxy 2.6.12-1+deb12u4" out of `haproxy -v`'s first line."""
    m = re.match(r"HA-?Proxy version (\S+)", command_output([path, "-v"]))
    return f"HAProxy {m.group(1)}" if m else "HAProxy (not found)"


def git_state():
    head = command_output(["git", "-C", SOURCE_DIR, "rev-parse", "--short", "HEAD"]) or "unknown"
    try:
        dirty = subprocess.run(["git", "-C", SOURCE_DIR, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    files = [line[3:] for line in dirty.splitlines() if len(line) > 3]
    if files:
        return f"{head} with uncommitted changes to {', '.join(files)}"
    return head


def machine_facts(args, bench):
    cpu = ""
    for line in command_output(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    facts = [
        f"machine: {os.cpu_count()} CPUs (nproc {command_output(['nproc'])}), {cpu}, "
        f"Linux {platform.release()}",
        f"{nginx_version(bench.nginx)} (Debian {dpkg_version('nginx')}), "
        f"{haproxy_version(bench.haproxy)} (Debian {dpkg_version('haproxy')}), "
        f"wrk {dpkg_version('wrk')}, libevent {dpkg_version('libevent-2.1-7')}, "
        f"Python {platform.python_version()}",
        f"strangler: {bench.strangler} ({command_output([bench.strangler, '--version'])}), "
        f"build type {build_type(os.path.abspath(args.build))}, source {git_state()}",
        f"open-file limit {bench.nofile}; scheduler autogroups {autogroup_state() or 'unknown'}",
    ]
    if bench.broker is not None:
        facts.append(f"rabbitmq-server {dpkg_version('rabbitmq-server')} (a private node, a "
                     f"durable queue bound to exchange {EXCHANGE} with #)")
    return facts


def estimate_s(args):
    """The run's expected length in seconds, from what runs take on a
    2-CPU machine."""
    throughput = sum(len(SERVERS[s]) for s in args.scenarios if s != "idle10k")
    per_round = throughput * (args.warmup + args.seconds + OVERHEAD_S)
    if "intercept" in args.scenarios:
        per_round += args.seconds + SETTLE_S  # the broker catching up, twice
    if "idle10k" in args.scenarios:
        per_round += len(SERVERS["idle10k"]) * (2 * IDLE_SETTLE_S + OVERHEAD_S
                                                + args.idle_connections / 10000)
    total = args.rounds * per_round * (1.1 if args.noise_limit else 1) + 2  # a few again
    if "intercept" in args.scenarios:
        total += 25  # the broker's start, until it is quiet
    return total


def ratio_per_round(results, a, b, key="rps"):
    """Median over the rounds of a[key] / b[key], both from the same round."""
    ra, rb = results.get(a), results.get(b)
    if not ra or not rb:
        return None
    vals = [x[key] / y[key] for x, y in zip(ra, rb) if x and y and x[key] is not None and y[key]]
    return statistics.median(vals) if vals else None


def report(args, bench, results, idle, facts, elapsed, argv):
    print()
    print("proxy-bench: Strangler next to nginx and HAProxy, one backend, one run")
    print()
    for line in facts:
        print(f"- {line}")
    print(f"- command: {argv}")
    print(f"- workload: {args.rounds} round(s); wrk -t{args.wrk_threads} -c{args.connections} "
          f"--latency, {args.warmup} s warm-up then {args.seconds} s per measurement; keep-alive "
          f"POSTs of a {len(bench.bodies['small'])}-byte {METHOD} call (the 100 KB scenario: "
          f"{len(bench.bodies['large']):,} bytes); static-backend with "
          f"{args.backend_threads} thread(s); noise limit {args.noise_limit} CPUs")
    print("- scenarios: " + "; ".join(f"{SCENARIO_NAMES.index(s) + 1} {s}: {TITLES[s]}"
                                      for s in args.scenarios))
    cpus = [r["cpu"] for rs in results.values() for r in rs if r]
    if cpus:
        print(f"- CPU used by processes this run did not start, during the measurements: mean "
              f"{statistics.mean(c['others_cpus'] for c in cpus):.2f}, max "
              f"{max(c['others_cpus'] for c in cpus):.2f} of {os.cpu_count()} CPUs; stolen by the "
              f"hypervisor: mean {statistics.mean(c['steal_cpus'] for c in cpus):.2f}, max "
              f"{max(c['steal_cpus'] for c in cpus):.2f}")
    print(f"- the run took {elapsed / 60:.1f} min")

    if results:
        print()
        print("Throughput, medians over the rounds. Ratios: the median of the rounds' ratios "
              "to nginx in the\nsame round, same scenario and worker count; for 2, 3 and 4 (*) "
              "to nginx's pass-through with 1 worker.")
        print()
        print("| scenario | server | workers | req/s | p50 ms | p99 ms | / nginx req/s "
              "| / nginx p99 | server CPU µs/req | errors | non-2xx |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for scenario in args.scenarios:
            if scenario == "idle10k":
                continue
            nginx = (scenario, "nginx")
            mark = ""
            if scenario in ("routing", "intercept", "adapter"):
                nginx, mark = ("passthrough", "nginx"), "*"
            for kind in SERVERS[scenario]:
                rs = results.get((scenario, kind))
                if not rs:
                    continue
                vs = vs99 = None
                if kind not in ("nginx", "backend"):
                    vs = ratio_per_round(results, (scenario, kind), nginx)
                    vs99 = ratio_per_round(results, (scenario, kind), nginx, "p99")
                print(f"| {SCENARIO_NAMES.index(scenario) + 1} {SHORT[scenario]} | {kind} "
                      f"| {WORKERS.get(scenario, 1)} "
                      f"| {fmt(median([r['rps'] for r in rs]))} "
                      f"| {fmt(median([r['p50'] for r in rs]), '.2f')} "
                      f"| {fmt(median([r['p99'] for r in rs]), '.2f')} "
                      f"| {fmt(vs, '.2f')}{mark if vs is not None else ''} "
                      f"| {fmt(vs99, '.2f')}{mark if vs99 is not None else ''} "
                      f"| {fmt(median([r['server_cpu_us'] for r in rs]), '.1f')} "
                      f"| {sum(r['errors'] for r in rs):,} | {sum(r['non2xx'] for r in rs):,} |")

        print()
        print("req/s by round (server order rotated from round to round)")
        print()
        print("| scenario | server | " + " | ".join(f"round {i + 1}" for i in range(args.rounds))
              + " | CPUs busy: wrk, server, backend | others' CPUs, stolen: max |")
        print("| --- | --- | " + " | ".join("---:" for _ in range(args.rounds))
              + " | ---: | ---: |")
        for scenario in args.scenarios:
            for kind in SERVERS[scenario]:
                rs = results.get((scenario, kind))
                if not rs:
                    continue
                busy = (f"{median([r['wrk_cpus'] for r in rs]):.2f}, "
                        f"{median([r['server_cpus'] for r in rs]):.2f}, "
                        f"{median([r['backend_cpus'] for r in rs]):.2f}")
                if kind == "backend":
                    busy = (f"{median([r['wrk_cpus'] for r in rs]):.2f}, -, "
                            f"{median([r['backend_cpus'] for r in rs]):.2f}")
                print(f"| {scenario} | {kind} | "
                      + " | ".join(fmt(r["rps"]) + (" †" if r.get("repeated") else "")
                                   for r in rs)
                      + f" | {busy} | {max(r['cpu']['others_cpus'] for r in rs):.2f}, "
                      f"{max(r['cpu']['steal_cpus'] for r in rs):.2f} |")

        repeated = sum(1 for rs in results.values() for r in rs if r.get("repeated"))
        if repeated:
            print()
            print(f"† measured again ({repeated} of {sum(len(rs) for rs in results.values())}): "
                  f"during the first try, processes this run did not start and the\nhypervisor "
                  f"together took more than {args.noise_limit} CPUs (--noise-limit); the figure "
                  f"is the second try's, whatever its noise.")

        ev = [r["events"] for r in results.get(("intercept", "strangler"), []) if r]
        if ev:
            print()
            print(f"Intercept: events spooled {fmt(median([e['spooled'] for e in ev]))}/s, "
                  f"confirmed by the broker {fmt(median([e['confirmed'] for e in ev]))}/s during "
                  f"the measurement; {fmt(median([e['lag'] for e in ev]))} spooled but not yet "
                  f"confirmed when it ended, confirmed "
                  f"{median([e['catch_up'] for e in ev]):.1f} s later; the broker kept "
                  f"{median([e['broker_cpus'] for e in ev]):.2f} CPUs busy meanwhile (medians). "
                  f"Each call is\nanswered once its event is in the spool; the broker confirms "
                  f"at its own pace.")

    if idle:
        print()
        print(f"Idle keep-alive connections: resident memory (VmRSS summed over the server's "
              f"processes), medians over the rounds")
        print()
        print("| server | processes | connections held | RSS before MB | RSS with them MB "
              "| KB per connection | opened in s | failures |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for kind in SERVERS["idle10k"]:
            rs = idle.get(kind)
            if not rs:
                continue
            fails = {}
            for r in rs:
                for k, v in r["failures"].items():
                    fails[k] = fails.get(k, 0) + v
            held = median([r["alive"] for r in rs])
            per = median([(r["with"] - r["before"]) / 1024 / r["alive"] for r in rs if r["alive"]])
            print(f"| {kind} | {rs[0]['processes']} | {fmt(held)} "
                  f"| {median([r['before'] for r in rs]) / 2**20:.1f} "
                  f"| {median([r['with'] for r in rs]) / 2**20:.1f} | {fmt(per, '.1f')} "
                  f"| {median([r['open_s'] for r in rs]):.1f} "
                  f"| {', '.join(f'{k} {v}' for k, v in fails.items()) or 'none'} |")

    print()
    print("Goals (issue 8) next to this run's figures; a benchmark reports, it does not judge")
    print()
    print("| goal | target | measured | |")
    print("| --- | ---: | ---: | --- |")
    P, R, I, A, W, B = (("passthrough",), ("routing",), ("intercept",), ("adapter",),
                        ("workers2",), ("body100k",))
    rows = [
        ("pass-through, 1 worker: Strangler / nginx req/s", ">=", 1.0,
         ratio_per_round(results, P + ("strangler",), P + ("nginx",))),
        ("pass-through, 1 worker: Strangler p99 / nginx p99", "<=", 1.2,
         ratio_per_round(results, P + ("strangler",), P + ("nginx",), "p99")),
        ("routing, 1 worker: Strangler / nginx pass-through req/s", None, None,
         ratio_per_round(results, R + ("strangler",), P + ("nginx",))),
        ("routing + intercept: Strangler / nginx pass-through req/s", ">=", 0.8,
         ratio_per_round(results, I + ("strangler",), P + ("nginx",))),
        ("adapter: Strangler / nginx pass-through req/s", ">=", 0.7,
         ratio_per_round(results, A + ("strangler",), P + ("nginx",))),
        ("2 workers: Strangler(2) / Strangler(1) req/s", ">=", 1.6,
         ratio_per_round(results, W + ("strangler",), P + ("strangler",))),
        ("2 workers: nginx(2) / nginx(1) req/s (for comparison)", None, None,
         ratio_per_round(results, W + ("nginx",), P + ("nginx",))),
        ("2 workers: Strangler / nginx req/s", None, None,
         ratio_per_round(results, W + ("strangler",), W + ("nginx",))),
        ("pass-through, 1 worker: nginx CPU per call / Strangler's (req/s at equal CPU)",
         None, None, ratio_per_round(results, P + ("nginx",), P + ("strangler",),
                                     "server_cpu_us")),
        ("100 KB calls: Strangler / nginx req/s", None, None,
         ratio_per_round(results, B + ("strangler",), B + ("nginx",))),
        ("100 KB calls: Strangler p99 / nginx p99", None, None,
         ratio_per_round(results, B + ("strangler",), B + ("nginx",), "p99")),
    ]
    for label, op, target, value in rows:
        if value is None:
            continue  # a scenario this run left out
        verdict = ""
        if op is not None and value is not None:
            ok = value >= target if op == ">=" else value <= target
            verdict = "met" if ok else "not met"
        tgt = f"{'≥' if op == '>=' else '≤'} {target:.1f}×" if op else "-"
        print(f"| {label} | {tgt} | {value:.2f}× | {verdict} |")
    rs = idle.get("strangler")
    if rs:
        mb = median([r["with"] for r in rs]) / 2**20
        held = median([r["alive"] for r in rs])
        print(f"| Strangler's RSS with {fmt(held)} idle connections | ≤ 64 MB | {mb:.1f} MB "
              f"| {'met' if mb <= 64 else 'not met'}"
              f"{'' if held >= 10000 else ' (fewer connections than the goal)'} |")

    if "workers2" in args.scenarios and os.cpu_count() < 4:
        print()
        print(f"Note: this machine has {os.cpu_count()} CPUs for wrk, the backend and the proxy "
              f"together, so a second worker\nhas no CPU of its own to run on: compare "
              f"Strangler's scaling with nginx's and HAProxy's on the same machine.")

    trouble = [(k, r) for k, rs in results.items() for r in rs
               if r and (r["errors"] or r["non2xx"])]
    if trouble:
        print()
        print("wrk counted errors (figures with errors or non-2xx answers mean little):")
        for (scenario, kind), r in trouble:
            c, rd, w, t = r["error_kinds"]
            print(f"  {scenario} {kind}: connect {c}, read {rd}, write {w}, timeout {t}, "
                  f"non-2xx {r['non2xx']}")


# ---- the command line ---------------------------------------------------

def parse_scenarios(text):
    out = []
    for word in text.split(","):
        word = word.strip()
        if not word:
            continue
        if word == "all":
            return list(SCENARIO_NAMES)
        if word.isdigit() and 1 <= int(word) <= len(SCENARIO_NAMES):
            word = SCENARIO_NAMES[int(word) - 1]
        if word not in SCENARIO_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown scenario {word!r} (known: {', '.join(SCENARIO_NAMES)}, or 1 to "
                f"{len(SCENARIO_NAMES)}, or all)")
        if word not in out:
            out.append(word)
    # Always in the order of the list: the reader finds them where expected.
    return [s for s in SCENARIO_NAMES if s in out]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Measures Strangler next to nginx and HAProxy (same backend, same worker "
                    "count) in interleaved rounds and prints the figures with issue 8's goals.")
    p.add_argument("--build", default=os.path.join(SOURCE_DIR, "build"),
                   help="the build directory (default: build/ in the source tree)")
    p.add_argument("--strangler", help="the proxy binary (default: BUILD/strangler)")
    p.add_argument("--nginx", default="/usr/sbin/nginx", help="nginx (default /usr/sbin/nginx)")
    p.add_argument("--haproxy", default="/usr/sbin/haproxy",
                   help="haproxy (default /usr/sbin/haproxy)")
    p.add_argument("--scenarios", type=parse_scenarios, default=list(SCENARIO_NAMES),
                   help="comma-separated names or numbers: " + ", ".join(
                       f"{i + 1} {n}" for i, n in enumerate(SCENARIO_NAMES)) + " (default all)")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--seconds", type=int,
                   help="seconds per measurement (default 5; 2 with --quick)")
    p.add_argument("--warmup", type=int, default=1,
                   help="seconds of wrk before each measurement, not counted (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 1 round of 2 s measurements, unless given otherwise")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--backend-threads", type=int, default=1,
                   help="static-backend threads (default 1)")
    p.add_argument("--idle-connections", type=int, default=10000,
                   help="connections of the idle scenario (default 10000)")
    p.add_argument("--noise-limit", type=float, default=0.2,
                   help="measure once more when other processes and the hypervisor's steal "
                        "took more than this many CPUs during a measurement (default 0.2; "
                        "0: never)")
    p.add_argument("--keep", action="store_true",
                   help="keep the scratch directory (configs, logs) afterwards")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 2 if args.quick else 5
    for name in ("rounds", "seconds", "connections", "wrk_threads", "backend_threads",
                 "idle_connections"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    if args.noise_limit < 0:
        p.error("--noise-limit must be at least 0")
    if not args.scenarios:
        p.error("--scenarios names none")
    return args


def main(argv):
    args = parse_args(argv)
    command = "python3 bench/proxy_bench.py " + " ".join(shlex.quote(a) for a in argv)
    # SIGTERM ends the run through the same cleanup as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="proxy-bench-")
    bench = None
    done = False
    t_start = time.monotonic()
    try:
        bench = Bench(args, tmp)
        est = estimate_s(args)
        print(f"proxy-bench: {len(args.scenarios)} scenario(s) ({', '.join(args.scenarios)}), "
              f"{args.rounds} round(s) of {args.seconds} s measurements: expect about "
              f"{est / 60:.1f} min", flush=True)
        bench.start()
        facts = machine_facts(args, bench)
        results = {}
        idle = {}
        for r in range(args.rounds):
            for scenario, kind in bench.plan(r):
                if scenario == "idle10k":
                    res = bench.idle(kind)
                    idle.setdefault(kind, []).append(res)
                    print(f"round {r + 1}/{args.rounds} {scenario} {kind}: "
                          f"{res['alive']:,} connections held, RSS "
                          f"{res['before'] / 2**20:.1f} -> {res['with'] / 2**20:.1f} MB",
                          flush=True)
                    continue
                res = bench.measure(scenario, kind)
                noise = res["cpu"]["others_cpus"] + res["cpu"]["steal_cpus"]
                if args.noise_limit and noise > args.noise_limit:
                    print(f"round {r + 1}/{args.rounds} {scenario} {kind}: {res['rps']:,.0f} "
                          f"req/s while others used {res['cpu']['others_cpus']:.2f} CPUs and "
                          f"the hypervisor stole {res['cpu']['steal_cpus']:.2f}: measured again",
                          flush=True)
                    res = bench.measure(scenario, kind)
                    res["repeated"] = noise
                results.setdefault((scenario, kind), []).append(res)
                note = ""
                if res["errors"] or res["non2xx"]:
                    note = f", {res['errors']} socket errors, {res['non2xx']} non-2xx"
                if res["events"]:
                    note += f", events confirmed {res['events']['confirmed']:,.0f}/s"
                print(f"round {r + 1}/{args.rounds} {scenario} {kind}: {res['rps']:,.0f} req/s, "
                      f"p50 {res['p50']:.2f} ms, p99 {res['p99']:.2f} ms{note}", flush=True)
        report(args, bench, results, idle, facts, time.monotonic() - t_start, command)
        done = True
        return 0
    except BenchError as e:
        print(f"proxy-bench: {e}", file=sys.stderr)
        return 1
    finally:
        if bench is not None:
            bench.stop()
        if not os.listdir(tmp):
            os.rmdir(tmp)  # nothing ran: nothing to look at
        elif args.keep or not done:
            print(f"proxy-bench: scratch directory kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
