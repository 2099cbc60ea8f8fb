"""Real receivers on loopback (a JSON webhook, an SMTP server) and the simulator histories the alerts read.

* ``webhook``: a tiny ``http.server`` in a thread; Apprise's ``json://127.0.0.1:PORT/path`` posts to it. It
  can answer 500 to the next N posts, and records each post with the wall-clock time it arrived.
* ``smtp``: an aiosmtpd server requiring a login (without TLS, on loopback), for ``mailto://`` channels.
* ``planted``: the suite's ``sim_marts`` (4 personas, 14 months, planted illnesses and overreaching blocks)
  copied, with every analytics table computed over the whole history, as the alerts read them.
* ``null_twin``: the same simulator users (same seed, persona and calendar) with the planted events removed,
  through the same client, models and analytics: the control that should stay silent.
"""

from __future__ import annotations

import base64
import email
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from polar_pipeline.alerts.evaluation import EvaluationReport, record_history
from polar_pipeline.alerts.rules import RuleInputs, read_rule_inputs
from polar_pipeline.alerts.store import AlertStore, RecordedEpisode
from polar_pipeline.defs.analytics.assets import run_analytics_table
from polar_pipeline.defs.analytics.definitions import ALL_TABLES
from polar_pipeline.settings import Settings
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.warehouse.slices import UserDaySlice
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.served import Served
from tests.transform.conftest import (
    SIM_HISTORY_DAYS,
    SIM_TODAY,
    SIM_USERS,
    SimWarehouse,
    collect_simulator_history,
)

TEST_KEY = b"x6y3m8Qm2yPZxJ0D7b1QmAqHn8Kp7aYw1r5V3u2s9t0="
"""A fixed Fernet key for the stores the tests open (the real key source is tested in test_store)."""


# -- the webhook receiver ---------------------------------------------------------------------------------


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    status: int
    received_at: datetime


