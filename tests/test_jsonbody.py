"""The fast body path: one-pass parse and validation for valid bodies, and a fallback for anything doubtful."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from app.jsonbody import decode, validate_fast
from app.routers.forecast import body_adapter
from app.schemas import BatchRequest, ForecastRequest, SeriesRequest

ADAPTER = TypeAdapter(ForecastRequest)
HISTORY = [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]
ONE = {"store": 1, "item": 1, "history": HISTORY}
DATED = {"store": 2, "item": 7, "history": [*HISTORY, 8.5], "horizon": 3, "last_date": "2013-01-15"}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(ONE).encode(),
        json.dumps(DATED, indent=2).encode(),
        json.dumps({"series": [ONE, DATED]}, separators=(",", ":")).encode(),
        b'{ "store" : 1 ,\n "item":1, "history" :[13,11,14,13,10,12,10,9,12,9,9,7,10,12.0] }',
    ],
)
def test_valid_bodies_give_what_the_slow_path_gives(body: bytes) -> None:
    fast = validate_fast(body, body_adapter(body))
    assert isinstance(fast, BatchRequest if b'"series"' in body else SeriesRequest)
    assert fast == ADAPTER.validate_python(decode(body))
    assert ADAPTER.validate_python(fast) is fast  # FastAPI's own validation passes it through untouched


@pytest.mark.parametrize(
    "body",
    [
        b'{"store": 1, "store": 2, "item": 1, "history": %s}' % json.dumps(HISTORY).encode(),
        b'{"series": [{"store": 1, "item": 1, "item": 5, "history": %s}]}' % json.dumps(HISTORY).encode(),
        b'{"series": [], "series": [%s]}' % json.dumps(ONE).encode(),
        b'{"store": 1, "item": 1, "history": %s, "horizon": 2, "horizon": 1}' % json.dumps(HISTORY).encode(),
        b'{"st\\u006fre": 1, "store": 2, "item": 1, "history": %s}' % json.dumps(HISTORY).encode(),  # an escape
        b'{"store": 1, "item": 1, "history": [1, 2]}',  # invalid
        b'{"store": 1, "item": 1, "history": %s, "extra": 1}' % json.dumps(HISTORY).encode(),
        b"[1, 2, 3]",
        b"\xff\xfe",
        b'{"store": 1, "item": 1, "history": %s, "series": []}' % json.dumps(HISTORY).encode(),  # guessed batch
    ],
)
def test_anything_doubtful_takes_the_slow_path(body: bytes) -> None:
    assert validate_fast(body, body_adapter(body)) is None
