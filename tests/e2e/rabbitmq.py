"""A private RabbitMQ node for tests and the demo.

Each node gets its own name, ports (AMQP, Erlang distribution, epmd) and
data directory, so it never touches a system broker and several can run on
one machine. It runs Debian's rabbitmq-server directly (not the wrapper that
switches to the rabbitmq user), as whoever runs the tests.

As a module: Broker(dir).start() / .stop() / .url, so a test can stop and
restart the broker under load. As a command (the ctest fixture and
`make demo` use it):

    rabbitmq.py start DIR [--port N]   # prints the AMQP URL once it answers
    rabbitmq.py stop DIR
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
CTL_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmqctl",)
START_TIMEOUT_S = 90


def _find(candidates, name):
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the rabbitmq-server package")
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def amqp_answers(port, timeout=1.0):
    """True when an AMQP 0-9-1 server on port answers the protocol header
    with connection.start (a method frame), i.e. the broker is really up,
    not just its port bound."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            first = s.recv(1)
            return first == b"\x01"
    except OSError:
        return False


class Broker:
    def __init__(self, directory, port=None):
        self.dir = os.path.abspath(directory)
        self.state_path = os.path.join(self.dir, "state.json")
        state = self._load()
        self.port = port or state.get("port") or free_port()
        self.dist_port = state.get("dist_port") or free_port()
        self.epmd_port = state.get("epmd_port") or free_port()
        self.node = state.get("node") or f"strangler{self.port}@localhost"
        self.pid = state.get("pid")

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    def _load(self):
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _save(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.state_path, "w") as f:
            json.dump({"port": self.port, "dist_port": self.dist_port,
                       "epmd_port": self.epmd_port, "node": self.node,
                       "pid": self.pid, "url": self.url}, f)

    def env(self):
        home = os.path.join(self.dir, "home")
        env = dict(os.environ)
        env.update({
            "HOME": home,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "rabbitmq.pid"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),
        })
        return env

    def _prepare(self):
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        # Tests fill the disk on purpose later; keep the broker's own disk
        # alarm out of the way (it would block publishers for its own reasons).
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("disk_free_limit.absolute = 1MB\nloopback_users = none\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "a").close()

    def running(self):
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def start(self, timeout=START_TIMEOUT_S):
        if self.running() and amqp_answers(self.port):
            return self
        self._prepare()
        log = open(os.path.join(self.dir, "server.out"), "ab")
        proc = subprocess.Popen([_find(SERVER_CANDIDATES, "rabbitmq-server")], env=self.env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.pid = proc.pid
        self._save()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {proc.returncode}; "
                                   f"see {self.dir}/server.out and {self.dir}/log")
            if amqp_answers(self.port):
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"rabbitmq-server did not answer on port {self.port} "
                           f"within {timeout}s; see {self.dir}/log")

    def stop(self, timeout=30):
        """Stops the node and its epmd, by pid, whatever state it is in."""
        if self.running():
            try:
                subprocess.run([_find(CTL_CANDIDATES, "rabbitmqctl"), "-n", self.node, "stop"],
                               env=self.env(), timeout=timeout, capture_output=True)
            except (subprocess.TimeoutExpired, RuntimeError):
                pass
            self._kill_group()
        subprocess.run(["epmd", "-kill"], env=self.env(), capture_output=True)
        self.pid = None
        self._save()

    def kill(self):
        """Stops the broker abruptly (SIGKILL), as a crash would."""
        self._kill_group()
        self.pid = None
        self._save()

    def _kill_group(self):
        if not self.pid:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except OSError:
                break
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    port = None
    if "--port" in argv:
        port = int(argv[argv.index("--port") + 1])
    broker = Broker(argv[2], port=port)
    if argv[1] == "start":
        broker.start()
        print(broker.url)
    else:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
