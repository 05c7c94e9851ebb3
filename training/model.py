"""The LSTM forecaster, with its scaling inside the graph.

Each window is taken to log1p space and centred on its own mean there; the LSTM predicts the
next day's centred log value, and the graph adds the mean back and inverts log1p. The network
only ever sees shapes around zero, so it forecasts stores, items and sales levels it never saw
in training (a store selling 150 a day looks like one selling 15, shifted). The exported file
takes raw units in and gives raw units out: a device needs onnxruntime and nothing of ours.
Training in log space also fits the published metric: squared log error is relative error.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from training.config import WINDOW


@keras.saving.register_keras_serializable(package="shelfcast")
class LogCenter(keras.layers.Layer):
    """window (N, T, 1) -> (log1p(window) - level, level) with level = mean of log1p over time, (N, 1)."""

    def call(self, window):
        # log(x + 1), not log1p: tf2onnx has no converter for Log1p/Expm1
        logged = ops.log(ops.maximum(window, 0.0) + 1.0)
        level = ops.mean(logged, axis=1)
        return logged - ops.expand_dims(level, 1), level

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0], 1)


@keras.saving.register_keras_serializable(package="shelfcast")
class LogRestore(keras.layers.Layer):
    """(centred log forecast, level) -> units, never negative."""

    def call(self, inputs):
        centred, level = inputs
        return ops.maximum(ops.exp(centred + level) - 1.0, 0.0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def build_core(units: int, window: int = WINDOW, dropout: float = 0.2) -> keras.Model:
    """LSTM(units, tanh) -> Dropout -> Dense(1) on centred log windows: the part that is trained and pruned."""
    centred = keras.Input((window, 1), name="centred")
    hidden = keras.layers.LSTM(units, activation="tanh", name="lstm")(centred)
    hidden = keras.layers.Dropout(dropout, name="dropout")(hidden)
    return keras.Model(centred, keras.layers.Dense(1, name="dense")(hidden), name=f"lstm{units}_core")


def wrap_for_units(core: keras.Model) -> keras.Model:
    """Raw units in, raw units out; shares the core's weights, adds no parameters."""
    window = int(core.inputs[0].shape[1])
    history = keras.Input((window, 1), name="history")
    centred, level = LogCenter(name="log_center")(history)
    forecast = LogRestore(name="forecast")([core(centred), level])
    return keras.Model(history, forecast, name=core.name.removesuffix("_core"))


def centre(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of LogCenter, for building training targets: (centred windows, level (N, 1))."""
    logged = np.log1p(np.maximum(x, 0.0))
    level = logged.mean(axis=1)
    return (logged - level[:, None, :]).astype(np.float32), level.astype(np.float32)


def centred_target(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centred windows, centred log next-day target (N, 1))."""
    centred, level = centre(x)
    return centred, (np.log1p(np.maximum(y, 0.0))[:, None] - level).astype(np.float32)
