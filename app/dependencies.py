"""What routers get injected: the registry and forecaster built once at startup."""

from __future__ import annotations

from fastapi import Request

from app.forecasting import Forecaster
from app.registry import Registry


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_forecaster(request: Request) -> Forecaster:
    return request.app.state.forecaster
