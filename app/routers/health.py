from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.dependencies import get_registry
from app.registry import Registry

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(registry: Annotated[Registry, Depends(get_registry)]) -> dict[str, str]:
    """The model is loaded and answered a warm-up forecast at startup."""
    return {"status": "ok", "variant": registry.active.name}
