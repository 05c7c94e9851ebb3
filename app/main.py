"""Application factory: configuration and every model are loaded before the first request, or startup fails."""

from __future__ import annotations

from fastapi import FastAPI

from app import errors, observability, openapi
from app.limits import BodySizeLimit
from app.registry import Registry
from app.routers import benchmark, forecast, health, models
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = Registry.load(settings)

    app = FastAPI(
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
    app.state.telemetry = observability.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.ready = True  # every session loaded and warmed up above
    return app


def create_worker_app() -> FastAPI:
    """The factory each uvicorn worker process calls (`python -m app --workers N`): its own logging and sessions."""
    settings = Settings()
    observability.configure_logging(settings.log_level)
    return create_app(settings)
