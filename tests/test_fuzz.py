"""Schema-driven fuzzing: schemathesis reads the running service's own /openapi.json and attacks every operation.

Every built-in check runs on every answer: no 5xx, every status code, content type, header and body
declared in the document, schema-valid requests accepted and schema-invalid ones rejected. Bounded and
repeatable: a fixed seed, deterministic generation, and at most MAX_EXAMPLES fuzzed cases per operation
(plus schemathesis' own examples and boundary-value "coverage" cases).

GET /benchmark is fuzzed too, with its work kept small: generated iterations and batch sizes inside the
documented range are scaled down to a few calls, which keeps each case valid or invalid exactly as
generated. /metrics is not in the document (Prometheus text, not part of the API), so it is only
checked to still answer after the fuzzing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.routing import APIRoute

from app.main import create_app
from tests.conftest import HISTORY, service_process

MAX_EXAMPLES = 60
SEED = 20_261_203
BENCHMARK_CAPS = {"iterations": (10, 2000, 20), "batch_size": (1, 10_000, 64)}  # documented low, high, fuzz cap


CONFIG = schemathesis.Config.from_dict(
    {"seed": SEED, "generation": {"deterministic": True, "database": "none", "max-examples": MAX_EXAMPLES}}
)
# The document as the service generates it with the default settings; the first test below checks that the
# running process serves exactly this one. (Loaded at import because schemathesis parametrizes at collection;
# its fixture-based loader does not work with pytest 9.2.)
APP = create_app()
DOCUMENT = APP.openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, list[str]]]:
    with service_process({}) as (client, output):  # its log is read as it comes: fuzzing sends thousands
        yield client, output


@pytest.fixture(scope="module")
def fuzzed_service(served: tuple[httpx.Client, list[str]]) -> httpx.Client:
    return served[0]


def test_the_running_service_serves_the_fuzzed_document(fuzzed_service: httpx.Client) -> None:
    assert fuzzed_service.get("/openapi.json").json() == DOCUMENT


def _bounded(case: schemathesis.Case) -> None:
    """Keep benchmark work small without changing whether a case is valid.

    An absent iterations or batch_size would mean the defaults (200 calls, batches of 1000, per variant):
    it gets the small cap instead. A generated value inside the documented range is scaled down to the cap;
    anything else (out of range, not a number) is left as generated, so it still has to be rejected.
    """
    if case.path != "/benchmark":
        return
    query = dict(case.query or {})
    for name, (low, high, cap) in BENCHMARK_CAPS.items():
        value = query.get(name)
        if value is None:
            query[name] = cap
        elif isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            query[name] = min(value, cap)
    case.query = query


@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None)
def test_every_operation_conforms_to_its_own_schema(case: schemathesis.Case, fuzzed_service: httpx.Client) -> None:
    _bounded(case)
    case.call_and_validate(base_url=str(fuzzed_service.base_url), timeout=60)


def test_the_document_covers_every_api_route_but_metrics() -> None:
    """So the fuzzing above reaches every endpoint: a route left out of the document would go untested."""

    def api_paths(routes: list) -> set[str]:  # FastAPI >= 0.16x keeps included routers nested
        found = set()
        for route in routes:
            if isinstance(route, APIRoute):
                found.add(route.path)
            elif hasattr(route, "original_router"):
                found |= api_paths(route.original_router.routes)
        return found

    assert set(DOCUMENT["paths"]) == api_paths(APP.routes) - {"/metrics"}
    assert {"/forecast", "/benchmark", "/models/{name}"} <= set(DOCUMENT["paths"])


# --- hostile requests written by hand: each gets a 4xx that names the problem, never a 500 -----------------

JSON = {"content-type": "application/json"}
GOOD = b'{"store": 1, "item": 1, "history": [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]}'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", GOOD),
        ("application/x-www-form-urlencoded", b"store=1&item=1&history=13"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=store\r\n\r\n1\r\n--x--\r\n"),
        ("application/xml", b"<forecast/>"),
    ],
)
def test_a_body_that_is_not_json_is_a_415_saying_json_is_required(
    fuzzed_service: httpx.Client, content_type: str, body: bytes
) -> None:
    response = fuzzed_service.post("/forecast", content=body, headers={"content-type": content_type})
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "must be JSON" in detail and "application/json" in detail and content_type.split(";")[0] in detail


def test_a_body_without_a_content_type_is_a_415_too(fuzzed_service: httpx.Client) -> None:
    response = fuzzed_service.post("/forecast", content=GOOD)  # httpx adds no Content-Type to raw bytes
    assert response.status_code == 415 and "none was given" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_media_types_with_parameters_or_suffixes_are_accepted(fuzzed_service: httpx.Client, content_type) -> None:
    assert fuzzed_service.post("/forecast", content=GOOD, headers={"content-type": content_type}).status_code == 200


def problem_of(response: httpx.Response) -> dict:
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    return problem


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (GOOD[:40], "json_invalid", "invalid JSON at line 1 column 41 (character 40)"),
        (b'{"store": 1 "item": 1}', "json_invalid", "Expecting ',' delimiter"),
        (b'{"store": 1, "item": 1, "history": [1, 2,]}', "json_invalid", "Expecting value"),
        (b'{"store": "\xff\xfe"}', "json_invalid", "not UTF-8"),
        (b"[" * 100_000, "json_too_deep", "nested too deeply"),
        (b'{"a":' * 100_000, "json_too_deep", "nested too deeply"),
        (GOOD.replace(b'{"store": 1,', b'{"store": 1, "store": 2,'), "json_duplicate_key", "duplicate key 'store'"),
        (
            b'{"series": [{"store": 1, "item": 1, "item": 2, "history": []}]}',
            "json_duplicate_key",
            "duplicate key 'item'",
        ),
        (b"", "missing", "a JSON request body is required"),
    ],
    ids=[
        "truncated",
        "missing comma",
        "trailing comma",
        "not utf-8",
        "100k [",
        "100k {",
        "duplicate",
        "nested dup",
        "empty",
    ],
)
def test_malformed_json_is_a_422_naming_the_problem(fuzzed_service: httpx.Client, body: bytes, kind, words) -> None:
    problem = problem_of(fuzzed_service.post("/forecast", content=body, headers=JSON))
    assert problem["loc"] == ["body"] and problem["type"] == kind and words in problem["msg"], problem


@pytest.mark.parametrize("field", ["history", "store"])
def test_a_number_too_long_for_python_is_a_422_not_a_400(fuzzed_service: httpx.Client, field: str) -> None:
    huge = "1" + "0" * 4300  # Python refuses to parse integers over 4,300 digits
    values = {"store": "1", "item": "1", "history": "[" + ", ".join(map(str, HISTORY)) + "]"}
    values[field] = huge if field == "store" else "[" + huge + ", " + ", ".join(map(str, HISTORY[1:])) + "]"
    body = "{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"
    response = fuzzed_service.post("/forecast", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_a_duplicate_key_is_refused_not_silently_last_wins(fuzzed_service: httpx.Client) -> None:
    body = GOOD.replace(b'{"store": 1,', b'{"store": 1, "store": 2,')
    problem = problem_of(fuzzed_service.post("/forecast", content=body, headers=JSON))
    assert problem["msg"].startswith("duplicate key 'store' in a JSON object")


@pytest.mark.parametrize(
    ("key", "shown"),
    [("k" * 100_000, "k" * 40 + "…"), ("\ud800", "\\ud800")],
    ids=["100k-character name", "lone surrogate"],
)
def test_an_unknown_field_name_is_echoed_short_and_encodable(fuzzed_service: httpx.Client, key: str, shown) -> None:
    body = json.dumps({"store": 1, "item": 1, "history": HISTORY, key: 1})  # ensure_ascii: \ud800 stays escaped
    response = fuzzed_service.post("/forecast", content=body, headers=JSON)
    assert response.status_code == 422 and len(response.content) < 1000
    assert response.json()["detail"][-1]["loc"] in (["body", shown], ["body"])


@pytest.mark.parametrize(
    ("extra", "field", "kind"),
    [
        ({"last_date": "9999-12-31"}, "last_date", "date_out_of_range"),  # was a 500: the dates overflowed
        ({"last_date": "9999-12-20", "horizon": 28}, "last_date", "date_out_of_range"),
        ({"last_date": 0}, "last_date", "date_type"),  # was accepted as 1970-01-01
        ({"last_date": "1358121600"}, "last_date", "date_type"),  # was accepted as a Unix time
        ({"last_date": "2013-01-14T00:00:00"}, "last_date", "date_type"),
        ({"store": True}, "store", "int_type"),
        ({"store": 1.5}, "store", "int_type"),
    ],
)
def test_values_outside_the_documented_schema_are_a_422(fuzzed_service: httpx.Client, extra, field, kind) -> None:
    body = {"store": 1, "item": 1, "history": HISTORY, **extra}
    problem = problem_of(fuzzed_service.post("/forecast", json=body))
    assert problem["loc"] == ["body", field] and problem["type"] == kind, problem


def test_the_last_representable_dates_still_work(fuzzed_service: httpx.Client) -> None:
    body = {"store": 1, "item": 1, "history": HISTORY, "last_date": "9999-12-03", "horizon": 28}
    answer = fuzzed_service.post("/forecast", json=body)
    assert answer.status_code == 200 and answer.json()["dates"][-1] == "9999-12-31"


def test_whole_numbers_written_as_floats_are_integers_as_json_schema_says(fuzzed_service: httpx.Client) -> None:
    body = {"store": 7.0, "item": 3.0, "history": HISTORY, "horizon": 2.0}
    answer = fuzzed_service.post("/forecast", json=body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["store"], answer.json()["item"], len(answer.json()["forecasts"])) == (7, 3, 2)


def test_long_names_in_the_url_are_not_echoed_whole(fuzzed_service: httpx.Client) -> None:
    missing = fuzzed_service.get("/models/" + "x" * 5000)
    assert missing.status_code == 404 and len(missing.content) < 1000 and "x" * 40 + "…" in missing.text
    unknown = fuzzed_service.get("/benchmark", params={"variants": ",".join(["y" * 2000] * 5), "iterations": 10})
    assert unknown.status_code == 422 and len(unknown.content) < 1000 and "and 2 more" in unknown.text


def test_a_variant_named_twice_is_benchmarked_once(fuzzed_service: httpx.Client) -> None:
    answer = fuzzed_service.get("/benchmark", params={"variants": "lstm64, lstm64", "iterations": 10, "batch_size": 2})
    assert answer.status_code == 200 and [r["variant"] for r in answer.json()["results"]] == ["lstm64"]


def test_no_5xx_and_the_service_still_answers_after_everything_above(served: tuple[httpx.Client, list[str]]) -> None:
    client, output = served
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY}).status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and 'status="5' not in metrics.text
    assert not any("Traceback" in line for line in output)
