"""The load generator counts what it sends: a tiny real server on loopback, both generators, no speed asserted.

POST /ok answers 200 (400 unless the body arrives intact) and POST /fail 503, so every completed request
is either a success or a status error. /moved answers 307, which wrk alone would count as a success.
Runs last about a second each.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.loadgen import ERROR_KINDS, LoadResult, available_generator, run_load
from tests.conftest import free_port

SERVER = """
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route


EXPECTED = bytes.fromhex(sys.argv[2])


async def ok(request):  # 200 only for the exact body and content type sent: a mangled request is a 400
    intact = await request.body() == EXPECTED and request.headers.get("content-type") == "application/json"
    return JSONResponse({"ok": intact}, status_code=200 if intact else 400)


async def fail(request):
    await request.body()
    return JSONResponse({"ok": False}, status_code=503)


async def moved(request):
    await request.body()
    return RedirectResponse("/ok", status_code=307)


routes = [Route(path, handler, methods=["POST"]) for path, handler in [("/ok", ok), ("/fail", fail), ("/moved", moved)]]
uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

BODY = b'{"store": 1, "item": 1, "history": [5.0, 5.0, 5.0], "note": "quote \\" backslash \\\\ [[ ]] %d"}'
GENERATORS = [
    pytest.param("wrk", marks=pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not on PATH")),
    "python",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the tiny server, run by uvicorn in its own process so it has its own GIL."""
    log = tmp_path_factory.mktemp("loadgen") / "server.log"
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), BODY.hex()], stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # readiness poll, not a time limit on behaviour
            if process.poll() is not None:
                raise RuntimeError(f"test server exited early: {log.read_text()}")
            try:
                if httpx.post(f"{url}/fail", timeout=1).status_code == 503:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"test server did not become ready: {log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def check_consistent(result: LoadResult, generator: str, concurrency: int) -> None:
    assert result.generator.startswith("wrk " if generator == "wrk" else "python-httpx ")
    assert result.concurrency == concurrency
    assert set(result.errors) == set(ERROR_KINDS)
    assert result.requests > 0
    assert result.duration_s > 0
    assert result.requests_per_s == pytest.approx(result.requests / result.duration_s, rel=1e-9)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize("concurrency", [1, 8])
def test_ok_endpoint_counts_successes(server: str, generator: str, concurrency: int) -> None:
    result = run_load(f"{server}/ok", BODY, concurrency=concurrency, duration_s=1, generator=generator, warmup_s=0)
    check_consistent(result, generator, concurrency)
    assert result.errors == dict.fromkeys(ERROR_KINDS, 0)
    assert result.to_dict()["errors"] == result.errors
    assert result.to_dict()["requests"] == result.requests


@pytest.mark.parametrize("generator", GENERATORS)
def test_failing_endpoint_counts_every_answer_as_a_status_error(server: str, generator: str) -> None:
    result = run_load(f"{server}/fail", BODY, concurrency=8, duration_s=1, generator=generator, warmup_s=0)
    check_consistent(result, generator, 8)
    assert result.errors["status"] == result.requests
    assert all(count == 0 for kind, count in result.errors.items() if kind != "status")


@pytest.mark.parametrize("generator", GENERATORS)
def test_expected_error_status_is_not_an_error(server: str, generator: str) -> None:
    """Benchmarking an error path: 503 expected, so /fail succeeds and /ok's 200 is the mismatch."""
    expected = run_load(
        f"{server}/fail", BODY, concurrency=2, duration_s=1, generator=generator, expected_status=503, warmup_s=0
    )
    check_consistent(expected, generator, 2)
    assert expected.errors == dict.fromkeys(ERROR_KINDS, 0)
    mismatched = run_load(
        f"{server}/ok", BODY, concurrency=2, duration_s=1, generator=generator, expected_status=503, warmup_s=0
    )
    check_consistent(mismatched, generator, 2)
    assert mismatched.errors["status"] == mismatched.requests


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not on PATH")
def test_wrk_refuses_a_redirect_it_would_count_as_success(server: str) -> None:
    with pytest.raises(RuntimeError, match="307"):
        run_load(f"{server}/moved", BODY, concurrency=1, duration_s=1, generator="wrk", warmup_s=0)


def test_python_counts_a_redirect_as_a_status_error(server: str) -> None:
    result = run_load(f"{server}/moved", BODY, concurrency=2, duration_s=0.3, generator="python", warmup_s=0)
    assert result.requests > 0
    assert result.errors["status"] == result.requests


def test_python_warmup_is_not_measured(server: str) -> None:
    began = time.perf_counter()
    result = run_load(f"{server}/ok", BODY, concurrency=2, duration_s=0.3, generator="python", warmup_s=0.5)
    assert time.perf_counter() - began >= 0.8
    assert result.duration_s < 0.7  # the measured phase alone, not warm-up plus run
    check_consistent(result, "python", 2)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not on PATH")
def test_wrk_failure_is_a_runtime_error_with_its_message() -> None:
    closed = f"http://127.0.0.1:{free_port()}/ok"
    with pytest.raises(RuntimeError, match="unable to connect"):
        run_load(closed, BODY, concurrency=1, duration_s=1, generator="wrk", warmup_s=0)


def test_python_counts_refused_connections() -> None:
    closed = f"http://127.0.0.1:{free_port()}/ok"
    result = run_load(closed, BODY, concurrency=2, duration_s=0.2, generator="python", warmup_s=0)
    assert result.requests == 0
    assert result.errors["connect"] > 0
    assert result.p50_ms == result.max_ms == 0.0
    assert result.requests_per_s == 0.0


def test_generator_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert available_generator("python") == "python"
    with pytest.raises(ValueError, match="unknown generator"):
        available_generator("ab")
    with pytest.raises(ValueError, match="unknown generator"):
        run_load("http://127.0.0.1:1/", BODY, concurrency=1, duration_s=1, generator="ab")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no wrk on PATH
    assert available_generator() == "python"
    assert available_generator("wrk") == "python"
    with pytest.raises(RuntimeError, match="not on PATH"):
        run_load("http://127.0.0.1:1/", BODY, concurrency=1, duration_s=1, generator="wrk")
