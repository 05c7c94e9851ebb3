"""Timing loops and their summary, shared by the in-process measurements.

Every figure is a percentile over many timed calls after a warm-up, never a single run. The paths
being compared are timed in alternating rounds, not one after another: this machine is a shared
virtual one whose speed drifts by up to 2x over minutes, and a drift must hit every path alike for
their ratio to mean something.
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


def summarize(durations_ns: list[int], batch: int) -> Timing:
    micros = np.asarray(durations_ns, dtype=np.float64) / 1_000
    p50, p99 = np.percentile(micros, [50, 99])
    return Timing(
        calls=len(durations_ns),
        batch=batch,
        p50_us=round(float(p50), 2),
        p99_us=round(float(p99), 2),
        mean_us=round(float(micros.mean()), 2),
    )


@dataclass(frozen=True)
class Path:
    """One way of computing the same forecasts, and how many calls it gets per round."""

    call: Callable[[], object]
    calls_per_round: int
    warmup: int = 20


def interleaved(paths: dict[str, Path], *, batch: int, rounds: int) -> dict[str, Timing]:
    """Time every path in `rounds` alternating rounds; each path's timing pools all of its rounds."""
    for path in paths.values():
        for _ in range(path.warmup):
            path.call()
    durations: dict[str, list[int]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            for _ in range(path.calls_per_round):
                started = time.perf_counter_ns()
                path.call()
                durations[name].append(time.perf_counter_ns() - started)
    return {name: summarize(values, batch) for name, values in durations.items()}
