"""Connecting a Polar account by OAuth, end to end against the simulator over HTTP (docs/connect.md).

The test plays the browser: it opens the authorize URL the flow gives (at the simulator, whose consent is
implicit; ``sim_user`` picks the account), and follows Polar's 302 to the callback, a real loopback server
(``polar-flow connect``) or the real API on uvicorn. What the flows store is checked against the simulator's
own view of its accounts (``/sim/users``) and against what AccessLink serves for the token.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import duckdb
import httpx
import pytest

from polar_api.app import create_app
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.connections import open_control_store
from polar_pipeline.control_store import UnknownUser
from polar_pipeline.defs.requests.sensors import evaluate
from polar_pipeline.oauth import (
    STATE_LIFETIME_SECONDS,
    AccessDenied,
    ConnectError,
    OAuthStateStore,
    StateRefused,
    connect_account,
    exchange_code,
    run_connect,
)
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import SyncRequestQueue
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import TEST_TODAY, Pipeline
from tests.support.servers import serve_asgi

DAYS = 7
"""Days of the CLI's first sync here (the command's default is 28): few, to keep the run short."""
APP_ORIGIN = "https://app.example.org"
"""The one origin besides the API's own callback that the API may send a browser to."""


@dataclass
class World:
    """A private simulator, POLAR_HOME and Dagster instance, and the API over them with OAuth configured."""

    pipeline: Pipeline
    api: httpx.Client
    api_settings: Settings
    keys: ApiKeyStore
    admin: dict[str, str]

    def account(self, index: int) -> dict[str, Any]:
        """The simulator's account ``index`` as it is now (token, registered)."""
        x_user_id = self.pipeline.users[index]["x_user_id"]
        return dict(next(a for a in self.pipeline.sim("GET", "/sim/users") if a["x_user_id"] == x_user_id))

    def x_user_id(self, index: int) -> int:
        return int(self.pipeline.users[index]["x_user_id"])

    def stored_polar_id(self, user_id: str) -> int | None:
        return open_control_store(self.pipeline.settings).get_user(user_id).polar_user_id

    def token_of(self, user_id: str) -> str:
        return open_control_store(self.pipeline.settings).token_for(user_id)

    def is_stored(self, user_id: str) -> bool:
        try:
            open_control_store(self.pipeline.settings).get_user(user_id)
        except UnknownUser:
            return False
        return True

    def consent(self, authorize_url: str, index: int | None) -> str:
        """Polar's consent page for the simulator's account ``index``: returns where it redirects."""
        extra = "" if index is None else f"&sim_user={self.x_user_id(index)}"
        response = httpx.get(authorize_url + extra, timeout=10)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def api_dance(
        self, params: dict[str, str], index: int, headers: dict[str, str] | None = None, accept: str = "*/*"
    ) -> tuple[str, httpx.Response]:
        """/oauth/start → Polar → /oauth/callback; returns the callback URL and its answer."""
        start = self.api.get("/oauth/start", params=params, headers=headers or self.admin)
        assert start.status_code == 302, start.text
        back = self.consent(start.headers["location"], index)
        return back, self.api.get(back, headers={"Accept": accept})

    def raw_sleep_days(self, user_id: str) -> set[date]:
        rows = self.pipeline.query("SELECT day FROM raw.sleep WHERE user_id = ?", [user_id])
        return {day for (day,) in rows}

    def served_sleep_days(self, token: str) -> set[date]:
        """What AccessLink (the simulator) serves for the token: the independent side of the check."""
        response = httpx.get(
            f"{self.pipeline.sim_url}/v3/users/sleep", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return {date.fromisoformat(night["date"]) for night in response.json()["nights"]}


@pytest.fixture
def world(pipeline: Pipeline) -> Iterator[World]:
    """Per test: the simulator's three accounts are each test's own (an account connects one user)."""
    api_settings = Settings(oauth_allowed_origins=f" {APP_ORIGIN} ,")
    with (
        serve_asgi(create_app(api_settings)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as api,
    ):
        # The callback URL (as it would be registered at Polar) is known once the server listens.
        api_settings.oauth_redirect_url = f"{base_url}/oauth/callback"
        keys = ApiKeyStore(pipeline.settings.control_store_path)
        admin = {"X-API-Key": keys.create(None, admin=True, name="connect tests").secret}
        yield World(pipeline, api, api_settings, keys, admin)


@dataclass
class Browser:
    """Plays the person's browser for ``run_connect``, in its own thread: consent, then Polar's redirect.

    ``state`` replaces the state Polar sends back (a forged or stale callback).
    """

    world: World
    index: int | None
    state: str | None = None
    opened: list[str] = field(default_factory=list)
    pages: list[httpx.Response] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def open(self, url: str) -> bool:
        self.opened.append(url)
        self.thread = threading.Thread(target=self._play, args=(url,), daemon=True)
        self.thread.start()
        return True

    def _play(self, url: str) -> None:
        try:
            back = self.world.consent(url, self.index)
            if self.state is not None:
                back = re.sub(r"state=[^&]*", f"state={self.state}", back)
            self.pages.append(httpx.get(back, timeout=60))
        except BaseException as error:  # reported by the test, not lost in the thread
            self.errors.append(error)

    def landed(self) -> httpx.Response:
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert not self.errors, self.errors
        (page,) = self.pages
        return page


# ---------------------------------------------------------------------------------------- polar-flow connect


def test_connect_registers_stores_syncs_and_publishes_without_copying_a_token(world: World) -> None:
    settings, instance = world.pipeline.settings, world.pipeline.instance
    browser = Browser(world, index=0)
    printed: list[str] = []

    outcome = run_connect(
        settings,
        "cli-user",
        open_browser=True,
        timeout_s=60,
        out=printed.append,
        days=DAYS,
        browser=browser.open,
        instance=instance,
    )

    page = browser.landed()
    assert page.status_code == 200 and "Connected" in page.text and "close this tab" in page.text
    (url,) = browser.opened
    assert url in printed  # printed as well as opened
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(settings.auth_url + "?")
    assert query["response_type"] == ["code"] and query["client_id"] == [settings.client_id]
    assert query["redirect_uri"] == [outcome.redirect_uri]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", outcome.redirect_uri)
    assert len(query["state"][0]) >= 40

    # Registered at AccessLink under this user, with the simulator account's token, kept encrypted.
    account = world.account(0)
    assert account["registered"] and outcome.polar_user_id == account["x_user_id"]
    assert world.stored_polar_id("cli-user") == account["x_user_id"]
    assert world.token_of("cli-user") == account["access_token"]
    assert "cli-user" in instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)

    # Synced: every night AccessLink serves is in the warehouse; the marts exist for the synced days.
    assert outcome.ok and outcome.sync.success and outcome.published
    assert (outcome.sync.first_day, outcome.sync.last_day) == (
        TEST_TODAY - timedelta(days=DAYS - 1),
        TEST_TODAY,
    )
    served = world.served_sleep_days(account["access_token"])
    assert len(served) >= 20 and world.raw_sleep_days("cli-user") == served
    pointer = read_pointer(settings.snapshots_dir)
    assert pointer is not None
    con = duckdb.connect(str(pointer.path), read_only=True)
    try:
        days = {
            d
            for (d,) in con.execute(
                "SELECT day FROM marts.daily_metrics WHERE user_id = 'cli-user'"
            ).fetchall()
        }
    finally:
        con.close()
    assert days == {TEST_TODAY - timedelta(days=n) for n in range(DAYS)}
    assert any("published serving snapshot" in line for line in printed)


def test_a_callback_with_another_state_is_refused_and_nothing_is_connected(world: World) -> None:
    # Also the fixed redirect URL a Polar client is registered with: its port and path, verbatim.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fixed = f"http://127.0.0.1:{port}/polar/back"
    settings = world.pipeline.settings.model_copy(update={"connect_redirect_url": fixed})
    browser = Browser(world, index=2, state="forged-state")

    with pytest.raises(StateRefused, match="state is not the one this command sent"):
        run_connect(
            settings,
            "forged-user",
            timeout_s=60,
            out=lambda _: None,
            browser=browser.open,
            instance=world.pipeline.instance,
        )

    page = browser.landed()
    assert page.status_code == 400 and "Not connected" in page.text and "state" in page.text
    assert parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"] == [fixed]
    assert not world.is_stored("forged-user")
    assert "forged-user" not in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)


