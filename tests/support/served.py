"""One demo-like served warehouse per test session, with API keys, for every API test that only reads.

Three simulated users, two 28-day windows synced through the real pipeline job (so marts and analytics
exist) and one publish. The simulator and the Dagster instance are gone once it is built; the serving
snapshot, the warehouse file and the control store stay, read-only for the tests. A test that writes (a
publish, a sync request) builds its own pipeline instead.

``api`` is a client of one uvicorn server on loopback over that snapshot, shared by the session (starting
a server costs far more than the requests most tests make).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
import httpx
import pytest

from polar_api.app import create_app
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.operations import publish, sync
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import TEST_TODAY, open_pipeline
from tests.support.servers import serve_asgi


@dataclass
class Served:
    """The built warehouse: settings to open it, its users, and keys (admin, and one per user)."""

    settings: Settings
    users: list[str]
    admin_key: str
    user_keys: dict[str, str] = field(default_factory=dict)

    def headers(self, user_id: str | None = None) -> dict[str, str]:
        """Auth headers: a user's own key, or the admin key."""
        return {"X-API-Key": self.user_keys[user_id] if user_id else self.admin_key}

    def snapshot_query(
        self, sql: str, params: list[Any] | dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Rows from the current serving snapshot (what the API reads)."""
        info = read_pointer(self.settings.snapshots_dir)
        assert info is not None
        con = duckdb.connect(str(info.path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def warehouse_query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows from the warehouse (raw payloads, staging views): an independent source for cross-checks."""
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


TEST_KEY_RATE_LIMIT = 1_000_000
"""Keys tests share get a limit no test run comes near; tests of the rate limit make keys of their own."""


def admin_headers(settings: Settings) -> dict[str, str]:
    """Request headers with a new admin key in ``settings``' control store, for tests that serve their own
    snapshot."""
    store = ApiKeyStore(settings.control_store_path)
    secret = store.create(None, admin=True, name="tests", rate_limit_per_minute=TEST_KEY_RATE_LIMIT).secret
    return {"X-API-Key": secret}


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        open_pipeline(tmp_path_factory.mktemp("served"), monkeypatch) as pipeline,
    ):
        # Registered as the first window starts: AccessLink serves only workouts uploaded after registration.
        pipeline.sim("POST", "/sim/clock", json={"today": (TEST_TODAY - timedelta(days=28)).isoformat()})
        users = pipeline.add_users(len(pipeline.users))
        assert sync(
            pipeline.settings, days=28, until=pipeline.sim_today(), instance=pipeline.instance
        ).success
        pipeline.sim("POST", "/sim/clock", json={"today": TEST_TODAY.isoformat()})
        assert sync(pipeline.settings, days=28, instance=pipeline.instance).success
        assert publish(pipeline.settings, instance=pipeline.instance)
        settings = pipeline.settings
    keys = ApiKeyStore(settings.control_store_path)
    admin = admin_headers(settings)["X-API-Key"]
    user_keys = {
        user: keys.create(user, name="tests", rate_limit_per_minute=TEST_KEY_RATE_LIMIT).secret
        for user in users
    }
    return Served(settings=settings, users=users, admin_key=admin, user_keys=user_keys)


@pytest.fixture(scope="session")
def api(served: Served) -> Iterator[httpx.Client]:
    """A client of the API over ``served``, sending the admin key unless a request gives its own headers."""
    with (
        serve_asgi(create_app(served.settings)) as base_url,
        httpx.Client(base_url=base_url, headers=served.headers(), timeout=30) as client,
    ):
        yield client
