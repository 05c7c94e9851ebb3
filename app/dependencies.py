"""What routers get injected: state built once at startup.

These are `async def` on purpose: FastAPI runs a plain `def` dependency in its thread pool, and three
of them cost /forecast three thread hand-offs per request for what is an attribute lookup. The
endpoints that compute stay `def`, so their CPU work never blocks the event loop.
"""

from __future__ import annotations

from fastapi import Request

from app.observability import Telemetry
from app.registry import Registry
from app.settings import Settings


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_telemetry(request: Request) -> Telemetry:
    return request.app.state.telemetry