def test_access_denied_at_polar_ends_the_command_with_a_clear_error(world: World) -> None:
    # The simulator denies once every account has authorized: authorize its three first.
    settings = world.pipeline.settings
    for _ in world.pipeline.users:
        probe = httpx.get(
            settings.auth_url,
            params={
                "response_type": "code",
                "client_id": settings.client_id,
                "redirect_uri": "http://127.0.0.1:9/x",
            },
        )
        assert probe.status_code == 302
    browser = Browser(world, index=None)

    with pytest.raises(AccessDenied, match="access was not granted at Polar"):
        run_connect(
            settings,
            "denied-user",
            timeout_s=60,
            out=lambda _: None,
            browser=browser.open,
            instance=world.pipeline.instance,
        )

    page = browser.landed()
    assert page.status_code == 400 and "access_denied" in page.text
    assert not world.is_stored("denied-user")


def test_no_callback_within_the_timeout_is_a_clear_error(world: World) -> None:
    printed: list[str] = []
    started = time.monotonic()
    with pytest.raises(ConnectError, match=r"no answer from Polar within 0.3 s"):
        run_connect(
            world.pipeline.settings,
            "slow-user",
            open_browser=False,
            timeout_s=0.3,
            out=printed.append,
            instance=world.pipeline.instance,
        )
    assert time.monotonic() - started < 10
    assert any(line.startswith(world.pipeline.settings.auth_url) for line in printed)
    assert not world.is_stored("slow-user")


