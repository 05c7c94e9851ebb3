"""data -> windows -> model -> export -> evaluate -> publish.

Every variant, float, pruned or INT8, ends as a `Candidate`: one run's ONNX bytes measured
through onnxruntime. A variant is published as its best candidate on validation, with all
candidates' test metrics recorded, so the numbers we publish are those of the files we serve.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.artifacts import library_versions, publish
from training.config import INPUT_NAME, OUTPUT_NAME, DataConfig, TrainConfig
from training.dataset import data_description, load_split
from training.evaluate import metrics, onnx_predict
from training.export import OPSET, export
from training.model import wrap_for_units
from training.train import train_core
from training.windows import Split

log = logging.getLogger("shelfcast.training")
METRIC_KEYS = ("mape", "wape", "smape", "mae")


@dataclass(frozen=True)
class Candidate:
    """One run of one variant: the exported file and what onnxruntime measured on it."""

    seed: int
    onnx_bytes: bytes
    parameters: int
    nonzero_parameters: int
    validation: dict[str, float]
    test: dict[str, float]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "validation": self.validation,
            "test": self.test,
            **self.details,
        }


def measure(onnx_bytes: bytes, split: Split) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    """(validation metrics, test metrics, test forecasts) of an ONNX file, through onnxruntime."""
    test_forecast = onnx_predict(onnx_bytes, split.test.x)
    validation = (
        metrics(split.validation.y, onnx_predict(onnx_bytes, split.validation.x)) if len(split.validation) else {}
    )
    return validation, metrics(split.test.y, test_forecast), test_forecast


def nonzero_weights(model: keras.Model) -> int:
    return int(sum(np.count_nonzero(np.asarray(w.numpy())) for w in model.weights))


def export_candidate(core: keras.Model, split: Split, seed: int, started: float, **details: Any) -> Candidate:
    """Export a trained core (wrapped for raw units) and measure the file; records ONNX-vs-Keras parity."""
    model = wrap_for_units(core)
    with tempfile.TemporaryDirectory(prefix="shelfcast-") as workdir:
        path = Path(workdir) / "model.onnx"
        export(model, path)
        onnx_bytes = path.read_bytes()
    validation, test, forecast = measure(onnx_bytes, split)
    keras_forecast = model.predict(split.test.x, batch_size=8192, verbose=0)[:, 0]
    return Candidate(
        seed=seed,
        onnx_bytes=onnx_bytes,
        parameters=int(model.count_params()),
        nonzero_parameters=nonzero_weights(model),
        validation=validation,
        test=test,
        seconds=time.perf_counter() - started,
        details={"onnx_vs_keras_max_abs_diff": float(np.max(np.abs(forecast - keras_forecast))), **details},
    )


def train_candidate(split: Split, config: TrainConfig) -> tuple[Candidate, keras.Model]:
    """Train one seed and export it; returns the candidate and the trained core (to derive variants from)."""
    started = time.perf_counter()
    trained = train_core(split, config)
    candidate = export_candidate(trained.core, split, config.seed, started, epochs_run=trained.epochs_run)
    return candidate, trained.core


def aggregate(candidates: list[Candidate]) -> dict[str, dict[str, Any]]:
    """Mean and population std of each test metric over the runs."""
    out: dict[str, dict[str, Any]] = {}
    for key in METRIC_KEYS:
        values = np.array([c.test[key] for c in candidates])
        out[key] = {"mean": float(values.mean()), "std": float(values.std()), "runs": [float(v) for v in values]}
    return out


def select_best(candidates: list[Candidate]) -> Candidate:
    """The run with the best validation MAPE: the test period never chooses."""

    def score(candidate: Candidate) -> tuple[bool, float]:
        mape = candidate.validation.get("mape", float("nan"))
        return (bool(np.isnan(mape)), float(mape))

    return min(candidates, key=score)


def publish_variant(
    variant: str,
    candidates: list[Candidate],
    models_dir: Path,
    *,
    technique: str,
    description: str,
    weight_dtype: str,
    bytes_per_parameter: int,
    data: dict[str, Any],
    training: dict[str, Any],
    derived_from: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the best-on-validation candidate and metadata recording every run."""
    best = select_best(candidates)
    meta = {
        "technique": technique,
        "description": description,
        "derived_from": derived_from,
        "parameters": best.parameters,
        "nonzero_parameters": best.nonzero_parameters,
        "weight_dtype": weight_dtype,
        "size": {"parameter_bytes": best.nonzero_parameters * bytes_per_parameter},
        "io": {
            "input": {
                "name": INPUT_NAME,
                "shape": [None, data["window_days"], 1],
                "dtype": "float32",
                "meaning": "daily unit sales, oldest first",
            },
            "output": {"name": OUTPUT_NAME, "shape": [None, 1], "dtype": "float32", "meaning": "next-day unit sales"},
        },
        "metrics": aggregate(candidates),
        "selected_run": {"seed": best.seed, "selected_by": "lowest validation MAPE", "test": best.test},
        "runs": [c.summary() for c in candidates],
        "data": data,
        "training": training,
        "export": {"tool": "tf2onnx", "opset": OPSET},
        **(extra or {}),
        "versions": library_versions(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return publish(models_dir, variant, best.onnx_bytes, meta)


def float_description(units: int, dropout: float) -> str:
    return f"LSTM({units}, tanh) -> Dropout({dropout}) -> Dense(1), log1p centring on the window inside the graph"


def training_description(config: TrainConfig, seeds: list[int]) -> dict[str, Any]:
    return {
        "epochs_max": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "patience": config.patience,
        "dropout": config.dropout,
        "seeds": seeds,
        "loss": "MSE of the centred log1p next-day value",
        "optimizer": "Adam",
    }


def train_variant(
    variant: str, data: DataConfig, config: TrainConfig, runs: int, models_dir: Path, split: Split | None = None
) -> dict[str, Any]:
    """Train `runs` seeds of one LSTM size, publish the best-on-validation file with all runs recorded."""
    split = split or load_split(data)
    candidates = []
    for run in range(runs):
        seed = config.seed + run
        log.info("%s: run %d/%d (seed %d)", variant, run + 1, runs, seed)
        candidate, _ = train_candidate(split, TrainConfig(**{**config.__dict__, "seed": seed}))
        log.info("%s: seed %d test MAPE %.3f%%", variant, seed, candidate.test["mape"])
        candidates.append(candidate)
    return publish_variant(
        variant,
        candidates,
        models_dir,
        technique="baseline" if config.units == 64 else "architecture sizing",
        description=float_description(config.units, config.dropout),
        weight_dtype="float32",
        bytes_per_parameter=4,
        data=data_description(data, split),
        training=training_description(config, [c.seed for c in candidates]),
        extra={"units": config.units},
    )
