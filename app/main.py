"""Application factory: configuration and every model are loaded before the first request, or startup fails."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from app import errors, observability, openapi
from app.limits import BodySizeLimit, ForecastAdmission
from app.registry import Registry
from app.routers import benchmark, forecast, health, models
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = Registry.load(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in anyio's default thread pool, 40 threads unless told otherwise: 40 batches
        # computing at once on 2 cores, each holding its buffers (see ForecastAdmission for the numbers).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.forecast_concurrency
        # Everything alive now (modules, sessions, the app) lives as long as the process: moved out of the
        # collector's reach, a full collection no longer walks it. A 1,000-series request allocates ~30,000
        # objects and set off full collections of the whole heap: p99 fell from 60-70 ms to 18 ms, and
        # requests/s rose 20-50% (lstm16-int8, 1 worker, concurrency 1, wrk).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()

    app = FastAPI(
        lifespan=lifespan,
        title="shelfcast",
        version="0.1.0",
        description="Next-day and multi-day demand forecasts per store and item from tiny LSTM models, "
        "served with onnxruntime. Variants differ in size and accuracy: see GET /models and GET /benchmark.",
    )
    app.state.settings = settings
    app.state.registry = registry
    for router in (forecast.router, models.router, benchmark.router, health.router):
        app.include_router(router)
    errors.install(app)
    openapi.install(app, registry, settings)
    app.add_middleware(
        ForecastAdmission, limit=settings.forecast_concurrency, body_timeout_s=settings.body_timeout_seconds
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # added last, so outermost: it counts, times and logs what the client got (a 408 or 413 included),
    # and the time a forecast waited for admission
    app.state.telemetry = observability.install(app)
    app.state.ready = True  # every session loaded and warmed up above
    return app


def create_worker_app() -> FastAPI:
    """The factory each uvicorn worker process calls (`python -m app --workers N`): its own logging and sessions."""
    settings = Settings()
    observability.configure_logging(settings.log_level)
    return create_app(settings)
