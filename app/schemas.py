"""Request and response bodies; validation here is what turns bad input into a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MAX_DAILY_SALES = 1_000_000.0
MAX_HISTORY_DAYS = 366
WINDOW = 14

DailySales = Annotated[float, Field(strict=True, ge=0, le=MAX_DAILY_SALES, allow_inf_nan=False)]
Identifier = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"store": 1, "item": 1, "history": [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]},
            ]
        },
    )

    store: Identifier
    item: Identifier
    history: Annotated[
        list[DailySales],
        Field(
            min_length=WINDOW,
            max_length=MAX_HISTORY_DAYS,
            description=f"daily unit sales, oldest first; at least {WINDOW} days, the last {WINDOW} are used",
        ),
    ]


class ForecastResponse(BaseModel):
    store: int
    item: int
    forecast: float = Field(description="next-day unit sales")
    variant: str


class VariantSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    variant: str
    active: bool
    technique: str | None = None
    parameters: int | None = None
    size: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    sha256: str | None = None


class ModelsResponse(BaseModel):
    active: str
    variants: list[VariantSummary]