def test_an_account_registered_before_connects_with_its_polar_user_id(world: World) -> None:
    """AccessLink's 409 (registered already, here under another member id) is not a failure."""
    account = world.account(2)
    registered = httpx.post(
        f"{world.pipeline.sim_url}/v3/users",
        json={"member-id": "an-earlier-install"},
        headers={"Authorization": f"Bearer {account['access_token']}"},
    )
    assert registered.status_code == 200
    settings = world.pipeline.settings
    redirect_uri = "http://127.0.0.1:9/callback"
    back = world.consent(
        f"{settings.auth_url}?response_type=code&client_id={settings.client_id}&redirect_uri={redirect_uri}",
        2,
    )
    (code,) = parse_qs(urlsplit(back).query)["code"]

    connected = connect_account(
        settings,
        "registered-before",
        exchange_code(settings, code, redirect_uri),
        instance=world.pipeline.instance,
    )

    assert connected.polar_user_id == account["x_user_id"]
    assert world.stored_polar_id("registered-before") == account["x_user_id"]
    assert world.token_of("registered-before") == account["access_token"]
    assert "registered-before" in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)


# -------------------------------------------------------------------------------------------- the API's flow


def test_api_start_needs_an_admin_key_or_the_users_own_key(world: World) -> None:
    params = {"user_id": "key-user"}
    assert world.api.get("/oauth/start", params=params).status_code == 401
    other = {"X-API-Key": world.keys.create("someone-else").secret}
    refused = world.api.get("/oauth/start", params=params, headers=other)
    assert refused.status_code == 403 and "may not read this user" in refused.json()["detail"]
    own = {"X-API-Key": world.keys.create("key-user").secret}
    assert world.api.get("/oauth/start", params=params, headers=own).status_code == 302
    assert world.api.get("/oauth/start", params=params, headers=world.admin).status_code == 302
    invalid = world.api.get("/oauth/start", params={"user_id": "a|b"}, headers=world.admin)
    assert invalid.status_code == 422


