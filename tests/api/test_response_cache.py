"""Answers kept per snapshot generation: served again byte for byte, never past the key check, never stale."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx

from polar_api.app import create_app
from polar_api.response_cache import CACHE_HEADER
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import POINTER_NAME, generation_file_name, read_pointer
from tests.support.served import Served
from tests.support.servers import serve_asgi


def test_a_second_read_is_served_from_the_cache_with_the_same_answer(
    served: Served, api: httpx.Client
) -> None:
    user = served.users[0]
    for route in ("insights", "sleep?days=30", "baselines", "exercises?days=365", "export/sleep.csv"):
        first = api.get(f"/api/v1/users/{user}/{route}")
        second = api.get(f"/api/v1/users/{user}/{route}")
        assert first.status_code == second.status_code == 200, route
        assert second.headers.get(CACHE_HEADER) == "hit", route
        assert second.content == first.content, route
        assert second.headers["content-type"] == first.headers["content-type"], route
        assert second.headers["X-Snapshot-Generation"] == first.headers["X-Snapshot-Generation"]
        assert "X-RateLimit-Remaining" in second.headers


def test_a_cached_answer_still_needs_a_key_that_may_read_the_user(served: Served, api: httpx.Client) -> None:
    owner, other = served.users[0], served.users[1]
    path = f"/api/v1/users/{owner}/sleep?days=7"
    assert api.get(path).status_code == 200
    assert api.get(path).headers.get(CACHE_HEADER) == "hit"

    refused = api.get(path, headers=served.headers(other))
    assert refused.status_code == 403 and owner not in refused.json()["detail"]
    assert "X-RateLimit-Limit" in refused.headers  # a refused valid key is counted too
    assert api.get(path, headers={"X-API-Key": ""}).status_code == 401
    assert api.get(path, headers={"X-API-Key": "pfk_not-a-key"}).status_code == 401
    bearer = api.get(path, headers={"X-API-Key": "", "Authorization": f"Bearer {served.user_keys[owner]}"})
    assert bearer.status_code == 200 and bearer.headers.get(CACHE_HEADER) == "hit"


def test_cached_answers_count_against_the_rate_limit(served: Served, api: httpx.Client) -> None:
    user = served.users[2]
    limited = ApiKeyStore(served.settings.control_store_path).create(user, rate_limit_per_minute=3).secret
    path = f"/api/v1/users/{user}/baselines"
    assert api.get(path).status_code == 200  # warmed with the admin key
    answers = [api.get(path, headers={"X-API-Key": limited}) for _ in range(4)]
    statuses = [answer.status_code for answer in answers]
    # A minute boundary may fall inside the loop; then the count restarts and all four pass.
    assert statuses in ([200, 200, 200, 429], [200, 200, 200, 200]), statuses
    assert all(answer.headers.get(CACHE_HEADER) == "hit" for answer in answers if answer.status_code == 200)
    if statuses[-1] == 429:
        assert int(answers[-1].headers["Retry-After"]) >= 1


def test_reads_of_the_control_store_are_never_kept(served: Served, api: httpx.Client) -> None:
    path = f"/api/v1/users/{served.users[0]}/sync/status"
    answers = [api.get(path) for _ in range(2)]
    assert all(CACHE_HEADER not in answer.headers for answer in answers)


def test_a_new_generation_is_read_afresh(served: Served, tmp_path: Path) -> None:
    """A copy of the served home whose snapshot is republished (same file, next generation number)."""
    settings = Settings(home=tmp_path / "home", today=served.settings.today)
    shutil.copytree(served.settings.home_dir, settings.home_dir)
    info = read_pointer(settings.snapshots_dir)
    assert info is not None
    path = f"/api/v1/users/{served.users[0]}/insights"
    with (
        serve_asgi(create_app(settings)) as base,
        httpx.Client(base_url=base, headers=served.headers()) as client,
    ):
        client.get(path)
        kept = client.get(path)
        assert kept.headers.get(CACHE_HEADER) == "hit"
        assert kept.headers["X-Snapshot-Generation"] == str(info.generation)

        following = info.generation + 1
        shutil.copy(info.path, settings.snapshots_dir / generation_file_name(following))
        pointer = {
            "generation": following,
            "file": generation_file_name(following),
            "published_at": datetime.now(UTC).isoformat(),
        }
        (settings.snapshots_dir / POINTER_NAME).write_text(json.dumps(pointer))

        fresh = client.get(path)
        assert CACHE_HEADER not in fresh.headers
        assert fresh.headers["X-Snapshot-Generation"] == str(following)
        assert client.get(path).headers.get(CACHE_HEADER) == "hit"


def test_the_cache_can_be_turned_off(served: Served) -> None:
    settings = Settings(home=served.settings.home_dir, today=served.settings.today, api_cache_mb=0)
    path = f"/api/v1/users/{served.users[0]}/baselines"
    with (
        serve_asgi(create_app(settings)) as base,
        httpx.Client(base_url=base, headers=served.headers()) as client,
    ):
        answers = [client.get(path) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all(CACHE_HEADER not in answer.headers for answer in answers)
    assert answers[0].content == answers[2].content
