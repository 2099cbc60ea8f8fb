"""Answers of snapshot reads, kept per generation and served again without routing, after the key check.

A serving generation never changes, so a GET of a user's resource has one answer per generation and per
"today" of that user (windows end on the user's local date). The first request is routed as usual; its
answer is kept if it is a 200 read from the generation that is still current (the route names its
generation in ``X-Snapshot-Generation``; routes that read anything else, such as the sync status from the
control store, name none and are never kept). A later request for the same path and query on that
generation is answered from memory, after the same key check every routed request gets
(``polar_api.auth.check_access``: verified, counted against the rate limit, allowed to read the user), so a
cached answer is never served to a key that could not have read it.

Why: routing, validating and serializing a response costs several times what the lookups behind it cost,
and dashboards ask the same questions again and again between two publishes. Memory is bounded per worker
process (``POLAR_API_CACHE_MB``, least recently used dropped first; 0 turns the cache off), and the
answers of an older generation are dropped as soon as a newer one is seen. Cached answers carry
``X-Cache: hit``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polar_api.auth import API_KEY_HEADER, check_access, presented_key
from polar_api.deps import GENERATION_HEADER, per_generation
from polar_api.ratelimit import QUOTA_STATE
from polar_api.read.time_zones import time_zones
from polar_pipeline import clock
from polar_pipeline.warehouse.snapshot import SnapshotReader

CACHE_HEADER = "X-Cache"
USER_PATH = re.compile(r"^/api/v1/users/([A-Za-z0-9_-]{1,100})/")
"""The paths whose answers may be kept: a user's resources."""
MAX_ENTRY_BYTES = 4 * 1024 * 1024
"""A larger answer (a year of exercise samples, say) is served but not kept."""


@dataclass(frozen=True)
class _Answer:
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Answers:
    """Kept answers of one process: an LRU bounded in bytes, only for the newest generation seen."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], _Answer] = OrderedDict()
        self._bytes = 0
        self._generation = 0
        self._zones: dict[str, str] = {}
        self._lock = threading.Lock()

    def zones(self, generation: int) -> dict[str, str] | None:
        with self._lock:
            return self._zones if generation == self._generation else None

    def advance(self, generation: int, zones: dict[str, str]) -> None:
        """A newer generation is current: forget everything kept for older ones."""
        with self._lock:
            if generation > self._generation:
                self._generation, self._zones = generation, zones
                self._items.clear()
                self._bytes = 0

    def get(self, key: tuple[Any, ...]) -> _Answer | None:
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer

    def put(self, key: tuple[Any, ...], answer: _Answer) -> None:
        with self._lock:
            if key[0] != self._generation or key in self._items:
                return
            self._items[key] = answer
            self._bytes += len(answer.body)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.body)


class ResponseCache:
    """ASGI middleware in front of the routes (inside the rate-limit headers middleware)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.answers = _Answers(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = USER_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "GET" or self.answers.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        key = self._key(state.reader, state.settings, scope, match.group(1))
        answer = None if key is None else self.answers.get(key)
        if answer is None:
            await self._route_and_keep(scope, receive, send, key)
            return
        headers = Headers(scope=scope)
        access = check_access(
            state.key_guard,
            presented_key(headers.get(API_KEY_HEADER), headers.get("authorization")),
            match.group(1),
        )
        if access.quota is not None:
            scope.setdefault("state", {})[QUOTA_STATE] = access.quota
        if access.refusal is not None:
            body = json.dumps({"detail": access.refusal.detail}).encode()
            refusal_headers = [
                (k.lower().encode(), v.encode()) for k, v in (access.refusal.headers or {}).items()
            ]
            await _send(send, access.refusal.status_code, _json_headers(body) + refusal_headers, body)
            return
        await _send(send, 200, [*answer.headers, (CACHE_HEADER.lower().encode(), b"hit")], answer.body)

    def _key(
        self, reader: SnapshotReader, settings: Any, scope: Scope, user_id: str
    ) -> tuple[Any, ...] | None:
        """(generation, the user's today, path, query), or None when nothing is published."""
        info = reader.current()
        if info is None:
            return None
        zones = self.answers.zones(info.generation)
        if zones is None:
            with reader.cursor() as (cursor, _):
                zones = per_generation(cursor, "time_zones", time_zones)  # shared with the routes' lookups
            self.answers.advance(info.generation, zones)
        today: date = clock.today(settings, zones.get(user_id))
        return (info.generation, today, scope["path"], scope.get("query_string", b""))

    async def _route_and_keep(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[Any, ...] | None
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def keep(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if not message.get("more_body", False):
                    # Kept before the last byte goes out: the client's next request may come at once.
                    self._keep(key, start, chunks, size)
            await send(message)

        await self.app(scope, receive, keep)

    def _keep(self, key: tuple[Any, ...] | None, start: Message, chunks: list[bytes], size: int) -> None:
        if key is None or start["status"] != 200 or size > MAX_ENTRY_BYTES:
            return
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
        served = dict(headers).get(GENERATION_HEADER.lower().encode())
        if served == str(key[0]).encode():  # read from the generation the key names, and nothing else
            self.answers.put(key, _Answer(headers=headers, body=b"".join(chunks)))


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
