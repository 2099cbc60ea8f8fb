"""MCP sessions over the served warehouse: the first user's, over streamable HTTP (that user's key, against
the ``api`` fixture's uvicorn server) and over stdio (``polar-flow mcp --user``); and an admin's over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.mcp.support import McpSession, http_session, stdio_session
from tests.support.served import Served

TRANSPORTS = ("http", "stdio")


def base_url(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="module", params=TRANSPORTS)
def own(request: pytest.FixtureRequest, served: Served, api: httpx.Client) -> Iterator[McpSession]:
    """The first served user's session: their own key over HTTP, or a stdio server started for them."""
    user = served.users[0]
    if request.param == "http":
        with http_session(base_url(api), served.headers(user)) as session:
            yield session
    else:
        with stdio_session(served.settings, "--user", user) as session:
            yield session


@pytest.fixture(scope="module")
def admin(served: Served, api: httpx.Client) -> Iterator[McpSession]:
    """A session with the admin key over HTTP: every user, named on each call."""
    with http_session(base_url(api), served.headers()) as session:
        yield session
