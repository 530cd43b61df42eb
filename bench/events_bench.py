#!/usr/bin/env python3
"""events-bench: the proxy's event rate next to a bare librabbitmq publisher,
in one run, against one broker.

The proxy appends a CloudEvent per intercepted call to its spool, and its
publisher thread moves events from the spool to RabbitMQ with publisher
confirms and a window of unconfirmed messages. The goal is that this costs
the proxy at most 10 % of what the broker can take from a plain publisher:
proxy >= 0.9 x bare. This script measures both sides of that sentence on the
same private broker, in interleaved rounds, and prints the figures. It never
fails because of them (benchmarks report; tests assert): it exits non-zero
only when something could not be run.

What runs: a private RabbitMQ node (tests/e2e/rabbitmq.py, its own
directory and ports), static-backend (answers every XML-RPC call at once),
the strangler binary with `workers W`, `route all xmlrpc * -> backend
intercept`, a spool in the scratch directory and `events URL exchange=bench
window=N`, a durable queue bound to the exchange with `#` (so a confirm
means the broker stored the message), and wrk for the HTTP load.

Each round measures, (a) and (b) in alternating order:
  (a) bare   bare-publisher publishes --messages messages, as large as the
             proxy's real events (sized from the spool), with the same
             window and AMQP properties: messages/s from first publish to
             last confirm.
  (b) drain  the proxy's events line points at a port where nobody listens;
             wrk loads it until --messages events are spooled; then the
             line points at the broker and the proxy gets SIGHUP (it
             restarts its publisher when the URL changes). Events/s from
             SIGHUP until the spool's checkpoint says every one is
             confirmed. No HTTP load runs meanwhile: the publishing path
             alone.
  (c) live   wrk for --seconds seconds with the broker up: calls/s, events
             confirmed/s over the same period (checkpoint deltas), how far
             the spool lagged behind at the end, and how long it took to
             catch up.
  (d) bare under load: the load of (c) with the proxy's events pointed at
             the dead port (it serves and spools but does not publish)
             while bare-publisher publishes: the yardstick for (c).
The queue is purged before each timed phase so the broker's state is
comparable. Medians over the rounds are reported, with the ratios
proxy/bare. bench/README.md says how to read them.

    bench/events_bench.py --build build [--messages N] [--window W]
                          [--rounds R] [--seconds T] [--workers N]
"""

import argparse
import glob
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))
from rabbitmq import Broker, free_port  # noqa: E402  (the shared broker helper)

EXCHANGE = "bench"
QUEUE = "bench-tap"
METHOD = "bench.echo"
# A small call of the shape legacy clients send: what Python's
# xmlrpc.client.dumps(("SKU-0042", 3), "bench.echo") writes.
CALL = ("<?xml version='1.0'?>\n<methodCall>\n<methodName>bench.echo</methodName>\n"
        "<params>\n<param>\n<value><string>SKU-0042</string></value>\n</param>\n"
        "<param>\n<value><int>3</int></value>\n</param>\n</params>\n</methodCall>\n")

READY_TIMEOUT_S = 30
DRAIN_TIMEOUT_S = 300
POLL_S = 0.005  # checkpoint polling; the proxy itself writes it every 50 ms
SETTLE_S = 1.0  # after a purge, before a timed phase: let the broker finish it

# The spool's record framing (interceptors/spool.h): u32 magic, u32 length
# of the rest, u32 CRC-32, then u64 seq, i64 time_us, u16 id/type/key
# lengths, the three strings and the body; little endian.
RECORD_MAGIC = 0x4C4F5053
RECORD_HEAD = struct.Struct("<III")
RECORD_FIXED = struct.Struct("<QqHHH")
CHECKPOINT_RE = re.compile(rb"^confirmed (\d+)\n$")


class BenchError(Exception):
    """Something could not be run; the figures would mean nothing."""


# ---- processes ----------------------------------------------------------

