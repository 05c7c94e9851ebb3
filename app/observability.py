"""Prometheus metrics at /metrics and one structured (JSON) log line per request.

Each app gets its own metrics registry, so creating two apps in one process never collides.
"""

from __future__ import annotations

import json
import logging
import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("shelfcast.access")


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.forecasts = Counter(
            "shelfcast_forecasts_total", "Series forecast, by variant", ["variant"], registry=self.registry
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower()}
        entry.update(getattr(record, "fields", {"message": record.getMessage()}))
        return json.dumps(entry, separators=(",", ":"))


class AccessLog:
    """method, path, status, duration_ms, client: one JSON line per request, after the response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            client = scope.get("client")
            fields = {
                "event": "request",
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": client[0] if client else None,
            }
            access_log.info("request", extra={"fields": fields})


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("shelfcast", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def install(app: FastAPI) -> Telemetry:
    telemetry = Telemetry()
    Instrumentator(
        registry=telemetry.registry,
        excluded_handlers=["/metrics"],
        should_group_status_codes=False,
    ).instrument(app).expose(app, include_in_schema=False)
    app.add_middleware(AccessLog)
    return telemetry
