"""Strict JSON request bodies: only JSON is accepted, and every way it can be malformed gets a clear 4xx.

FastAPI on its own answers a text/plain or form body with "Input should be a valid dictionary",
lets a repeated key silently win ({"store": 1, "store": 2} is store 2), and turns very deep nesting
into a bare 400 "There was an error parsing the body". Routes built with `JsonBodyRoute` instead
answer 415 naming the media type, and 422 naming the duplicate key, the nesting, the encoding or
the position of a syntax error.
"""

from __future__ import annotations

import email.message
import functools
import json
import re
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from app.errors import capped, problems, shown

JSON_MEDIA_TYPE = "application/json"
# Larger bodies are parsed and validated on a pool thread, so the event loop keeps answering probes and
# small forecasts: a valid 10,000-series batch takes ~20 ms, an invalid one longer. Up to this size
# (about 2,500 series) it costs at most a few ms, less than the hand-off would add to every batch.
OFF_LOOP_BYTES = 256 * 1024


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


# No request body here has objects with more fields than this: refusing larger ones while parsing keeps an
# object of a million unknown keys from becoming a million validation errors.
MAX_OBJECT_KEYS = 16


class TooManyKeys(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_OBJECT_KEYS:
        raise TooManyKeys(len(pairs))
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def _unprocessable(message: str, kind: str, **context: Any) -> HTTPException:
    detail = problems(("body",), message, kind)
    if context:
        detail[0]["ctx"] = context
    return HTTPException(422, detail)


def decode(body: bytes) -> Any:
    """Parse a JSON body, or raise a 422 HTTPException naming what is wrong with it."""
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except TooManyKeys as exc:
        raise _unprocessable(
            f"a JSON object with {exc.args[0]} keys: no object in this body has more than {MAX_OBJECT_KEYS} fields",
            "json_too_many_keys",
        ) from None
    except DuplicateKey as exc:
        raise _unprocessable(
            f"duplicate key {shown(exc.key)!r} in a JSON object: each field may appear only once",
            "json_duplicate_key",
        ) from None
    except json.JSONDecodeError as exc:
        raise _unprocessable(
            f"invalid JSON at line {exc.lineno} column {exc.colno} (character {exc.pos}): {exc.msg}",
            "json_invalid",
            error=exc.msg,
            position=exc.pos,
        ) from None
    except UnicodeDecodeError as exc:
        raise _unprocessable(f"the body is not UTF-8 text: byte {exc.start} is invalid", "json_invalid") from None
    except ValueError as exc:  # after JSONDecodeError, its subclass: e.g. an integer over Python's 4,300 digits
        raise _unprocessable(f"invalid JSON: {shown(str(exc))}", "json_invalid") from None
    except RecursionError:
        raise _unprocessable(
            "JSON nested too deeply to parse (a forecast request is at most 4 levels deep)", "json_too_deep"
        ) from None


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (application/json, or any application/*+json)."""
    declared = request.headers.get("content-type")
    if declared:
        header = email.message.Message()
        header["content-type"] = declared
        subtype = header.get_content_subtype()
        if header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
            return
    raise HTTPException(
        415,
        f"the request body must be JSON: send Content-Type: {JSON_MEDIA_TYPE}, not {shown(declared)!r}"
        if declared
        else f"the request body must be JSON: send Content-Type: {JSON_MEDIA_TYPE} (none was given)",
    )


_KEY = re.compile(rb'"[A-Za-z_][A-Za-z0-9_]*"\s*:')


@functools.cache
def _nested_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Fields of `model` that hold a model or a list of models: the only places keys can nest."""

    def holds_models(annotation: Any) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return True
        return typing.get_origin(annotation) is list and holds_models(typing.get_args(annotation)[0])

    return tuple(name for name, field in model.model_fields.items() if holds_models(field.annotation))


def _keys_set(value: Any) -> int:
    """Object keys the client sent, counted from the validated models (lists of models included)."""
    if isinstance(value, list):
        return sum(map(_keys_set, value))
    sent = value.model_fields_set
    nested = _nested_fields(type(value))
    if not nested:  # a series: no generator to build, 1,000 of them in a batch
        return len(sent)
    return len(sent) + sum(_keys_set(getattr(value, name)) for name in nested if name in sent)


def validate_fast(body: bytes, adapter: TypeAdapter) -> BaseModel | None:
    """The body parsed and validated in one pass by pydantic's Rust JSON parser, or None to take the slow path.

    `decode` then pydantic's `validate_python` took 8.7 ms for a 1,000-series batch; this takes 2.7. But
    that parser lets a repeated key win silently. In a body that validated, every string is a key or a
    YYYY-MM-DD date (unknown keys are refused), and with no backslash no string can hide a quote, so
    counting `"name":` in the bytes counts the keys sent; if that exceeds the keys the models hold, a key
    was repeated. Any doubt (an escape, an invalid body, a mismatch) returns None, and the slow path
    answers exactly as it always has.
    """
    if b"\\" in body:
        return None
    keys = len(_KEY.findall(body))
    if keys > MAX_OBJECT_KEYS * body.count(b"{"):  # an object too big to be valid: `decode` says which
        return None
    try:
        value = adapter.validate_json(body)
    except ValidationError:
        return None
    return value if keys == _keys_set(value) else None


AdapterFor = Callable[[bytes], TypeAdapter]
"""The adapter to try on a body, chosen from its bytes (a union's callable discriminator needs the parsed object)."""


class StrictJsonRequest(Request):
    fast_adapter: AdapterFor | None = None
    full_adapter: TypeAdapter | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await run_in_threadpool(self._parse, body) if len(body) > OFF_LOOP_BYTES else self._parse(body)
        return self._json

    def _parse(self, body: bytes) -> Any:
        fast = validate_fast(body, self.fast_adapter(body)) if self.fast_adapter is not None else None
        if fast is not None:
            return fast  # a validated model passes FastAPI's own validation untouched (pydantic does not revalidate)
        value = decode(body)
        if self.full_adapter is None:
            return value  # FastAPI validates it, on the event loop
        try:
            return self.full_adapter.validate_python(value)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            located = [{**e, "loc": ("body", *e["loc"])} for e in errors]
            raise HTTPException(422, capped(located)) from None


class JsonBodyRoute(APIRoute):
    """An APIRoute whose body must be declared JSON and is parsed by `decode`.

    A subclass may set `fast_adapter` to a function of the body's bytes giving the adapter of its type: valid
    bodies are then parsed and validated in one pass (`validate_fast`), and everything else (a wrong guess
    included) still goes through `decode`.
    """

    fast_adapter: AdapterFor | None = None
    full_adapter: TypeAdapter | None = None  # the body's declared type: then the slow path validates it too

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        adapter, full = self.fast_adapter, self.full_adapter

        async def strict_handler(request: Request) -> Response:
            require_json(request)
            strict = StrictJsonRequest(request.scope, request.receive)
            strict.fast_adapter, strict.full_adapter = adapter, full
            return await handler(strict)

        return strict_handler
