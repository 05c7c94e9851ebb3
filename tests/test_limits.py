"""ForecastAdmission: forecasts beyond the limit wait unread; everything else passes straight through."""

from __future__ import annotations

import asyncio

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
