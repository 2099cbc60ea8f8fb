"""Eight clients read every list route while a materialization and a publish run: not one request may fail."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import httpx

from polar_api.app import create_app
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.operations import publish, sync
from tests.conftest import TEST_TODAY, Pipeline
from tests.support.servers import serve_asgi

CLIENTS = 8


def _list_routes(base: str, user: str) -> list[str]:
    """Every GET route of one user that needs no other path parameter, as the OpenAPI document lists them."""
    paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
    prefix = "/api/v1/users/{user_id}/"
    routes = [
        path.replace("{user_id}", user)
        for path, operations in paths.items()
        if path.startswith(prefix) and "get" in operations and path.count("{") == 1
    ]
    assert len(routes) >= 1, paths.keys()
    return sorted(routes)


def test_eight_clients_see_no_failed_request_during_materialize_and_publish(pipeline: Pipeline) -> None:
    users = pipeline.add_users(2)
    pipeline.sim("POST", "/sim/clock", json={"today": (TEST_TODAY - timedelta(days=3)).isoformat()})
    assert sync(pipeline.settings, days=28, until=pipeline.sim_today(), instance=pipeline.instance).success
    assert publish(pipeline.settings, instance=pipeline.instance)
    keys = ApiKeyStore(pipeline.settings.control_store_path)
    key = keys.create(None, admin=True, rate_limit_per_minute=10**6)

    stop = threading.Event()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    generations: set[str] = set()
    lock = threading.Lock()

    with serve_asgi(create_app(pipeline.settings)) as base:
        routes = [route for user in users for route in _list_routes(base, user)]

        def read(offset: int) -> None:
            with httpx.Client(base_url=base, headers={"X-API-Key": key.secret}, timeout=30) as client:
                index = offset
                while not stop.is_set():
                    route = routes[index % len(routes)]
                    index += 1
                    try:
                        response = client.get(route)
                    except httpx.HTTPError as exc:
                        with lock:
                            failures.append(f"{route}: {exc!r}")
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                        generations.add(response.headers.get("X-Snapshot-Generation", "?"))
                        if response.status_code != 200:
                            failures.append(f"{route}: {response.status_code} {response.text[:200]}")

        readers = [threading.Thread(target=read, args=(n * 7,)) for n in range(CLIENTS)]
        for reader in readers:
            reader.start()
        try:
            pipeline.sim("POST", "/sim/clock", json={"today": TEST_TODAY.isoformat()})
            assert sync(pipeline.settings, days=5, instance=pipeline.instance).success
            assert publish(pipeline.settings, instance=pipeline.instance)
            assert publish(pipeline.settings, instance=pipeline.instance)
        finally:
            stop.set()
            for reader in readers:
                reader.join(timeout=60)

    assert failures == [], failures[:10]
    # Not vacuous: every route was read many times, and answers came from the old and the new generations.
    assert sum(statuses.values()) >= 10 * len(routes), statuses
    assert {"1", "3"} <= generations, generations
