"""py-spy's raw stacks summed into the report's profile tables."""

from __future__ import annotations

import pytest

from bench.profile import OTHER, layer, summarize

LOOP = "run (uvicorn/main.py:580);Runner.run (asyncio/runners.py:118)"
ENDPOINT = f"{LOOP};forecast (app/routers/forecast.py:75);_compute (app/routers/forecast.py:85)"
RAW = "\n".join(
    [
        f"{ENDPOINT};Forecaster.predict (app/forecasting.py:70);Session.run (onnxruntime/capi/session.py:406) 6",
        f"{LOOP};strict_handler (app/jsonbody.py:170);TypeAdapter.validate_json (pydantic/type_adapter.py:466) 3",
        f"{ENDPOINT};_answer (app/routers/forecast.py:98) 1",
        f"{LOOP} 30",  # uvloop polling: a wait, not work
        "_bootstrap (threading.py:1002);WorkerThread.run (anyio/_backends/_asyncio.py:900);"
        "Condition.wait (threading.py:327) 50",
        "garbage line without a count",
    ]
)


def test_waits_are_counted_apart_and_shares_are_of_busy_samples() -> None:
    profile = summarize("lstm16, single", RAW)
    assert (profile.samples, profile.waiting) == (10, 80)
    assert profile.layers == {
        "onnxruntime (the model)": 0.6,
        "pydantic (parse and validate the body)": 0.3,
        "shelfcast forecasting (arrays, answer JSON)": 0.1,
    }
    assert profile.own[0] == ("Session.run (session.py)", 0.6)
    assert dict(profile.inclusive) == {
        "forecast (forecast.py)": 0.7,
        "_compute (forecast.py)": 0.7,
        "Forecaster.predict (forecasting.py)": 0.6,
        "strict_handler (jsonbody.py)": 0.3,
        "_answer (forecast.py)": 0.1,
    }  # only shelfcast's own functions: the loop and framework frames above them would top every list


def test_an_empty_recording_gives_an_empty_profile() -> None:
    profile = summarize("nothing", "")
    assert (profile.samples, profile.layers, profile.own, profile.inclusive) == (0, {}, [], [])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/venv/lib/python3.11/site-packages/uvicorn/protocols/http/httptools_impl.py", "uvicorn (HTTP protocol)"),
        ("site-packages/starlette/routing.py", "FastAPI and Starlette (routing, middleware, dependencies)"),
        ("/work/main/app/observability.py", "metrics and access log"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/selectors.py", "event loop and thread hand-off"),
        ("/usr/lib/python3.11/json/decoder.py", OTHER),
    ],
)  # fmt: skip
def test_layers_follow_the_file_a_frame_is_in(path: str, expected: str) -> None:
    assert layer(path) == expected
