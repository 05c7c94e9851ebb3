"""The service as a client sees it: a real uvicorn process on loopback, real onnxruntime, committed models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import HISTORY, MODELS, REPO, free_port, run_app_expecting_failure


def test_forecast_answers_with_a_plausible_value(service: httpx.Client) -> None:
    response = service.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["variant"] == "lstm64"
    assert (body["store"], body["item"]) == (1, 1)
    assert 5 <= body["forecast"] <= 20  # the window averages 10.8 units a day


def test_forecast_uses_the_last_14_days_of_a_longer_history(service: httpx.Client) -> None:
    longer = service.post("/forecast", json={"store": 1, "item": 1, "history": [500.0] * 30 + HISTORY}).json()
    exact = service.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY}).json()
    assert longer["forecast"] == exact["forecast"]


def test_unseen_high_volume_store_gets_a_forecast_of_its_own_magnitude(service: httpx.Client) -> None:
    """Store 99 item 77 never existed in training; it sells ~150-190 a day with a weekly cycle."""
    weekly = [150, 160, 165, 170, 180, 190, 175]
    response = service.post("/forecast", json={"store": 99, "item": 77, "history": weekly * 2})
    assert response.status_code == 200
    assert 130 <= response.json()["forecast"] <= 210


def test_forecast_tracks_the_weekly_pattern(service: httpx.Client) -> None:
    """Shifting the window by one day moves the forecast to the next weekday's level.

    A window rolled left by `shift` days ends on weekly[shift - 1], so the next day is weekly[shift].
    """
    weekly = np.array([30, 32, 34, 36, 40, 48, 44], dtype=float)
    forecasts = []
    for shift in range(7):
        history = np.roll(np.tile(weekly, 2), -shift).tolist()
        forecasts.append(service.post("/forecast", json={"store": 2, "item": 3, "history": history}).json()["forecast"])
    assert np.corrcoef(forecasts, weekly)[0, 1] > 0.8


@pytest.mark.parametrize(
    ("history", "field", "problem"),
    [
        (HISTORY[:13], ["body", "history"], "at least 14"),
        ([*HISTORY[:13], -1], ["body", "history", 13], "greater than or equal to 0"),
        (["12", *HISTORY[1:]], ["body", "history", 0], "valid number"),
        ([True, *HISTORY[1:]], ["body", "history", 0], "valid number"),
    ],
)
def test_bad_history_is_a_422_naming_the_field(service: httpx.Client, history, field, problem) -> None:
    response = service.post("/forecast", json={"store": 1, "item": 1, "history": history})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["loc"] == field and problem in e["msg"] for e in errors), errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item": 1, "history": HISTORY}, ["body", "store"]),
        ({"store": "one", "item": 1, "history": HISTORY}, ["body", "store"]),
        ({"store": 1, "item": 1, "history": HISTORY, "extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_fields_are_a_422_naming_the_field(service: httpx.Client, body, field) -> None:
    response = service.post("/forecast", json=body)
    assert response.status_code == 422
    assert any(e["loc"] == field for e in response.json()["detail"])


def test_models_lists_the_committed_metadata(service: httpx.Client) -> None:
    body = service.get("/models").json()
    assert body["active"] == "lstm64"
    on_disk = {p.stem: json.loads(p.read_text()) for p in MODELS.glob("*.json")}
    listed = {v["variant"]: v for v in body["variants"]}
    assert set(listed) == set(on_disk)
    baseline = listed["lstm64"]
    assert baseline["active"] is True
    assert baseline["metrics"]["mape"] == on_disk["lstm64"]["metrics"]["mape"]
    assert baseline["size"]["file_bytes"] == (MODELS / "lstm64.onnx").stat().st_size
    assert baseline["parameters"] == 16961


def test_serving_never_imports_tensorflow() -> None:
    code = "import sys, app.main, app.__main__; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_healthz(service: httpx.Client) -> None:
    assert service.get("/healthz").json() == {"status": "ok", "variant": "lstm64"}


def test_unknown_variant_fails_startup_listing_the_valid_names() -> None:
    result = run_app_expecting_failure({"MODEL_VARIANT": "lstm9000"})
    assert result.returncode == 2
    assert "MODEL_VARIANT='lstm9000'" in result.stderr
    assert "lstm64" in result.stderr.split("valid names:")[1]


@pytest.mark.parametrize(
    ("name", "value"), [("ORT_INTRA_OP_THREADS", "zero"), ("BATCH_THREADS", "0"), ("BODY_TIMEOUT_SECONDS", "0")]
)
def test_invalid_setting_fails_startup_naming_the_variable(name: str, value: str) -> None:
    result = run_app_expecting_failure({name: value})
    assert result.returncode == 2
    assert name in result.stderr and "Traceback" not in result.stderr


def test_tampered_model_fails_startup(tmp_path: Path) -> None:
    for source in MODELS.glob("lstm64.*"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    onnx_file = tmp_path / "lstm64.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    result = run_app_expecting_failure({"MODELS_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "sha256" in result.stderr


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_a_422_not_a_500(service: httpx.Client, token: str) -> None:
    """Python's JSON accepts these tokens; the 422 must not try to echo them back."""
    body = '{"store": 1, "item": 1, "history": [' + token + ", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}"
    response = service.post("/forecast", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "history", 0]


