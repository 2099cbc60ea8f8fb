"""The container files, checked without a container engine (none runs here, nor in CI).

The Dockerfile and docker-compose.yaml are parsed, and every command they run (each service's command, the
image's CMD, every health check) runs here instead: the same argv from the same venv, with the image's
environment and .env.example, ``/app`` this checkout, ``/data`` a temporary POLAR_HOME, loopback for
0.0.0.0 and free ports for the published ones. Each service must start and answer, its health check must
pass, and SIGTERM (what ``docker stop`` sends) must stop it within the grace period compose gives it.
The dagster.yaml the services render is loaded by Dagster itself: SQLite by default, and the PostgreSQL
variant up to the login a (fake, loopback) server receives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest
import yaml

from polar_pipeline.orchestration.event_log import FastSqliteEventLogStorage
from polar_pipeline.orchestration.home import MARKER, prepare_dagster_home
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import publish_snapshot

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
IMAGE_ROOTS = {"/app": REPO}
"""Where the image keeps the checkout; ``/data`` (POLAR_HOME) becomes each test's own folder."""
STARTUP_SECONDS = 150.0
"""Generous: on a busy 2-core machine the webserver alone has taken 45 s to load the code location."""


# --- parsing the Dockerfile ----------------------------------------------------------------------------


@dataclass
class Stage:
    """One FROM … block: its name and its instructions (keyword, argument), continuation lines joined."""

    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [argument for kw, argument in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            words = argument.split()
            stages.append(Stage(words[2] if len(words) == 3 and words[1].upper() == "AS" else ""))
        if stages:
            stages[-1].instructions.append((keyword, argument))
    return stages


def exec_form(argument: str) -> list[str]:
    """A CMD/ENTRYPOINT in exec form (a JSON array): no shell between Docker and the process."""
    command = json.loads(argument)
    assert isinstance(command, list) and all(isinstance(word, str) for word in command), argument
    return command


def healthcheck_command(argument: str) -> list[str]:
    options, found, command = argument.partition("CMD ")
    assert found and all(option.startswith("--") for option in options.split()), argument
    return exec_form(command)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda match: env.get(match.group(1), ""), value)


def image_environment(stage: Stage) -> dict[str, str]:
    """The final stage's ENV, in order, ``$VAR`` expanded (a variable the image does not set: the host's)."""
    env: dict[str, str] = {}
    for argument in stage.arguments("ENV"):
        for assignment in shlex.split(argument):
            name, _, value = assignment.partition("=")
            env[name] = _expand(value, os.environ | env)
    return env


# --- the files ------------------------------------------------------------------------------------------


@dataclass
class Service:
    """A compose service run from our image, as this machine runs it."""

    name: str
    command: list[str]
    healthcheck: list[str]
    container_ports: list[int]
    grace_seconds: float
    environment: dict[str, str]


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[unit] for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as compose reads them (no quoting used in ours), comments skipped."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, found, value = line.partition("=")
            assert found, f"{path.name}: not KEY=VALUE: {line!r}"
            env[name.strip()] = value.strip()
    return env


@dataclass
class Deployment:
    dockerfile: list[Stage]
    compose: dict[str, Any]

    @property
    def runtime(self) -> Stage:
        return self.dockerfile[-1]

    def ours(self) -> dict[str, dict[str, Any]]:
        """The services built from this repository's Dockerfile."""
        return {name: spec for name, spec in self.compose["services"].items() if spec.get("build") == "."}

    def service(self, name: str) -> Service:
        spec = self.ours()[name]
        (cmd,) = self.runtime.arguments("CMD") or [None]
        (health,) = self.runtime.arguments("HEALTHCHECK") or [None]
        assert not self.runtime.arguments("ENTRYPOINT") and "entrypoint" not in spec, "a command runs alone"
        if "healthcheck" in spec:
            kind, *healthcheck = spec["healthcheck"]["test"]
            assert kind == "CMD", f"{name}: the health check runs without a shell"
        else:
            assert health is not None, f"{name}: neither the service nor the image has a health check"
            healthcheck = healthcheck_command(health)
        env_files = spec.get("env_file", [])
        env = {}
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            assert env_file == ".env", "the deployer's settings come from .env, made from .env.example"
            env |= read_env_file(REPO / ".env.example")
        return Service(
            name=name,
            command=spec.get("command") or exec_form(str(cmd)),
            healthcheck=healthcheck,
            container_ports=[int(str(port).rsplit(":", 1)[-1]) for port in spec.get("ports", [])],
            grace_seconds=_seconds(spec.get("stop_grace_period", "10s")),
            environment=env | spec.get("environment", {}),
        )


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment(
        parse_dockerfile((REPO / "Dockerfile").read_text()),
        yaml.safe_load((REPO / "docker-compose.yaml").read_text()),
    )


