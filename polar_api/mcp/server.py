"""The MCP server: built once per process, served over streamable HTTP at ``/mcp`` or over stdio.

``build_server`` registers every tool, resource and prompt over one ``McpRuntime`` (settings, snapshot
reader, request queue). ``mount_http`` adds ``/mcp`` to the REST app behind the key check
(``access.McpKeyGuard``); ``run_stdio`` serves one process's stdin/stdout for a local client such as Claude
Desktop (``polar-flow mcp``).

Over HTTP the server is stateless: each POST is a complete exchange answered with one JSON body (no
session id, no SSE stream; a GET or DELETE is 405), so any worker process can answer any request and
nothing is kept between requests. Each request gets its own short-lived session manager, so ``/mcp`` needs
no startup hook: it works in any ASGI server, with or without lifespan events.

DNS-rebinding protection (a check of ``Host`` and ``Origin`` meant for servers without authentication) is
off: every request needs an API key, which a page a browser was tricked into loading does not have.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import InputRequiredResult
from mcp.types import Resource as MCPResource
from pydantic import AnyUrl
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from polar_api.auth import KeyGuard
from polar_api.mcp import prompts, resources, tools_analytics, tools_data, tools_sql, tools_sync
from polar_api.mcp.access import CallScope, McpKeyGuard, scoped
from polar_api.mcp.answers import McpRuntime
from polar_pipeline import __version__
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import SnapshotReader

MCP_PATH = "/mcp"
SERVER_NAME = "polar-flow"
INSTRUCTIONS = (
    "Health and training data from a Polar watch, with analytics against the person's own baselines. Start "
    "with get_health_insights (the latest day's observations and suggestions); then the tool of the "
    "question: get_sleep, get_recovery, get_activity, get_exercises, get_hrv_status, get_training_load, "
    "get_trends, get_correlations, get_anomalies, get_illness_watch, get_baselines, get_patterns. query_sql "
    "answers anything else (the polar://tables resources document the tables). Every answer says how "
    "current it is (latest_data_day, snapshot_age_seconds) and puts missing or stale data in its note: "
    "repeat that to the person instead of guessing. Null values are missing data, never zero."
)


@contextmanager
def _sdk_leaves_logging_alone() -> Iterator[None]:
    """The SDK configures the root logger when a server is made; this process's logging is not its choice."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class PolarMcpServer(MCPServer[Any]):
    """The SDK's server, whose table resources are added on first use (``resources.TableResources``)."""

    def __init__(self) -> None:
        with _sdk_leaves_logging_alone():
            super().__init__(
                SERVER_NAME,
                title="Polar health data",
                version=__version__,
                instructions=INSTRUCTIONS,
                log_level="WARNING",
            )
        self.table_resources = resources.TableResources(self)

    async def list_resources(self) -> list[MCPResource]:
        await anyio.to_thread.run_sync(self.table_resources.ensure)
        return await super().list_resources()

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        await anyio.to_thread.run_sync(self.table_resources.ensure)
        return await super().read_resource(uri, context)


def build_server(runtime: McpRuntime) -> PolarMcpServer:
    """The MCP server with every tool, resource and prompt, reading through ``runtime``."""
    server = PolarMcpServer()
    tools_analytics.register(server, runtime)
    tools_data.register(server, runtime)
    tools_sync.register(server, runtime)
    tools_sql.register(server, runtime)
    prompts.register(server)
    return server


NOT_POST = JSONResponse(
    {"detail": "this MCP endpoint is stateless: send each JSON-RPC message as a POST"},
    status_code=405,
    headers={"Allow": "POST"},
)


class StatelessHttp:
    """ASGI app: one streamable-HTTP exchange per request, JSON answers, no session kept."""

    def __init__(self, server: MCPServer) -> None:
        # What the SDK's session manager serves; the SDK's own Client reaches it the same way.
        self.server = server._lowlevel_server
        self.security = TransportSecuritySettings(enable_dns_rebinding_protection=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "POST":
            # No session, so no stream of server-initiated messages to GET and no session to DELETE: the
            # transport's answer for a server without them is 405.
            await NOT_POST(scope, receive, send)
            return
        manager = StreamableHTTPSessionManager(
            app=self.server, stateless=True, json_response=True, security_settings=self.security
        )
        async with manager.run():
            await manager.handle_request(scope, receive, send)


def mount_http(app: FastAPI, settings: Settings, reader: SnapshotReader, keys: KeyGuard) -> None:
    """Serve the MCP server at ``/mcp`` of ``app``, behind the API keys; never kept by the response cache
    (it keeps only ``/api/v1/users/…`` answers)."""
    server = build_server(McpRuntime(settings=settings, reader=reader))
    app.router.routes.append(
        Route(MCP_PATH, McpKeyGuard(StatelessHttp(server), keys), include_in_schema=False)
    )


def run_stdio(settings: Settings, user_id: str | None) -> None:
    """Serve over stdin/stdout until the client closes them: for ``user_id``, or every user when None.

    Local and trusted: whoever can start this process can read POLAR_HOME anyway, so no key is asked; the
    scope still keeps the tools to ``user_id``.
    """
    reader = SnapshotReader(settings.snapshots_dir)
    try:
        server = build_server(McpRuntime(settings=settings, reader=reader))
        holder = f"this stdio server (polar-flow mcp --user {user_id})" if user_id else "this stdio server"
        with scoped(CallScope(user_id=user_id, holder=holder)):
            anyio.run(server.run_stdio_async)
    finally:
        reader.close()
