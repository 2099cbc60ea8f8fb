"""The API while serving generations change under it, on a real uvicorn server and real published files.

A request that holds generation N (through the API's own ``SnapshotCursor`` dependency) stays open while
N+1, N+2 and N+3 are published and N's file is unlinked (``GENERATIONS_KEPT`` = 3). It must finish on N's
data, read consistently; meanwhile every other request answers 200 from a generation that existed, new
requests follow the pointer, and once the held request ends the reader closes N (the process no longer
has the deleted file open).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
from fastapi import APIRouter

from polar_api.app import create_app
from polar_api.deps import GENERATION_HEADER, SnapshotCursor
from polar_api.read.sleep import sleep_nights
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import GENERATIONS_KEPT, generation_file_name, publish_snapshot
from polar_pipeline.warehouse.writer import connect_writer, transaction
from tests.conftest import TEST_TODAY
from tests.support.served import admin_headers
from tests.support.servers import serve_asgi

USER = "1001"
NIGHTS = 8
"""Nights a generation holds for USER: today and the 7 before, exactly what ``days=7`` returns."""
OTHER_ROWS = 200_000

DAILY_METRICS_DDL = """
CREATE TABLE marts.daily_metrics (
    user_id VARCHAR, day DATE, sleep_start TIMESTAMPTZ, light_sleep_seconds BIGINT, deep_sleep_seconds BIGINT,
    rem_sleep_seconds BIGINT, sleep_score INTEGER, sleep_hr_avg_bpm DOUBLE, hrv_rmssd_ms DOUBLE,
    breathing_rate DOUBLE
)
"""


def score(generation: int) -> int:
    """Every night of generation ``generation`` has this sleep score, so an answer names its generation."""
    return 60 + generation


def publish_generation(con: duckdb.DuckDBPyConnection, snapshots: Path, generation: int) -> None:
    """Rewrite the mart with this generation's nights (one transaction) and publish it."""
    rows = []
    for days_ago in range(NIGHTS):
        day = TEST_TODAY - timedelta(days=days_ago)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1)
        rows.append((USER, day, start, 14400, 5400, 5400, score(generation), 52.5, 48.0, 14.5))
    with transaction(con, "marts.daily_metrics"):
        con.execute("DELETE FROM marts.daily_metrics WHERE user_id = ?", [USER])
        con.executemany("INSERT INTO marts.daily_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    assert publish_snapshot(con, snapshots).generation == generation


def open_files() -> set[str]:
    """What this process's file descriptors point at (``… (deleted)`` for an unlinked file)."""
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed between listdir and readlink
            continue
    return targets


@dataclass
class Hammer:
    """Threads that GET the sleep route and /health in a loop, recording every answer, until stopped."""

    api: str
    threads: int
    headers: dict[str, str]
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[list[tuple[str, int, int | None, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answers = [[] for _ in range(self.threads)]

    def run(self, index: int) -> None:
        mine = self.answers[index]
        try:
            with httpx.Client(base_url=self.api, headers=self.headers, timeout=30) as client:
                while not self.stop.is_set():
                    for path in (f"/api/v1/users/{USER}/sleep", "/health"):
                        response = client.get(path)
                        header = response.headers.get(GENERATION_HEADER)
                        generation = int(header) if header else None
                        json = response.headers.get("content-type") == "application/json"
                        mine.append(
                            (
                                path,
                                response.status_code,
                                generation,
                                response.json() if json else response.text,
                            )
                        )
                        if generation is not None:
                            with self.lock:
                                self.seen.add(generation)
        except Exception as exc:  # a failed request is an answer too: reported, not lost with the thread
            with self.lock:
                self.errors.append(repr(exc))

    def wait_for(self, generation: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                assert not self.errors, self.errors
                if generation in self.seen:
                    return
            time.sleep(0.005)
        raise AssertionError(f"no hammering request saw generation {generation} within {timeout} s")


def check_answer(path: str, status: int, generation: int | None, body: Any, published: set[int]) -> None:
    assert status == 200, (path, status, body)
    assert generation in published, (path, generation, published)
    if path == "/health":
        assert body["status"] == "ok" and body["snapshot"]["generation"] == generation, body
    else:
        # One generation answered the whole request: all nights, each with that generation's score.
        assert len(body) == NIGHTS, body
        assert {night["sleep_score"] for night in body} == {score(generation)}, (generation, body)


def test_a_request_holding_generation_n_finishes_on_n_while_newer_ones_replace_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    snapshots = settings.snapshots_dir
    con = connect_writer(settings.warehouse_path)
    con.execute("CREATE SCHEMA marts")
    con.execute(DAILY_METRICS_DDL)
    # Other users' days, so that each publish copies enough to take a while and requests run during it.
    con.execute(
        "INSERT INTO marts.daily_metrics SELECT 'other-' || (i % 100), DATE '2020-01-01' + (i // 100)::INT, "
        "NULL, 0, 0, 0, 50, NULL, NULL, NULL FROM range(?) AS r(i)",
        [OTHER_ROWS],
    )
    first = 1
    publish_generation(con, snapshots, first)

    holding, release = threading.Event(), threading.Event()
    hold = APIRouter()

    @hold.get("/test/hold")
    def held_request(cursor: SnapshotCursor) -> dict[str, list[int | None]]:
        """A request that reads, waits while the test publishes, then reads again with the same cursor."""
        since = TEST_TODAY - timedelta(days=7)
        before = [night.sleep_score for night in sleep_nights(cursor, USER, since)]
        holding.set()
        assert release.wait(timeout=60)
        after = [night.sleep_score for night in sleep_nights(cursor, USER, since)]
        return {"before": before, "after": after}

    app = create_app(settings)
    app.include_router(hold)
    headers = admin_headers(settings)
    first_path = str((snapshots / generation_file_name(first)).resolve())
    published = {first}
    with serve_asgi(app) as api, ThreadPoolExecutor(max_workers=5) as pool:
        hammer = Hammer(api, threads=4, headers=headers)
        held = pool.submit(httpx.get, f"{api}/test/hold", timeout=60)
        hammering: list[Future[None]] = []
        try:
            assert holding.wait(timeout=30), "the held request never started"
            assert first_path in open_files()

            hammering = [pool.submit(hammer.run, index) for index in range(hammer.threads)]
            hammer.wait_for(first)
            for generation in range(first + 1, first + 1 + GENERATIONS_KEPT):
                publish_generation(con, snapshots, generation)
                published.add(generation)
                # A request that starts after the switch reads the new generation, nothing older.
                fresh = httpx.get(f"{api}/api/v1/users/{USER}/sleep", headers=headers, timeout=30)
                answered = int(fresh.headers[GENERATION_HEADER])
                check_answer("sleep", fresh.status_code, answered, fresh.json(), published)
                assert answered == generation
                hammer.wait_for(generation)  # the hammering threads crossed this switch too

            # N's file is gone from the directory, yet the held request still has it open.
            assert not Path(first_path).exists()
            assert f"{first_path} (deleted)" in open_files()
        finally:
            hammer.stop.set()
            release.set()
        for future in hammering:
            future.result(timeout=30)
        response = held.result(timeout=30)

    con.close()
    assert response.status_code == 200, response.text
    assert response.headers[GENERATION_HEADER] == str(first)
    assert response.json() == {"before": [score(first)] * NIGHTS, "after": [score(first)] * NIGHTS}

    # Released, N is closed: the process no longer holds the deleted file (the dependency exits just after
    # the response is sent, hence a short poll).
    deadline = time.monotonic() + 10
    while f"{first_path} (deleted)" in open_files() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f"{first_path} (deleted)" not in open_files()

    total = 0
    for answers in hammer.answers:
        for path, status, answered_by, body in answers:
            check_answer(path, status, answered_by, body, published)
        generations = [answered_by or 0 for _path, _status, answered_by, _body in answers]
        assert generations == sorted(generations), "a thread's later request read an older generation"
        total += len(answers)
    assert not hammer.errors, hammer.errors
    assert hammer.seen == published
    assert total >= hammer.threads * 2 * len(published), total
