"""API keys on every /api/v1 route, and the per-key rate limit, against real servers over the served snapshot.

The route matrix enumerates the app's routes, so a route added later is covered without editing this file.
Positive checks on routes that are not GET go to a user who is not in the snapshot (with that user's own
key), so they pass authorization without changing anything the session's other tests read.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from polar_api.app import create_app
from polar_api.auth import INVALID_KEY_DETAIL, MISSING_KEY_DETAIL
from polar_api.ratelimit import WINDOW_SECONDS, WORKER_HEADER
from polar_pipeline.api_keys import ApiKeyStore
from tests.support.served import Served
from tests.support.servers import serve_asgi

PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
GHOST_USER = "auth-matrix-ghost"
"""A valid user id with no data in the snapshot: where non-GET routes are called with a key that passes."""
PUBLIC_PATHS = {"/health", "/llms.txt", "/oauth/start", "/oauth/callback"}
"""Documented routes outside /api/v1: no key needed, or their own rules (OAuth: tests/test_connect.py)."""
DENIED = {401, 403}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class Call:
    """One method of one route, with its path parameters filled in."""

    method: str
    template: str
    url: str
    user_id: str | None

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, OpenAPI operation) of every route the app documents."""
    return [
        (method.upper(), path, operation)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def _plausible(name: str, schema: dict[str, Any], exercise_id: str) -> str:
    """A value of the right shape for a path parameter: the auth checks come first, any value will do for
    them, but the allowed calls should reach the route itself."""
    if "exercise" in name:
        return exercise_id
    if schema.get("format") == "date" or name in ("day", "date") or name.endswith(("_day", "_date")):
        return "2026-02-20"
    if "metric" in name:
        return "hrv_rmssd"
    if schema.get("type") == "number" or name == "value":
        return "50"
    return "1"


def _calls(app: FastAPI, owner: str, exercise_id: str) -> list[Call]:
    calls = []
    for method, path, operation in _operations(app):
        if not path.startswith("/api/v1/"):
            continue
        schemas = {
            parameter["name"]: parameter.get("schema", {})
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "path"
        }
        user = owner if method in ("GET", "HEAD") else GHOST_USER
        values = {
            name: user if name == "user_id" else _plausible(name, schemas.get(name, {}), exercise_id)
            for name in PATH_PARAM.findall(path)
        }
        url = PATH_PARAM.sub(lambda match, values=values: values[match.group(1)], path)
        calls.append(Call(method, path, url, values.get("user_id")))
    return calls


@dataclass(frozen=True)
class Matrix:
    calls: list[Call]
    owner: str
    other: str
    own_keys: dict[str, str]
    """Each path user's own key: the served keys, and one for the ghost user."""


@pytest.fixture(scope="module")
def matrix(served: Served) -> Matrix:
    owner, other = served.users[0], served.users[1]
    rows = served.warehouse_query(
        "SELECT exercise_id FROM raw.exercises WHERE user_id = ? ORDER BY exercise_id LIMIT 1", [owner]
    )
    assert rows, "the served snapshot should hold an exercise of its first user"
    store = ApiKeyStore(served.settings.control_store_path)
    ghost_key = store.create(GHOST_USER, name="auth matrix", rate_limit_per_minute=1_000_000).secret
    return Matrix(
        calls=_calls(create_app(served.settings), owner, str(rows[0][0])),
        owner=owner,
        other=other,
        own_keys=served.user_keys | {GHOST_USER: ghost_key},
    )


@pytest.fixture(scope="module")
def bare(api: httpx.Client) -> Iterator[httpx.Client]:
    """A client of the same server that sends no key unless told to."""
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        yield client


def _failures(
    calls: list[Call], request: Callable[[Call], httpx.Response], check: Callable[[httpx.Response], bool]
) -> list[str]:
    failed = []
    for call in calls:
        response = request(call)
        if not check(response):
            failed.append(f"{call} -> {response.status_code} {response.text[:200]}")
    return failed


def test_every_api_v1_route_declares_the_key_schemes_and_nothing_else_is_served(served: Served) -> None:
    operations = _operations(create_app(served.settings))
    api_v1 = [(method, path, op) for method, path, op in operations if path.startswith("/api/v1/")]
    assert api_v1, "no /api/v1 routes: the matrix below would check nothing"
    assert ("GET", "/api/v1/users/{user_id}/sleep") in {(method, path) for method, path, _ in api_v1}
    for method, path, operation in api_v1:
        assert operation.get("security") == [{"APIKeyHeader": []}, {"HTTPBearer": []}], (method, path)
    assert {path for _, path, _ in operations if not path.startswith("/api/v1/")} <= PUBLIC_PATHS


def test_no_key_is_401_with_a_bearer_challenge_and_no_quota(matrix: Matrix, bare: httpx.Client) -> None:
    assert matrix.calls
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": ""}):
        failed = _failures(
            matrix.calls,
            lambda call, headers=headers: bare.request(call.method, call.url, headers=headers),
            lambda response: (
                response.status_code == 401
                and response.json() == {"detail": MISSING_KEY_DETAIL}
                and response.headers.get("WWW-Authenticate") == "Bearer"
                and not any(name in response.headers for name in RATE_HEADERS)
            ),
        )
        assert not failed, (headers, failed)


def test_a_garbage_key_is_401(matrix: Matrix, served: Served, bare: httpx.Client) -> None:
    assert matrix.calls
    real = served.admin_key
    for headers in (
        {"X-API-Key": "pfk_" + "A" * 43},
        {"X-API-Key": real[:-1] + ("A" if real[-1] != "A" else "B")},  # one character off the admin key
        {"X-API-Key": real[4:]},  # the admin key without its prefix
        {"Authorization": "Bearer not-a-key"},
    ):
        failed = _failures(
            matrix.calls,
            lambda call, headers=headers: bare.request(call.method, call.url, headers=headers),
            lambda response: (
                response.status_code == 401 and response.json() == {"detail": INVALID_KEY_DETAIL}
            ),
        )
        assert not failed, (headers, failed)


def test_another_users_key_is_403_and_counted(matrix: Matrix, bare: httpx.Client) -> None:
    assert matrix.calls
    intruder = matrix.own_keys[matrix.other]
    for headers in ({"X-API-Key": intruder}, {"Authorization": f"Bearer {intruder}"}):
        failed = _failures(
            matrix.calls,
            lambda call, headers=headers: bare.request(call.method, call.url, headers=headers),
            lambda response: (
                response.status_code == 403 and all(name in response.headers for name in RATE_HEADERS)
            ),
        )
        assert not failed, (headers, failed)


def test_the_admin_key_and_the_users_own_key_pass(matrix: Matrix, served: Served, bare: httpx.Client) -> None:
    with_user = [call for call in matrix.calls if call.user_id is not None]
    assert with_user
    cases: list[Callable[[Call], dict[str, str]]] = [
        lambda _: {"X-API-Key": served.admin_key},
        lambda call: {"X-API-Key": matrix.own_keys[str(call.user_id)]},
        lambda call: {"Authorization": f"Bearer {matrix.own_keys[str(call.user_id)]}"},
    ]
    for case, headers_for in enumerate(cases):
        calls = matrix.calls if case == 0 else with_user
        failed = _failures(
            calls,
            lambda call, headers_for=headers_for: bare.request(
                call.method, call.url, headers=headers_for(call)
            ),
            lambda response: response.status_code not in DENIED | {429},
        )
        assert not failed, (case, failed)
    sleep = bare.get(
        f"/api/v1/users/{matrix.owner}/sleep", headers={"X-API-Key": matrix.own_keys[matrix.owner]}
    )
    assert sleep.status_code == 200 and sleep.json(), sleep.text


def test_a_revoked_key_is_401_on_the_next_request(matrix: Matrix, served: Served, bare: httpx.Client) -> None:
    store = ApiKeyStore(served.settings.control_store_path)
    assert matrix.calls
    failed = []
    for call in matrix.calls:
        created = store.create(call.user_id, admin=call.user_id is None, name="revoked in the matrix")
        headers = {"X-API-Key": created.secret}
        before = bare.request(call.method, call.url, headers=headers)  # now cached by the server
        store.revoke(created.key.key_id)
        after = bare.request(call.method, call.url, headers=headers)
        if before.status_code in DENIED or after.status_code != 401:
            failed.append(f"{call}: {before.status_code} then {after.status_code}")
    assert not failed, failed


# --- the rate limit, on a server whose limiter reads a clock the test moves -----------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


WINDOW_START = 1_800_000_000 - 1_800_000_000 % WINDOW_SECONDS
"""A window boundary; the fake clock starts 15 s into it, so 45 s remain."""


@pytest.fixture(scope="module")
def clocked(served: Served) -> Iterator[tuple[httpx.Client, FakeClock]]:
    app = create_app(served.settings)
    clock = FakeClock(WINDOW_START + 15)
    app.state.key_guard.limiter.clock = clock
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client, clock


def _quota(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the response's X-RateLimit-* headers."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    return limit, remaining, reset


def test_a_key_gets_exactly_its_limit_per_window_then_429(
    clocked: tuple[httpx.Client, FakeClock], served: Served
) -> None:
    client, clock = clocked
    clock.now = WINDOW_START + 15
    store = ApiKeyStore(served.settings.control_store_path)
    user = served.users[0]
    limit = 4
    limited = {"X-API-Key": store.create(user, name="limited", rate_limit_per_minute=limit).secret}
    url = f"/api/v1/users/{user}/sleep"
    answers = [client.get(url, headers=limited) for _ in range(limit)]
    assert [response.status_code for response in answers] == [200] * limit
    reset = WINDOW_START + WINDOW_SECONDS
    assert [_quota(response) for response in answers] == [
        (limit, limit - n, reset) for n in range(1, limit + 1)
    ]

    over = client.get(url, headers=limited)
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "45"
    assert _quota(over) == (limit, 0, reset)
    assert (
        "rate limit exceeded" in over.json()["detail"]
        and f"{limit} requests per minute" in over.json()["detail"]
    )
    clock.now = WINDOW_START + 59.5
    assert client.get(url, headers=limited).headers["Retry-After"] == "1"

    # The limit is per key: the user's other key is untouched.
    other_key = {"X-API-Key": store.create(user, name="second", rate_limit_per_minute=limit).secret}
    assert _quota(client.get(url, headers=other_key)) == (limit, limit - 1, reset)

    # The next window starts the count again.
    clock.now = WINDOW_START + WINDOW_SECONDS + 1
    again = client.get(url, headers=limited)
    assert again.status_code == 200 and _quota(again) == (limit, limit - 1, reset + WINDOW_SECONDS)


def test_errors_after_authorization_carry_the_quota_too(
    clocked: tuple[httpx.Client, FakeClock], served: Served
) -> None:
    client, clock = clocked
    clock.now = WINDOW_START + 15
    store = ApiKeyStore(served.settings.control_store_path)
    user = served.users[0]
    admin = {"X-API-Key": store.create(None, admin=True, name="errors", rate_limit_per_minute=50).secret}
    mine = {"X-API-Key": store.create(user, name="errors", rate_limit_per_minute=50).secret}
    not_found = client.get(f"/api/v1/users/{GHOST_USER}/sleep", headers=admin)  # raised by the route
    invalid = client.get(f"/api/v1/users/{user}/sleep", params={"days": 0}, headers=admin)  # validation
    forbidden = client.get(f"/api/v1/users/{served.users[1]}/sleep", headers=mine)  # authorization
    reset = WINDOW_START + WINDOW_SECONDS
    assert (not_found.status_code, _quota(not_found)) == (404, (50, 49, reset))
    assert (invalid.status_code, _quota(invalid)) == (422, (50, 48, reset))
    assert (forbidden.status_code, _quota(forbidden)) == (403, (50, 49, reset))
    assert "X-RateLimit-Limit" not in client.get("/health").headers


# --- two uvicorn worker processes ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_workers(served: Served, tmp_path: Path) -> Iterator[str]:
    """`polar-flow api --workers 2` over the served home, naming the answering worker in each response."""
    port = _free_port()
    env = os.environ | {"POLAR_HOME": str(served.settings.home_dir), "POLAR_API_WORKER_HEADER": "1"}
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "polar-flow"), "api", "--port", str(port), "--workers", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API did not come up"
            try:
                if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@dataclass(frozen=True)
class Answer:
    pid: str
    status: int
    reset: str | None


def _answers(base_url: str, url: str, secret: str, count: int) -> list[Answer]:
    """``count`` requests, 8 at a time, each on a new connection, so both workers accept some."""
    with (
        httpx.Client(
            base_url=base_url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        responses = list(pool.map(lambda _: client.get(url, headers={"X-API-Key": secret}), range(count)))
    return [
        Answer(
            response.headers[WORKER_HEADER], response.status_code, response.headers.get("X-RateLimit-Reset")
        )
        for response in responses
    ]


def test_two_worker_processes_share_the_count_and_see_a_revocation(two_workers: str, served: Served) -> None:
    store = ApiKeyStore(served.settings.control_store_path)
    user = served.users[0]
    url = f"/api/v1/users/{user}/sleep"
    limit = 10
    limited = store.create(user, name="two workers", rate_limit_per_minute=limit).secret

    # Until, within one window, each worker has answered more than `limit` requests: counters kept per
    # process would then let 2 x limit through.
    answers: list[Answer] = []
    window = None
    while window is None:
        assert len(answers) < 2000, "the two workers never both answered enough requests in one window"
        answers += _answers(two_workers, url, limited, 16)
        for reset in {answer.reset for answer in answers}:
            per_pid: dict[str, int] = {}
            for answer in answers:
                if answer.reset == reset:
                    per_pid[answer.pid] = per_pid.get(answer.pid, 0) + 1
            if len(per_pid) == 2 and min(per_pid.values()) > limit:
                window = reset
    assert {answer.status for answer in answers} <= {200, 429}
    assert len({answer.pid for answer in answers}) == 2
    for reset in {answer.reset for answer in answers}:
        allowed = sum(answer.status == 200 for answer in answers if answer.reset == reset)
        assert allowed == limit if reset == window else allowed <= limit, (reset, allowed)

    # A key both workers have cached stops working in both once another process revokes it.
    created = store.create(user, name="revoked by the CLI", rate_limit_per_minute=1_000_000)
    warm: dict[str, int] = {}
    while len(warm) < 2:
        assert sum(warm.values()) < 2000
        for answer in _answers(two_workers, url, created.secret, 16):
            assert answer.status == 200
            warm[answer.pid] = warm.get(answer.pid, 0) + 1
    revoke = subprocess.run(
        [str(Path(sys.executable).parent / "polar-flow"), "keys", "revoke", created.key.key_id],
        env=os.environ | {"POLAR_HOME": str(served.settings.home_dir)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert revoke.returncode == 0, revoke.stderr
    refused: dict[str, int] = {}
    while len(refused) < 2:
        assert sum(refused.values()) < 2000
        for answer in _answers(two_workers, url, created.secret, 16):
            assert answer.status == 401
            refused[answer.pid] = refused.get(answer.pid, 0) + 1
    assert set(refused) == set(warm)
