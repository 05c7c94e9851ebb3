"""422 bodies that name the field and the rule, and never echo the input back.

FastAPI's default 422 copies the offending input into the response: a NaN or 1e400 then breaks
JSON encoding (a 500), and a 10 MB bad field comes back as a 10 MB error.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

BODY_SHAPE_TAGS = {"single", "batch"}  # pydantic's union tags for the two /forecast body shapes


def _location(loc: tuple) -> list:
    """("body", "single", "history", 0) -> ["body", "history", 0]: the tag is ours, not the client's field."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "body" and parts[1] in BODY_SHAPE_TAGS:
        del parts[1]
    return parts


def _problem(error: dict) -> dict:
    problem = {
        "loc": _location(error.get("loc", ())),
        "msg": str(error.get("msg", "invalid")),
        "type": error.get("type", ""),
    }
    context = error.get("ctx")
    if context:
        problem["ctx"] = {k: v for k, v in context.items() if isinstance(v, int | str) and not isinstance(v, bool)}
    return problem


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [_problem(e) for e in exc.errors()]})


def invalid(location: tuple, message: str, kind: str) -> RequestValidationError:
    """A 422 raised from a handler, shaped like pydantic's (for limits only known at run time)."""
    return RequestValidationError([{"loc": location, "msg": message, "type": kind}])


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
