"""Bounded load on loopback: many concurrent clients, a fixed number of requests, zero errors.

64 clients share 3,000 requests: single series, small batches, and a few invalid bodies. Every request
carries store ids no other request uses, so each answer is matched to its own request; the service's
own counters must then agree with what the clients sent (nothing lost, nothing answered twice). No
timing is asserted: the per-request timeout only stops a hung run.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from tests.conftest import service_process

CLIENTS = 64
REQUESTS = 3000
INVALID_EVERY = 50  # 60 invalid bodies among the 3,000
REQUEST_TIMEOUT = 120.0  # a safety net against a hang, not a performance limit


def access_log(output: list[str]) -> list[dict]:
    entries = []
    for line in output:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request":
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class Planned:
    """One request: its JSON body (or raw bytes), the store ids it carries, and what it must get back."""

    index: int
    body: dict | None
    raw: bytes | None
    stores: tuple[int, ...]
    horizons: tuple[int, ...]
    expect: int
    problem: tuple[list, str] | None = None  # an invalid request's expected 422 loc and type

    @property
    def batch(self) -> bool:
        return self.body is not None and "series" in self.body


SERIES = {"item": 1, "history": [5.0] * 14}
INVALID_KINDS = [  # (body from the request's first store id, the 422's loc, its type)
    (lambda s: {**SERIES, "store": s, "history": [5.0] * 13}, ["body", "history"], "too_short"),
    (lambda s: {**SERIES, "store": s, "history": [5.0] * 13 + [-1.0]}, ["body", "history", 13], "greater_than_equal"),
    (lambda s: {**SERIES, "store": s, "horizon": 0}, ["body", "horizon"], "greater_than_equal"),
    (lambda s: {**SERIES, "store": s, "note": "x"}, ["body", "note"], "extra_forbidden"),
    (
        lambda s: {"series": [{**SERIES, "store": s, "horizon": 29}]},
        ["body", "series", 0, "horizon"],
        "less_than_equal",
    ),
    (lambda s: b'{"store": %d, "store": 1, "item": 1, "history": []}' % s, ["body"], "json_duplicate_key"),
    (lambda s: b'{"store": %d, "item": 1, "history": [1, 2' % s, ["body"], "json_invalid"),  # cut short
]


def plan(seed: int = 0) -> list[Planned]:
    """REQUESTS requests; request i uses store ids 10*i .. 10*i+9, so answers can be matched back."""
    rng = np.random.default_rng(seed)
    planned = []
    for i in range(REQUESTS):
        first = 10 * i
        if i % INVALID_EVERY == INVALID_EVERY - 1:
            make, loc, kind = INVALID_KINDS[(i // INVALID_EVERY) % len(INVALID_KINDS)]
            produced = make(first)
            raw = produced if isinstance(produced, bytes) else None
            body = None if raw is not None else produced
            planned.append(Planned(i, body, raw, (first,), (), 422, (loc, kind)))
            continue
        count = 1 if i % 3 else int(rng.integers(2, 6))  # two thirds single series, a third batches of 2-5
        series = []
        for k in range(count):
            level = float(rng.uniform(5, 200))
            length = int(rng.integers(14, 40))
            series.append(
                {
                    "store": first + k,
                    "item": int(rng.integers(1, 50)),
                    "history": rng.poisson(level, length).astype(float).tolist(),
                    "horizon": int(rng.integers(1, 4)),
                }
            )
        body = {"series": series} if count > 1 else series[0]
        planned.append(
            Planned(i, body, None, tuple(s["store"] for s in series), tuple(s["horizon"] for s in series), 200)
        )
    return planned


def check_forecast(answer: dict, store: int, horizon: int) -> None:
    assert answer["store"] == store
    assert len(answer["forecasts"]) == horizon
    assert answer["forecast"] == answer["forecasts"][0]
    assert all(isinstance(v, float) and math.isfinite(v) for v in answer["forecasts"])


def check_answer(request: Planned, status: int, answer: dict) -> None:
    assert status == request.expect, (request.index, status, answer)
    if request.expect == 422:
        assert [(p["loc"], p["type"]) for p in answer["detail"]] == [request.problem], answer
    elif request.batch:
        assert [f["store"] for f in answer["forecasts"]] == list(request.stores)
        for forecast, store, horizon in zip(answer["forecasts"], request.stores, request.horizons, strict=True):
            check_forecast(forecast, store, horizon)
    else:
        check_forecast(answer, request.stores[0], request.horizons[0])


async def send_all(base_url: str, planned: list[Planned]) -> dict[int, tuple[int, dict]]:
    queue: asyncio.Queue[Planned] = asyncio.Queue()
    for request in planned:
        queue.put_nowait(request)
    answers: dict[int, tuple[int, dict]] = {}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if request.raw is not None:
                response = await client.post(
                    "/forecast", content=request.raw, headers={"content-type": "application/json"}
                )
            else:
                response = await client.post("/forecast", json=request.body)
            assert request.index not in answers
            answers[request.index] = (response.status_code, response.json())

    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(CLIENTS)))
    return answers


def counter(metrics: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples that carry all the given labels."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.slow
def test_concurrent_clients_get_exactly_one_correct_answer_each() -> None:
    planned = plan()
    expected = Counter(str(p.expect) for p in planned)
    assert expected["422"] == REQUESTS // INVALID_EVERY and expected["200"] == REQUESTS - expected["422"]
    with service_process({}) as (client, output):
        answers = asyncio.run(send_all(str(client.base_url), planned))

        assert sorted(answers) == list(range(REQUESTS))  # one answer for every request, none missing
        for request in planned:
            status, answer = answers[request.index]
            check_answer(request, status, answer)

        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        metrics = client.get("/metrics").text
        for status, count in expected.items():  # the service answered each request exactly once
            assert counter(metrics, "http_requests_total", handler="/forecast", method="POST", status=status) == count
        served = sum(len(p.stores) for p in planned if p.expect == 200)
        assert counter(metrics, "shelfcast_forecasts_total") == served
    logged = [e for e in access_log(output) if e["path"] == "/forecast"]
    assert Counter(str(e["status"]) for e in logged) == expected
    assert not any("Traceback" in line for line in output)