class Child:
    """A process we started, its output in a log file, stopped by its pid."""

    def __init__(self, name, argv, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def log_size(self):
        return os.path.getsize(self.log_path)

    def log_text(self, start=0):
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def wait_for(self, pattern, start=0, timeout=READY_TIMEOUT_S):
        """Waits for a line matching pattern written after offset start;
        returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.log_text(start))
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise BenchError(f"{self.name}: no line matching {pattern!r} within {timeout}s "
                         f"(exit status {self.proc.poll()}); see {self.log_path}")

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def run(argv, timeout=120):
    """Runs a short-lived tool in a session of its own (see Bench.wrk)."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                         start_new_session=True)
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def command_output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---- the spool, read from outside ---------------------------------------

def checkpoint(spool):
    """The highest confirmed seq (0 before the first confirm). The proxy
    replaces the file by rename, so a read never sees half of it."""
    try:
        with open(os.path.join(spool, "checkpoint"), "rb") as f:
            m = CHECKPOINT_RE.match(f.read())
    except FileNotFoundError:
        return 0
    if not m:
        raise BenchError(f"{spool}/checkpoint: unexpected content")
    return int(m.group(1))


def records(path):
    """Yields (seq, id, type, key, body) for each complete record of a
    segment; a record still being written at the end is left out."""
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + RECORD_HEAD.size <= len(data):
        magic, rest, _crc = RECORD_HEAD.unpack_from(data, off)
        end = off + RECORD_HEAD.size + rest
        if magic != RECORD_MAGIC or rest < RECORD_FIXED.size or end > len(data):
            break
        seq, _t, id_len, type_len, key_len = RECORD_FIXED.unpack_from(data, off + RECORD_HEAD.size)
        p = off + RECORD_HEAD.size + RECORD_FIXED.size
        strings = data[p:p + id_len + type_len + key_len]
        body = data[p + id_len + type_len + key_len:end]
        yield (seq, strings[:id_len], strings[id_len:id_len + type_len],
               strings[id_len + type_len:], body)
        off = end


def segments(spool):
    return sorted(glob.glob(os.path.join(spool, "*.seg")))


def last_seq(spool):
    """The highest seq appended (0: none). Segments are named by their first
    seq, so only the newest one is read."""
    seq = 0
    for path in reversed(segments(spool)):
        try:
            for rec in records(path):
                seq = rec[0]
        except FileNotFoundError:
            continue  # deleted after a confirm between listing and reading
        if seq:
            return seq
    return seq


def newest_event(spool):
    """The last complete event in the spool: (id, type, key, body)."""
    for path in reversed(segments(spool)):
        last = None
        for rec in records(path):
            last = rec
        if last:
            return last[1:]
    raise BenchError(f"{spool}: no event in the spool")


# ---- CPU accounting, to tell whether the machine was ours ---------------

class CpuMeter:
    """CPU the whole machine spent during a phase, and how much of it went
    to processes we did not start. Ours are this script, the children it
    reaped (wrk, bare-publisher, amqp-tool: each starts and ends within a
    phase), and every process in the sessions of the long-running children
    (the broker's Erlang VM runs in its start script's session)."""

    def __init__(self, sessions):
        self.sessions = sessions
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        return {"busy": user + nice + system + irq + softirq, "steal": steal,
                "all": user + nice + system + idle + iowait + irq + softirq + steal}

    def ours(self):
        total = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) in self.sessions:  # field 6, the session id
                total += int(fields[11]) + int(fields[12])  # utime, stime
        ru_self = resource.getrusage(resource.RUSAGE_SELF)
        ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        reaped = ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime
        return total / self.tick + reaped

    def start(self):
        return (time.monotonic(), self.machine(), self.ours())

    def stop(self, started):
        t0, m0, ours0 = started
        wall = time.monotonic() - t0
        m1, ours1 = self.machine(), self.ours()
        busy = (m1["busy"] - m0["busy"]) / self.tick
        steal = (m1["steal"] - m0["steal"]) / self.tick
        ours = ours1 - ours0
        return {"wall": wall, "busy_cpus": busy / wall, "ours_cpus": ours / wall,
                "others_cpus": max(0.0, busy - ours) / wall, "steal_cpus": steal / wall}


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the bench ----------------------------------------------------------

