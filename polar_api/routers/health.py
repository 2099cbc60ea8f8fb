"""GET /health: is a snapshot readable, which generation, how old."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from polar_api.deps import GENERATION_HEADER
from polar_pipeline import __version__
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable

router = APIRouter(tags=["system"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    reader: SnapshotReader = request.app.state.reader
    body: dict[str, Any] = {"status": "ok", "version": __version__}
    try:
        with reader.cursor() as (cursor, info):
            cursor.execute("SELECT 1").fetchall()
    except SnapshotUnavailable as exc:
        body |= {"status": "unavailable", "snapshot": None, "detail": str(exc)}
        return JSONResponse(status_code=503, content=body)
    body["snapshot"] = {
        "generation": info.generation,
        "published_at": info.published_at.isoformat(),
        "age_seconds": round(info.age_seconds(), 3),
    }
    return JSONResponse(content=body, headers={GENERATION_HEADER: str(info.generation)})
