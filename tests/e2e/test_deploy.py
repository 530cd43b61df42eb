"""Deployment files: the Dockerfile, docker-compose.yml, the routes.conf the
compose file mounts (examples/docker/), the systemd unit and its logrotate
snippet (examples/systemd/).

None of this needs a docker daemon. The compose file is checked by the
compose tool itself (`docker compose config`, v2, or Debian 12's
`docker-compose config`, v1) and its resolved form is read back; the unit by
`systemd-analyze verify`; the logrotate snippet by logrotate; the Dockerfile
is read and held against the compose file, the mounted routes.conf and the
shared libraries the binaries under test really link.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import unittest

from harness import SOURCE_DIR, STOCK_SERVICE, STRANGLER, E2ETestCase

COMPOSE_FILE = os.path.join(SOURCE_DIR, "docker-compose.yml")
DOCKERFILE = os.path.join(SOURCE_DIR, "Dockerfile")
DOCKERIGNORE = os.path.join(SOURCE_DIR, ".dockerignore")
DOCKER_ROUTES = os.path.join(SOURCE_DIR, "examples", "docker", "routes.conf")
REPO_ROUTES = os.path.join(SOURCE_DIR, "routes.conf")
CI_PACKAGES = os.path.join(SOURCE_DIR, ".ci", "packages")
UNIT = os.path.join(SOURCE_DIR, "examples", "systemd", "strangler.service")
LOGROTATE = os.path.join(SOURCE_DIR, "examples", "systemd", "strangler.logrotate")

SERVICES = {"rabbitmq", "legacy", "stock-svc", "strangler"}
# The drain on SIGTERM: drain_timeout's default, then the publisher's last
# wait for confirms (PUBLISHER_DRAIN_MS in proxy/main.c).
DRAIN_S = 30 + 5


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


# ---- reading the files ------------------------------------------------------

def conf_lines(path):
    """routes.conf as (directive, words) pairs, comments and blanks left out."""
    out = []
    with open(path) as f:
        for line in f:
            words = []
            for w in line.split():
                if w.startswith("#"):
                    break
                words.append(w)
            if words:
                out.append((words[0], words[1:]))
    return out


def conf_directive(path, name):
    return [words for d, words in conf_lines(path) if d == name]


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def upstream_hosts(path):
    """{upstream name: (host, port)} from the upstream lines' URLs."""
    out = {}
    for words in conf_directive(path, "upstream"):
        m = re.match(r"http://([^/:]+):(\d+)", words[1])
        out[words[0]] = (m.group(1), int(m.group(2)))
    return out


def dockerfile_stages(path):
    """The Dockerfile as a list of stages, each a list of (INSTRUCTION,
    arguments), continuations joined and comment lines dropped (Docker drops
    them inside a continuation too)."""
    stages, current, pending = [], None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.strip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if not line:
                continue
            instruction, _, args = line.partition(" ")
            instruction = instruction.upper()
            if instruction == "FROM":
                current = []
                stages.append(current)
            current.append((instruction, args.strip()))
    return stages


def apt_installs(stage):
    """The packages the stage's RUN lines give to apt-get install."""
    packages = []
    for instruction, args in stage:
        if instruction != "RUN":
            continue
        for m in re.finditer(r"apt-get install ([^&;|]*)", args):
            packages += [w for w in m.group(1).split() if not w.startswith("-")]
    return packages


def exec_form(args):
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def ci_packages():
    with open(CI_PACKAGES) as f:
        return {w for line in f if not line.startswith("#") for w in line.split()}


# ---- the compose tool ---------------------------------------------------------

def compose_tool():
    """(argv prefix, major version) of the compose tool on this machine, or
    (None, reason)."""
    if shutil.which("docker"):
        r = run(["docker", "compose", "version", "--short"])
        if r.returncode == 0:
            return ["docker", "compose"], 2
    if shutil.which("docker-compose"):
        r = run(["docker-compose", "version", "--short"])
        if r.returncode == 0:
            major = 2 if r.stdout.strip().lstrip("v").startswith("2") else 1
            return ["docker-compose"], major
    return None, ("neither `docker compose` (v2) nor `docker-compose` (v1) is installed; "
                  "CI installs docker-compose from .ci/packages")


