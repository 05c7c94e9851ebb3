from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.dependencies import get_forecaster, get_registry
from app.forecasting import Forecaster
from app.registry import Registry
from app.schemas import ForecastRequest, ForecastResponse

router = APIRouter(tags=["forecast"])


@router.post("/forecast", response_model=ForecastResponse)
def forecast(
    body: ForecastRequest,
    forecaster: Annotated[Forecaster, Depends(get_forecaster)],
    registry: Annotated[Registry, Depends(get_registry)],
) -> ForecastResponse:
    """Next-day unit sales for one store-item from its recent daily history (oldest first)."""
    return ForecastResponse(
        store=body.store,
        item=body.item,
        forecast=round(forecaster.predict_one(body.history), 3),
        variant=registry.active.name,
    )