def test_api_flow_stores_the_token_queues_a_first_sync_and_refuses_a_replay(world: World) -> None:
    start = world.api.get("/oauth/start", params={"user_id": "api-user"}, headers=world.admin)
    assert start.status_code == 302
    location = start.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(world.api_settings.auth_url + "?")
    assert query["redirect_uri"] == [world.api_settings.oauth_redirect_url]
    assert query["response_type"] == ["code"] and query["client_id"] == [world.api_settings.client_id]
    (state,) = query["state"]
    back = world.consent(location, 1)
    assert back.startswith(world.api_settings.oauth_redirect_url + "?")
    assert parse_qs(urlsplit(back).query)["state"] == [state]

    answer = world.api.get(back)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    account = world.account(1)
    assert (body["user_id"], body["polar_user_id"]) == ("api-user", account["x_user_id"])
    request = body["sync_request"]
    assert (request["user_id"], request["kind"], request["status"], request["days"]) == (
        "api-user",
        "sync",
        "queued",
        28,
    )
    assert account["access_token"] not in answer.text
    assert world.token_of("api-user") == account["access_token"]
    assert world.stored_polar_id("api-user") is None  # the sensor registers it before the first sync
    queue = SyncRequestQueue(world.pipeline.settings.control_store_path)
    assert request["request_id"] in {r.request_id for r in queue.open_requests() if r.user_id == "api-user"}

    replay = world.api.get(back)
    assert replay.status_code == 400 and "this state was used already" in replay.json()["detail"]
    in_a_browser = world.api.get(back, headers={"Accept": "text/html,application/xhtml+xml"})
    assert in_a_browser.status_code == 400 and in_a_browser.headers["content-type"].startswith("text/html")
    assert "this state was used already" in in_a_browser.text and "close this tab" in in_a_browser.text

    # The sensor's next tick registers the stored token at AccessLink and asks for the user's first run.
    tick = evaluate(world.pipeline.settings, world.pipeline.instance, queue)
    assert isinstance(tick, dg.SensorResult)
    assert request["request_id"] in {run.run_key for run in tick.run_requests or []}
    assert world.account(1)["registered"]
    assert world.stored_polar_id("api-user") == account["x_user_id"]


def test_api_callback_refuses_unknown_expired_and_missing_states(world: World) -> None:
    unknown = world.api.get("/oauth/callback", params={"code": "whatever", "state": "never-issued"})
    assert unknown.status_code == 400 and "unknown state" in unknown.json()["detail"]
    missing = world.api.get("/oauth/callback", params={"code": "whatever"})
    assert missing.status_code == 400 and "no state" in missing.json()["detail"]

    # An expired state is refused even with a good code from Polar.
    redirect_uri = world.api_settings.oauth_redirect_url
    issued_earlier = OAuthStateStore(
        world.pipeline.settings.control_store_path, now=lambda: time.time() - STATE_LIFETIME_SECONDS - 1
    )
    state = issued_earlier.issue("late-user", redirect_uri)
    settings = world.api_settings
    back = world.consent(
        f"{settings.auth_url}?response_type=code&client_id={settings.client_id}&redirect_uri={redirect_uri}"
        f"&state={state}",
        1,
    )
    assert "code=" in back
    expired = world.api.get(back)
    assert expired.status_code == 400 and "this state expired" in expired.json()["detail"]
    assert not world.is_stored("late-user")


