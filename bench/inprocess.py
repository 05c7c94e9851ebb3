"""In-process latency and throughput: each variant through onnxruntime and through Keras, side by side.

onnxruntime is measured two ways: a plain `session.run` (what a user writes first) and the
service's own `Forecaster` (what `/forecast` runs). Keras runs the same weights (bench.keras_twin)
eagerly and as a `tf.function`. All paths take numpy in and give numpy out, so conversions are
counted on both sides. Windows are realistic daily sales, not zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from app.benchmarking import sample_windows
from app.forecasting import Forecaster
from app.registry import discover, ready
from app.settings import Settings
from bench.timing import Timing, time_calls


@dataclass(frozen=True)
class InProcessConfig:
    single_min_calls: int = 2_000
    single_max_calls: int = 20_000
    single_budget_s: float = 2.0
    eager_min_calls: int = 20
    eager_budget_s: float = 2.0
    batch_sizes: tuple[int, ...] = (1, 100, 10_000)
    batch_min_calls: int = 10
    batch_budget_s: float = 1.5
    threads: tuple[int, ...] = (1, 2)  # onnxruntime intra-op threads for the batch table; the service default is 1
    keras: bool = True


@dataclass
class VariantResult:
    variant: str
    single: dict[str, Timing] = field(default_factory=dict)  # path name -> timing of one window
    batch: dict[str, dict[int, Timing]] = field(default_factory=dict)  # path name -> batch size -> timing
    keras_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "keras_weights": self.keras_weights,
            "single": {path: t.to_dict() for path, t in self.single.items()},
            "batch": {path: {str(n): t.to_dict() for n, t in sizes.items()} for path, sizes in self.batch.items()},
        }


ORT_RUN = "onnxruntime session.run"
SERVING = "onnxruntime (service Forecaster)"
TF_FUNCTION = "Keras tf.function"
EAGER = "Keras eager"


def _forecaster(models_dir: Path, name: str, threads: int) -> Forecaster:
    settings = Settings(models_dir=models_dir, model_variant=name, ort_intra_op_threads=threads)
    return ready(discover(models_dir)[name], settings).forecaster


def _plain_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _single(call: Callable[[], object], config: InProcessConfig) -> Timing:
    return time_calls(
        call,
        batch=1,
        min_calls=config.single_min_calls,
        max_calls=config.single_max_calls,
        budget_s=config.single_budget_s,
    )


def _batch(call: Callable[[], object], size: int, config: InProcessConfig) -> Timing:
    return time_calls(
        call, batch=size, min_calls=config.batch_min_calls, max_calls=100_000, budget_s=config.batch_budget_s, warmup=3
    )


def measure_onnx(models_dir: Path, name: str, config: InProcessConfig, *, batches: bool = True) -> VariantResult:
    """onnxruntime only: plain session.run and the service's Forecaster, single window and batches."""
    result = VariantResult(variant=name)
    path = Path(models_dir) / discover(models_dir)[name].metadata["file"]
    window = sample_windows(1, 14, seed=0)
    session = _plain_session(path)
    feed = {session.get_inputs()[0].name: window[..., None]}
    outputs = [session.get_outputs()[0].name]
    result.single[ORT_RUN] = _single(lambda: session.run(outputs, feed), config)
    serving = _forecaster(models_dir, name, threads=1)
    result.single[SERVING] = _single(lambda: serving.predict(window), config)
    if not batches:
        return result
    for threads in config.threads:
        forecaster = serving if threads == 1 else _forecaster(models_dir, name, threads)
        timings = {}
        for size in config.batch_sizes:
            windows = sample_windows(size, 14, seed=size)
            timings[size] = _batch(lambda f=forecaster, w=windows: f.predict(w), size, config)
        result.batch[f"onnxruntime, {threads} thread{'s' if threads > 1 else ''}"] = timings
    return result


def add_keras(result: VariantResult, path: Path, config: InProcessConfig) -> None:
    """The same model through Keras: eager call and tf.function, single window and batches."""
    import tensorflow as tf

    from bench.keras_twin import keras_twin

    model, description = keras_twin(path)
    result.keras_weights = description
    traced = tf.function(
        lambda history: model(history, training=False),
        input_signature=[tf.TensorSpec((None, 14, 1), tf.float32)],
    )
    window = sample_windows(1, 14, seed=0)[..., None]
    result.single[TF_FUNCTION] = _single(lambda: traced(window).numpy(), config)
    result.single[EAGER] = time_calls(
        lambda: np.asarray(model(window, training=False)),
        batch=1,
        min_calls=config.eager_min_calls,
        max_calls=config.single_max_calls,
        budget_s=config.eager_budget_s,
        warmup=3,
    )
    timings = {}
    for size in config.batch_sizes:
        windows = sample_windows(size, 14, seed=size)[..., None]
        timings[size] = _batch(lambda w=windows: traced(w).numpy(), size, config)
    result.batch[f"{TF_FUNCTION}, TensorFlow default threads"] = timings


def keras_available() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def run(models_dir: Path, variants: list[str], config: InProcessConfig) -> list[VariantResult]:
    with_keras = config.keras and keras_available()
    results = []
    for name in tqdm(variants, desc="in-process", unit="variant"):
        result = measure_onnx(models_dir, name, config)
        if with_keras:
            add_keras(result, Path(models_dir) / discover(models_dir)[name].metadata["file"], config)
        results.append(result)
    return results