def yaml_to_data(text):
    """docker-compose v1 prints YAML only. PyYAML is one of its own
    dependencies: import it here, or ask the interpreter docker-compose runs
    on when the tests run on another one."""
    try:
        import yaml  # noqa: PLC0415
        return yaml.safe_load(text)
    except ImportError:
        pass
    with open(shutil.which("docker-compose")) as f:
        shebang = f.readline()
    interpreter = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "python3"
    r = run([interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
            input=text)
    if r.returncode != 0:
        raise unittest.SkipTest(f"cannot read docker-compose's YAML (no PyYAML): {r.stderr}")
    return json.loads(r.stdout)


def published_ports(service):
    """{(container port, host port)} of a service, from the short form
    ("127.0.0.1:15672:15672/tcp", v1) or the long one (dicts, v1 and v2)."""
    out = set()
    for p in service.get("ports", []):
        if isinstance(p, dict):
            if p.get("published") not in (None, ""):
                out.add((int(p["target"]), int(p["published"])))
        else:
            parts = str(p).split("/")[0].split(":")
            if len(parts) >= 2:
                out.add((int(parts[-1]), int(parts[-2])))
    return out


def command_list(value):
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else list(value)


class ComposeTest(E2ETestCase):
    """docker-compose.yml is valid for the compose tool installed and, once
    resolved, wires the four services the way examples/docker/routes.conf
    expects."""

    TOKEN = "deploy-test-token"

    @classmethod
    def setUpClass(cls):
        cls.tool, cls.major = compose_tool()
        if cls.tool is None:
            raise unittest.SkipTest(cls.major)
        env = dict(os.environ, STRANGLER_ADMIN_TOKEN=cls.TOKEN)
        base = cls.tool + ["-f", COMPOSE_FILE, "--project-directory", SOURCE_DIR]
        cls.quiet = run(base + ["config", "-q"], env=env)
        if cls.major == 2:
            r = run(base + ["config", "--format", "json"], env=env)
            cls.config_error = r.stderr
            cls.config = json.loads(r.stdout) if r.returncode == 0 else None
        else:
            r = run(base + ["config"], env=env)
            cls.config_error = r.stderr
            cls.config = yaml_to_data(r.stdout) if r.returncode == 0 else None

    def service(self, name):
        self.assertIsNotNone(self.config, self.config_error)
        self.assertIn(name, self.config["services"])
        return self.config["services"][name]

    def test_no_default_admin_token(self):
        # A well-known default would let anything on the compose network
        # flip routes: without the variable compose refuses the file.
        env = {k: v for k, v in os.environ.items() if k != "STRANGLER_ADMIN_TOKEN"}
        r = run(self.tool + ["-f", COMPOSE_FILE, "--project-directory", SOURCE_DIR, "config",
                             "-q"], env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("STRANGLER_ADMIN_TOKEN", r.stdout + r.stderr)

    def test_config_is_valid(self):
        self.assertEqual(self.quiet.returncode, 0,
                         f"{' '.join(self.tool)} config -q: {self.quiet.stderr}")
        self.assertIsNotNone(self.config, self.config_error)
        with open(COMPOSE_FILE) as f:
            # The Compose Specification: no `version:` for v2 to warn about.
            self.assertNotRegex(f.read(), r"(?m)^version\s*:")

    def test_four_services_each_with_a_healthcheck(self):
        self.assertIsNotNone(self.config, self.config_error)
        self.assertEqual(set(self.config["services"]), SERVICES)
        for name in SERVICES:
            with self.subTest(service=name):
                check = self.service(name).get("healthcheck")
                self.assertIsNotNone(check, f"{name} has no healthcheck")
                self.assertFalse(check.get("disable"), f"{name}'s healthcheck is disabled")
                self.assertIn(check["test"][0], ("CMD", "CMD-SHELL"))
        self.assertEqual(self.service("rabbitmq")["healthcheck"]["test"],
                         ["CMD", "rabbitmq-diagnostics", "-q", "ping"])
        # The proxy's: its admin API's /healthz, on the admin line's port.
        admin_port = host_port(conf_directive(DOCKER_ROUTES, "admin")[0][0])[1]
        self.assertIn(f"127.0.0.1:{admin_port}/healthz",
                      " ".join(self.service("strangler")["healthcheck"]["test"]))

    def test_proxy_waits_for_the_others_to_be_healthy(self):
        deps = self.service("strangler").get("depends_on", {})
        self.assertEqual(set(deps), SERVICES - {"strangler"})
        for name, dep in deps.items():
            self.assertEqual(dep.get("condition"), "service_healthy", name)
        # The stock service consumes from the broker.
        self.assertEqual(self.service("stock-svc")["depends_on"]["rabbitmq"]["condition"],
                         "service_healthy")

    def test_published_ports(self):
        rabbit = published_ports(self.service("rabbitmq"))
        self.assertIn((15672, 15672), rabbit, "the management UI is published")
        self.assertIn((5672, 5672), rabbit)
        listen = host_port(conf_directive(DOCKER_ROUTES, "listen")[0][0])[1]
        admin = host_port(conf_directive(DOCKER_ROUTES, "admin")[0][0])[1]
        proxy = published_ports(self.service("strangler"))
        self.assertIn((listen, listen), proxy)
        self.assertIn((admin, admin), proxy)

    def test_proxy_runs_the_mounted_routes_conf_with_a_token(self):
        proxy = self.service("strangler")
        env = proxy.get("environment", {})
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        self.assertEqual(env.get("STRANGLER_ADMIN_TOKEN"), self.TOKEN)
        # The admin line reads its token from exactly that variable.
        self.assertIn("token=env:STRANGLER_ADMIN_TOKEN", conf_directive(DOCKER_ROUTES, "admin")[0])

        config_path = command_list(proxy.get("command"))[-1]
        mounts = {}
        for v in proxy.get("volumes", []):
            if isinstance(v, str):
                parts = v.split(":")
                v = {"source": parts[0], "target": parts[1],
                     "read_only": len(parts) > 2 and "ro" in parts[2].split(",")}
            mounts[v["target"]] = v
        # The folder, read-write: a flip renames a temporary file over
        # routes.conf, which a bind mount of the file alone refuses.
        folder = mounts.get(os.path.dirname(config_path))
        self.assertIsNotNone(folder, f"{os.path.dirname(config_path)} is not mounted: {mounts}")
        self.assertEqual(os.path.realpath(folder["source"]),
                         os.path.realpath(os.path.dirname(DOCKER_ROUTES)))
        self.assertFalse(folder.get("read_only"), "routes.conf's folder must be writable")
        self.assertEqual(os.path.basename(config_path), os.path.basename(DOCKER_ROUTES))
        # The spool on a named volume (the top-level volumes list names it).
        spool = conf_directive(DOCKER_ROUTES, "spool")[0][0]
        self.assertIn(spool, mounts)
        self.assertIn(mounts[spool]["source"], self.config.get("volumes", {}))

    def test_upstreams_are_the_services_on_their_ports(self):
        for name, (host, port) in upstream_hosts(DOCKER_ROUTES).items():
            with self.subTest(upstream=name):
                svc = self.service(host)
                argv = command_list(svc.get("entrypoint")) + command_list(svc.get("command"))
                listens = {"--port": str(port), "--listen": f"0.0.0.0:{port}"}
                self.assertTrue(any(a in listens and b == listens[a] for a, b in zip(argv, argv[1:])),
                                f"{host} does not listen on 0.0.0.0:{port}: {argv}")
                if "--host" in argv:
                    self.assertEqual(argv[argv.index("--host") + 1], "0.0.0.0", host)
        events = conf_directive(DOCKER_ROUTES, "events")[0][0]
        self.assertEqual(events, "amqp://guest:guest@rabbitmq:5672/%2f")
        svc = self.service("stock-svc")
        self.assertIn(events, command_list(svc["command"]))

    def test_proxy_has_time_to_drain(self):
        grace = self.service("strangler").get("stop_grace_period", "10s")
        seconds = float(re.fullmatch(r"(\d+)s", str(grace)).group(1))
        self.assertGreater(seconds, DRAIN_S)


class DockerRoutesTest(E2ETestCase):
    """examples/docker/routes.conf passes --check once its upstream host names
    resolve. The parser resolves upstream hosts when it loads the file
    (getaddrinfo in proxy/config.c), and `legacy` and `stock-svc` only
    resolve on the compose network; so the check runs on a copy that names
    127.0.0.1 instead, which changes nothing else. The events URL's host is
    resolved by the publisher when it connects, not at load: `rabbitmq`
    stays."""

    def check(self, path, token="x"):
        env = dict(os.environ)
        env.pop("STRANGLER_ADMIN_TOKEN", None)
        if token is not None:
            env["STRANGLER_ADMIN_TOKEN"] = token
        return run([STRANGLER, "--check", "-c", path], env=env)

    def local_copy(self):
        with open(DOCKER_ROUTES) as f:
            text = f.read()
        for name, (host, _) in upstream_hosts(DOCKER_ROUTES).items():
            text = text.replace(f"http://{host}:", "http://127.0.0.1:")
        path = os.path.join(self.tmp, "routes.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_passes(self):
        r = self.check(self.local_copy())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok (4 routes, 2 upstreams)", r.stdout)

    def test_only_the_service_names_stand_in_the_way(self):
        r = self.check(DOCKER_ROUTES)
        if r.returncode == 0:
            return  # this machine resolves them (it is on the compose network)
        errors = [line for line in r.stderr.splitlines() if ": warning: " not in line]
        self.assertTrue(errors)
        for line in errors:
            self.assertRegex(line, r": upstream [\w-]+: cannot resolve '(legacy|stock-svc)'")

    def test_admin_off_loopback_needs_the_token(self):
        r = self.check(self.local_copy(), token=None)
        self.assertEqual(r.returncode, 1)
        self.assertIn("admin: token=env:STRANGLER_ADMIN_TOKEN: the environment variable is not set",
                      r.stderr)

    def test_same_routes_as_the_repository(self):
        # The compose demo tells the same story as `make demo`.
        self.assertEqual(conf_directive(DOCKER_ROUTES, "route"), conf_directive(REPO_ROUTES, "route"))
        self.assertEqual(set(upstream_hosts(DOCKER_ROUTES)), set(upstream_hosts(REPO_ROUTES)))


class DockerfileTest(E2ETestCase):
    """The Dockerfile, read against the compose file and the binaries: it
    builds exactly the programs compose runs, installs the libraries they
    link, and runs them as compose and routes.conf expect."""

    @classmethod
    def setUpClass(cls):
        cls.stages = dockerfile_stages(DOCKERFILE)
        cls.build, cls.runtime = cls.stages[0], cls.stages[-1]

    def instructions(self, stage, name):
        return [args for instruction, args in stage if instruction == name]

    def test_multi_stage_on_debian_12(self):
        self.assertEqual(len(self.stages), 2)
        self.assertRegex(self.instructions(self.build, "FROM")[0], r"^debian:12\S* AS build$")
        self.assertRegex(self.instructions(self.runtime, "FROM")[0], r"^debian:12\S*$")

    def built_targets(self):
        runs = " ".join(self.instructions(self.build, "RUN"))
        self.assertIn("-DCMAKE_BUILD_TYPE=RelWithDebInfo", runs)
        m = re.search(r"cmake --build \S+.*?--target ([^&;]+)", runs)
        self.assertIsNotNone(m, "the build names its targets")
        return set(m.group(1).split())

    def copied_from_build(self):
        """{program name: path in the image} of what the runtime stage takes
        from the build stage."""
        out = {}
        for args in self.instructions(self.runtime, "COPY"):
            words = args.split()
            if "--from=build" not in words:
                continue
            paths = [w for w in words if not w.startswith("--")]
            dest = paths[-1]
            for src in paths[:-1]:
                out[os.path.basename(src)] = dest + os.path.basename(src) if dest.endswith("/") else dest
        return out

    def test_builds_exactly_what_compose_runs(self):
        targets = self.built_targets()
        programs = self.copied_from_build()
        self.assertEqual(set(programs), targets)
        for name, path in programs.items():
            self.assertEqual(os.path.dirname(path), "/usr/local/bin", name)

        # What each compose service that runs the image starts.
        with open(COMPOSE_FILE) as f:
            compose = f.read()
        entrypoint = exec_form(self.instructions(self.runtime, "ENTRYPOINT")[0])
        started = {entrypoint[0]}
        started |= {json.loads(m)[0] for m in re.findall(r"(?m)^\s*entrypoint:\s*(\[.*\])\s*$", compose)}
        images = {m.strip() for m in re.findall(r"(?m)^\s*image:\s*(\S+)", compose)}
        self.assertIn("strangler:local", images)
        self.assertEqual(started - {"python3"}, targets)

        # The legacy shop's script is in the image where compose runs it.
        copies = [a.split() for a in self.instructions(self.runtime, "COPY")]
        shop = re.search(r'"(/\S+/shop\.py)"', compose).group(1)
        self.assertIn(shop, [c[-1] for c in copies])
        self.assertIn("python3", apt_installs(self.runtime))

    def test_build_stage_installs_ci_packages(self):
        packages = apt_installs(self.build)
        self.assertTrue(packages)
        self.assertEqual(set(packages) - ci_packages(), set(),
                         "the build stage installs packages .ci/packages does not list")
        self.assertNotIn("check", packages)  # the tests are not built
        runs = " ".join(self.instructions(self.build, "RUN"))
        self.assertIn("-DSTRANGLER_TESTS=OFF", runs)
        self.assertIn("-DSTRANGLER_BENCH=OFF", runs)

    def test_runtime_installs_the_libraries_the_binaries_link(self):
        """Each shared library strangler and stock-service need (NEEDED in
        the ELF header) belongs, on this Debian 12 machine, to a package the
        runtime stage installs or one every Debian image has."""
        if not (shutil.which("readelf") and shutil.which("dpkg") and shutil.which("ldconfig")):
            self.skipTest("readelf, dpkg and ldconfig are needed to map libraries to packages")
        installed = set(apt_installs(self.runtime))
        # In debian:12-slim already (Essential or required by apt itself).
        base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
        cache = run(["ldconfig", "-p"]).stdout
        for binary in (STRANGLER, STOCK_SERVICE):
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                                run(["readelf", "-d", binary]).stdout)
            self.assertTrue(needed, binary)
            if any(n.startswith(("libasan", "libubsan")) for n in needed):
                # The image is never a sanitizer build, and such a build
                # links differently: gcc passes --no-as-needed for the
                # sanitizer runtimes, so every library on the command line
                # (libevent's all-in-one library too) becomes NEEDED.
                self.skipTest(f"{binary} is a sanitizer build; the image's binaries are not")
            for soname in needed:
                with self.subTest(binary=os.path.basename(binary), library=soname):
                    m = re.search(rf"^\s*{re.escape(soname)} \(.*?\) => (\S+)$", cache, re.M)
                    self.assertIsNotNone(m, f"{soname} not in ldconfig's cache")
                    path = os.path.realpath(m.group(1))
                    candidates = [path, m.group(1)]
                    candidates += [p.replace("/usr/lib/", "/lib/", 1) for p in candidates]
                    candidates += [p.replace("/lib/", "/usr/lib/", 1) for p in candidates
                                   if p.startswith("/lib/")]
                    owner = None
                    for p in candidates:
                        r = run(["dpkg", "-S", p])
                        if r.returncode == 0:
                            owner = r.stdout.split(":")[0].strip()
                            break
                    self.assertIsNotNone(owner, f"no package owns {path}")
                    self.assertTrue(owner in installed or owner in base,
                                    f"{soname} is in {owner}, which the runtime stage does not install")

    def test_runs_as_a_user_with_ports_spool_and_config(self):
        users = self.instructions(self.runtime, "USER")
        self.assertTrue(users, "the image runs as root")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))

        exposed = {int(p.split("/")[0]) for a in self.instructions(self.runtime, "EXPOSE")
                   for p in a.split()}
        self.assertEqual(exposed, {8080, 8081})
        listen = host_port(conf_directive(DOCKER_ROUTES, "listen")[0][0])[1]
        admin = host_port(conf_directive(DOCKER_ROUTES, "admin")[0][0])[1]
        self.assertEqual({listen, admin}, exposed)

        volumes = [v for a in self.instructions(self.runtime, "VOLUME") for v in exec_form(a)]
        self.assertIn("/var/lib/strangler/spool", volumes)
        self.assertEqual(conf_directive(DOCKER_ROUTES, "spool")[0][0], "/var/lib/strangler/spool")

        self.assertEqual(exec_form(self.instructions(self.runtime, "ENTRYPOINT")[0]), ["strangler"])
        self.assertEqual(exec_form(self.instructions(self.runtime, "CMD")[0]),
                         ["-c", "/etc/strangler/routes.conf"])

    def test_dockerignore_leaves_out_build_trees_and_history(self):
        with open(DOCKERIGNORE) as f:
            patterns = {line.strip().rstrip("/") for line in f
                        if line.strip() and not line.startswith("#")}
        self.assertTrue({"build", "build-*"} <= patterns or "build*" in patterns, patterns)
        self.assertIn(".git", patterns)
        # What the Dockerfile copies from the context exists and is not left out.
        for args in self.instructions(self.runtime, "COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            if "--from=build" in args:
                continue
            for src in words[:-1]:
                self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, src)), src)
                self.assertFalse(src.startswith(("build", ".git")), src)


