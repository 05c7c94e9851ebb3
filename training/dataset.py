"""The reference split from a sales file, without TensorFlow: the CLI checks the data before loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.artifacts import file_sha256
from training.config import DataConfig
from training.data import SalesDataError, load_sales, select_series
from training.windows import Split, split_windows


def load_split(config: DataConfig) -> Split:
    sales = load_sales(config.path)
    series = select_series(sales, config.stores, config.items, source=config.path)
    try:
        return split_windows(series, config.window, config.train_fraction, config.validation_fraction)
    except SalesDataError as exc:
        raise SalesDataError(f"{config.path}: {exc}") from None


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
        "windows": {"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
    }