@dataclass
class Webhook:
    """Posts received (accepted or refused), and how many of the next posts to refuse with 500."""

    port: int
    posts: list[Post] = field(default_factory=list)
    refuse_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "hook", secret: str = "") -> str:
        user = f"alerts:{secret}@" if secret else ""
        return f"json://{user}127.0.0.1:{self.port}/{path}"

    @property
    def accepted(self) -> list[Post]:
        return [post for post in self.posts if post.status == 200]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Post]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.accepted


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                status = 500 if receiver.refuse_next > 0 else 200
                receiver.refuse_next = max(receiver.refuse_next - 1, 0)
                receiver.posts.append(Post(self.path, body, status, datetime.now(UTC)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads the posts
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def attachment_bytes(post: Post) -> list[bytes]:
    """The attachments of a JSON post, decoded."""
    return [base64.b64decode(item["base64"]) for item in post.body.get("attachments") or []]


# -- the SMTP receiver ------------------------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "alerts", "smtp-s3cret-pw"


@dataclass
class Smtp:
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def url(self, password: str = SMTP_PASSWORD) -> str:
        return (
            f"mailto://{SMTP_USER}:{password}@example.com:{self.port}?smtp=127.0.0.1&mode=insecure"
            "&from=polar-flow@example.com&to=athlete@example.com"
        )

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def text_of(message: Message) -> str:
    """The plain-text body of an e-mail (the first text/plain part)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload.decode() if isinstance(payload, bytes) else str(payload)
    raise AssertionError("no text/plain part")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    receiver = Smtp(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            receiver.logins.append(SMTP_USER)
        return AuthResult(success=ok)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=receiver.port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


# -- stores and settings ----------------------------------------------------------------------------------


def settings_for(home: Path, today: date | None = None, **overrides: Any) -> Settings:
    """Settings on a private home, with a frozen calendar day (default the suite's)."""
    return Settings(home=home, today=today or SIM_TODAY, **overrides)


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(tmp_path / "control.sqlite3", TEST_KEY)


# -- the simulator histories ------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """A simulator warehouse with marts and analytics, its ground truth, and the rule rows read once."""

    sim: SimWarehouse
    inputs: RuleInputs

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.sim.path), read_only=True)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        con = self.connect()
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def planted(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(user, event) of every planted event of ``kind`` that ended inside the history."""
        return [
            (user, event)
            for user in self.sim.users
            for event in self.sim.truth[user]["events"]
            if event["kind"] == kind and date.fromisoformat(event["end"]) <= self.sim.last_day
        ]


def with_analytics(sim: SimWarehouse, directory: Path, graph: ModelGraph, *, build_marts: bool) -> History:
    path = sim.copy_to(directory)
    con = connect_writer(path)
    try:
        if build_marts:
            run_models(con, graph, sim.users, sim.first_day, sim.last_day)
        for table in ALL_TABLES:
            run_analytics_table(con, table, UserDaySlice(sim.users, sim.first_day, sim.last_day))
        inputs = read_rule_inputs(con, None, sim.first_day, sim.last_day)
    finally:
        con.close()
    return History(SimWarehouse(path, sim.users, sim.first_day, sim.last_day, sim.truth), inputs)


@pytest.fixture(scope="session")
def planted(sim_marts: SimWarehouse, graph: ModelGraph, tmp_path_factory: pytest.TempPathFactory) -> History:
    return with_analytics(sim_marts, tmp_path_factory.mktemp("alerts-planted"), graph, build_marts=False)


@pytest.fixture(scope="session")
def null_twin(graph: ModelGraph, tmp_path_factory: pytest.TempPathFactory) -> History:
    """``planted``'s users with no planted event: the simulator's event plan emptied for this build only."""
    import polar_pipeline.simulator.physiology as physiology

    directory = tmp_path_factory.mktemp("alerts-null-twin")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(physiology, "plan_events", lambda *args, **kwargs: [])
        raw = collect_simulator_history(
            directory / "collected.duckdb",
            seed=7,
            users=SIM_USERS,
            today=SIM_TODAY,
            history_days=SIM_HISTORY_DAYS,
        )
    assert all(not raw.truth[user]["events"] for user in raw.users)
    return with_analytics(raw, directory, graph, build_marts=True)


@dataclass(frozen=True)
class Replayed:
    """What a day-by-day replay of a history recorded: every episode, and the day it was recorded on."""

    episodes: list[tuple[date, RecordedEpisode]]

    def of(self, user: str, rule: str) -> list[tuple[date, RecordedEpisode]]:
        return [(day, ep) for day, ep in self.episodes if ep.user_id == user and ep.rule == rule]

    def within(self, user: str, rule: str, first: date, last: date) -> list[RecordedEpisode]:
        """Episodes of ``rule`` recorded (sent) on a day in ``[first, last]``."""
        return [ep for day, ep in self.of(user, rule) if first <= day <= last]


def replay(history: History, home: Path, *, start_after_days: int = 21) -> Replayed:
    """Evaluate the history rules once per day, as the daily refresh would, into a fresh store."""
    replay_store = AlertStore(home / "control.sqlite3", TEST_KEY)
    settings = settings_for(home)
    recorded: list[tuple[date, RecordedEpisode]] = []
    day = history.sim.first_day + timedelta(days=start_after_days)
    while day <= history.sim.last_day:
        report = EvaluationReport()
        now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=7)
        record_history(
            settings.model_copy(update={"today": day}),
            replay_store,
            history.inputs,
            list(history.sim.users),
            now,
            {},
            report,
        )
        recorded += [(day, episode) for episode in report.recorded]
        day += timedelta(days=1)
    return Replayed(recorded)


@pytest.fixture(scope="session")
def planted_replay(planted: History, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay(planted, tmp_path_factory.mktemp("replay-planted"))


@pytest.fixture(scope="session")
def null_replay(null_twin: History, tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return replay(null_twin, tmp_path_factory.mktemp("replay-null"))


# -- a private copy of the served (published, demo-like) home ---------------------------------------------


@dataclass(frozen=True)
class ServedCopy:
    """The session's served home copied (snapshot, warehouse, control store with the served keys)."""

    settings: Settings
    users: list[str]
    user_keys: dict[str, str]
    admin_key: str

    def headers(self, user_id: str | None = None) -> dict[str, str]:
        return {"X-API-Key": self.user_keys[user_id] if user_id else self.admin_key}


@pytest.fixture
def served_copy(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServedCopy:
    home = tmp_path / "home"
    shutil.copytree(served.settings.home_dir, home)
    monkeypatch.setenv("POLAR_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return ServedCopy(Settings(), list(served.users), dict(served.user_keys), served.admin_key)
