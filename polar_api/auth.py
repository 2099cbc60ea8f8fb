"""Who may read what: an API key on every /api/v1 route, checked and counted in well under a millisecond.

A key comes in ``X-API-Key`` or ``Authorization: Bearer <key>``. No key is 401 (with ``WWW-Authenticate:
Bearer``), an unknown or revoked key is 401, a user's key on another user's path is 403; an admin key reads
every user, and only an admin key reaches a /api/v1 route that names no user. Every request with a valid key
is counted against the key's per-minute limit (``polar_api.ratelimit``) before the user check, so probing
other users costs quota too; over the limit is 429 with ``Retry-After``.

Each worker process keeps the keys it verified in memory, on one long-lived read connection to the control
store. Before every lookup it reads ``PRAGMA data_version``, which changes whenever another connection (the
CLI revoking a key, another process) commits to that file; a change empties the cache, so a revoked key
fails on the very next request.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from polar_api.ratelimit import QUOTA_STATE, Quota, RateLimiter, RateLimitHeaders
from polar_pipeline.api_keys import ApiKey, ApiKeyStore, find_active_key, hash_key, looks_like_key
from polar_pipeline.settings import Settings

API_KEY_HEADER = "X-API-Key"
MISSING_KEY_DETAIL = "missing API key: send X-API-Key or Authorization: Bearer"
INVALID_KEY_DETAIL = "invalid or revoked API key"
MAX_CACHED_KEYS = 10_000
"""More distinct valid keys than this in one process start the cache afresh (bounded memory)."""


class VerifiedKeys:
    """This process's cache of verified keys, valid for as long as the control store is unchanged."""

    def __init__(self, control_store_path: Path) -> None:
        ApiKeyStore(control_store_path)  # creates the file and the api_keys table when missing
        self._con = sqlite3.connect(
            control_store_path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._data_version = self._read_data_version()

    def _read_data_version(self) -> int:
        (version,) = self._con.execute("PRAGMA data_version").fetchone()
        return int(version)

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None; a revocation committed before this call counts."""
        if not looks_like_key(secret):
            return None
        key_hash = hash_key(secret)
        with self._lock:
            version = self._read_data_version()
            if version != self._data_version:
                self._keys.clear()
                self._data_version = version
            key = self._keys.get(key_hash)
            if key is None:
                key = find_active_key(self._con, key_hash)
                if key is not None:
                    if len(self._keys) >= MAX_CACHED_KEYS:
                        self._keys.clear()
                    self._keys[key_hash] = key
            return key

    def close(self) -> None:
        self._con.close()


@dataclass
class KeyGuard:
    """What ``authorize`` needs, one per app (so one per worker process)."""

    keys: VerifiedKeys
    limiter: RateLimiter

    def close(self) -> None:
        self.keys.close()
        self.limiter.close()


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Give ``app`` its key cache and rate limiter, and the middleware that sends the quota headers."""
    app.state.key_guard = KeyGuard(
        keys=VerifiedKeys(settings.control_store_path), limiter=RateLimiter(settings.rate_limit_path)
    )
    app.add_middleware(RateLimitHeaders, worker_header=settings.api_worker_header)


API_KEY_SCHEME = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="an API key, from `polar-flow keys create`"
)
BEARER_SCHEME = HTTPBearer(auto_error=False, description="the same API key as a bearer token")
"""Both ways of sending a key; declared so OpenAPI (and the Authorize button of /docs) shows them."""


def presented_key(header_key: str | None, authorization: str | None) -> str | None:
    """The key in ``X-API-Key``, else in an ``Authorization: Bearer`` value; None when neither carries one."""
    bearer = None
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        bearer = credentials if scheme.lower() == "bearer" else None
    for candidate in (header_key, bearer):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


@dataclass(frozen=True)
class Access:
    """The outcome of one request's key check: the key and its counted quota, or why it is refused."""

    key: ApiKey | None
    quota: Quota | None
    refusal: HTTPException | None


def check_access(guard: KeyGuard, secret: str | None, path_user: str | None) -> Access:
    """Verify ``secret``, count it against its key's limit, and check it may read ``path_user``.

    The one place these rules live: ``authorize`` applies them to routed requests, and the response cache
    (``polar_api.response_cache``) to the answers it serves without routing.
    """
    if secret is None:
        refusal = HTTPException(
            status_code=401, detail=MISSING_KEY_DETAIL, headers={"WWW-Authenticate": "Bearer"}
        )
        return Access(None, None, refusal)
    key = guard.keys.verify(secret)
    if key is None:
        refusal = HTTPException(
            status_code=401,
            detail=INVALID_KEY_DETAIL,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
        return Access(None, None, refusal)
    quota = guard.limiter.hit(key.key_id, key.rate_limit_per_minute)
    if not quota.allowed:
        refusal = HTTPException(
            status_code=429,
            detail=(
                f"rate limit exceeded: key {key.key_id} may make {quota.limit} requests per minute; "
                f"retry in {quota.retry_after} s"
            ),
            headers={"Retry-After": str(quota.retry_after)},
        )
        return Access(key, quota, refusal)
    if path_user is None:
        if not key.is_admin:
            return Access(key, quota, HTTPException(status_code=403, detail="this route needs an admin key"))
    elif not key.may_read(path_user):
        refusal = HTTPException(
            status_code=403,
            detail=f"key {key.key_id} may not read this user: a user's key reads only its own user",
        )
        return Access(key, quota, refusal)
    return Access(key, quota, None)


async def authorize(
    request: Request,
    header_key: Annotated[str | None, Depends(API_KEY_SCHEME)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
) -> ApiKey:
    """The router dependency of /api/v1: a valid key, within its limit, for the path's user.

    Async on purpose: it blocks for microseconds (a dict lookup, two tiny SQLite statements), far less than
    a hop to the thread pool would cost.
    """
    authorization = f"Bearer {bearer.credentials}" if bearer else None
    user_id = request.path_params.get("user_id")
    access = check_access(
        request.app.state.key_guard,
        presented_key(header_key, authorization),
        None if user_id is None else str(user_id),
    )
    if access.quota is not None:
        setattr(request.state, QUOTA_STATE, access.quota)
    if access.refusal is not None:
        raise access.refusal
    assert access.key is not None
    return access.key
