"""Cut series into (14-day history -> next day) windows and split them chronologically.

The split is per series and by time, so no test target ever precedes a training target of
the same series; the validation slice for early stopping is the end of the training period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import WINDOW
from training.data import SalesDataError, Series


@dataclass(frozen=True)
class WindowSet:
    """Windows shaped (N, window, 1) with next-day targets (N,) and their series index."""

    x: np.ndarray
    y: np.ndarray
    series: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> WindowSet:
        return WindowSet(self.x[index], self.y[index], self.series[index])


@dataclass(frozen=True)
class Split:
    train: WindowSet
    validation: WindowSet
    test: WindowSet


def series_windows(values: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """All windows of one series in time order: x[t] = values[t:t+window], y[t] = values[t+window]."""
    view = np.lib.stride_tricks.sliding_window_view(values, window + 1)
    return view[:, :window].astype(np.float32), view[:, window].astype(np.float32)


def split_windows(
    series: list[Series],
    window: int = WINDOW,
    train_fraction: float = 0.8,
    validation_fraction: float = 0.1,
) -> Split:
    """Chronological split per series: train | test = train_fraction | rest of the windows.

    The last `validation_fraction` of each series' training windows is held out for early
    stopping, so model selection never sees the test period.
    """
    if not 0 < train_fraction < 1 or not 0 <= validation_fraction < 1:
        raise ValueError("train_fraction must be in (0, 1) and validation_fraction in [0, 1)")
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "validation": [], "test": []}
    for number, s in enumerate(series):
        if len(s.sales) < window + 2:
            raise SalesDataError(
                f"{s.key}: {len(s.sales)} day(s) is too short for a {window}-day window and a split "
                f"(need at least {window + 2})"
            )
        x, y = series_windows(s.sales, window)
        n_train = int(len(y) * train_fraction)
        n_fit = n_train - int(n_train * validation_fraction)
        if n_train == 0 or n_train == len(y) or n_fit == 0:
            raise SalesDataError(f"{s.key}: too few windows ({len(y)}) to split train/validation/test")
        tag = np.full(len(y), number, dtype=np.int32)
        for name, part in (
            ("train", slice(0, n_fit)),
            ("validation", slice(n_fit, n_train)),
            ("test", slice(n_train, None)),
        ):
            parts[name].append((x[part], y[part], tag[part]))

    def stack(name: str) -> WindowSet:
        chunks = parts[name]
        if not chunks:
            return WindowSet(np.zeros((0, window, 1), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))
        return WindowSet(
            np.concatenate([c[0] for c in chunks])[..., None],
            np.concatenate([c[1] for c in chunks]),
            np.concatenate([c[2] for c in chunks]),
        )

    return Split(stack("train"), stack("validation"), stack("test"))
