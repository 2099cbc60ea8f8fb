"""Signing in and out of the dashboard over plain HTTP: the cookie's flags, who may see what, revocation, the
rate limit, and that the key never travels in a URL."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi.testclient import TestClient

from polar_api.app import create_app
from polar_api.dashboard.pages import PAGES
from polar_api.dashboard.session import COOKIE_NAME
from polar_pipeline.api_keys import ApiKeyStore
from tests.dashboard.support import cookie
from tests.support.served import TEST_KEY_RATE_LIMIT, Served

FIXED_NOW = 1_800_000_015.0
"""15 s into a rate-limit window (1_800_000_000 is a multiple of 60): 45 s remain."""


def sign_in(web: httpx.Client, key: str, **headers: str) -> httpx.Response:
    return web.post(
        "/dashboard/login",
        content=f"key={key}&next=hrv",
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )


def set_cookie(response: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


def test_sign_in_keeps_the_key_in_an_httponly_strict_cookie_scoped_to_the_dashboard(
    web: httpx.Client, served: Served
) -> None:
    key = served.user_keys[served.users[0]]
    response = sign_in(web, key)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/hrv"
    morsel = set_cookie(response)[COOKIE_NAME]
    assert morsel.value == key
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/dashboard"
    assert int(morsel["max-age"]) > 0
    assert not morsel["secure"], "over plain http the cookie cannot be Secure (it would never come back)"
    raw = response.headers["set-cookie"]
    assert "HttpOnly" in raw and "SameSite=strict" in raw.replace("Strict", "strict")
    assert key not in response.headers["location"]


def test_a_wrong_key_is_refused_with_a_message_and_no_cookie(web: httpx.Client) -> None:
    response = sign_in(web, "pfk_" + "x" * 43)
    assert response.status_code == 401
    assert "unknown or has been revoked" in response.text
    morsel = set_cookie(response)[COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == "0"


def test_odd_sign_in_bodies_are_refused_without_error(web: httpx.Client, served: Served) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    too_large = "key=" + served.admin_key + "&pad=" + "x" * 5000
    assert web.post("/dashboard/login", content=too_large, headers=form).status_code == 413
    many_fields = "&".join(f"f{n}=1" for n in range(20)) + f"&key={served.admin_key}"
    assert web.post("/dashboard/login", content=many_fields, headers=form).status_code == 401
    assert web.post("/dashboard/login", content=b"\xff\xfe", headers=form).status_code == 401
    assert web.post("/dashboard/login", json={"key": served.admin_key}).status_code == 401


def test_a_sign_in_posted_from_another_site_is_refused(web: httpx.Client, served: Served) -> None:
    key = served.user_keys[served.users[0]]
    assert sign_in(web, key, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert sign_in(web, key, Origin="https://evil.example").status_code == 403
    assert COOKIE_NAME not in set_cookie(sign_in(web, key, Origin="https://evil.example"))
    assert sign_in(web, key, **{"Sec-Fetch-Site": "same-origin"}).status_code == 303


def test_without_a_cookie_pages_go_to_the_sign_in_form_and_data_is_401(
    web: httpx.Client, served: Served
) -> None:
    page = web.get("/dashboard/sleep")
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/login?reason=required&next=sleep"
    form = web.get(page.headers["location"])
    assert form.status_code == 200
    assert 'method="post" action="/dashboard/login"' in form.text
    assert 'type="password"' in form.text and 'name="next" value="sleep"' in form.text
    data = web.get("/dashboard/data/sleep")
    assert data.status_code == 401
    assert data.json()["login"].startswith("/dashboard/login")
    # An API key in X-API-Key does not sign anyone in to the dashboard: only the cookie does.
    assert web.get("/dashboard/today", headers={"X-API-Key": served.admin_key}).status_code == 303


def test_a_user_key_sees_only_its_own_user(web: httpx.Client, served: Served) -> None:
    owner, other = served.users[0], served.users[1]
    key = served.user_keys[owner]
    own = web.get("/dashboard/today", headers=cookie(key))
    assert own.status_code == 200
    assert f"/dashboard/data/today?user={owner}" in own.text
    assert 'id="user-select"' not in own.text, "only an admin gets the user picker"
    for path in (f"/dashboard/today?user={other}", f"/dashboard/hrv?user={other}&range=30"):
        refused = web.get(path, headers=cookie(key))
        assert refused.status_code == 403
        assert "Not your dashboard" in refused.text
    refused_data = web.get(f"/dashboard/data/hrv?user={other}", headers=cookie(key))
    assert refused_data.status_code == 403
    assert other not in refused_data.text
    # A user that does not exist is refused the same way: a user's key learns nothing about others.
    assert web.get("/dashboard/data/hrv?user=nobody", headers=cookie(key)).status_code == 403


def test_the_admin_key_picks_any_user(web: httpx.Client, served: Served) -> None:
    first = web.get("/dashboard/today", headers=cookie(served.admin_key))
    assert first.status_code == 200
    assert f"/dashboard/data/today?user={min(served.users)}" in first.text
    for user in served.users:
        assert f'<option value="{user}"' in first.text
        page = web.get(f"/dashboard/sleep?user={user}&range=30", headers=cookie(served.admin_key))
        assert page.status_code == 200 and f'value="{user}" selected' in page.text
        assert (
            web.get(f"/dashboard/data/sleep?user={user}", headers=cookie(served.admin_key)).json()["user_id"]
            == user
        )
    assert web.get("/dashboard/data/sleep?user=nobody", headers=cookie(served.admin_key)).status_code == 404
    assert web.get("/dashboard/sleep?user=nobody", headers=cookie(served.admin_key)).status_code == 404


def test_a_revoked_key_is_sent_back_to_sign_in_on_its_next_request(web: httpx.Client, served: Served) -> None:
    store = ApiKeyStore(served.settings.control_store_path)
    created = store.create(
        served.users[2], name="dashboard revocation", rate_limit_per_minute=TEST_KEY_RATE_LIMIT
    )
    assert sign_in(web, created.secret).status_code == 303
    assert web.get("/dashboard/today", headers=cookie(created.secret)).status_code == 200
    store.revoke(created.key.key_id)
    page = web.get("/dashboard/today", headers=cookie(created.secret))
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/login?reason=invalid&next=today"
    assert set_cookie(page)[COOKIE_NAME]["max-age"] == "0", "the dead key's cookie is cleared"
    assert "revoked" in web.get(page.headers["location"]).text
    data = web.get("/dashboard/data/today", headers=cookie(created.secret))
    assert data.status_code == 401


def test_dashboard_requests_count_against_the_keys_rate_limit(served: Served) -> None:
    """On an app of its own whose limiter reads a fixed clock, so no window boundary can pass mid-test."""
    app = create_app(served.settings)
    app.state.key_guard.limiter.clock = lambda: FIXED_NOW
    limited = ApiKeyStore(served.settings.control_store_path).create(
        served.users[0], name="dashboard limit", rate_limit_per_minute=2
    )
    with TestClient(app) as client:
        assert client.get("/dashboard/today", headers=cookie(limited.secret)).status_code == 200
        data = client.get("/dashboard/data/today", headers=cookie(limited.secret))
        assert data.status_code == 200 and data.headers["X-RateLimit-Remaining"] == "0"
        over = client.get("/dashboard/today", headers=cookie(limited.secret))
        assert over.status_code == 429 and over.headers["Retry-After"] == "45"
        assert "Too many requests" in over.text
        assert client.get("/dashboard/data/today", headers=cookie(limited.secret)).status_code == 429
        # The same key on /api/v1 shares the count.
        api_answer = client.get(
            f"/api/v1/users/{served.users[0]}/sleep", headers={"X-API-Key": limited.secret}
        )
        assert api_answer.status_code == 429


def test_sign_out_clears_the_cookie(web: httpx.Client, served: Served) -> None:
    response = web.post("/dashboard/logout", headers=cookie(served.user_keys[served.users[0]]))
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?reason=signed_out"
    morsel = set_cookie(response)[COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == "0" and morsel["path"] == "/dashboard"
    assert "You are signed out" in web.get(response.headers["location"]).text


@pytest.mark.parametrize("page", list(PAGES))
def test_no_page_carries_the_key(web: httpx.Client, served: Served, page: str) -> None:
    """The key is in the cookie only: not in the HTML, nor in any address the page links to."""
    for key in (served.admin_key, served.user_keys[served.users[0]]):
        response = web.get(f"/dashboard/{page}?range=30", headers=cookie(key))
        assert response.status_code == 200
        assert key not in response.text
        assert key not in web.get(f"/dashboard/data/{page}?range=30", headers=cookie(key)).text
