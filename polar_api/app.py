"""FastAPI app over the serving snapshot; polar-flow-server compatible routes under /api/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from polar_api.auth import authorize, install_auth
from polar_api.dashboard.routes import router as dashboard_router
from polar_api.errors import ERROR_RESPONSES
from polar_api.mcp.server import mount_http
from polar_api.response_cache import ResponseCache
from polar_api.routers import (
    activity,
    alerts,
    analytics_status,
    anomalies,
    baselines,
    cardio_load,
    exercises,
    export,
    health,
    heart_rate,
    insights,
    llms,
    metrics,
    oauth,
    patterns,
    recharge,
    sleep,
    sync,
)
from polar_pipeline import __version__
from polar_pipeline.settings import Settings, get_settings
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable

USER_ROUTERS: tuple[APIRouter, ...] = (
    sleep.router,
    recharge.router,
    activity.router,
    exercises.router,
    heart_rate.router,
    cardio_load.router,
    baselines.router,
    anomalies.router,
    patterns.router,
    insights.router,
    analytics_status.router,
    metrics.router,
    sync.router,
    export.router,
    alerts.router,
)
"""Every /api/v1/users/{user_id}/... resource, one router each over ``polar_api.read``."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    reader = SnapshotReader(settings.snapshots_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        reader.close()
        app.state.key_guard.close()

    app = FastAPI(title="polar-flow API", version=__version__, lifespan=lifespan)
    app.state.reader = reader
    app.state.settings = settings
    # Added before the auth middleware, so it sits inside it: cached answers get the quota headers too.
    app.add_middleware(ResponseCache, max_bytes=settings.api_cache_mb * 1024 * 1024)
    install_auth(app, settings)

    @app.exception_handler(SnapshotUnavailable)
    async def snapshot_unavailable(_: Request, exc: SnapshotUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    app.include_router(health.router)
    app.include_router(llms.router)
    app.include_router(oauth.router)  # its own rules: an admin key to start, the state on the callback
    app.include_router(dashboard_router)  # /dashboard: the same keys and limits, from a session cookie
    api_v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)], responses=ERROR_RESPONSES)
    for router in USER_ROUTERS:
        api_v1.include_router(router)
    app.include_router(api_v1)
    mount_http(app, settings, reader, app.state.key_guard)  # /mcp: the same keys and limits, never cached
    return app
