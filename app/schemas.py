"""Request and response bodies; validation here turns bad input into a 422 naming the field and rule."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_DAILY_SALES = 1_000_000.0
MAX_HISTORY_DAYS = 366
MAX_HORIZON_DAYS = 28
MAX_SERIES_PER_BODY = 100_000  # the highest MAX_BATCH_SERIES can be set to; the setting itself is checked later
WINDOW = 14
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EXAMPLE_HISTORY = [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]  # store 1 item 1, 2013-01-01..14


def _integral(value: object) -> object:
    """JSON Schema counts 7.0 as an integer, so the service does too; "7", true and 7.5 stay errors."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE = BeforeValidator(_integral)  # after the constraints, so the JSON schema still shows them
DailySales = Annotated[float, Field(strict=True, ge=0, le=MAX_DAILY_SALES, allow_inf_nan=False)]
Identifier = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000), WHOLE]


class SeriesRequest(BaseModel):
    """One store-item series."""

    model_config = ConfigDict(extra="forbid")

    store: Identifier
    item: Identifier
    history: Annotated[
        list[DailySales],
        Field(
            min_length=WINDOW,
            max_length=MAX_HISTORY_DAYS,
            fail_fast=True,  # the first bad day is reported, not every one: 366 errors per series add up
            description=f"daily unit sales, oldest first; {WINDOW} to {MAX_HISTORY_DAYS} days, the last {WINDOW} used",
        ),
    ]
    horizon: Annotated[
        int,
        Field(
            strict=True,
            ge=1,
            le=MAX_HORIZON_DAYS,
            description="days to forecast; days after the first are recursive (each forecast feeds the next "
            "window), so their error grows with the horizon",
        ),
        WHOLE,
    ] = 1
    last_date: dt.date | None = Field(
        None, description="date of the last history value; dates the forecasts (the last one by 9999-12-31)"
    )

    @field_validator("last_date", mode="before")
    @classmethod
    def _date_text(cls, value: object) -> object:
        """Only YYYY-MM-DD, as documented: pydantic alone also takes 0 or "1358121600" (Unix time) as a date."""
        if value is not None and not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
            raise PydanticCustomError("date_type", "must be a date written YYYY-MM-DD, e.g. 2013-01-14")
        return value

    @field_validator("last_date")
    @classmethod
    def _dates_exist(cls, last: dt.date | None, info: ValidationInfo) -> dt.date | None:
        horizon = info.data.get("horizon")  # absent when the horizon itself was invalid
        if last is not None and isinstance(horizon, int) and (dt.date.max - last).days < horizon:
            raise PydanticCustomError(
                "date_out_of_range",
                "the {horizon}-day forecast would run past {last_day}, the last date there is",
                {"horizon": horizon, "last_day": dt.date.max.isoformat()},
            )
        return last


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Validation stops at the first bad series and at the ceiling: a 3 MB body of a million `{}` once took
    # 30 s and 4 GB to build its 3 million errors before any were discarded.
    series: list[SeriesRequest] = Field(
        min_length=1,
        max_length=MAX_SERIES_PER_BODY,
        fail_fast=True,
        description="the series to forecast, all in one model call (at most MAX_BATCH_SERIES, 10,000 by default)",
    )


def _shape(body: Any) -> str:
    if isinstance(body, BatchRequest):  # already validated by the route's fast path
        return "batch"
    return "batch" if isinstance(body, dict) and "series" in body else "single"


ForecastRequest = Annotated[
    Annotated[SeriesRequest, Tag("single")] | Annotated[BatchRequest, Tag("batch")],
    Discriminator(_shape),
]
"""A single series at the top level, or {"series": [...]} for a batch."""


FORECAST_EXAMPLES = {
    "single": {
        "summary": "one series, next day",
        "value": {"store": 1, "item": 1, "history": EXAMPLE_HISTORY},
    },
    "horizon": {
        "summary": "one series, 7 days with dates",
        "value": {"store": 1, "item": 1, "history": EXAMPLE_HISTORY, "horizon": 7, "last_date": "2013-01-14"},
    },
    "batch": {
        "summary": "a batch of series in one call",
        "value": {
            "series": [
                {"store": 1, "item": 1, "history": EXAMPLE_HISTORY},
                {"store": 12, "item": 61, "history": [150, 160, 165, 170, 180, 190, 175] * 2, "horizon": 3},
            ]
        },
    },
}


class SeriesForecast(BaseModel):
    store: int
    item: int
    forecast: float = Field(description="next-day unit sales (the first of `forecasts`)")
    forecasts: list[float] = Field(description="unit sales for each horizon day")
    dates: list[dt.date] | None = Field(None, description="the day of each forecast, when last_date was given")


class SingleForecastResponse(SeriesForecast):
    variant: str
    sha256: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "store": 1,
                    "item": 1,
                    "forecast": 10.815,
                    "forecasts": [10.815],
                    "dates": None,
                    "variant": "lstm64",
                    "sha256": "…",
                }
            ]
        }
    )


class BatchForecastResponse(BaseModel):
    variant: str
    sha256: str
    forecasts: list[SeriesForecast]


class VariantSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    variant: str
    active: bool
    available: bool
    unavailable_reason: str | None = None
    technique: str | None = None
    parameters: int | None = None
    size: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    sha256: str | None = None


class ModelsResponse(BaseModel):
    active: str
    variants: list[VariantSummary]


class LatencyStats(BaseModel):
    batch_size: int
    iterations: int
    p50_us: float
    p95_us: float
    p99_us: float
    forecasts_per_second: float


class VariantBenchmark(BaseModel):
    variant: str
    technique: str | None
    size: dict[str, Any]
    mape: dict[str, Any] | None
    single: LatencyStats
    batch: LatencyStats


class BenchmarkResponse(BaseModel):
    iterations: int
    batch_size: int
    threads: dict[str, int]
    results: list[VariantBenchmark]
    note: Literal["measured now, in this process, on this machine; compare ratios, not absolute numbers"] = (
        "measured now, in this process, on this machine; compare ratios, not absolute numbers"
    )


class ErrorMessage(BaseModel):
    """Every error but a 422: what went wrong and what to do, in one sentence."""

    detail: str


class ReadyStatus(BaseModel):
    status: Literal["ready", "not ready"]
    variant: str | None = None