def test_api_refuses_to_send_a_browser_outside_the_allowed_origins(world: World) -> None:
    for name, url in [
        ("return_to", "https://evil.example.net/after"),
        ("return_to", "https://app.example.org.evil.net/after"),
        ("return_to", "javascript:alert(1)"),
        ("redirect_uri", "https://evil.example.net/oauth/callback"),
        ("redirect_uri", "http://app.example.org/oauth/callback"),  # http, not the allowed https
    ]:
        refused = world.api.get(
            "/oauth/start", params={"user_id": "api-user", name: url}, headers=world.admin
        )
        assert refused.status_code == 400, (name, url, refused.text)
        detail = refused.json()["detail"]
        assert "allowed" in detail or "absolute" in detail, detail
    refused = world.api.get(
        "/oauth/start",
        params={"user_id": "api-user", "return_to": "https://evil.example.net/"},
        headers=world.admin,
    )
    assert APP_ORIGIN in refused.json()["detail"]  # it says what would be accepted

    # An allowed return_to: the person lands there after the callback, with the user and the queued sync.
    _, answer = world.api_dance(
        {"user_id": "return-user", "return_to": f"{APP_ORIGIN}/connected?from=polar"}, 1
    )
    assert answer.status_code == 303
    target = answer.headers["location"]
    assert target.startswith(f"{APP_ORIGIN}/connected?from=polar&user_id=return-user&sync_request=req_")
    assert world.token_of("return-user") == world.account(1)["access_token"]


def test_api_refuses_an_account_connected_to_another_user(world: World) -> None:
    (holder,) = world.pipeline.add_users(1)  # `polar-flow users add`: connected to account 0
    holder_token = world.token_of(holder)
    _, answer = world.api_dance({"user_id": holder}, 1)
    assert answer.status_code == 409 and "another Polar account" in answer.json()["detail"]
    _, answer = world.api_dance({"user_id": "second-id"}, 0, accept="text/html")
    assert answer.status_code == 409 and f"connected already as user {holder}" in answer.text
    assert world.token_of(holder) == holder_token and not world.is_stored("second-id")


def test_self_service_sign_up_starts_without_a_key_only_for_a_new_user(world: World) -> None:
    settings = world.api_settings.model_copy(update={"oauth_self_service": True})
    with serve_asgi(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as api:
        (known_user,) = world.pipeline.add_users(1)
        known = api.get("/oauth/start", params={"user_id": known_user})
        assert known.status_code == 401 and "connected already" in known.json()["detail"]
        assert api.get("/oauth/start", params={"user_id": known_user}, headers=world.admin).status_code == 302

        # Two sign-ups for the same new id: the first callback connects it, the second finds it taken.
        first, second = (api.get("/oauth/start", params={"user_id": "sign-up-user"}) for _ in range(2))
        assert first.status_code == second.status_code == 302
        redirect_uri = parse_qs(urlsplit(first.headers["location"]).query)["redirect_uri"]
        assert redirect_uri == [settings.oauth_redirect_url]
        connected = api.get(world.consent(first.headers["location"], 1), headers={"Accept": "text/html"})
        assert connected.status_code == 200 and connected.headers["content-type"].startswith("text/html")
        assert "Connected" in connected.text and "close this tab" in connected.text
        taken = api.get(world.consent(second.headers["location"], 2))
        assert taken.status_code == 409 and "was connected meanwhile" in taken.json()["detail"]
        assert world.token_of("sign-up-user") == world.account(1)["access_token"]


def test_the_polar_flow_connect_command_ends_registered_and_synced(world: World) -> None:
    """The real command in its own process, as a person runs it: the URL on stdout, consent, first sync."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ | world.pipeline.env
    command = [
        str(Path(sys.executable).parent / "polar-flow"),
        "connect",
        "--user",
        "proc-user",
        "--no-browser",
    ]
    with subprocess.Popen(
        [*command, "--timeout", "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if line.startswith(world.pipeline.settings.auth_url):
                url = line.strip()
                break
        assert url, process.stderr.read() if process.stderr else "no authorize URL printed"
        page = httpx.get(world.consent(url, 2), timeout=120)
        assert page.status_code == 200 and "Connected" in page.text
        rest, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors
    assert "published serving snapshot" in rest
    account = world.account(2)
    assert account["registered"] and world.stored_polar_id("proc-user") == account["x_user_id"]
    assert "proc-user" in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    assert world.raw_sleep_days("proc-user") == world.served_sleep_days(account["access_token"])
