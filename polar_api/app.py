"""FastAPI app over the serving snapshot; polar-flow-server compatible routes under /api/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from polar_api.routers import health, sleep
from polar_pipeline import __version__
from polar_pipeline.settings import Settings, get_settings
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    reader = SnapshotReader(settings.snapshots_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        reader.close()

    app = FastAPI(title="polar-flow API", version=__version__, lifespan=lifespan)
    app.state.reader = reader
    app.state.settings = settings

    @app.exception_handler(SnapshotUnavailable)
    async def snapshot_unavailable(_: Request, exc: SnapshotUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    app.include_router(health.router)
    app.include_router(sleep.router, prefix="/api/v1")
    return app