# --- running a service's commands here ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Local:
    """How commands of the image run on this machine: paths, ports and the environment mapped."""

    home: Path
    ports: dict[int, int]

    def path(self, value: str) -> str:
        for image_root, here in {**IMAGE_ROOTS, "/data": self.home}.items():
            value = re.sub(rf"(?<![\w/]){re.escape(image_root)}(?=/|:|$)", str(here), value)
        return value

    def argv(self, command: list[str], env: dict[str, str]) -> list[str]:
        """The command with its executable found on the image's PATH (which must be our venv's)."""
        executable = next(
            (Path(d) / command[0] for d in env["PATH"].split(":") if (Path(d) / command[0]).is_file()), None
        )
        assert executable is not None and executable.parent == VENV_BIN, f"{command[0]}: not in the venv"
        words = [str(executable), *command[1:]]
        words = ["127.0.0.1" if word == "0.0.0.0" else word for word in words]
        for container, here in self.ports.items():
            words = [str(here) if word == str(container) else word for word in words]
            words = [re.sub(rf"(?<=127\.0\.0\.1:){container}\b", str(here), word) for word in words]
        return words

    def environment(self, deployment: Deployment, service: Service) -> dict[str, str]:
        image = {name: self.path(value) for name, value in image_environment(deployment.runtime).items()}
        host = {
            name: value for name, value in os.environ.items() if name not in ("POLAR_HOME", "DAGSTER_HOME")
        }
        return host | image | service.environment


@dataclass
class Running:
    service: Service
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    local: Local

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def run_healthcheck(self) -> subprocess.CompletedProcess[str]:
        command = self.local.argv(self.service.healthcheck, self.env)
        return subprocess.run(command, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=60)