class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        build = os.path.abspath(args.build)
        self.strangler = args.strangler or os.path.join(build, "strangler")
        self.bare = os.path.join(build, "bench", "bare-publisher")
        self.backend_bin = os.path.join(build, "bench", "static-backend")
        self.amqp_tool = os.path.join(build, "tests", "tools", "amqp-tool")
        for path in (self.strangler, self.bare, self.backend_bin, self.amqp_tool):
            if not os.access(path, os.X_OK):
                raise BenchError(f"{path} not found: build with -DSTRANGLER_BENCH=ON "
                                 "(amqp-tool comes with STRANGLER_TESTS=ON, the default)")
        if shutil.which("wrk") is None:
            raise BenchError("wrk not found: install the Debian package wrk")
        self.broker = None
        self.backend = None
        self.proxy = None
        self.spool = os.path.join(tmp, "spool")
        self.conf = os.path.join(tmp, "routes.conf")
        self.dead_port = free_port()  # nobody listens here
        self.proxy_port = 0  # until the proxy says which it got
        self.backend_port = 0
        self.event = None  # (id, type, key, body) of a real event
        self.meter = None

    # -- setup and teardown

    def start(self):
        print(f"events-bench: scratch directory {self.tmp}", flush=True)
        self.broker = Broker(os.path.join(self.tmp, "rabbitmq"))
        self.broker.start()
        run([self.amqp_tool, self.broker.url, "declare", QUEUE, "--exchange", EXCHANGE,
             "--bind", "#"])
        self.backend = Child("static-backend", [self.backend_bin, "--listen", "127.0.0.1:0"],
                             self.tmp)
        self.backend_port = int(self.backend.wait_for(r"listening on [\d.]+:(\d+)").group(1))
        self.write_conf(self.dead_url())
        self.proxy = Child("strangler", [self.strangler, "-c", self.conf], self.tmp)
        self.proxy_port = int(self.proxy.wait_for(
            r"strangler \S+ listening on 127\.0\.0\.1:(\d+)").group(1))
        # From now on the file names the real port, or every reload would
        # warn that `listen` changed.
        self.write_conf(self.dead_url())
        self.write_lua()
        self.meter = CpuMeter({self.broker.pid, self.backend.pid, self.proxy.pid})

    def stop(self):
        for child in (self.proxy, self.backend):
            if child is not None:
                child.stop()
        if self.broker is not None:
            self.broker.stop()

    def dead_url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.dead_port}/%2f"

    def write_conf(self, events_url):
        text = (f"# events-bench\n"
                f"listen 127.0.0.1:{self.proxy_port}\n"
                f"workers {self.args.workers}\n"
                f"upstream backend http://127.0.0.1:{self.backend_port}/RPC2\n"
                f"events {events_url} exchange={EXCHANGE} window={self.args.window}\n"
                f"spool {self.spool}\n"
                f"route all xmlrpc * -> backend intercept\n")
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def point_events(self, events_url):
        """Rewrites the events line and sends SIGHUP; returns the time the
        signal was sent and the proxy's log offset before it."""
        self.write_conf(events_url)
        offset = self.proxy.log_size()
        t0 = time.monotonic()
        os.kill(self.proxy.pid, signal.SIGHUP)
        return t0, offset

    def write_lua(self):
        body = CALL.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        common = ('wrk.method = "POST"\n'
                  'wrk.path = "/RPC2"\n'
                  'wrk.headers["Content-Type"] = "text/xml"\n'
                  f'wrk.body = "{body}"\n')
        self.live_lua = os.path.join(self.tmp, "live.lua")
        with open(self.live_lua, "w") as f:
            f.write(common)
        # fill: each wrk thread stops after its share of answers and leaves
        # a file behind, so the script knows when to end wrk (whose own
        # clock only ends at -d).
        self.fill_lua = os.path.join(self.tmp, "fill.lua")
        with open(self.fill_lua, "w") as f:
            f.write(common + """
local threads, limit, answered, marker = 0, 0, 0, nil
local bad = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  limit = tonumber(args[1])
  marker = args[2] .. "." .. tostring(id)
end
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then bad = bad + 1 end
  if answered == limit then
    local f = io.open(marker, "w")
    f:write(tostring(bad))
    f:close()
    wrk.thread:stop()
  end
end
""")

    def wrk(self, lua, seconds, extra=(), during=None):
        """Runs wrk for at most `seconds`; returns (requests/s, requests,
        non-2xx). With `during`, a function called while wrk loads the
        proxy, wrk is ended (SIGINT; it then prints its figures over the
        time it ran) as soon as that function returns."""
        argv = ["wrk", "-t", str(self.args.wrk_threads), "-c", str(self.args.connections),
                "-d", f"{seconds}s", "-s", lua, f"http://127.0.0.1:{self.proxy_port}/RPC2"]
        if extra:
            argv += ["--", *extra]
        # Each program gets a session of its own, as the broker, the backend
        # and the proxy do: with the scheduler's autogroups (Debian's
        # default) each session is one group with one share of the CPUs, so
        # wrk never shares a group with bare-publisher or with this script.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            if during is not None:
                during(proc)
                proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=seconds + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        if not rps or not total:
            raise BenchError(f"wrk printed no figures:\n{out}")
        if errors:
            print(f"  wrk socket errors: {errors.group(1)}", flush=True)
        return float(rps.group(1)), int(total.group(1)), int(bad.group(1)) if bad else 0

    def purge(self):
        run([self.amqp_tool, self.broker.url, "purge", QUEUE])
        time.sleep(SETTLE_S)

    def wait_confirmed(self, target, timeout=DRAIN_TIMEOUT_S):
        """Polls the checkpoint until it reaches target; returns the time it
        did and the (time, value) samples at each change."""
        deadline = time.monotonic() + timeout
        samples = []
        last = -1
        while True:
            now = time.monotonic()
            c = checkpoint(self.spool)
            if c != last:
                samples.append((now, c))
                last = c
            if c >= target:
                return now, samples
            if self.proxy.proc.poll() is not None:
                raise BenchError(f"the proxy exited ({self.proxy.proc.returncode}); "
                                 f"see {self.proxy.log_path}")
            if now > deadline:
                raise BenchError(f"the checkpoint stayed at {c}, short of {target}, for "
                                 f"{timeout}s; see {self.proxy.log_path}")
            time.sleep(POLL_S)

    # -- the phases

    def run_bare(self, n):
        """One bare-publisher run of n messages as large as the proxy's
        events; returns its figures."""
        out = run([self.bare, "--url", self.broker.url, "--exchange", EXCHANGE, "--type",
                   self.event[1].decode(), "--messages", str(n), "--window",
                   str(self.args.window), "--body-size", str(len(self.event[3]))], timeout=600)
        m = re.search(r"result messages=(\d+) seconds=([\d.]+) rate=([\d.]+) cpu_seconds=([\d.]+)",
                      out)
        if not m:
            raise BenchError(f"bare-publisher printed no result:\n{out}")
        return {"rate": float(m.group(3)), "seconds": float(m.group(2)),
                "cpu_us": float(m.group(4)) * 1e6 / int(m.group(1))}

    def bare_phase(self, n):
        self.purge()
        started = self.meter.start()
        res = self.run_bare(n)
        res["cpu"] = self.meter.stop(started)
        return res

    def unplug(self):
        """Points the proxy's events at the port where nobody listens, and
        returns once the publisher that talked to the broker is gone."""
        _, offset = self.point_events(self.dead_url())
        # The old publisher is stopped before the new one starts, so one
        # failed connect to the dead port says the switch is done.
        self.proxy.wait_for(rf"publisher \S+:{self.dead_port}/\S*: cannot connect", offset)

    def fill(self, n):
        """Points the events at the dead port and loads the proxy until n
        events are spooled. Returns (the checkpoint before, the last seq)."""
        self.unplug()
        base = checkpoint(self.spool)
        if last_seq(self.spool) != base:
            raise BenchError(f"the spool holds unconfirmed events before the fill "
                             f"(checkpoint {base}, last {last_seq(self.spool)})")
        threads = self.args.wrk_threads
        per_thread = -(-n // threads)
        prefix = os.path.join(self.tmp, f"fill-{time.monotonic_ns()}")
        timeout = 300

        def until_all_answered(proc):
            deadline = time.monotonic() + timeout
            while proc.poll() is None and len(glob.glob(prefix + ".*")) < threads:
                if time.monotonic() > deadline:
                    raise BenchError(f"wrk did not get {n} answers within {timeout}s")
                time.sleep(0.01)

        _, total, bad = self.wrk(self.fill_lua, timeout, (str(per_thread), prefix),
                                 during=until_all_answered)
        if bad:
            raise BenchError(f"the proxy answered {bad} of {total} calls with an error; "
                             f"see {self.proxy.log_path}")
        # Every answered call was spooled before its answer; calls still in
        # flight when wrk stopped may add a few more.
        time.sleep(0.2)
        last = last_seq(self.spool)
        if last - base < n:
            raise BenchError(f"only {last - base} events spooled for {n} answered calls")
        if self.event is None:
            self.event = newest_event(self.spool)
        return base, last

    def drain_phase(self, n):
        base, target = self.fill(n)
        self.purge()
        cpu0 = proc_cpu_seconds(self.proxy.pid)
        started = self.meter.start()
        t0, offset = self.point_events(self.broker.url)
        t1, samples = self.wait_confirmed(target)
        cpu = self.meter.stop(started)
        proxy_cpu = proc_cpu_seconds(self.proxy.pid) - cpu0
        n = target - base
        log = self.proxy.log_text(offset)
        trouble = [line for line in log.splitlines()
                   if f":{self.broker.port}/" in line
                   and re.search(r"nack|reconnect|blocked|lost|failed|returned", line)]
        # Steady rate: between the first and the last checkpoint change,
        # which leaves out the reconnect and the first confirm interval.
        steady = None
        moving = [s for s in samples if s[1] > base]
        if len(moving) >= 2 and moving[-1][0] > moving[0][0]:
            steady = (moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0])
        return {"events": n, "seconds": t1 - t0, "rate": n / (t1 - t0), "steady": steady,
                "cpu_us": proxy_cpu * 1e6 / n, "cpu": cpu, "trouble": trouble}

    def live_phase(self):
        self.purge()
        c0 = checkpoint(self.spool)
        s0 = last_seq(self.spool)
        started = self.meter.start()
        t0 = time.monotonic()
        rps, total, bad = self.wrk(self.live_lua, self.args.seconds)
        t1 = time.monotonic()
        c1 = checkpoint(self.spool)
        cpu = self.meter.stop(started)
        s1 = last_seq(self.spool)
        t_done, _ = self.wait_confirmed(s1)
        return {"calls": rps, "requests": total, "bad": bad,
                "events": (c1 - c0) / (t1 - t0), "spooled": (s1 - s0) / (t1 - t0),
                "lag": s1 - c1, "catch_up": t_done - t1, "cpu": cpu}

    def loaded_bare_phase(self):
        """The bare publisher while wrk loads the proxy as in the live phase,
        with the proxy's events pointed at the dead port: the proxy does all
        its HTTP and spool work but publishes nothing, so the machine is as
        busy as in the live phase minus the proxy's publishing. What the bare
        publisher gets then is what any publisher could get on this machine
        under this load, the yardstick for the live phase's event rate."""
        self.unplug()
        self.purge()
        base = checkpoint(self.spool)
        res = {}

        def publish(proc):
            time.sleep(1.0)  # wrk at full speed first
            if proc.poll() is None:
                res.update(self.run_bare(self.args.messages))

        started = self.meter.start()
        calls, _, bad = self.wrk(self.live_lua, 600, during=publish)
        cpu = self.meter.stop(started)
        if "rate" not in res:
            raise BenchError("wrk ended before the bare publisher could start")
        # Publish what the proxy spooled meanwhile, so the next phase starts
        # from an empty backlog (not timed).
        target = last_seq(self.spool)
        self.point_events(self.broker.url)
        self.wait_confirmed(target)
        res.update({"calls": calls, "bad": bad, "cpu": cpu, "backlog": target - base})
        return res

    def warm_up(self):
        """A short drain and a short bare run, not reported: they give the
        size of a real event, and the first round does not pay for the
        broker's and the proxy's first time through."""
        n = min(self.args.messages, 2000)
        d = self.drain_phase(n)
        b = self.bare_phase(n)
        print(f"warm-up: {n:,} events drained at {d['rate']:,.0f} ev/s, {n:,} bare messages "
              f"at {b['rate']:,.0f} msg/s (not counted)", flush=True)

    def round(self, r):
        res = {}
        order = ("bare", "drain") if r % 2 == 0 else ("drain", "bare")
        for phase in order:
            if phase == "drain":
                res["drain"] = self.drain_phase(self.args.messages)
            else:
                res["bare"] = self.bare_phase(self.args.messages)
        res["order"] = " then ".join(order)
        res["live"] = self.live_phase()
        res["loaded"] = self.loaded_bare_phase()
        return res


