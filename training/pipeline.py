"""data -> windows -> model -> export -> evaluate -> publish, for one variant over several runs."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import file_sha256, library_versions, publish
from training.config import INPUT_NAME, OUTPUT_NAME, DataConfig, TrainConfig
from training.data import load_sales, select_series
from training.evaluate import metrics, onnx_predict
from training.export import OPSET, export
from training.model import wrap_for_units
from training.train import train_core
from training.windows import Split, split_windows

log = logging.getLogger("shelfcast.training")


@dataclass(frozen=True)
class RunResult:
    seed: int
    onnx_bytes: bytes
    parameters: int
    epochs_run: int
    validation: dict[str, float]
    test: dict[str, float]
    parity_max_abs_diff: float
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "epochs_run": self.epochs_run,
            "seconds": round(self.seconds, 1),
            "validation": self.validation,
            "test": self.test,
            "onnx_vs_keras_max_abs_diff": self.parity_max_abs_diff,
        }


def load_split(config: DataConfig) -> Split:
    sales = load_sales(config.path)
    series = select_series(sales, config.stores, config.items, source=config.path)
    return split_windows(series, config.window, config.train_fraction, config.validation_fraction)


def data_description(config: DataConfig, split: Split) -> dict[str, Any]:
    return {
        "source": Path(config.path).name,
        "source_sha256": file_sha256(config.path),
        "stores": list(config.stores),
        "items": list(config.items),
        "window_days": config.window,
        "split": "chronological per series: first train_fraction of each series' windows train (its last "
        "validation_fraction held out for early stopping and run selection), the rest test",
        "train_fraction": config.train_fraction,
        "validation_fraction": config.validation_fraction,
        "windows": {
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
        },
    }


def run_once(split: Split, config: TrainConfig, workdir: Path) -> RunResult:
    """Train one seed, export it, and measure the exported file (not the Keras model)."""
    started = time.perf_counter()
    trained = train_core(split, config)
    model = wrap_for_units(trained.core)
    path = workdir / f"seed{config.seed}.onnx"
    export(model, path)
    test_forecast = onnx_predict(path, split.test.x)
    keras_forecast = model.predict(split.test.x, batch_size=8192, verbose=0)[:, 0]
    validation_forecast = onnx_predict(path, split.validation.x) if len(split.validation) else np.zeros(0)
    return RunResult(
        seed=config.seed,
        onnx_bytes=path.read_bytes(),
        parameters=int(model.count_params()),
        epochs_run=trained.epochs_run,
        validation=metrics(split.validation.y, validation_forecast) if len(split.validation) else {},
        test=metrics(split.test.y, test_forecast),
        parity_max_abs_diff=float(np.max(np.abs(test_forecast - keras_forecast))),
        seconds=time.perf_counter() - started,
    )


def aggregate(runs: list[RunResult]) -> dict[str, dict[str, Any]]:
    """Mean and population std of each test metric over the runs."""
    out: dict[str, dict[str, Any]] = {}
    for key in ("mape", "wape", "smape", "mae"):
        values = np.array([r.test[key] for r in runs])
        out[key] = {"mean": float(values.mean()), "std": float(values.std()), "runs": [float(v) for v in values]}
    return out


def select_best(runs: list[RunResult]) -> RunResult:
    """The run with the best validation MAPE: the test period never chooses."""

    def score(run: RunResult) -> tuple[bool, float]:
        mape = run.validation.get("mape", float("nan"))
        return (bool(np.isnan(mape)), float(mape))

    return min(runs, key=score)


def train_variant(
    variant: str,
    data: DataConfig,
    config: TrainConfig,
    runs: int,
    models_dir: Path,
    split: Split | None = None,
) -> dict[str, Any]:
    """Train `runs` seeds of one LSTM size, publish the best-on-validation file with all runs recorded."""
    split = split or load_split(data)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="shelfcast-") as workdir:
        for run in range(runs):
            seed = config.seed + run
            log.info("%s: run %d/%d (seed %d)", variant, run + 1, runs, seed)
            result = run_once(split, replace(config, seed=seed), Path(workdir))
            log.info(
                "%s: seed %d test MAPE %.3f%%, %d epochs, %.0fs",
                variant,
                seed,
                result.test["mape"],
                result.epochs_run,
                result.seconds,
            )
            results.append(result)
    best = select_best(results)
    meta = {
        "technique": "baseline" if config.units == 64 else "architecture sizing",
        "description": f"LSTM({config.units}, tanh) -> Dropout({config.dropout}) -> Dense(1), "
        "log1p centring on the window inside the graph",
        "units": config.units,
        "parameters": best.parameters,
        "nonzero_parameters": best.parameters,
        "weight_dtype": "float32",
        "size": {"parameter_bytes": best.parameters * 4},
        "io": {
            "input": {
                "name": INPUT_NAME,
                "shape": [None, data.window, 1],
                "dtype": "float32",
                "meaning": "daily unit sales, oldest first",
            },
            "output": {"name": OUTPUT_NAME, "shape": [None, 1], "dtype": "float32", "meaning": "next-day unit sales"},
        },
        "metrics": aggregate(results),
        "selected_run": {"seed": best.seed, "selected_by": "lowest validation MAPE", "test": best.test},
        "runs": [r.summary() for r in results],
        "data": data_description(data, split),
        "training": {
            **asdict(config),
            "seeds": [r.seed for r in results],
            "loss": "MSE of the centred log1p next-day value",
            "optimizer": "Adam",
        },
        "export": {"tool": "tf2onnx", "opset": OPSET, "onnx_vs_keras_max_abs_diff_units": best.parity_max_abs_diff},
        "versions": library_versions(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return publish(models_dir, variant, best.onnx_bytes, meta)