def start(deployment: Deployment, name: str, home: Path, logs: Path) -> Running:
    service = deployment.service(name)
    local = Local(home, {port: _free_port() for port in service.container_ports})
    env = local.environment(deployment, service)
    log = logs / f"{name}.log"
    (workdir,) = deployment.runtime.arguments("WORKDIR")
    with log.open("wb") as out:
        process = subprocess.Popen(
            local.argv(service.command, env),
            env=env,
            cwd=local.path(workdir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code servers it starts are ours to end
        )
    return Running(service, process, log, env, local)


def wait_for(what: str, running: Running, ready: Callable[[], bool], deadline: float) -> None:
    while not ready():
        assert running.process.poll() is None, f"{what} exited:\n{running.tail()}"
        assert time.monotonic() < deadline, f"{what} not ready in {STARTUP_SECONDS:g} s:\n{running.tail()}"
        time.sleep(0.25)


def answers_http(running: Running) -> bool:
    (port,) = running.local.ports.values()
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.TransportError:
        return False
    return True


def daemons_beating(home: Path) -> Callable[[], bool]:
    def ready() -> bool:
        if not (home / "dagster" / "dagster.yaml").exists():
            return False
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            return set(instance.get_required_daemon_types()) <= set(instance.get_daemon_heartbeats())

    return ready


GRAPHQL = """{
  shouldShowNux
  workspaceOrError { ... on Workspace { locationEntries {
    name
    locationOrLoadError { __typename ... on PythonError { message } }
  } } }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}"""


@pytest.fixture(scope="module")
def stack(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    """webserver, daemon and api started together on one fresh POLAR_HOME, as `docker compose up` does."""
    home = tmp_path_factory.mktemp("data")
    logs = tmp_path_factory.mktemp("logs")
    started = {name: start(deployment, name, home, logs) for name in ("webserver", "daemon", "api")}
    try:
        yield started
    finally:
        for running in started.values():
            with contextlib.suppress(ProcessLookupError):  # what is left of its group: code servers
                os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()


@pytest.mark.slow
def test_the_services_start_answer_their_health_checks_and_stop(stack: dict[str, Running]) -> None:
    web, daemon, api = stack["webserver"], stack["daemon"], stack["api"]
    home = Path(api.env["POLAR_HOME"])
    assert home == Path(web.env["DAGSTER_HOME"]).parent, "DAGSTER_HOME is on the POLAR_HOME volume"
    deadline = time.monotonic() + STARTUP_SECONDS
    wait_for("the api", api, lambda: answers_http(api), deadline)
    wait_for("the webserver", web, lambda: answers_http(web), deadline)
    # Read only once the webserver is up: the services have created Dagster's tables by then.
    wait_for("the daemon's heartbeats", daemon, daemons_beating(home), deadline)

    with ThreadPoolExecutor(2) as pool:
        daemon_check = pool.submit(daemon.run_healthcheck)  # a Dagster CLI: seconds to start
        web_check = pool.submit(web.run_healthcheck)

        # The API is unhealthy until a snapshot is published, then healthy.
        before = api.run_healthcheck()
        assert before.returncode != 0 and "503" in before.stderr, before.stderr
        with duckdb.connect() as con:
            con.execute("CREATE SCHEMA marts; CREATE TABLE marts.probe AS SELECT 1 AS x")
            publish_snapshot(con, Path(api.env["POLAR_HOME"]) / "serving")
        after = api.run_healthcheck()
        assert after.returncode == 0, after.stderr

        (port,) = web.local.ports.values()
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": GRAPHQL}, timeout=30)
        data = answer.json()["data"]
        assert data["shouldShowNux"] is False, "the new-user pop-up is off"
        (location,) = data["workspaceOrError"]["locationEntries"]
        assert location["name"] == "polar_pipeline.definitions"
        assert location["locationOrLoadError"]["__typename"] == "RepositoryLocation", location
        required = [d for d in data["instance"]["daemonHealth"]["allDaemonStatuses"] if d["required"]]
        assert required and all(d["healthy"] for d in required), f"the UI sees the daemon's beats: {required}"

        assert web_check.result().returncode == 0, web_check.result().stderr
        liveness = daemon_check.result()
        assert liveness.returncode == 0 and "Daemon live" in liveness.stdout, (
            liveness.stdout + liveness.stderr
        )

    for running in stack.values():
        running.process.send_signal(signal.SIGTERM)
    for running in stack.values():
        try:
            running.process.wait(timeout=running.service.grace_seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{running.service.name} outlived `docker stop`'s grace period:\n{running.tail()}")


# --- the files themselves -------------------------------------------------------------------------------


def test_the_image_is_built_from_the_lock_and_runs_unprivileged(deployment: Deployment) -> None:
    builder, runtime = deployment.dockerfile[0], deployment.runtime
    syncs = [run.split() for run in builder.arguments("RUN") if "uv sync" in run]
    assert syncs and all({"--frozen", "--no-dev"} <= set(words) for words in syncs), "the lock, no dev tools"
    assert all(words[words.index("--extra") + 1] == "postgres" for words in syncs)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^postgres = \["dagster-postgres==', pyproject, re.MULTILINE)
    assert f"--from={builder.name} /app/.venv /app/.venv" in runtime.arguments("COPY")
    (user,) = runtime.arguments("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a fixed, numeric, non-root uid (Kubernetes can check it)"
    assert any(f"chown {uid}:" in run and "/data" in run for run in runtime.arguments("RUN"))
    assert image_environment(runtime)["POLAR_HOME"] == "/data"
    assert runtime.arguments("VOLUME") == ['["/data"]']
    for stage in deployment.dockerfile:
        for copy in stage.arguments("COPY"):
            if "--from=" not in copy:
                *sources, _ = copy.split()
                assert all((REPO / source).exists() for source in sources), copy


def test_compose_shares_one_home_and_keeps_postgres_optional(deployment: Deployment) -> None:
    ours = deployment.ours()
    assert set(ours) == {"webserver", "daemon", "api"}
    assert all(spec["volumes"] == ["polar-home:/data"] for spec in ours.values())
    assert "polar-home" in deployment.compose["volumes"]
    postgres = deployment.compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert all(spec["depends_on"]["postgres"]["required"] is False for spec in ours.values())
    # The bundled server is created with the user, password and database polar-flow logs in with: the
    # same variables, and the same defaults as Settings.
    fields = {"POSTGRES_USER": "dagster_pg_user", "POSTGRES_PASSWORD": "dagster_pg_password"}
    fields |= {"POSTGRES_DB": "dagster_pg_db"}
    assert set(postgres["environment"]) == set(fields)
    for variable, name in fields.items():
        match = re.fullmatch(r"\$\{(\w+):-(.*)\}", postgres["environment"][variable])
        assert match, postgres["environment"][variable]
        info = Settings.model_fields[name]
        assert info.validation_alias is not None and match[1] in info.validation_alias.choices
        assert match[2] == info.default


def _settings_variables() -> set[str]:
    """Every environment variable Settings reads."""
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names |= {str(choice) for choice in alias.choices} if alias else {f"POLAR_{name}".upper()}
    return names


def test_env_example_names_real_settings_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert listed - _settings_variables() == set(), "every variable it lists is one polar-flow reads"
    assert {"POLAR_CLIENT_ID", "POLAR_CLIENT_SECRET", "POLAR_ENCRYPTION_KEY", "DAGSTER_PG_HOST"} <= listed
    compose_variables = set(re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yaml").read_text()))
    assert compose_variables <= listed, "compose's own variables are in .env.example"
    for name, value in read_env_file(REPO / ".env.example").items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.client_id == "change-me" and settings.dagster_pg_host == ""


# --- dagster.yaml ---------------------------------------------------------------------------------------


@pytest.fixture
def polar_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("POLAR_HOME", str(tmp_path))
    for name in ("HOST", "PORT", "DB", "USER", "PASSWORD"):
        monkeypatch.delenv(f"DAGSTER_PG_{name}", raising=False)
    return tmp_path


def test_the_sqlite_dagster_yaml_loads_with_the_new_user_popup_off(polar_home: Path) -> None:
    home = prepare_dagster_home(Settings())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.nux_enabled is False
        assert instance.telemetry_enabled is False
        assert isinstance(instance.event_log_storage, FastSqliteEventLogStorage)
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert (home / "history" / "runs.db").is_file(), "runs are kept in DAGSTER_HOME, on the volume"


class FakePostgres:
    """A loopback server speaking just enough of PostgreSQL's protocol (v3) to learn who logs in: the
    startup message's user and database, and the password sent for cleartext authentication. It then
    refuses, as a server with another password would."""

    SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.logins: list[dict[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self._login(conn)

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _login(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", self._read(conn, 8))
            if code not in (self.SSL_REQUEST, self.GSSENC_REQUEST):
                break
            conn.sendall(b"N")  # no encryption: the client goes on in the clear
        words = self._read(conn, length - 8).split(b"\0")
        login = {k.decode(): v.decode() for k, v in zip(words[0::2], words[1::2], strict=False) if k}
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        assert self._read(conn, 1) == b"p"
        (length,) = struct.unpack("!i", self._read(conn, 4))
        login["password"] = self._read(conn, length - 4).rstrip(b"\0").decode()
        self.logins.append(login)
        fields = b"SFATAL\0C28P01\0Mpassword authentication failed for the fake server\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self.server.close()


def test_the_postgres_dagster_yaml_logs_in_with_the_settings(
    polar_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_postgres import utils as pg_utils

    server = FakePostgres()
    password = "s3cret:with@/?#chars"
    monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port))
    monkeypatch.setenv("DAGSTER_PG_DB", "dagster_runs")
    monkeypatch.setenv("DAGSTER_PG_USER", "polar_dagster")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", password)
    # dagster-postgres retries a refused login with growing waits (~12 s in all): not this test's subject.
    monkeypatch.setattr(pg_utils, "calculate_delay", lambda **_: 0.0)
    home = prepare_dagster_home(Settings())
    text = (home / "dagster.yaml").read_text()
    assert text.startswith(MARKER) and "storage:\n  postgres:" in text and "nux:\n  enabled: false" in text
    assert password not in text, "the password stays in the environment"
    try:
        with pytest.raises(pg_utils.DagsterPostgresException):
            dg.DagsterInstance.from_config(str(home))
    finally:
        server.close()
    assert server.logins, "Dagster connected to the configured server"
    assert {(lo["user"], lo["database"], lo["password"]) for lo in server.logins} == {
        ("polar_dagster", "dagster_runs", password)
    }


def test_switching_storage_rewrites_our_file_and_a_password_is_required(
    polar_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = prepare_dagster_home(Settings())
    assert "FastSqliteEventLogStorage" in (home / "dagster.yaml").read_text()
    monkeypatch.setenv("DAGSTER_PG_HOST", "db.internal")
    with pytest.raises(ValueError, match="DAGSTER_PG_PASSWORD"):
        prepare_dagster_home(Settings())
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "x")
    prepare_dagster_home(Settings())
    text = (home / "dagster.yaml").read_text()
    assert 'hostname: "db.internal"' in text and "FastSqliteEventLogStorage" not in text
    assert sorted(p.name for p in home.iterdir() if p.name.startswith(".dagster.yaml")) == []
