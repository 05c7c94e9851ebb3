from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.dependencies import get_registry
from app.registry import Registry
from app.schemas import ModelsResponse, VariantSummary

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsResponse)
def list_models(registry: Annotated[Registry, Depends(get_registry)]) -> ModelsResponse:
    """Every variant in the models folder with its sizes and accuracy, as training recorded them."""
    return ModelsResponse(
        active=registry.active.name,
        variants=[
            VariantSummary(**{**v.metadata, "variant": name, "active": name == registry.active.name})
            for name, v in sorted(registry.variants.items())
        ],
    )
