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

from app.settings import Settings


class ConfigurationError(RuntimeError):
    """The service cannot start with this configuration; the message says how to fix it."""


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
    for meta_path in sorted(models_dir.glob("*.json")):
        try:
            metadata = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{meta_path}: unreadable metadata: {exc}") from None
        name = metadata.get("variant", meta_path.stem)
        variants[name] = Variant(name=name, metadata=metadata, path=models_dir / metadata.get("file", f"{name}.onnx"))
    if not variants:
        raise ConfigurationError(f"MODELS_DIR {models_dir} holds no model metadata (*.json)")
    return variants


def open_session(variant: Variant, settings: Settings) -> ort.InferenceSession:
    """One session per variant, shared by all requests; threads set explicitly (containers lie about cores)."""
    if not variant.path.is_file():
        raise ConfigurationError(f"variant {variant.name!r}: model file {variant.path} is missing")
    data = variant.path.read_bytes()
    expected = variant.metadata.get("sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ConfigurationError(f"variant {variant.name!r}: {variant.path} does not match the sha256 in its metadata")
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_intra_op_threads
    options.inter_op_num_threads = settings.ort_inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for malformed models
        message = f"variant {variant.name!r}: {variant.path} is not a loadable ONNX model: {exc}"
        raise ConfigurationError(message) from None


@dataclass
class Registry:
    variants: dict[str, Variant]
    active: Variant
    session: ort.InferenceSession

    @classmethod
    def load(cls, settings: Settings) -> Registry:
        variants = discover(Path(settings.models_dir))
        if settings.model_variant not in variants:
            raise ConfigurationError(
                f"MODEL_VARIANT={settings.model_variant!r} is not in {settings.models_dir}; "
                f"valid names: {', '.join(sorted(variants))}"
            )
        active = variants[settings.model_variant]
        return cls(variants=variants, active=active, session=open_session(active, settings))
