"""ForecastAdmission: forecasts beyond the limit wait unread; everything else passes straight through."""

from __future__ import annotations

import asyncio

import pytest

from app.limits import ForecastAdmission


class Recorder:
    """An ASGI app that notes how many calls are inside it at once, and whether each read its body."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.read: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        await receive()
        self.read.append(scope["path"])
        await asyncio.sleep(0.01)  # holds its slot while others arrive
        self.inside -= 1


def _call(app, method: str, path: str):
    scope = {"type": "http", "method": method, "path": path, "headers": []}

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        pass

    return app(scope, receive, send)


def test_only_limit_forecasts_are_inside_at_once() -> None:
    async def scenario() -> Recorder:
        recorder = Recorder()
        admission = ForecastAdmission(recorder, limit=2)
        await asyncio.gather(*(_call(admission, "POST", "/forecast") for _ in range(12)))
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.most == 2
    assert recorder.read == ["/forecast"] * 12  # every one answered, none dropped


def test_probes_and_other_routes_never_wait_behind_forecasts() -> None:
    async def scenario() -> Recorder:
        recorder = Recorder()
        admission = ForecastAdmission(recorder, limit=1)
        calls = [_call(admission, "POST", "/forecast") for _ in range(4)]
        calls += [_call(admission, "GET", "/healthz") for _ in range(4)]
        calls += [_call(admission, "GET", "/models") for _ in range(4)]
        await asyncio.gather(*calls)
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.most == 1 + 8  # one forecast, and every probe and /models call beside it


def test_a_stalled_body_gets_a_408_and_frees_its_slot_for_the_next_forecast() -> None:
    """Two clients that sent headers and one byte once held both slots; every other forecast waited."""
    import json
    import socket
    import time
    from urllib.parse import urlsplit

    from tests.conftest import HISTORY, service_process

    env = {"FORECAST_CONCURRENCY": "1", "BODY_TIMEOUT_SECONDS": "1", "MODEL_VARIANT": "lstm16"}
    with service_process(env) as (client, output):
        address = urlsplit(str(client.base_url))
        stalled = socket.create_connection((address.hostname, address.port), timeout=60)
        stalled.sendall(
            b"POST /forecast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = client.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY})  # waits for the slot
        assert answer.status_code == 200 and answer.json()["forecast"] > 0
        reply = stalled.recv(4096).decode()
        stalled.close()
        assert reply.startswith("HTTP/1.1 408 ") and "connection: close" in reply.lower()
        assert json.loads(reply.split("\r\n\r\n", 1)[1])["detail"].startswith("the request body did not arrive")
        counted = 'http_requests_total{handler="/forecast",method="POST",status="408"} 1.0'
        for _ in range(100):  # the 408 is counted and logged once the app has answered the disconnect
            if counted in client.get("/metrics").text and any('"status":408' in line for line in output):
                break
            time.sleep(0.05)
        assert counted in client.get("/metrics").text
        assert any('"status":408' in line for line in output)


@pytest.mark.parametrize(("disconnect_first", "counted"), [(True, "499"), (False, "400")])
def test_a_client_that_left_before_its_answer_is_counted_as_499(disconnect_first: bool, counted: str) -> None:
    from app.observability import RequestTelemetry, Telemetry

    async def app(scope, receive, send) -> None:
        await receive()  # a body-reading app learns of the disconnect here, then answers 400 to no one
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        if disconnect_first:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"{", "more_body": False}

    async def send(message) -> None:
        pass

    telemetry = Telemetry()
    scope = {"type": "http", "method": "POST", "path": "/forecast", "headers": [], "client": ("127.0.0.1", 1)}
    asyncio.run(RequestTelemetry(app, telemetry)(scope, receive, send))
    labels = {"handler": "none", "method": "POST", "status": counted}
    assert telemetry.registry.get_sample_value("http_requests_total", labels) == 1.0
