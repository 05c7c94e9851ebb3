"""Prometheus metrics at /metrics and one structured (JSON) log line per request, from one middleware.

Each app gets its own metrics registry, so creating two apps in one process never collides. The
metric names and labels are those of prometheus-fastapi-instrumentator, which this replaced: on a
single-series forecast it cost about a tenth of the request (it matched the route again and updated
five metrics), and the access log wrapped the request a second time. One pure-ASGI layer now times
the request once, then counts it, observes its duration and writes its log line.
"""

from __future__ import annotations

import logging
import time

import orjson
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("shelfcast.access")

METRICS_PATH = "/metrics"
# nginx's status for a client that closed the connection before its answer: counted apart from the 4xx
# a client did receive (wrk's stopping connections were logged as 400s)
CLIENT_CLOSED_REQUEST = 499
# seconds; a single forecast takes ~1 ms end to end, a 10,000-series batch up to a few seconds
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.forecasts = Counter(
            "shelfcast_forecasts_total", "Series forecast, by variant", ["variant"], registry=self.registry
        )
        self.requests = Counter(
            "http_requests_total",
            "Requests answered, by route template, method and status",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route template and method",
            ["handler", "method"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower()}
        entry.update(getattr(record, "fields", {"message": record.getMessage()}))
        return orjson.dumps(entry).decode()


def _handler(scope: Scope) -> str:
    """The route template ('/models/{name}'), so a metric's labels stay few; 'none' when no route matched."""
    route = scope.get("route")
    return getattr(route, "path", None) or "none"


class RequestTelemetry:
    """Counts, times and logs every HTTP request but /metrics (method, path, status, duration_ms, client).

    The status is the one the client got; 499 when it closed the connection before any answer.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry):
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered = gone = False

        async def watching_receive() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                gone = True  # the client left first: whatever the app answers (FastAPI says 400) reaches nobody
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        try:
            await self.app(scope, watching_receive, recording_send)
        finally:
            if gone:
                status = CLIENT_CLOSED_REQUEST
            seconds = time.perf_counter() - started
            method, handler = scope["method"], _handler(scope)
            self.telemetry.requests.labels(handler, method, str(status)).inc()
            self.telemetry.duration.labels(handler, method).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                fields = {
                    "event": "request",
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
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

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestTelemetry, telemetry=telemetry)
    return telemetry
