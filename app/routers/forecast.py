from __future__ import annotations

import datetime as dt
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body, Depends

from app.dependencies import get_registry, get_settings, get_telemetry
from app.errors import documented, invalid
from app.jsonbody import JsonBodyRoute
from app.observability import Telemetry
from app.registry import Registry
from app.schemas import (
    FORECAST_EXAMPLES,
    BatchForecastResponse,
    BatchRequest,
    ForecastRequest,
    SeriesForecast,
    SeriesRequest,
    SingleForecastResponse,
)
from app.settings import Settings

router = APIRouter(tags=["forecast"], route_class=JsonBodyRoute)


def _dates(last: dt.date | None, horizon: int) -> list[dt.date] | None:
    return None if last is None else [last + dt.timedelta(days=day) for day in range(1, horizon + 1)]


@router.post(
    "/forecast",
    response_model=SingleForecastResponse | BatchForecastResponse,
    responses={
        **documented(413, "the body is larger than MAX_BODY_BYTES; it was not read"),
        **documented(415, "the body is not declared as JSON (Content-Type: application/json)"),
    },
)
def forecast(
    body: Annotated[ForecastRequest, Body(openapi_examples=FORECAST_EXAMPLES)],
    registry: Annotated[Registry, Depends(get_registry)],
    settings: Annotated[Settings, Depends(get_settings)],
    telemetry: Annotated[Telemetry, Depends(get_telemetry)],
) -> SingleForecastResponse | BatchForecastResponse:
    """Unit sales for the next day, or the next `horizon` days, per store-item series.

    Send one series at the top level, or `{"series": [...]}` for up to MAX_BATCH_SERIES series answered
    with one model call per horizon day.
    """
    series: list[SeriesRequest] = body.series if isinstance(body, BatchRequest) else [body]
    if len(series) > settings.max_batch_series:
        raise invalid(("body", "series"), f"at most {settings.max_batch_series} series per request", "too_long")
    active = registry.active
    forecaster = active.forecaster
    horizon = max(s.horizon for s in series)
    forecasts = forecaster.forecast(forecaster.windows([s.history for s in series]), horizon)
    values = forecasts.astype(np.float64).round(3).tolist()  # float32 -> 3 decimals that print as such
    results = [
        SeriesForecast(
            store=s.store,
            item=s.item,
            forecast=row[0],
            forecasts=row[: s.horizon],
            dates=_dates(s.last_date, s.horizon),
        )
        for s, row in zip(series, values, strict=True)
    ]
    telemetry.forecasts.labels(active.variant.name).inc(len(series))
    identity = {"variant": active.variant.name, "sha256": active.variant.metadata["sha256"]}
    if isinstance(body, BatchRequest):
        return BatchForecastResponse(forecasts=results, **identity)
    return SingleForecastResponse(**results[0].model_dump(), **identity)
