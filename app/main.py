"""Application factory: configuration and models are loaded before the first request, or startup fails."""

from __future__ import annotations

from fastapi import FastAPI

from app import errors
from app.forecasting import Forecaster
from app.limits import BodySizeLimit
from app.registry import Registry
from app.routers import forecast, health, models
from app.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = Registry.load(settings)
    forecaster = Forecaster(registry.session)
    forecaster.warm_up()

    app = FastAPI(
        title="shelfcast",
        version="0.1.0",
        description="Next-day demand forecasts per store and item from tiny LSTM models served with onnxruntime.",
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.forecaster = forecaster
    for router in (forecast.router, models.router, health.router):
        app.include_router(router)
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