def test_validation_errors_do_not_echo_the_input(service: httpx.Client) -> None:
    response = service.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY, "note": "x" * 100_000})
    assert response.status_code == 422
    assert len(response.content) < 1_000
    assert response.json()["detail"][0]["loc"] == ["body", "note"]


def test_oversized_body_is_a_413_before_parsing(service: httpx.Client) -> None:
    history = ",".join(["1"] * 2_500_000)  # ~5 MB, over the 4 MiB default
    body = '{"store": 1, "item": 1, "history": [' + history + "]}"
    declared = service.post("/forecast", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert "larger than" in declared.json()["detail"]

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536].encode()

    streamed = service.post("/forecast", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413  # no Content-Length: counted as it arrives
    assert service.get("/healthz").status_code == 200


def _copy_models(target: Path) -> None:
    for source in MODELS.iterdir():
        if source.suffix in {".json", ".onnx"}:
            (target / source.name).write_bytes(source.read_bytes())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("other.json", "[1, 2]", "invalid model metadata"),
        ("other.json", '{"variant": 5}', "invalid model metadata"),
        ("other.json", "{not json", "invalid model metadata"),
        ("copy.json", None, "already defined"),
    ],
)
def test_bad_metadata_in_the_models_folder_fails_startup_clearly(tmp_path: Path, name, content, message) -> None:
    _copy_models(tmp_path)
    text = (MODELS / "lstm64.json").read_text() if content is None else content
    (tmp_path / name).write_text(text)
    result = run_app_expecting_failure({"MODELS_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert message in result.stderr and name in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_models_dir_setting_is_refused() -> None:
    result = run_app_expecting_failure({"MODELS_DIR": ""})
    assert result.returncode == 2
    assert "MODELS_DIR" in result.stderr


def test_a_port_in_use_is_refused_at_once_in_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app", "--port", str(port)], cwd=REPO, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                                  "(pick another with --port)"]  # fmt: skip


def test_invalid_port_is_refused_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--port", "99999"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_the_service_runs_on_the_standard_event_loop(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """uvloop's p99 at 64 connections was ~10x asyncio's (see app/__main__.py): `python -m app` must not pick it."""
    import uvicorn

    from app import __main__ as entry

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("MODEL_VARIANT", "lstm16")
    assert entry.main(["--workers", str(workers), "--port", str(free_port())]) == 0
    assert len(calls) == 1 and calls[0]["loop"] == "asyncio"
    assert calls[0].get("workers", 1) == workers


def test_dependencies_and_probes_run_on_the_event_loop() -> None:
    """A `def` dependency costs a thread hand-off per request; probes and /models compute nothing."""
    import inspect

    from app import dependencies
    from app.routers import health, models

    getters = [f for name, f in vars(dependencies).items() if name.startswith("get_")]
    assert len(getters) == 3 and all(inspect.iscoroutinefunction(f) for f in getters)
    for endpoint in (health.livez, health.readyz, health.healthz, models.list_models, models.get_model):
        assert inspect.iscoroutinefunction(endpoint), endpoint.__name__


def test_small_forecasts_run_on_the_loop_and_larger_ones_in_the_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hand-off to a pool thread costs more than one window's forecast; a batch must not hold the loop."""
    import asyncio

    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.routers import forecast
    from app.settings import Settings

    on_loop: list[bool] = []
    compute = forecast._compute

    def recording(*args, **kwargs):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # a worker thread has no running loop
            on_loop.append(False)
        return compute(*args, **kwargs)

    monkeypatch.setattr(forecast, "_compute", recording)
    one = {"store": 1, "item": 1, "history": HISTORY}
    bodies = [
        one,  # 1 window-day
        {**one, "horizon": forecast.INLINE_WINDOW_DAYS},
        {"series": [one] * forecast.INLINE_WINDOW_DAYS},
        {**one, "horizon": forecast.INLINE_WINDOW_DAYS + 1},
        {"series": [one] * (forecast.INLINE_WINDOW_DAYS + 1)},
        {"series": [one] * 1000},
    ]
    with TestClient(create_app(Settings(model_variant="lstm16"))) as client:
        answers = [client.post("/forecast", json=body) for body in bodies]
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert on_loop == [True, True, True, False, False, False]
    firsts = [a.json()["forecasts"][0] if "series" in b else a.json() for a, b in zip(answers, bodies, strict=True)]
    day_one = {first["forecast"] for first in firsts}
    assert len(day_one) == 1  # the same series gets the same next-day forecast on either path


def test_the_startup_heap_is_frozen_while_serving() -> None:
    """Full garbage collections then skip the modules and sessions, which live as long as the process."""
    import gc

    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    assert gc.get_freeze_count() == 0
    with TestClient(create_app(Settings(model_variant="lstm16"))) as client:
        frozen = gc.get_freeze_count()
        assert client.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY}).status_code == 200
    assert frozen > 10_000 and gc.get_freeze_count() == 0
