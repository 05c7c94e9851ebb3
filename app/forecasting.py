"""Forecasting with one variant's session: arrays in, arrays out, nothing of HTTP.

A batch is one onnxruntime call per horizon day for all series together, never a loop of
single calls; multi-day horizons are recursive (each day's forecast becomes the next window's
last value), so errors compound with the horizon.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

# Larger batches run in slices of this many windows. Without onnxruntime's arena every call maps its
# buffers afresh, and one 10,000-window call spent more time faulting in pages than computing: measured
# (lstm64, 1 thread) 292 ms whole, 105 ms in slices of 256 (128-1,024 were within 15%). Slices also
# bound the memory a call holds: four threads forecasting 1,000 lstm64 windows at once peaked at
# 136 MiB with slices of 512 and 113 MiB with 256 (79 MiB before the first call).
CHUNK_WINDOWS = 256


class _SingleWindowBinding:
    """Input and output buffers bound once, for the commonest call: one window.

    `session.run` converts the input dict, validates names and allocates the output on every call;
    for a model that computes in ~25 µs that costs a quarter of the time. An IOBinding over
    preallocated buffers skips all of it. Bindings are not thread-safe, so each thread has its own.
    """

    def __init__(self, session: ort.InferenceSession, input_name: str, output_name: str, window: int):
        self.window = np.zeros((1, window, 1), dtype=np.float32)
        self.forecast = np.zeros((1, 1), dtype=np.float32)
        self.binding = session.io_binding()
        self.binding.bind_cpu_input(input_name, self.window)
        self.binding.bind_output(
            output_name, "cpu", 0, np.float32, list(self.forecast.shape), self.forecast.ctypes.data
        )


class Forecaster:
    """Wraps one shared session; onnxruntime's `run` is thread-safe, so requests share it."""

    def __init__(self, session: ort.InferenceSession):
        self._session = session
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_names = [session.get_outputs()[0].name]
        self.window = int(model_input.shape[1])
        self._per_thread = threading.local()

    def _single(self) -> _SingleWindowBinding:
        binding = getattr(self._per_thread, "binding", None)
        if binding is None:
            binding = _SingleWindowBinding(self._session, self._input_name, self._output_names[0], self.window)
            self._per_thread.binding = binding
        return binding

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """windows (N, window) float32, oldest first -> next-day forecasts (N,) float32."""
        if len(windows) == 1:
            single = self._single()
            single.window[0, :, 0] = windows[0]
            self._session.run_with_iobinding(single.binding)
            return single.forecast[:, 0].copy()  # the buffer is reused by this thread's next call
        batch = windows.reshape(len(windows), self.window, 1)
        if len(batch) <= CHUNK_WINDOWS:
            return self._session.run(self._output_names, {self._input_name: batch})[0][:, 0]
        out = np.empty(len(batch), dtype=np.float32)
        for start in range(0, len(batch), CHUNK_WINDOWS):
            chunk = batch[start : start + CHUNK_WINDOWS]
            out[start : start + len(chunk)] = self._session.run(self._output_names, {self._input_name: chunk})[0][:, 0]
        return out

    def windows(self, histories: Sequence[Sequence[float]]) -> np.ndarray:
        """The last `window` values of each history as one (N, window) float32 array."""
        out = np.empty((len(histories), self.window), dtype=np.float32)
        for row, history in enumerate(histories):
            out[row] = history[-self.window :]
        return out

    def forecast(self, windows: np.ndarray, horizon: int) -> np.ndarray:
        """(N, window) -> (N, horizon): day 1 from the window, each later day from the window rolled forward."""
        current = np.array(windows, dtype=np.float32, copy=True)
        out = np.empty((len(current), horizon), dtype=np.float32)
        for day in range(horizon):
            out[:, day] = self.predict(current)
            if day + 1 < horizon:
                current[:, :-1] = current[:, 1:]
                current[:, -1] = out[:, day]
        return out

    def warm_up(self) -> None:
        self.predict(np.ones((1, self.window), dtype=np.float32))
