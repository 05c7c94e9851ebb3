"""How accuracy decays with the horizon when forecasts are fed back recursively, as the service does.

From every day in each series' test period that has 28 actual days after it, the published
`.onnx` forecasts day 1 from the real window, then day 2 from that window rolled forward by its
own forecast, and so on. MAPE per horizon day shows what a 7- or 28-day request is worth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.artifacts import write_atomic
from training.config import DataConfig
from training.data import load_sales, select_series
from training.evaluate import onnx_session

MAX_HORIZON = 28


def origins(data: DataConfig, horizon: int = MAX_HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """(windows (N, window), actuals (N, horizon)) for every test-period origin with `horizon` days after it."""
    windows, actuals = [], []
    for series in select_series(load_sales(data.path), data.stores, data.items, source=data.path):
        values = series.sales
        n_windows = len(values) - data.window
        first_test_target = data.window + int(n_windows * data.train_fraction)
        for origin in range(first_test_target, len(values) - horizon + 1):
            windows.append(values[origin - data.window : origin])
            actuals.append(values[origin : origin + horizon])
    return np.asarray(windows, np.float32), np.asarray(actuals, np.float32)


def recursive_forecast(model: bytes | Path, windows: np.ndarray, horizon: int) -> np.ndarray:
    session = onnx_session(model)
    name = session.get_inputs()[0].name
    current = windows.copy()
    out = np.empty((len(windows), horizon), np.float32)
    for day in range(horizon):
        out[:, day] = session.run(None, {name: current[:, :, None]})[0][:, 0]
        current = np.concatenate([current[:, 1:], out[:, day : day + 1]], axis=1)
    return out


def mape_by_day(actuals: np.ndarray, forecasts: np.ndarray) -> list[float]:
    nonzero = actuals != 0
    errors = np.where(nonzero, np.abs(forecasts - actuals) / np.where(nonzero, actuals, 1), np.nan)
    return [float(np.nanmean(errors[:, day]) * 100) for day in range(actuals.shape[1])]


def evaluate(data: DataConfig, models_dir: Path, variants: list[str], reports_dir: Path) -> dict[str, Any]:
    windows, actuals = origins(data)
    result: dict[str, Any] = {"origins": len(windows), "horizon": MAX_HORIZON, "mape_by_day": {}}
    for variant in variants:
        forecasts = recursive_forecast(Path(models_dir) / f"{variant}.onnx", windows, MAX_HORIZON)
        result["mape_by_day"][variant] = mape_by_day(actuals, forecasts)
    write_atomic(Path(reports_dir) / "horizon.json", (json.dumps(result, indent=2) + "\n").encode())
    write_atomic(Path(reports_dir) / "horizon.md", render(result).encode())
    return result


def render(result: dict[str, Any]) -> str:
    days = [1, 2, 3, 7, 14, 21, 28]
    header = "| variant | " + " | ".join(f"day {d}" for d in days) + " |"
    lines = [header, "|---|" + "---:|" * len(days)]
    for variant, values in result["mape_by_day"].items():
        lines.append(f"| `{variant}` | " + " | ".join(f"{values[d - 1]:.2f}" for d in days) + " |")
    return (
        "# MAPE by horizon day (recursive forecasts)\n\n"
        f"{result['origins']:,} forecast origins in the test period of stores 1-5 x items 1-10, each with "
        f"{result['horizon']} actual days after it. Day 1 uses the real 14-day window; each later day feeds the "
        "previous forecasts back in as the service does for `horizon` > 1. MAPE % per horizon day:\n\n"
        + "\n".join(lines)
        + "\n\nReproduce: `shelfcast-train horizon --data ../shared/data/store_item_demand/train.csv`\n"
    )
