"""Forecasting with the active variant: arrays in, arrays out, nothing of HTTP."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort


class Forecaster:
    """Wraps one shared session; onnxruntime's `run` is thread-safe, so requests share it."""

    def __init__(self, session: ort.InferenceSession):
        self._session = session
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_names = [session.get_outputs()[0].name]
        self.window = int(model_input.shape[1])

    def predict(self, histories: np.ndarray) -> np.ndarray:
        """histories (N, window) float32, oldest first -> next-day forecasts (N,)."""
        batch = histories.reshape(len(histories), self.window, 1)
        return self._session.run(self._output_names, {self._input_name: batch})[0][:, 0]

    def predict_one(self, history: Sequence[float]) -> float:
        window = np.asarray(history[-self.window :], dtype=np.float32)
        return float(self.predict(window[None, :])[0])

    def warm_up(self) -> None:
        self.predict(np.ones((1, self.window), dtype=np.float32))
