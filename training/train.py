"""Fit a forecaster core: seeded, early-stopped on the validation slice, in centred log space."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from training.config import TrainConfig
from training.model import build_core, centred_target
from training.windows import Split


@dataclass(frozen=True)
class TrainResult:
    core: keras.Model
    epochs_run: int
    best_val_loss: float


def fit(core: keras.Model, split: Split, config: TrainConfig, callbacks: list | None = None) -> TrainResult:
    """Adam + MSE, early stopping on the validation slice with the best weights restored."""
    keras.utils.set_random_seed(config.seed)
    core.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    x, y = centred_target(split.train.x, split.train.y)
    has_validation = len(split.validation) > 0
    monitor = "val_loss" if has_validation else "loss"
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience, restore_best_weights=True)
    history = core.fit(
        x,
        y,
        validation_data=centred_target(split.validation.x, split.validation.y) if has_validation else None,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=config.verbose,
        callbacks=[stopper, *(callbacks or [])],
    )
    losses = history.history[monitor]
    return TrainResult(core=core, epochs_run=len(losses), best_val_loss=float(np.min(losses)))


def train_core(split: Split, config: TrainConfig) -> TrainResult:
    keras.utils.set_random_seed(config.seed)
    core = build_core(config.units, window=split.train.x.shape[1], dropout=config.dropout)
    return fit(core, split, config)
