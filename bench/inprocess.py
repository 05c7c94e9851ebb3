"""In-process latency and throughput: each variant through onnxruntime and through Keras, side by side.

onnxruntime is measured two ways: a plain `session.run` (what a user writes first, and what the
service called before it had a Forecaster fast path) and the service's own `Forecaster` (what
`/forecast` runs). Keras runs the same weights (bench.keras_twin) eagerly and as a `tf.function`.
All paths take numpy in and give numpy out, so conversions count on both sides. Windows are
realistic daily sales, not zeros. With `before_dir`, the same variant's file from an older commit
runs in the same rounds, through a session set up as the service then set it up.
"""

from __future__ import annotations

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
from bench.timing import Path as TimedPath
from bench.timing import Timing, interleaved

ORT_RUN = "onnxruntime session.run"
SERVING = "onnxruntime (service Forecaster)"
TF_FUNCTION = "Keras tf.function"
EAGER = "Keras eager"
BEFORE = "before: old file, session.run"


@dataclass(frozen=True)
class BatchSetup:
    """How the service's Forecaster may use the cores on one large batch."""

    label: str
    intra_op_threads: int  # ORT_INTRA_OP_THREADS: onnxruntime splits each operator
    batch_threads: int  # BATCH_THREADS: the batch's slices run at once


ORT_ONE_THREAD = "onnxruntime (service Forecaster), 1 thread"
BATCH_SETUPS = (
    BatchSetup(ORT_ONE_THREAD, 1, 1),
    BatchSetup("onnxruntime (service Forecaster), 2 intra-op threads", 2, 1),
    BatchSetup("onnxruntime (service Forecaster), 2 slice threads (service default)", 1, 2),
)


TF_BATCH = f"{TF_FUNCTION}, TensorFlow default threads"


@dataclass(frozen=True)
class InProcessConfig:
    rounds: int = 20
    single_calls: int = 500  # per round, for each onnxruntime path
    tf_function_calls: int = 50
    eager_calls: int = 2  # an eager call takes tens of milliseconds
    batch_sizes: tuple[int, ...] = (1, 100, 10_000)
    batch_rounds: int = 5
    batch_work: int = 20_000  # windows per round and path: 200 calls at batch 100, 2 at 10,000
    batch_calls: int = 200  # at most, per round and path (Keras takes ~1 ms a call at any small batch)
    batch_setups: tuple[BatchSetup, ...] = BATCH_SETUPS
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


def _forecaster(models_dir: Path, name: str, setup: BatchSetup) -> Forecaster:
    settings = Settings(
        models_dir=models_dir,
        model_variant=name,
        ort_intra_op_threads=setup.intra_op_threads,
        batch_threads=setup.batch_threads,
    )
    return ready(discover(models_dir)[name], settings).forecaster


def _plain_session(path: Path) -> ort.InferenceSession:
    """onnxruntime's defaults with one thread each: how the service built sessions before this suite."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, windows: np.ndarray):
    feed = {session.get_inputs()[0].name: windows[..., None]}
    outputs = [session.get_outputs()[0].name]
    return lambda: session.run(outputs, feed)[0][:, 0]


def _file(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / discover(models_dir)[name].metadata["file"]


def _keras(path: Path):
    import tensorflow as tf

    from bench.keras_twin import keras_twin

    model, description = keras_twin(path)
    traced = tf.function(
        lambda history: model(history, training=False),
        input_signature=[tf.TensorSpec((None, 14, 1), tf.float32)],
    )
    return model, traced, description


def measure(
    models_dir: Path, name: str, config: InProcessConfig, *, keras: bool, before_dir: Path | None = None
) -> VariantResult:
    result = VariantResult(variant=name)
    window = sample_windows(1, 14, seed=0)
    serving = {setup.label: _forecaster(models_dir, name, setup) for setup in config.batch_setups}
    one_thread = serving[config.batch_setups[0].label]
    session = _plain_session(_file(models_dir, name))
    old = _plain_session(_file(before_dir, name)) if before_dir is not None else None
    single = {
        ORT_RUN: TimedPath(_run(session, window), config.single_calls),
        SERVING: TimedPath(lambda: one_thread.predict(window), config.single_calls),
    }
    if old is not None:
        single[BEFORE] = TimedPath(_run(old, window), config.single_calls)
    if keras:
        model, traced, result.keras_weights = _keras(_file(models_dir, name))
        keras_window = window[..., None]
        single[TF_FUNCTION] = TimedPath(lambda: traced(keras_window).numpy(), config.tf_function_calls)
        single[EAGER] = TimedPath(lambda: np.asarray(model(keras_window, training=False)), config.eager_calls, 3)
    result.single = interleaved(single, batch=1, rounds=config.rounds)

    for size in config.batch_sizes:
        windows = sample_windows(size, 14, seed=size)
        calls = max(1, min(config.batch_calls, config.batch_work // size))
        paths = {
            label: TimedPath(lambda f=forecaster, w=windows: f.predict(w), calls, 2)
            for label, forecaster in serving.items()
        }
        if old is not None:
            paths[BEFORE] = TimedPath(_run(old, windows), calls, 2)
        if keras:
            keras_windows = windows[..., None]
            paths[TF_BATCH] = TimedPath(lambda w=keras_windows: traced(w).numpy(), calls, 2)
        for path_name, timing in interleaved(paths, batch=size, rounds=config.batch_rounds).items():
            result.batch.setdefault(path_name, {})[size] = timing
    return result


def keras_available() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def run(
    models_dir: Path, variants: list[str], config: InProcessConfig, before_dir: Path | None = None
) -> list[VariantResult]:
    """Every variant; with before_dir, those that also exist there get the older file beside them."""
    with_keras = config.keras and keras_available()
    old_names = set(discover(before_dir)) if before_dir is not None else set()
    return [
        measure(models_dir, name, config, keras=with_keras, before_dir=before_dir if name in old_names else None)
        for name in tqdm(variants, desc="in-process", unit="variant")
    ]
