"""What writes, on a copy of the served home: trigger_sync's request, and publishes during tool calls."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import httpx
import pytest

from polar_api.app import create_app
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import SyncRequestQueue
from polar_pipeline.warehouse.snapshot import publish_snapshot, read_pointer
from tests.mcp.support import McpSession, error_text, http_session
from tests.support.served import Served
from tests.support.servers import serve_asgi

CLIENTS = 4


@dataclass
class Copy:
    settings: Settings
    base_url: str
    rest: httpx.Client


@pytest.fixture(scope="module")
def copy(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copy]:
    """The served home copied (warehouse, snapshot, control store with its keys), served by a new API."""
    settings = Settings(home=tmp_path_factory.mktemp("mcp-copy") / "home", today=served.settings.today)
    shutil.copytree(served.settings.home_dir, settings.home_dir)
    with (
        serve_asgi(create_app(settings)) as base_url,
        httpx.Client(base_url=base_url, headers=served.headers(), timeout=30) as rest,
    ):
        yield Copy(settings=settings, base_url=base_url, rest=rest)


def test_trigger_sync_queues_the_same_request_as_the_rest_trigger(copy: Copy, served: Served) -> None:
    user = served.users[0]
    with http_session(copy.base_url, served.headers(user)) as session:
        queued = session.answer("trigger_sync", {"days": 5})
        request = queued["request"]
        assert queued["created"] and request["status"] == "queued" and request["days"] == 5
        assert request["user_id"] == user and queued["snapshot_generation"] is not None
        # The REST trigger finds the same open request, and both status reads agree.
        rest = copy.rest.post(f"/api/v1/users/{user}/sync/trigger", params={"days": 5})
        assert rest.status_code == 202 and rest.json() == request
        assert rest.headers["Location"] == request["status_url"]
        again = session.answer("trigger_sync", {})
        assert not again["created"] and again["request"]["request_id"] == request["request_id"]
        status = session.answer("get_sync_status", {})["status"]
        assert status == copy.rest.get(f"/api/v1/users/{user}/sync/status").json()
        assert [item["request_id"] for item in status["requests"]] == [request["request_id"]]
        one = session.answer("get_sync_status", {"request_id": request["request_id"]})
        assert one["status"]["requests"] == [request]
        unknown = session.call("get_sync_status", {"request_id": "req_0000000000000000"})
        assert unknown.is_error and "no request req_0000000000000000" in error_text(unknown)
    # It is in the control store's queue, where the sync_requests sensor looks.
    stored = SyncRequestQueue(copy.settings.control_store_path).open_requests()
    assert [(item.request_id, item.user_id, item.kind) for item in stored] == [
        (request["request_id"], user, "sync")
    ]


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_sleep", {"days": 14}),
    ("get_health_insights", {}),
    ("get_patterns", {}),
    ("get_recovery", {"days": 7}),
    ("query_sql", {"sql": "SELECT count(*) FROM marts.daily_metrics"}),
    ("get_exercises", {"days": 30}),
]


def test_publishes_during_tool_calls_cause_no_error(copy: Copy, served: Served) -> None:
    before = read_pointer(copy.settings.snapshots_dir)
    assert before is not None
    stop, publishing = threading.Event(), threading.Event()
    failures: list[str] = []
    answered: Counter[str] = Counter()
    during_publish = 0
    generations: set[int] = set()
    progress = threading.Condition()

    def call_in_a_loop(index: int) -> None:
        nonlocal during_publish
        user = served.users[index % len(served.users)]
        with http_session(copy.base_url, served.headers(user)) as session:
            turn = index
            while not stop.is_set():
                tool, arguments = CALLS[turn % len(CALLS)]
                turn += 1
                result = _call(session, tool, arguments)
                with progress:
                    if result is None or result.get("snapshot_generation") is None:
                        failures.append(f"{tool}: {result}")
                    else:
                        answered[tool] += 1
                        generations.add(int(result["snapshot_generation"]))
                        during_publish += publishing.is_set()
                    progress.notify_all()

    def wait_for_more_answers(count: int) -> None:
        with progress:
            target = sum(answered.values()) + count
            assert progress.wait_for(lambda: sum(answered.values()) >= target or failures, timeout=120)

    threads = [threading.Thread(target=call_in_a_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for_more_answers(2 * CLIENTS)
        for _ in range(2):
            con = duckdb.connect(str(copy.settings.warehouse_path))
            publishing.set()
            try:
                publish_snapshot(con, copy.settings.snapshots_dir, samples_dir=copy.settings.samples_dir)
            finally:
                publishing.clear()
                con.close()
            wait_for_more_answers(2 * CLIENTS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    after = read_pointer(copy.settings.snapshots_dir)
    assert after is not None and after.generation == before.generation + 2
    assert failures == [], failures[:5]
    # Not vacuous: every kind of call ran, some while a publish ran, and answers came from old and new.
    assert set(answered) == {tool for tool, _ in CALLS}, answered
    assert during_publish >= 1, answered
    assert {before.generation, after.generation} <= generations, generations


def _call(session: McpSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    try:
        result = session.call(tool, arguments)
    except Exception as exc:  # a transport failure is a failure too, recorded rather than raised
        return {"transport error": repr(exc)}
    if result.is_error or not isinstance(result.structured_content, dict):
        return {"tool error": error_text(result)}
    return result.structured_content