# ---- the report ---------------------------------------------------------

def dpkg_version(pkg):
    return command_output(["dpkg-query", "-W", "-f", "${Version}", pkg]) or "not installed"


def build_type(build):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
            return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def machine_facts(args, bench):
    cpu = ""
    for line in command_output(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    return [
        f"machine: {os.cpu_count()} CPUs (nproc {command_output(['nproc'])}), {cpu}, "
        f"Linux {platform.release()}",
        f"rabbitmq-server {dpkg_version('rabbitmq-server')}, erlang-base "
        f"{dpkg_version('erlang-base')}, librabbitmq {command_output(['pkg-config', '--modversion', 'librabbitmq'])} "
        f"(Debian {dpkg_version('librabbitmq4')}), libevent {dpkg_version('libevent-2.1-7')}, "
        f"wrk {dpkg_version('wrk')}",
        f"strangler: {bench.strangler} ({command_output([bench.strangler, '--version'])}), "
        f"build type {build_type(os.path.abspath(args.build))}",
        f"scheduler autogroups: {autogroup_state() or 'unknown'}"
        + (" (each program's session gets its own CPU share; see --fair-scheduling)"
           if autogroup_state() == "on" else ""),
    ]


def autogroup_state():
    return {"1": "on", "0": "off"}.get(read_autogroup())


def fmt(v, spec=",.0f"):
    return "-" if v is None else format(v, spec)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(args, bench, rounds, facts, whole):
    ev = bench.event
    ncpu = os.cpu_count()
    print()
    print("events-bench: the proxy's publisher next to a bare librabbitmq publisher, "
          "one broker, one run")
    print()
    for line in facts:
        print(f"- {line}")
    print(f"- workload: {args.rounds} rounds; {args.messages:,} messages per bare, drain and "
          f"loaded-bare phase, confirm window {args.window}; live phase {args.seconds} s; proxy "
          f"workers {args.workers}; wrk -t{args.wrk_threads} -c{args.connections}, keep-alive "
          f"POSTs of a {len(CALL)}-byte {METHOD} call")
    print(f"- event: {len(ev[3])}-byte CloudEvent body, type {ev[1].decode()}, routing key "
          f"{ev[2].decode()}, {len(ev[0])}-byte id; bare-publisher sends bodies of the same "
          f"size with the same AMQP properties; one durable queue bound with #")
    print(f"- load average at the start and the end: {whole['load0']} / {whole['load1']}")
    print(f"- CPU used by processes this run did not start, mean over the rounds: "
          f"{whole['cpu']['others_cpus']:.2f} of {ncpu} CPUs (steal {whole['cpu']['steal_cpus']:.2f})")

    print()
    print("Publishing alone: (a) bare-publisher; (b) the proxy draining a spool of the same "
          "number of events,\ntimed from SIGHUP to the checkpoint that confirms the last one, "
          "with no HTTP load.")
    print()
    print("| round | order | (a) bare msg/s | (b) proxy drain ev/s | (b)/(a) "
          "| proxy steady ev/s | others' CPU in (a), (b) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for i, r in enumerate(rounds, 1):
        b, d = r["bare"], r["drain"]
        print(f"| {i} | {r['order']} | {fmt(b['rate'])} | {fmt(d['rate'])} | "
              f"{d['rate'] / b['rate']:.2f} | {fmt(d['steady'])} | "
              f"{b['cpu']['others_cpus']:.2f}, {d['cpu']['others_cpus']:.2f} |")

    print()
    print("Under HTTP load: (c) live, wrk on the proxy with the broker up; (d) the same load "
          "with the proxy's\nevents pointed at a dead port (it spools, does not publish) while "
          "bare-publisher publishes.")
    print()
    print("| round | (c) calls/s | (c) confirmed ev/s | (c) lag at end | (c) catch-up s "
          "| (d) bare msg/s | (d) calls/s | (c) ev/s / (d) msg/s | others' CPU in (c), (d) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for i, r in enumerate(rounds, 1):
        lv, ld = r["live"], r["loaded"]
        print(f"| {i} | {fmt(lv['calls'])} | {fmt(lv['events'])} | {lv['lag']:,} | "
              f"{lv['catch_up']:.2f} | {fmt(ld['rate'])} | {fmt(ld['calls'])} | "
              f"{lv['events'] / ld['rate']:.2f} | {lv['cpu']['others_cpus']:.2f}, "
              f"{ld['cpu']['others_cpus']:.2f} |")

    def med(key, sub):
        return median([r[key][sub] for r in rounds])

    ratios = [r["drain"]["rate"] / r["bare"]["rate"] for r in rounds]
    steady = med("drain", "steady")
    print()
    print("Medians over the rounds:")
    print()
    print("| measure | median |")
    print("| --- | ---: |")
    print(f"| (a) bare publisher, messages/s | {fmt(med('bare', 'rate'))} |")
    print(f"| (b) proxy drain, SIGHUP to the last confirm in the checkpoint, events/s | "
          f"{fmt(med('drain', 'rate'))} |")
    print(f"| (b) proxy drain, steady (first to last checkpoint change), events/s | "
          f"{fmt(steady)} |")
    print(f"| **(b)/(a), proxy / bare** (median of the rounds' ratios) | "
          f"**{statistics.median(ratios):.2f}** |")
    print(f"| steady (b) / (a), ratio of the medians | "
          f"{fmt(steady / med('bare', 'rate') if steady else None, '.2f')} |")
    print(f"| CPU per message, bare-publisher (its process), µs | {med('bare', 'cpu_us'):.1f} |")
    print(f"| CPU per event, proxy during (b) (the whole process), µs | "
          f"{med('drain', 'cpu_us'):.1f} |")
    print(f"| (c) live: calls/s answered | {fmt(med('live', 'calls'))} |")
    print(f"| (c) live: events confirmed/s over the same time | {fmt(med('live', 'events'))} |")
    print(f"| (c) live: events spooled but not yet confirmed when the load stopped | "
          f"{fmt(med('live', 'lag'))} |")
    print(f"| (c) live: seconds to confirm those after the load stopped | "
          f"{med('live', 'catch_up'):.2f} |")
    print(f"| (d) bare publisher under the same load, messages/s | {fmt(med('loaded', 'rate'))} |")
    print(f"| (d) calls/s answered meanwhile (the proxy spooling, not publishing) | "
          f"{fmt(med('loaded', 'calls'))} |")
    print(f"| (c)/(d), live events / bare under load (median of the rounds' ratios) | "
          f"{statistics.median([r['live']['events'] / r['loaded']['rate'] for r in rounds]):.2f} |")
    print()
    goal = statistics.median(ratios) >= 0.9
    print(f"Goal proxy >= 0.9 x bare, publishing alone: {'met' if goal else 'not met'} on this run "
          f"({statistics.median(ratios):.2f}). A benchmark reports; it does not judge.")
    print("(b) is timed from SIGHUP, so it includes the reload, the publisher's reconnect and up "
          "to 50 ms\nbetween the last ack and the checkpoint write (CONFIRM_EVERY_NS in "
          "publisher.c); (a) runs from\nthe first publish to the last ack. The steady rate "
          "leaves the start and the end out.")
    for i, r in enumerate(rounds, 1):
        if r["drain"]["trouble"]:
            print(f"\nround {i}: the proxy logged during (b):")
            for line in r["drain"]["trouble"][:10]:
                print(f"  {line}")
        for phase in ("live", "loaded"):
            if r[phase]["bad"]:
                print(f"\nround {i}: {r[phase]['bad']} calls were not answered 200 in ({phase})")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Compares the proxy's event rate with a bare librabbitmq publisher "
                    "(same broker, same confirm window) and prints the figures.")
    p.add_argument("--build", default=os.path.join(SOURCE_DIR, "build"),
                   help="the build directory (default: build/ in the source tree)")
    p.add_argument("--strangler", help="the proxy binary (default: BUILD/strangler)")
    p.add_argument("--messages", type=int, default=30000,
                   help="messages per bare phase and events per drain phase (default 30000)")
    p.add_argument("--window", type=int, default=1000,
                   help="unconfirmed messages in flight, for both (default 1000, the proxy's)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--seconds", type=int, default=10, help="length of the live phase (default 10)")
    p.add_argument("--workers", type=int, default=1, help="proxy workers (default 1)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--fair-scheduling", action="store_true",
                   help="turn the scheduler's autogroups off for the run (root only; restored "
                        "afterwards), so that no process gets a CPU share of its own")
    p.add_argument("--keep", action="store_true",
                   help="keep the scratch directory (logs, spool, broker) afterwards")
    args = p.parse_args(argv)
    for name in ("messages", "window", "rounds", "seconds", "workers", "connections",
                 "wrk_threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.window > 100000:
        p.error("--window must be at most 100000 (what routes.conf accepts)")
    return args


AUTOGROUP = "/proc/sys/kernel/sched_autogroup_enabled"


def read_autogroup():
    try:
        with open(AUTOGROUP) as f:
            return f.read().strip()
    except OSError:
        return None


def set_autogroup(value):
    """Writes the autogroup switch; False when this user may not."""
    try:
        with open(AUTOGROUP, "w") as f:
            f.write(value)
        return True
    except OSError:
        return False


def main(argv):
    args = parse_args(argv)
    # With autogroups each session gets one share of the CPUs, so under load
    # bare-publisher (a process of its own) would get a share apart from
    # the proxy's, whose publisher thread shares one with its workers.
    # --fair-scheduling turns them off for the run (root only) and back on.
    autogroup = read_autogroup()
    restore_autogroup = (args.fair_scheduling and autogroup == "1" and set_autogroup("0"))
    if args.fair_scheduling and autogroup == "1" and not restore_autogroup:
        print(f"events-bench: cannot write {AUTOGROUP}: autogroups stay on", file=sys.stderr)
    # SIGTERM ends the run through the same cleanup as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="events-bench-")
    bench = None
    done = False
    try:
        bench = Bench(args, tmp)
        facts = machine_facts(args, bench)
        load0 = "%.2f %.2f %.2f" % os.getloadavg()
        bench.start()
        bench.warm_up()
        started = bench.meter.start()
        rounds = []
        for r in range(args.rounds):
            res = bench.round(r)
            rounds.append(res)
            b, d, lv, ld = res["bare"], res["drain"], res["live"], res["loaded"]
            print(f"round {r + 1}/{args.rounds} ({res['order']}): (a) bare {b['rate']:,.0f} msg/s, "
                  f"(b) proxy drain {d['rate']:,.0f} ev/s ({d['events']:,} in {d['seconds']:.2f} s), "
                  f"(c) live {lv['calls']:,.0f} calls/s with {lv['events']:,.0f} ev/s confirmed, "
                  f"lag {lv['lag']:,}, (d) bare under load {ld['rate']:,.0f} msg/s", flush=True)
        whole = {"cpu": bench.meter.stop(started), "load0": load0,
                 "load1": "%.2f %.2f %.2f" % os.getloadavg()}
        report(args, bench, rounds, facts, whole)
        done = True
        return 0
    except BenchError as e:
        print(f"events-bench: {e}", file=sys.stderr)
        return 1
    finally:
        if restore_autogroup:
            set_autogroup("1")
        if bench is not None:
            bench.stop()
        if args.keep or not done:
            print(f"events-bench: scratch directory kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
