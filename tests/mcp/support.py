"""The SDK's own MCP client, made synchronous for tests: its event loop runs in a background thread.

``McpSession`` wraps one connected ``mcp.Client`` (streamable HTTP with headers, or a ``polar-flow mcp``
subprocess over stdio); every method is a blocking call through an anyio portal, so module-scoped fixtures
can share one session and threads can each hold their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, GetPromptResult, Prompt, Resource, TextContent, Tool

from polar_pipeline.settings import Settings

POLAR_FLOW = str(Path(sys.executable).parent / "polar-flow")


class McpSession:
    """Blocking calls on one connected client."""

    def __init__(self, portal: BlockingPortal, client: Client) -> None:
        self.portal = portal
        self.client = client

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        result: CallToolResult = self.portal.call(self.client.call_tool, name, arguments or {})
        return result

    def answer(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """The structured answer of a call that must succeed."""
        result = self.call(name, arguments)
        assert not result.is_error, (name, arguments, error_text(result))
        assert isinstance(result.structured_content, dict), (name, result)
        return result.structured_content

    def tools(self) -> list[Tool]:
        return list(self.portal.call(self.client.list_tools).tools)

    def resources(self) -> list[Resource]:
        return list(self.portal.call(self.client.list_resources).resources)

    def read_resource(self, uri: str) -> str:
        contents = self.portal.call(self.client.read_resource, uri).contents
        assert len(contents) == 1, contents
        text = getattr(contents[0], "text", None)
        assert isinstance(text, str), contents
        return text

    def prompts(self) -> list[Prompt]:
        return list(self.portal.call(self.client.list_prompts).prompts)

    def prompt(self, name: str, arguments: dict[str, str] | None = None) -> GetPromptResult:
        result: GetPromptResult = self.portal.call(self.client.get_prompt, name, arguments)
        return result


def error_text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


@asynccontextmanager
async def _http_client(url: str, headers: dict[str, str], mode: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(url, http_client=http), mode=mode, cache=None, read_timeout_seconds=60
        ) as client,
    ):
        yield client


@contextmanager
def http_session(base_url: str, headers: dict[str, str], *, mode: str = "auto") -> Iterator[McpSession]:
    """A session with the server at ``base_url``/mcp, sending ``headers`` (the API key) on every request;
    ``mode="legacy"`` speaks the initialize handshake of the clients of 2025 (Claude Desktop, Claude Code)."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_http_client(f"{base_url}/mcp", headers, mode)) as client,
    ):
        yield McpSession(portal, client)


def stdio_environment(settings: Settings) -> dict[str, str]:
    """The test process's POLAR_* settings (its fixed calendar) with ``settings``' home."""
    env = {name: value for name, value in os.environ.items() if name.startswith("POLAR_")}
    return env | {"POLAR_HOME": str(settings.home_dir)}


@contextmanager
def stdio_session(settings: Settings, *args: str, **environment: str) -> Iterator[McpSession]:
    """A session with a ``polar-flow mcp`` subprocess (``args``: e.g. --user ID) over ``settings``' home;
    ``environment`` overrides variables (POLAR_TODAY …)."""
    env = stdio_environment(settings) | environment
    server = StdioServerParameters(command=POLAR_FLOW, args=["mcp", *args], env=env)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, cache=None, read_timeout_seconds=60)) as client,
    ):
        yield McpSession(portal, client)
