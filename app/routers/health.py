from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.dependencies import get_registry
from app.registry import Registry
from app.schemas import ReadyStatus

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up and answering; checks nothing else (restart me only if this fails)."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=ReadyStatus,
    responses={503: {"model": ReadyStatus, "description": "not ready yet: send no traffic"}},
)
async def readyz(request: Request, registry: Annotated[Registry, Depends(get_registry)]) -> JSONResponse:
    """The active model is loaded and has answered a warm-up forecast: send me traffic."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "variant": registry.active_name})


@router.get("/healthz")
async def healthz(registry: Annotated[Registry, Depends(get_registry)]) -> dict[str, str]:
    """Kept for existing checks: the model is loaded and answered a warm-up forecast at startup."""
    return {"status": "ok", "variant": registry.active_name}
