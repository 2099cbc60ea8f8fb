"""Whose data a tool call may read, and the key check in front of ``/mcp``.

A call runs within a ``Scope``: one user (a user's API key, or ``polar-flow mcp --user ID``), or every user
(an admin key, or ``polar-flow mcp`` without ``--user``). The scope lives in a context variable, set by the
HTTP guard for each request and once for a stdio server; tools read it through ``user_for_call``:

* a one-user scope answers for its user; a ``user_id`` argument naming anyone else is refused;
* an every-user scope needs ``user_id`` on every call (there is no "first user" default).

Over HTTP, ``McpKeyGuard`` applies the REST API's rules (``polar_api.auth.check_access``) before the MCP
app sees a byte: no key is 401, an unknown or revoked key 401, over the key's per-minute limit 429, each
with the same JSON body and headers as the REST API; every request with a valid key is counted, and its
quota goes out in the ``X-RateLimit-*`` headers (``RateLimitHeaders``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from mcp.server.mcpserver.exceptions import ToolError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from polar_api.auth import API_KEY_HEADER, KeyGuard, check_access, presented_key
from polar_api.ratelimit import QUOTA_STATE


@dataclass(frozen=True)
class CallScope:
    """Whom the calls of one request (HTTP) or one process (stdio) may read."""

    user_id: str | None
    """The one user this scope reads; None: every user."""
    holder: str
    """Who holds the scope, for refusals: "key key_…", "this stdio server"."""


CURRENT_SCOPE: ContextVar[CallScope | None] = ContextVar("polar_mcp_scope", default=None)


@contextmanager
def scoped(scope: CallScope) -> Iterator[None]:
    """Calls made inside run within ``scope`` (tasks and worker threads started inside inherit it)."""
    token = CURRENT_SCOPE.set(scope)
    try:
        yield
    finally:
        CURRENT_SCOPE.reset(token)


def user_for_call(requested: str | None) -> str:
    """The user a call answers for: its scope's user, or ``requested`` when the scope covers every user.

    Refusals are ``ToolError``: the model reads them as the tool's answer and can correct the call.
    """
    scope = CURRENT_SCOPE.get()
    if scope is None:
        raise ToolError("refused: this call carries no credentials")
    if scope.user_id is None:
        if requested is None:
            raise ToolError(f"pass user_id: {scope.holder} reads every user, so each call must name one")
        return requested
    if requested is not None and requested != scope.user_id:
        raise ToolError(
            f"refused: {scope.holder} reads only user {scope.user_id}; user_id {requested!r} names another "
            "user (leave user_id out to read your own data)"
        )
    return scope.user_id


def rows_visible_to(requested: str | None) -> str | None:
    """Whose rows a SQL query may see: like ``user_for_call``, but an every-user scope may leave
    ``user_id`` out to see every user's rows (None)."""
    scope = CURRENT_SCOPE.get()
    if scope is not None and scope.user_id is None and requested is None:
        return None
    return user_for_call(requested)


class McpKeyGuard:
    """ASGI app in front of the MCP app: the REST API's key check, then the call's scope."""

    def __init__(self, app: ASGIApp, keys: KeyGuard) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        secret = presented_key(headers.get(API_KEY_HEADER), headers.get("authorization"))
        key = self.keys.keys.verify(secret) if secret is not None else None
        # The user check of check_access is the tools' business (user_for_call): a user's key is checked
        # against its own user here, so only the key, its revocation and its rate limit decide.
        own_user = None if key is None or key.is_admin else key.user_id
        access = check_access(self.keys, secret, own_user)
        if access.quota is not None:
            scope.setdefault("state", {})[QUOTA_STATE] = access.quota
        if access.refusal is not None:
            body = json.dumps({"detail": access.refusal.detail}).encode()
            refusal_headers = [
                (name.lower().encode(), value.encode())
                for name, value in (access.refusal.headers or {}).items()
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": access.refusal.status_code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *refusal_headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        assert access.key is not None
        call_scope = CallScope(
            user_id=None if access.key.is_admin else access.key.user_id, holder=f"key {access.key.key_id}"
        )
        with scoped(call_scope):
            await self.app(scope, receive, send)
