"""Service configuration, from environment variables only."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.schemas import MAX_SERIES_PER_BODY

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    """Each field is read from the upper-case environment variable of the same name."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", protected_namespaces=())

    model_variant: str = Field("lstm64", min_length=1, description="variant to serve, a name listed by GET /models")
    models_dir: Path = Field(REPO_MODELS_DIR, description="folder holding <variant>.onnx and <variant>.json")
    ort_intra_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads inside one operator")
    ort_inter_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads across operators")
    batch_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="threads a batch of 96 or more windows is split across, the request's own among them "
        "(slices of at most 256 windows run at once); 1 computes a request's slices one after another",
    )
    forecast_concurrency: int = Field(
        2,
        ge=1,
        le=256,
        description="forecast requests read and computed at once per worker (also its thread pool's size); "
        "later ones wait unread, so memory holds this many batches, not one per connection",
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="an admitted forecast request must send its whole body within this, or it gets 408 and "
        "frees its FORECAST_CONCURRENCY slot",
    )
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$", description="any case")
    max_batch_series: int = Field(10_000, ge=1, le=MAX_SERIES_PER_BODY, description="series per /forecast request")
    benchmark_enabled: bool = Field(True, description="false turns GET /benchmark off (403)")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger request bodies get 413 unread")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("models_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must be a folder path, not empty")
        return value