class SystemdTest(E2ETestCase):
    """examples/systemd/strangler.service passes `systemd-analyze verify`
    (on a copy whose ExecStart and ExecReload name the binary under test,
    since verify checks that the command exists) without a single message
    about the unit, and keeps the promises the README makes of it."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("systemd-analyze"):
            raise unittest.SkipTest("systemd-analyze is not installed")

    def unit_copy(self):
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("/usr/local/bin/strangler ", text)
        text = text.replace("/usr/local/bin/strangler ", os.path.abspath(STRANGLER) + " ")
        path = os.path.join(self.tmp, "strangler.service")
        with open(path, "w") as f:
            f.write(text)
        return path

    def directives(self):
        out = {}
        with open(UNIT) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith(("#", ";", "[")):
                    key, _, value = line.partition("=")
                    out.setdefault(key.strip(), []).append(value.strip())
        return out

    def test_verify(self):
        path = self.unit_copy()
        r = run(["systemd-analyze", "verify", path])
        # verify also reports on units ours pulls in (network-online.target
        # and friends, as this machine has them); what concerns ours names it.
        ours = [line for line in (r.stdout + r.stderr).splitlines() if "strangler.service" in line]
        self.assertEqual(ours, [], r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_verify_would_report_a_mistake(self):
        # The check above means something: a misspelt key is reported.
        path = self.unit_copy()
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("KillSignal=", "KilSignal=", 1))
        r = run(["systemd-analyze", "verify", path])
        self.assertIn("Unknown key 'KilSignal'", r.stdout + r.stderr)

    def test_hardening_exposure(self):
        r = run(["systemd-analyze", "security", "--offline=yes", self.unit_copy()])
        if r.returncode != 0 and "offline" in r.stderr:
            self.skipTest("this systemd-analyze has no --offline")
        m = re.search(r"Overall exposure level for strangler\.service: ([\d.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_promises(self):
        d = self.directives()
        self.assertEqual(d["Type"], ["exec"])  # no sd_notify
        self.assertEqual(d["ExecStart"], ["/usr/local/bin/strangler -c /etc/strangler/routes.conf"])
        self.assertIn("/bin/kill -HUP $MAINPID", d["ExecReload"])
        self.assertEqual(d["KillSignal"], ["SIGTERM"])
        self.assertGreater(int(re.fullmatch(r"(\d+)s", d["TimeoutStopSec"][0]).group(1)), DRAIN_S)
        self.assertEqual(d["Restart"], ["on-failure"])
        self.assertEqual(d["User"], ["strangler"])
        self.assertEqual(d["DynamicUser"], ["no"])
        self.assertEqual(d["StateDirectory"], ["strangler"])
        self.assertEqual(d["LogsDirectory"], ["strangler"])
        self.assertEqual(d["ProtectSystem"], ["strict"])
        self.assertIn("/etc/strangler", d["ReadWritePaths"])
        self.assertEqual(d["LimitNOFILE"], ["65536"])
        self.assertEqual(d["EnvironmentFile"], ["-/etc/strangler/env"])


class LogrotateTest(E2ETestCase):
    """examples/systemd/strangler.logrotate is read by logrotate without an
    error and, forced to rotate two logs, runs its postrotate once. It is
    run on a copy whose paths and user are this test's, and whose postrotate
    marks a file instead of signalling the service."""

    def test_rotation(self):
        logrotate = shutil.which("logrotate") or ("/usr/sbin/logrotate"
                                                  if os.path.exists("/usr/sbin/logrotate") else None)
        if logrotate is None:
            self.skipTest("logrotate is not installed")
        with open(LOGROTATE) as f:
            text = f.read()
        directives = "\n".join(line for line in text.splitlines()
                               if not line.lstrip().startswith("#"))
        self.assertRegex(directives,
                         r"systemctl kill --signal=SIGUSR1 --kill-whom=main strangler\.service")
        # The proxy reopens its logs: no copying, no lines lost in between.
        self.assertNotIn("copytruncate", directives)

        import grp  # noqa: PLC0415
        import pwd  # noqa: PLC0415
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        logs = os.path.join(self.tmp, "log")
        os.makedirs(logs)
        for name in ("access.log", "error.log"):
            with open(os.path.join(logs, name), "w") as f:
                f.write("a line\n")
        marker = os.path.join(self.tmp, "postrotate-ran")
        text = text.replace("/var/log/strangler", logs)
        text = text.replace("strangler strangler", f"{user} {group}")
        text = re.sub(r"(?m)^(\s*)systemctl kill .*$", rf"\1echo x >> {marker}", text)
        conf = os.path.join(self.tmp, "logrotate.conf")
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        state = os.path.join(self.tmp, "state")

        r = run([logrotate, "-d", "-s", state, conf])
        self.assertNotIn("error:", r.stdout + r.stderr)
        r = run([logrotate, "-f", "-s", state, conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("error:", r.stdout + r.stderr)
        with open(marker) as f:
            self.assertEqual(f.read(), "x\n", "postrotate runs once for both logs (sharedscripts)")
        for name in ("access.log", "error.log"):
            self.assertTrue(os.path.exists(os.path.join(logs, name + ".1")), name)
            # create: a fresh, empty file for the proxy to reopen.
            self.assertEqual(os.path.getsize(os.path.join(logs, name)), 0)


if __name__ == "__main__":
    unittest.main()
