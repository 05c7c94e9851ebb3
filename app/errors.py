"""422 bodies that name the field and the rule, and never echo the input back.

FastAPI's default 422 copies the offending input into the response: a NaN or 1e400 then breaks
JSON encoding (a 500), and a 10 MB bad field comes back as a 10 MB error. Where a client's own
text does appear (an unknown field's name, an unknown variant), it is cut short first: `shown`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.schemas import ErrorMessage

BODY_SHAPE_TAGS = {"single", "batch"}  # pydantic's union tags for the two /forecast body shapes
MAX_ECHO_CHARS = 40
MAX_MESSAGE_CHARS = 1000
# A 10,000-series batch with bad fields in every series once answered with 1.2 million problems (125 MB,
# 16 s on the event loop): the first ones name the mistake, and the count says how widespread it is.
MAX_PROBLEMS = 50


def _encodable(text: str) -> str:
    """JSON lets a client send lone surrogates ("\\ud800"), which no UTF-8 encoder accepts back."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shown(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """A client's string as it may appear in an answer: bounded, and always encodable."""
    text = _encodable(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _location(loc: tuple) -> list:
    """("body", "single", "history", 0) -> ["body", "history", 0]: the tag is ours, not the client's field."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "body" and parts[1] in BODY_SHAPE_TAGS:
        del parts[1]
    return [shown(p) if isinstance(p, str) else p for p in parts]


def _problem(error: dict) -> dict:
    loc = _location(error.get("loc", ()))
    if loc == ["body"] and error.get("type") == "missing":
        message = "a JSON request body is required"
    else:
        message = shown(str(error.get("msg", "invalid")), MAX_MESSAGE_CHARS)
    problem: dict[str, Any] = {"loc": loc, "msg": message, "type": error.get("type", "")}
    context = {
        k: shown(v) if isinstance(v, str) else v
        for k, v in (error.get("ctx") or {}).items()
        if isinstance(v, int | str) and not isinstance(v, bool)
    }
    if context:
        problem["ctx"] = context
    return problem


def capped(errors: list[dict]) -> list[dict]:
    """The first MAX_PROBLEMS errors as problems, then one saying how many more there were."""
    shown_problems = [_problem(e) for e in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        more = len(errors) - MAX_PROBLEMS
        shown_problems.append(
            {
                "loc": shown_problems[0]["loc"][:1],  # where they are: the body, the query
                "msg": f"and {more} more problems like these, not listed",
                "type": "too_many_errors",
            }
        )
    return shown_problems


def problems(location: tuple, message: str, kind: str) -> list[dict]:
    """A 422 `detail` raised as an HTTPException, where a RequestValidationError would become a 400."""
    return [_problem({"loc": location, "msg": message, "type": kind})]


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": capped(list(exc.errors()))})


def invalid(location: tuple, message: str, kind: str) -> RequestValidationError:
    """A 422 raised from a handler, shaped like pydantic's (for limits only known at run time)."""
    return RequestValidationError([{"loc": location, "msg": message, "type": kind}])


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)


def documented(status: int, description: str, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI `responses=` entry for an error answered as {"detail": "..."}."""
    return {status: {"model": ErrorMessage, "description": description, **extra}}
