"""In-process latency of every loaded variant, measured side by side on the same windows.

Bounded by design: the caller caps iterations and batch size, and only one measurement runs at
a time. It runs in a worker thread, and onnxruntime releases the GIL while it computes, so
forecasts keep being answered meanwhile (slower, since they share the CPU).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from app.forecasting import Forecaster

MAX_ITERATIONS = 2000
MAX_BATCH_SIZE = 10_000

_running = threading.Lock()


class BenchmarkBusy(RuntimeError):
    """Another benchmark is running; the caller should retry later."""


def sample_windows(count: int, window: int, seed: int = 0) -> np.ndarray:
    """Realistic daily sales (weekly cycle, 10-150 units) so the kernels see normal inputs."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 150, size=(count, 1))
    weekly = 1 + 0.25 * np.sin(2 * np.pi * (np.arange(window) + rng.integers(0, 7, size=(count, 1))) / 7)
    return rng.poisson(level * weekly).astype(np.float32)


def _stats(durations_ns: np.ndarray, batch_size: int) -> dict[str, float | int]:
    micros = durations_ns / 1_000
    p50, p95, p99 = np.percentile(micros, [50, 95, 99])
    return {
        "batch_size": batch_size,
        "iterations": len(durations_ns),
        "p50_us": round(float(p50), 1),
        "p95_us": round(float(p95), 1),
        "p99_us": round(float(p99), 1),
        "forecasts_per_second": round(batch_size / (float(p50) / 1e6), 1),
    }


def time_calls(forecaster: Forecaster, windows: np.ndarray, iterations: int) -> np.ndarray:
    forecaster.predict(windows)  # warm
    durations = np.empty(iterations, dtype=np.int64)
    for i in range(iterations):
        started = time.perf_counter_ns()
        forecaster.predict(windows)
        durations[i] = time.perf_counter_ns() - started
    return durations


def measure(forecasters: dict[str, Forecaster], iterations: int, batch_size: int) -> dict[str, dict]:
    """{variant: {"single": stats, "batch": stats}}; raises BenchmarkBusy if one is already running."""
    if not 1 <= iterations <= MAX_ITERATIONS or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError("iterations or batch_size out of bounds")
    if not _running.acquire(blocking=False):
        raise BenchmarkBusy
    try:
        results = {}
        for name, forecaster in forecasters.items():
            single = sample_windows(1, forecaster.window)
            batch = sample_windows(batch_size, forecaster.window, seed=1)
            batch_iterations = max(5, min(iterations, 200_000 // batch_size))
            results[name] = {
                "single": _stats(time_calls(forecaster, single, iterations), 1),
                "batch": _stats(time_calls(forecaster, batch, batch_iterations), batch_size),
            }
        return results
    finally:
        _running.release()
