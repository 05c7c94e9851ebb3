"""The variants found in the models folder: metadata for all, one shared onnxruntime session for the active one.

The metadata file is written by training next to its model and only read here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.forecasting import Forecaster
from app.settings import Settings


class ConfigurationError(RuntimeError):
    """The service cannot start with this configuration; the message says how to fix it."""


class VariantMetadata(BaseModel):
    """The fields the service relies on; training writes more, and /models shows all of it."""

    model_config = ConfigDict(extra="allow")

    variant: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.onnx$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    technique: str
    parameters: int = Field(ge=0)
    size: dict[str, int]
    metrics: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Variant:
    name: str
    metadata: dict[str, Any]
    path: Path


def discover(models_dir: Path) -> dict[str, Variant]:
    """Every `<name>.json` in models_dir whose model file is beside it, by name."""
    if not models_dir.is_dir():
        raise ConfigurationError(f"MODELS_DIR {models_dir} is not a directory")
    variants: dict[str, Variant] = {}
    sources: dict[str, Path] = {}
    for meta_path in sorted(models_dir.glob("*.json")):
        try:
            metadata = VariantMetadata.model_validate(json.loads(meta_path.read_bytes()))
        except OSError as exc:
            raise ConfigurationError(f"{meta_path}: unreadable metadata: {exc.strerror}") from None
        except ValueError as exc:  # JSON syntax, encoding, or a pydantic ValidationError
            problems = (
                "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            raise ConfigurationError(f"{meta_path}: invalid model metadata: {problems}") from None
        name = metadata.variant
        if name in variants:
            raise ConfigurationError(f"{meta_path}: variant {name!r} is already defined by {sources[name].name}")
        sources[name] = meta_path
        variants[name] = Variant(name=name, metadata=metadata.model_dump(), path=models_dir / metadata.file)
    if not variants:
        raise ConfigurationError(f"MODELS_DIR {models_dir} holds no model metadata (*.json)")
    return variants


def open_session(variant: Variant, settings: Settings) -> ort.InferenceSession:
    """One session per variant, shared by all requests; threads set explicitly (containers lie about cores)."""
    try:
        data = variant.path.read_bytes()  # read once: the session is built from these verified bytes
    except FileNotFoundError:
        raise ConfigurationError(f"variant {variant.name!r}: model file {variant.path} is missing") from None
    except OSError as exc:
        raise ConfigurationError(
            f"variant {variant.name!r}: model file {variant.path} is unreadable: {exc.strerror}"
        ) from None
    expected = variant.metadata["sha256"]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ConfigurationError(
            f"variant {variant.name!r}: sha256 mismatch: {variant.path} hashes to {actual[:12]}…, "
            f"its metadata says {expected[:12]}… (changed or replaced since training published it)"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_intra_op_threads
    options.inter_op_num_threads = settings.ort_inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena keeps the largest buffers a call ever needed, for good; the Forecaster never runs more
    # than CHUNK_WINDOWS windows in one call, so that is a slice's worth (a whole 10,000-series lstm64
    # call once left a worker 210 MiB bigger). Reusing them saves mapping fresh pages on every call.
    options.enable_cpu_mem_arena = True
    # With ORT_INTRA_OP_THREADS > 1, idle pool threads would spin between calls, taking CPU from the
    # event loop and from other workers on the same cores; they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for malformed models
        message = f"variant {variant.name!r}: {variant.path} is not a loadable ONNX model: {exc}"
        raise ConfigurationError(message) from None


@dataclass(frozen=True)
class Loaded:
    """A variant ready to serve: its metadata and the forecaster around its one shared session."""

    variant: Variant
    forecaster: Forecaster


def ready(variant: Variant, settings: Settings) -> Loaded:
    """Open the session and answer one forecast: a model that loads but cannot forecast is not ready."""
    session = open_session(variant, settings)
    forecaster = Forecaster(session, settings.batch_threads)
    try:
        forecaster.warm_up()
    except Exception as exc:  # onnxruntime's own error types: wrong input shape, missing output, ...
        raise ConfigurationError(f"variant {variant.name!r}: warm-up forecast failed: {exc}") from None
    return Loaded(variant=variant, forecaster=forecaster)


@dataclass
class Registry:
    """All variants found; every one that passes its checks has its own session (they are a few KB each)."""

    variants: dict[str, Variant]
    loaded: dict[str, Loaded]
    unavailable: dict[str, str]
    active_name: str

    @property
    def active(self) -> Loaded:
        return self.loaded[self.active_name]

    @classmethod
    def load(cls, settings: Settings) -> Registry:
        variants = discover(Path(settings.models_dir))
        if settings.model_variant not in variants:
            raise ConfigurationError(
                f"MODEL_VARIANT={settings.model_variant!r} is not in {settings.models_dir}; "
                f"valid names: {', '.join(sorted(variants))}"
            )
        loaded: dict[str, Loaded] = {}
        unavailable: dict[str, str] = {}
        for name, variant in variants.items():
            try:
                loaded[name] = ready(variant, settings)
            except ConfigurationError as exc:
                if name == settings.model_variant:
                    raise
                unavailable[name] = str(exc)
        return cls(variants=variants, loaded=loaded, unavailable=unavailable, active_name=settings.model_variant)
