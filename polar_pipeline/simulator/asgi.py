"""A minimal hand-written ASGI layer: request parsing, responses and a regex router (stdlib only)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def query_flag(self, name: str) -> bool:
        return (self.query_value(name) or "").lower() == "true"

    def json(self) -> Any:
        """The JSON body; ``ValueError`` if it is not valid JSON."""
        return json.loads(self.body.decode("utf-8") or "null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[-1] for key, values in parsed.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_json(self) -> bool:
        return self.content_type == JSON_CONTENT_TYPE


def dump_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, data: Any) -> Response:
    return Response(status, dump_json(data), JSON_CONTENT_TYPE)


def empty_response(status: int) -> Response:
    """204 and friends: no body and no content type, so clients must not parse JSON."""
    return Response(status)


async def read_request(scope: Scope, receive: Receive) -> Request:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return Request(scope["method"].upper(), scope["path"], query, headers, b"".join(chunks))


def _suppress_server_date_header(send: Send) -> None:
    """Drop the ASGI server's own wall-clock ``Date`` header for this response.

    uvicorn (with its default ``date_header=True``) prepends a real-time ``Date``; together with the simulated
    one that would give two values, and clients derive "server today" from it. The per-response cycle object
    behind ``send`` keeps that header in ``default_headers``; when present, we filter it there. Servers run
    with ``date_header=False`` are unaffected.
    """
    cycle: Any = getattr(send, "__self__", None)
    defaults = getattr(cycle, "default_headers", None)
    if cycle is not None and isinstance(defaults, list):
        cycle.default_headers = [item for item in defaults if bytes(item[0]).lower() != b"date"]


async def send_response(send: Send, response: Response) -> None:
    _suppress_server_date_header(send)
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type.encode("latin-1")))
    headers.append((b"content-length", str(len(response.body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


Handler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


class Router:
    """First match wins; ``{name}`` in a template matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self._routes.append(Route(method, re.compile(f"^{regex}$"), f"{method} {template}", handler))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | str | None:
        """The route and its path parameters; ``"method"`` if only the method is wrong; None if no match."""
        path_matched = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            path_matched = True
        return "method" if path_matched else None
