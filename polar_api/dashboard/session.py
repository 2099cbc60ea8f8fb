"""Signing in to the dashboard: the API key in an HttpOnly, SameSite=Strict cookie scoped to /dashboard.

Why the key itself rather than a session id or a signed token (docs/dashboard.md says more):

* every request is checked exactly as an API request is (``polar_api.auth.check_access``: the worker's
  ``VerifiedKeys`` over the control store, the shared rate limiter), so a revoked key stops the dashboard on
  its very next request, in every worker process, with no session table to keep in step;
* it needs no server-side state and no new secret: any number of uvicorn workers serve the same browser;
* the browser never lets page scripts read it (HttpOnly), never sends it with a request another site starts
  (SameSite=Strict), never sends it outside /dashboard (Path) nor, over HTTPS, in clear (Secure), and it is
  never in a URL. A stolen cookie is worth what the key is worth, and revoking the key ends it.

The sign-in and sign-out forms are POSTs that must come from the dashboard's own pages (``Origin`` /
``Sec-Fetch-Site``), so another site cannot sign a browser in with a key of its choosing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from polar_api.auth import KeyGuard, check_access
from polar_api.ratelimit import QUOTA_STATE
from polar_pipeline.api_keys import ApiKey

COOKIE_NAME = "polar_dashboard_key"
COOKIE_PATH = "/dashboard"
COOKIE_MAX_AGE = 7 * 24 * 3600
"""A week: signing in again after that is little trouble, and a revoked key stops working at once anyway."""


class SignInRequired(Exception):
    """No cookie, or one whose key is unknown or revoked: back to the sign-in form, saying which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(Exception):
    """A valid key that may not see this (403) or has used up its minute (429)."""

    def __init__(self, status_code: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Viewer:
    """Who is looking (their key) and whose pages they look at."""

    key: ApiKey
    user_id: str | None


def _guard(request: Request) -> KeyGuard:
    guard: KeyGuard = request.app.state.key_guard
    return guard


def presented_secret(request: Request) -> str | None:
    secret = request.cookies.get(COOKIE_NAME)
    return secret.strip() if secret and secret.strip() else None


def authorize_viewer(
    request: Request, requested_user: str | None, admin_default: Callable[[], str | None]
) -> Viewer:
    """The key from the cookie, checked, counted and allowed to see ``requested_user``.

    Without ``requested_user``, a user's key sees its own user and an admin key ``admin_default()``.
    """
    guard = _guard(request)
    secret = presented_secret(request)
    if secret is None:
        raise SignInRequired("required")
    key = guard.keys.verify(secret)
    if key is None:
        raise SignInRequired("invalid")
    target = requested_user or (admin_default() if key.is_admin else key.user_id)
    access = check_access(guard, secret, target)
    if access.quota is not None:
        setattr(request.state, QUOTA_STATE, access.quota)
    if access.refusal is not None:
        status = access.refusal.status_code
        if status == 401:  # revoked between the two checks
            raise SignInRequired("invalid")
        retry = access.quota.retry_after if status == 429 and access.quota else None
        detail = (
            "This key may only show its own user's pages."
            if status == 403
            else f"Too many requests for this key; try again in {retry} s."
            if status == 429
            else str(access.refusal.detail)
        )
        raise Refused(status, detail, retry)
    return Viewer(key=key, user_id=target)


def verify_for_sign_in(request: Request, secret: str) -> ApiKey | None:
    """The active key ``secret`` names (counted like any request), or None."""
    guard = _guard(request)
    key = guard.keys.verify(secret)
    if key is None:
        return None
    access = check_access(guard, secret, None if key.is_admin else key.user_id)
    if access.quota is not None:
        setattr(request.state, QUOTA_STATE, access.quota)
    return key if access.refusal is None else None


def same_origin(request: Request) -> bool:
    """Whether a form POST comes from a page of this site.

    Browsers say where a request comes from in ``Sec-Fetch-Site`` (and ``Origin``); a client that sends
    neither is not a browser, where cross-site forgery does not arise.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        secret,
        max_age=COOKIE_MAX_AGE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
