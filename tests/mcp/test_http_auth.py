"""``/mcp`` over HTTP needs an API key, counts it against the key's limit, and is never served from cache."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp import MCPError

from polar_api.auth import INVALID_KEY_DETAIL, MISSING_KEY_DETAIL
from polar_api.response_cache import CACHE_HEADER
from polar_pipeline.api_keys import ApiKeyStore
from tests.mcp.conftest import base_url
from tests.mcp.support import http_session
from tests.support.served import Served

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "tests", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _post(api: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """An MCP initialize request with only ``headers`` for credentials (not the ``api`` client's key)."""
    with httpx.Client(base_url=api.base_url, timeout=30) as bare:
        return bare.post("/mcp", content=json.dumps(INITIALIZE), headers=MCP_HEADERS | headers)


def test_no_key_or_a_bad_key_is_401_like_the_rest_api(api: httpx.Client, served: Served) -> None:
    for headers in ({}, {"X-API-Key": ""}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = _post(api, headers)
        assert response.status_code == 401 and response.json() == {"detail": MISSING_KEY_DETAIL}, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert not any(name in response.headers for name in RATE_HEADERS)
    real = served.admin_key
    for headers in ({"X-API-Key": real[:-1] + ("0" if real[-1] != "0" else "1")}, {"X-API-Key": "pfk_x"}):
        response = _post(api, headers)
        assert response.status_code == 401 and response.json() == {"detail": INVALID_KEY_DETAIL}


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def test_the_sdk_client_without_a_key_cannot_connect(api: httpx.Client) -> None:
    """The SDK reports the 401 as a failed request; the status itself is checked above."""
    with pytest.raises(BaseException) as raised, http_session(base_url(api), {}):
        pass
    assert any(isinstance(leaf, MCPError) for leaf in _leaves(raised.value)), raised.value


def test_a_valid_key_is_answered_counted_and_never_cached(api: httpx.Client, served: Served) -> None:
    user = served.users[0]
    answers = [_post(api, served.headers(user)) for _ in range(2)]
    for response in answers:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["result"]["serverInfo"]["name"] == "polar-flow"
        assert all(name in response.headers for name in RATE_HEADERS)
        assert CACHE_HEADER not in response.headers
    remaining = [int(response.headers["X-RateLimit-Remaining"]) for response in answers]
    # One request each; a minute boundary between the two restarts the count.
    assert remaining[1] == remaining[0] - 1 or remaining[1] > remaining[0], remaining
    bearer = _post(api, {"Authorization": f"Bearer {served.user_keys[user]}"})
    assert bearer.status_code == 200


def test_over_the_keys_limit_is_429_with_retry_after(api: httpx.Client, served: Served) -> None:
    store = ApiKeyStore(served.settings.control_store_path)
    limited = store.create(served.users[0], name="mcp limit", rate_limit_per_minute=2).secret
    statuses = [_post(api, {"X-API-Key": limited}) for _ in range(3)]
    codes = [response.status_code for response in statuses]
    # A minute boundary may fall inside the loop; then the count restarts and all three pass.
    assert codes in ([200, 200, 429], [200, 200, 200]), codes
    if codes[-1] == 429:
        assert int(statuses[-1].headers["Retry-After"]) >= 1
        assert "rate limit exceeded" in statuses[-1].json()["detail"]


def test_a_revoked_key_fails_on_the_next_request(api: httpx.Client, served: Served) -> None:
    store = ApiKeyStore(served.settings.control_store_path)
    created = store.create(served.users[0], name="mcp revoke", rate_limit_per_minute=1000)
    assert _post(api, {"X-API-Key": created.secret}).status_code == 200
    store.revoke(created.key.key_id)
    response = _post(api, {"X-API-Key": created.secret})
    assert response.status_code == 401 and response.json() == {"detail": INVALID_KEY_DETAIL}


def test_a_handshake_era_client_works_and_get_or_delete_is_405(api: httpx.Client, served: Served) -> None:
    """Clients that still open with ``initialize`` (2025 protocol versions) get the same tools."""
    user = served.users[0]
    with http_session(base_url(api), served.headers(user), mode="legacy") as session:
        assert session.client.protocol_version.startswith("2025-")
        assert session.answer("get_activity", {"days": 2})["user_id"] == user
    with httpx.Client(base_url=api.base_url, timeout=30) as bare:
        for method in ("GET", "DELETE"):
            refused = bare.request(method, "/mcp", headers=served.headers(user))
            assert refused.status_code == 405 and refused.headers["Allow"] == "POST", method
            assert bare.request(method, "/mcp").status_code == 401, method
