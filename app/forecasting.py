"""Forecasting with one variant's session: arrays in, arrays out, nothing of HTTP.

A batch is one onnxruntime call per horizon day for all series together, never a loop of
single calls; multi-day horizons are recursive (each day's forecast becomes the next window's
last value), so errors compound with the horizon.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from itertools import chain

import numpy as np
import onnxruntime as ort

# Larger batches run in slices of this many windows, each its own onnxruntime call. A slice's gate
# buffers stay in cache, and they bound what a call holds: onnxruntime's arena keeps the largest
# buffers it was ever asked for, so one whole 10,000-window lstm64 call left a worker 210 MiB bigger;
# in slices it keeps a slice's worth. Measured (lstm64, 1 thread, no arena): 292 ms whole, 105 ms in
# slices of 256 (128-1,024 within 15%); lstm16 at 10,000 windows: 53 ms whole, 26-31 ms in slices.
CHUNK_WINDOWS = 256
# From this many windows a batch is split in two or more slices even when it would fit in one, so both
# cores work on it: lstm64 x 100 windows took 0.76 ms in one call and 0.53 in two halves on two threads;
# below ~64 windows the hand-off to a second thread costs more than it saves.
SPLIT_MIN_WINDOWS = 96


def slices(n: int) -> list[tuple[int, int]]:
    """(start, stop) of each onnxruntime call for a batch of n windows: an even number of equal slices.

    The grid depends on n alone, never on the thread count, so a window's forecast does not depend on
    BATCH_THREADS: int8 models quantize each call's input with that call's own scale.
    """
    if n < SPLIT_MIN_WINDOWS:
        return [(0, n)]
    count = 2 * -(-n // (2 * CHUNK_WINDOWS))
    size = -(-n // count)
    return [(start, min(start + size, n)) for start in range(0, n, size)]


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
    """Wraps one shared session; onnxruntime's `run` is thread-safe, so requests share it.

    With `batch_threads` > 1, the slices of a batch run on that many threads at once, the calling thread
    among them. Slices are independent, so this scales better than onnxruntime's intra-op threads, which
    split each LSTM step and wait for each other 14 times a call: lstm16 x 10,000 windows took 26 ms with
    2 intra-op threads and 15-21 ms with slices on 2 threads (run releases the GIL).
    """

    def __init__(self, session: ort.InferenceSession, batch_threads: int = 1):
        self._session = session
        self._threads = batch_threads
        # a request uses batch_threads - 1 helpers besides its own thread; at the default of 2, this pool
        # has one for each of FORECAST_CONCURRENCY's default 2 requests at once
        self._pool = ThreadPoolExecutor(batch_threads, thread_name_prefix="slices") if batch_threads > 1 else None
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
        grid = slices(len(batch))
        if len(grid) == 1:
            return self._session.run(self._output_names, {self._input_name: batch})[0][:, 0]
        out = np.empty(len(batch), dtype=np.float32)

        def run_slices(group: Sequence[tuple[int, int]]) -> None:
            for start, stop in group:
                feed = {self._input_name: batch[start:stop]}
                out[start:stop] = self._session.run(self._output_names, feed)[0][:, 0]

        if self._pool is None:
            run_slices(grid)
            return out
        # contiguous groups, one per thread; this thread computes the first instead of waiting idle
        size = -(-len(grid) // self._threads)
        groups = [grid[i : i + size] for i in range(0, len(grid), size)]
        others = [self._pool.submit(run_slices, group) for group in groups[1:]]
        try:
            run_slices(groups[0])
        finally:
            wait(others)  # none still writes into `out` once this returns or raises
        for other in others:
            other.result()  # re-raises a slice's error here
        return out

    def windows(self, histories: Sequence[Sequence[float]]) -> np.ndarray:
        """The last `window` values of each history as one (N, window) float32 array."""
        if any(len(history) < self.window for history in histories):
            raise ValueError(f"every history needs at least {self.window} values")
        # one pass over the floats: 0.3 ms for 1,000 series; np.array of the lists 0.43, a row at a time 1
        values = chain.from_iterable(history[-self.window :] for history in histories)
        return np.fromiter(values, dtype=np.float32, count=len(histories) * self.window).reshape(-1, self.window)

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
