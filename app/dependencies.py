"""What routers get injected: state built once at startup."""

from __future__ import annotations

from fastapi import Request

from app.observability import Telemetry
from app.registry import Registry
from app.settings import Settings


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_telemetry(request: Request) -> Telemetry:
    return request.app.state.telemetry
