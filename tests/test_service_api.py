"""Batch and multi-day forecasts, /models, /benchmark bounds, probes, metrics, variants by environment."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import HISTORY, MODELS, REPO, run_app_expecting_failure, running_app, service_process

VARIANTS = sorted(p.stem for p in MODELS.glob("*.json"))


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with running_app({"MAX_BATCH_SERIES": "10000"}) as client:
        yield client


def test_horizon_is_recursive_and_dated(api: httpx.Client) -> None:
    body = {"store": 1, "item": 1, "history": HISTORY, "horizon": 7, "last_date": "2013-01-14"}
    answer = api.post("/forecast", json=body).json()
    assert len(answer["forecasts"]) == 7
    assert answer["forecast"] == answer["forecasts"][0]
    assert answer["dates"] == [f"2013-01-{d}" for d in range(15, 22)]
    # day 2 is the one-day forecast from the window rolled forward by day 1's forecast
    rolled = [*HISTORY[1:], answer["forecasts"][0]]
    day2 = api.post("/forecast", json={"store": 1, "item": 1, "history": rolled}).json()["forecast"]
    assert day2 == pytest.approx(answer["forecasts"][1], abs=2e-3)
    assert answer["sha256"] == json.loads((MODELS / f"{answer['variant']}.json").read_text())["sha256"]
    assert all(f == round(f, 3) for f in answer["forecasts"])  # three decimals, not float32 noise


def test_28_day_horizon_crosses_a_month_end(api: httpx.Client) -> None:
    body = {"store": 1, "item": 1, "history": HISTORY, "horizon": 28, "last_date": "2016-02-20"}
    answer = api.post("/forecast", json=body).json()
    assert len(answer["forecasts"]) == 28 and answer["dates"][-1] == "2016-03-19"  # 2016 is a leap year
    assert all(0 < f < 40 for f in answer["forecasts"])


def test_batch_answers_each_series_like_a_single_call(api: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    series = [
        {
            "store": i,
            "item": i % 7,
            "history": rng.poisson(rng.uniform(5, 200), 14 + i % 5).tolist(),
            "horizon": 1 + i % 3,
        }
        for i in range(20)
    ]
    batch = api.post("/forecast", json={"series": series}).json()
    assert [f["store"] for f in batch["forecasts"]] == list(range(20))
    for request, answer in zip(series[:5], batch["forecasts"][:5], strict=True):
        single = api.post("/forecast", json=request).json()
        assert answer["forecasts"] == pytest.approx(single["forecasts"], abs=2e-3)
        assert len(answer["forecasts"]) == request["horizon"]


def test_ten_thousand_series_in_one_call(api: httpx.Client) -> None:
    series = [{"store": i % 10, "item": i, "history": [float(10 + i % 90)] * 14} for i in range(10_000)]
    response = api.post("/forecast", json={"series": series})
    assert response.status_code == 200
    forecasts = response.json()["forecasts"]
    assert len(forecasts) == 10_000
    assert forecasts[50]["forecast"] == pytest.approx(60, rel=0.25)  # a flat 60-a-day history


def test_batch_limit_and_empty_batch_are_422(api: httpx.Client) -> None:
    one = {"store": 1, "item": 1, "history": HISTORY}
    over = api.post("/forecast", json={"series": [one] * 10_001})
    assert over.status_code == 422
    assert over.json()["detail"][0]["loc"] == ["body", "series"] and "10000" in over.json()["detail"][0]["msg"]
    empty = api.post("/forecast", json={"series": []})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "series"]
    nested = api.post("/forecast", json={"series": [{**one, "horizon": 0}]})
    assert nested.json()["detail"][0]["loc"] == ["body", "series", 0, "horizon"]


@pytest.mark.parametrize(
    ("field", "value"), [("horizon", 29), ("horizon", 0), ("horizon", 1.5), ("last_date", "2013-02-30")]
)
def test_bad_horizon_or_date_is_422_naming_it(api: httpx.Client, field: str, value) -> None:
    response = api.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY, field: value})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_models_lists_every_variant_with_its_metadata(api: httpx.Client) -> None:
    listed = api.get("/models").json()
    assert [v["variant"] for v in listed["variants"]] == VARIANTS
    for summary in listed["variants"]:
        on_disk = json.loads((MODELS / f"{summary['variant']}.json").read_text())
        assert summary["available"] is True
        assert summary["size"] == on_disk["size"] and summary["metrics"] == on_disk["metrics"]
        one = api.get(f"/models/{summary['variant']}").json()
        assert one["sha256"] == on_disk["sha256"] and one["runs"] == on_disk["runs"]
    missing = api.get("/models/lstm9000")
    assert missing.status_code == 404 and VARIANTS[0] in missing.json()["detail"]


def test_benchmark_covers_every_variant_within_bounds(api: httpx.Client) -> None:
    answer = api.get("/benchmark", params={"iterations": 20, "batch_size": 50}).json()
    assert [r["variant"] for r in answer["results"]] == VARIANTS
    for row in answer["results"]:
        assert row["single"]["iterations"] == 20 and row["batch"]["batch_size"] == 50
        assert 0 < row["single"]["p50_us"] <= row["single"]["p95_us"] <= row["single"]["p99_us"]
        assert row["batch"]["forecasts_per_second"] > 0
        assert row["size"]["file_bytes"] > 0 and row["mape"]["mean"] > 0
    for params in ({"iterations": 5000}, {"batch_size": 20_000}, {"iterations": 1}, {"variants": "nope"}):
        response = api.get("/benchmark", params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"][0] == "query"


def test_concurrent_benchmark_gets_429_and_forecasts_keep_flowing(api: httpx.Client) -> None:
    results: dict[str, int] = {}
    running = threading.Event()

    def long_benchmark() -> None:
        for _ in range(200):  # the probes below can hold the lock for a moment; retry until this one runs
            running.set()
            status = api.get("/benchmark", params={"iterations": 2000, "batch_size": 10_000}).status_code
            if status != 429:
                results["first"] = status
                return

    worker = threading.Thread(target=long_benchmark)
    worker.start()
    try:
        running.wait()
        second = None
        for _ in range(2000):  # until a probe meets the long one holding the lock
            second = api.get("/benchmark", params={"iterations": 10, "batch_size": 1, "variants": "lstm64"})
            if second.status_code == 429:
                break
        assert second is not None and second.status_code == 429
        assert int(second.headers["retry-after"]) > 0
        forecast = api.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY})
        assert forecast.status_code == 200  # answered while the benchmark runs
    finally:
        worker.join()
    assert results["first"] == 200


def test_probes_and_metrics(api: httpx.Client) -> None:
    assert api.get("/livez").json() == {"status": "alive"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    api.post("/forecast", json={"series": [{"store": 1, "item": 1, "history": HISTORY}] * 3})
    api.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY[:3]})
    metrics = api.get("/metrics").text
    assert 'http_requests_total{handler="/forecast",method="POST",status="422"}' in metrics
    assert 'http_request_duration_seconds_bucket{handler="/forecast"' in metrics
    served = [line for line in metrics.splitlines() if line.startswith("shelfcast_forecasts_total{")]
    assert served and float(served[0].split()[-1]) >= 3


def test_openapi_has_examples_for_forecast(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    examples = spec["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"single", "horizon", "batch"} <= set(examples)
    assert api.get("/docs").status_code == 200


@pytest.mark.parametrize("variant", VARIANTS)
def test_model_variant_environment_switches_the_served_model(variant: str) -> None:
    with running_app({"MODEL_VARIANT": variant}) as client:
        answer = client.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY}).json()
        assert answer["variant"] == variant
        assert answer["sha256"] == json.loads((MODELS / f"{variant}.json").read_text())["sha256"]
        assert 5 < answer["forecast"] < 20
        assert client.get("/models").json()["active"] == variant


def test_benchmark_can_be_disabled() -> None:
    with running_app({"BENCHMARK_ENABLED": "false"}) as client:
        response = client.get("/benchmark")
        assert response.status_code == 403 and "BENCHMARK_ENABLED" in response.json()["detail"]


@pytest.mark.parametrize(
    ("env", "name"),
    [({"MAX_BATCH_SERIES": "0"}, "MAX_BATCH_SERIES"), ({"BENCHMARK_ENABLED": "maybe"}, "BENCHMARK_ENABLED")],
)
def test_invalid_configuration_fails_startup(env: dict[str, str], name: str) -> None:
    result = run_app_expecting_failure(env)
    assert result.returncode == 2 and name in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_workers_share_the_port_and_both_answer() -> None:
    body = {"store": 1, "item": 1, "history": HISTORY}
    with service_process({"MODEL_VARIANT": "lstm16"}, ["--workers", "2"]) as (client, output):
        answers = []
        for _ in range(40):  # a new connection each time, so the kernel spreads them over the workers
            with httpx.Client(base_url=str(client.base_url), timeout=60) as fresh:
                answers.append(fresh.post("/forecast", json=body))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["forecast"] for a in answers}) == 1
        assert answers[0].json()["variant"] == "lstm16"
    started = {line.split("[")[1].split("]")[0] for line in output if "Started server process" in line}
    assert len(started) == 2, output


def test_workers_must_be_a_positive_count() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--workers", "0"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr and "1-64" in result.stderr and "Traceback" not in result.stderr


def test_a_batch_bad_everywhere_is_answered_with_its_first_bad_series(api: httpx.Client) -> None:
    """Bad fields in each of 10,000 series once answered 1.2 million problems (125 MB, 16 s on the loop)."""
    from app.jsonbody import OFF_LOOP_BYTES

    body = json.dumps({"series": [{"store": "x", "item": 1, "history": ["a"] * 30} for _ in range(10_000)]})
    assert len(body) > OFF_LOOP_BYTES  # validated on a pool thread
    answer = api.post("/forecast", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert [(d["loc"], d["type"]) for d in answer.json()["detail"]] == [
        (["body", "series", 0, "store"], "int_type"),
        (["body", "series", 0, "history", 0], "float_type"),  # its first bad day, not all 30
    ]
    assert api.get("/livez").status_code == 200


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('{"series":[' + ",".join(["{}"] * 500_000) + "]}", "missing"),  # past the ceiling: stops at the first
        ('{"store":1,"item":1,"history":[1],' + ",".join(f'"k{i}":0' for i in range(100_000)) + "}",
         "json_too_many_keys"),
    ],
)  # fmt: skip
def test_bodies_built_to_make_errors_get_one_or_a_few(api: httpx.Client, body: str, kind: str) -> None:
    answer = api.post("/forecast", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert 1 <= len(detail) <= 3 and detail[0]["type"] == kind


def test_an_answer_lists_at_most_max_problems_and_counts_the_rest() -> None:
    from app.errors import MAX_PROBLEMS, capped

    errors = [{"loc": ("query", "n"), "msg": "bad", "type": "int_type"}] * (MAX_PROBLEMS + 7)
    listed = capped(errors)
    assert len(listed) == MAX_PROBLEMS + 1 and listed[0]["loc"] == ["query", "n"]
    more = {"loc": ["query"], "msg": "and 7 more problems like these, not listed", "type": "too_many_errors"}
    assert listed[-1] == more
    assert capped(errors[:3]) == listed[:3]


def test_a_large_valid_body_with_escapes_takes_the_slow_path_and_is_answered(api: httpx.Client) -> None:
    series = [{"store": 1, "item": i % 50 + 1, "history": HISTORY} for i in range(3_000)]
    body = json.dumps({"series": series}).replace('"store"', '"\\u0073tore"')  # an escape: no fast path
    answer = api.post("/forecast", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["forecasts"]) == 3_000
