"""Timing loops and their summary, shared by the in-process measurements.

Every figure is a percentile over many timed calls after a warm-up, never a single run: the
machine is shared, and a mean hides the tail that a store device feels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    calls: int
    batch: int
    p50_us: float
    p99_us: float
    mean_us: float

    @property
    def forecasts_per_s(self) -> float:
        return self.batch / (self.p50_us / 1e6)

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "forecasts_per_s": round(self.forecasts_per_s, 1)}


def time_calls(
    call: Callable[[], object], *, batch: int, min_calls: int, max_calls: int, budget_s: float, warmup: int = 20
) -> Timing:
    """Time `call` at least `min_calls` times, and more until `max_calls` or `budget_s` seconds."""
    for _ in range(warmup):
        call()
    durations: list[int] = []
    deadline = time.perf_counter() + budget_s
    while len(durations) < max_calls and (len(durations) < min_calls or time.perf_counter() < deadline):
        started = time.perf_counter_ns()
        call()
        durations.append(time.perf_counter_ns() - started)
    micros = np.asarray(durations, dtype=np.float64) / 1_000
    p50, p99 = np.percentile(micros, [50, 99])
    return Timing(
        calls=len(durations),
        batch=batch,
        p50_us=round(float(p50), 2),
        p99_us=round(float(p99), 2),
        mean_us=round(float(micros.mean()), 2),
    )
