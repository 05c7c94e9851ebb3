"""What a user would pick instead of an LSTM, on exactly the same windows and split.

Fitted baselines (linear, LightGBM) learn in the same centred log space as the LSTM, so they get
the same scale invariance and the comparison is about the model, not the preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.model import centre, centred_target
from training.windows import Split

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    parameters: int
    predict: Predictor


def _restore(centred_forecast: np.ndarray, level: np.ndarray) -> np.ndarray:
    return np.maximum(np.expm1(centred_forecast + level[:, 0]), 0.0)


def seasonal_naive(split: Split) -> Baseline:
    return Baseline("seasonal-naive", "same weekday last week (t-7)", 0, lambda x: x[:, -7, 0].astype(np.float64))


def window_mean(split: Split) -> Baseline:
    return Baseline("window-mean", "mean of the 14-day window", 0, lambda x: x[:, :, 0].mean(axis=1))


def linear_lags(split: Split) -> Baseline:
    """Least squares on the 14 centred log lags plus an intercept."""
    x, y = centred_target(split.train.x, split.train.y)
    design = np.hstack([x[:, :, 0], np.ones((len(x), 1), np.float32)]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y[:, 0].astype(np.float64), rcond=None)

    def predict(windows: np.ndarray) -> np.ndarray:
        centred, level = centre(windows)
        return _restore(centred[:, :, 0] @ coef[:-1] + coef[-1], level)

    return Baseline("linear-14-lags", "linear regression on the 14 lags (centred log space)", coef.size, predict)


def lightgbm_lags(split: Split, seed: int = 0) -> Baseline:
    """Gradient-boosted trees on the 14 centred log lags plus the window's level."""
    import lightgbm

    def features(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred, level = centre(windows)
        return np.hstack([centred[:, :, 0], level]), level

    train_x, _ = features(split.train.x)
    _, train_y = centred_target(split.train.x, split.train.y)
    valid_x, _ = features(split.validation.x)
    _, valid_y = centred_target(split.validation.x, split.validation.y)
    params = {
        "objective": "regression",
        "learning_rate": 0.03,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.9,
        "seed": seed,
        "num_threads": 2,
        "verbose": -1,
    }
    booster = lightgbm.train(
        params,
        lightgbm.Dataset(train_x, train_y[:, 0]),
        num_boost_round=2000,
        valid_sets=[lightgbm.Dataset(valid_x, valid_y[:, 0])],
        callbacks=[lightgbm.early_stopping(100, verbose=False)],
    )

    def predict(windows: np.ndarray) -> np.ndarray:
        feats, level = features(windows)
        return _restore(booster.predict(feats, num_iteration=booster.best_iteration), level)

    trees = booster.best_iteration
    leaves = int(trees * params["num_leaves"])
    return Baseline("lightgbm-14-lags", f"LightGBM, {trees} trees, on the 14 lags", leaves, predict)


BASELINES: tuple[Callable[[Split], Baseline], ...] = (seasonal_naive, window_mean, linear_lags, lightgbm_lags)
