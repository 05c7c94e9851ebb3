from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from app.dependencies import get_registry
from app.errors import documented, shown
from app.registry import Registry
from app.schemas import ModelsResponse, VariantSummary

router = APIRouter(tags=["models"])


def _summary(registry: Registry, name: str) -> VariantSummary:
    return VariantSummary(
        **{
            **registry.variants[name].metadata,
            "variant": name,
            "active": name == registry.active_name,
            "available": name in registry.loaded,
            "unavailable_reason": registry.unavailable.get(name),
        }
    )


@router.get("/models", response_model=ModelsResponse)
async def list_models(registry: Annotated[Registry, Depends(get_registry)]) -> ModelsResponse:
    """Every variant in the models folder with its metadata as training recorded it, and which one is active."""
    return ModelsResponse(
        active=registry.active_name, variants=[_summary(registry, n) for n in sorted(registry.variants)]
    )


@router.get("/models/{name}", response_model=VariantSummary, responses=documented(404, "no variant of that name"))
async def get_model(name: str, registry: Annotated[Registry, Depends(get_registry)]) -> VariantSummary:
    """One variant's full metadata: technique, parameters, the three sizes, metrics of every run, sha256."""
    if name not in registry.variants:
        raise HTTPException(404, f"no variant {shown(name)!r}; valid names: {', '.join(sorted(registry.variants))}")
    return _summary(registry, name)
