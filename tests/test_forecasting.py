"""The Forecaster's single-window fast path: same answers as a batch, from many threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest

from app.benchmarking import sample_windows
from app.forecasting import CHUNK_WINDOWS, SPLIT_MIN_WINDOWS, Forecaster, slices
from app.registry import discover, open_session, ready
from app.settings import REPO_MODELS_DIR, Settings


@pytest.fixture(scope="module", params=["lstm16", "lstm16-int8"])
def loaded(request: pytest.FixtureRequest) -> tuple[str, Forecaster]:
    settings = Settings(model_variant=request.param)
    return request.param, ready(discover(REPO_MODELS_DIR)[request.param], settings).forecaster


def test_single_window_equals_its_row_of_a_batch(loaded: tuple[str, Forecaster]) -> None:
    variant, forecaster = loaded
    windows = sample_windows(64, forecaster.window, seed=3)
    batch = forecaster.predict(windows)
    singles = np.concatenate([forecaster.predict(windows[i : i + 1]) for i in range(len(windows))])
    assert singles.shape == batch.shape == (64,)
    assert len(np.unique(singles)) > 32  # distinct windows, distinct forecasts
    if "int8" in variant:
        # dynamic quantization picks one activation scale per call, from all of its windows: a series'
        # int8 forecast moves a little with the company it is batched in (seen: up to 2.3%)
        np.testing.assert_allclose(singles, batch, rtol=0.05)
        assert not np.array_equal(singles, batch)
    else:
        np.testing.assert_allclose(singles, batch, rtol=1e-5)


def test_an_answer_is_not_overwritten_by_the_next_call(loaded: tuple[str, Forecaster]) -> None:
    _, forecaster = loaded
    low, high = np.full((1, 14), 5.0, np.float32), np.full((1, 14), 500.0, np.float32)
    first = forecaster.predict(low)
    kept = first.copy()
    forecaster.predict(high)
    np.testing.assert_array_equal(first, kept)


def test_threads_calling_at_once_each_get_their_own_answer(loaded: tuple[str, Forecaster]) -> None:
    _, forecaster = loaded
    windows = sample_windows(400, forecaster.window, seed=4)
    expected = np.concatenate([forecaster.predict(windows[i : i + 1]) for i in range(len(windows))])

    def one(i: int) -> float:
        return float(forecaster.predict(windows[i : i + 1])[0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = np.array(list(pool.map(one, range(len(windows)))), dtype=np.float32)
            np.testing.assert_array_equal(got, expected)


def test_sessions_have_explicit_threads_and_sleeping_pool_threads() -> None:
    session = open_session(discover(REPO_MODELS_DIR)["lstm16"], Settings(ort_intra_op_threads=2))
    options = session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.enable_cpu_mem_arena is True  # bounded by the slice size: see the next test
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("batch_threads", [1, 2])
def test_a_large_batch_does_not_leave_the_process_larger(batch_threads: int) -> None:
    """onnxruntime's arena keeps its largest buffers: one whole 10,000-window lstm64 call kept ~210 MiB."""
    settings = Settings(batch_threads=batch_threads)
    forecaster = ready(discover(REPO_MODELS_DIR)["lstm64"], settings).forecaster
    process = psutil.Process()
    before = process.memory_info().rss
    windows = sample_windows(10_000, forecaster.window, seed=5)
    for _ in range(3):
        forecaster.predict(windows)
    grown_mib = (process.memory_info().rss - before) / 2**20
    assert grown_mib < 80, f"RSS grew {grown_mib:.0f} MiB"


def test_a_batch_larger_than_a_slice_equals_one_session_call_per_slice(loaded: tuple[str, Forecaster]) -> None:
    variant, forecaster = loaded
    session = open_session(discover(REPO_MODELS_DIR)[variant], Settings())
    windows = sample_windows(CHUNK_WINDOWS * 2 + 37, forecaster.window, seed=6)
    whole = forecaster.predict(windows)
    assert whole.shape == (len(windows),) and whole.dtype == np.float32
    for start, stop in slices(len(windows)):
        piece = session.run(None, {"history": windows[start:stop, :, None]})[0][:, 0]
        np.testing.assert_array_equal(whole[start:stop], piece)


@pytest.mark.parametrize("n", [2, SPLIT_MIN_WINDOWS - 1, SPLIT_MIN_WINDOWS, 257, 1_000, 10_001])
def test_slices_cover_the_batch_in_an_even_number_of_equal_calls_no_larger_than_a_slice(n: int) -> None:
    grid = slices(n)
    assert [start for start, _ in grid] == [0, *(stop for _, stop in grid[:-1])] and grid[-1][1] == n
    sizes = [stop - start for start, stop in grid]
    if n < SPLIT_MIN_WINDOWS:
        assert grid == [(0, n)]  # a hand-off to a second thread would cost more than it saves
    else:
        assert len(grid) % 2 == 0 and max(sizes) <= CHUNK_WINDOWS and max(sizes) - min(sizes) <= len(grid)


@pytest.mark.parametrize("n", [SPLIT_MIN_WINDOWS + 4, CHUNK_WINDOWS * 7 + 11])
@pytest.mark.parametrize("variant", ["lstm16", "lstm16-int8"])
def test_slices_on_several_threads_give_the_same_forecasts_in_order(variant: str, n: int) -> None:
    serial = ready(discover(REPO_MODELS_DIR)[variant], Settings(model_variant=variant, batch_threads=1)).forecaster
    parallel = ready(discover(REPO_MODELS_DIR)[variant], Settings(model_variant=variant, batch_threads=3)).forecaster
    windows = sample_windows(n, serial.window, seed=8)
    expected = serial.predict(windows)
    assert len(np.unique(expected)) > len(windows) // 2
    for _ in range(3):  # the same slices, so even int8's per-call activation scale is the same
        np.testing.assert_array_equal(parallel.predict(windows), expected)


def test_a_failing_slice_fails_the_whole_batch() -> None:
    session = open_session(discover(REPO_MODELS_DIR)["lstm16"], Settings())

    class FailsOnThirdSlice:
        """The real session, except that the slice starting at window 512 raises as onnxruntime would."""

        def __getattr__(self, name: str):
            return getattr(session, name)

        def run(self, outputs, feed):
            if feed["history"][0, 0, 0] == 512:
                raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : slice failed")
            return session.run(outputs, feed)

    forecaster = Forecaster(FailsOnThirdSlice(), batch_threads=2)
    windows = np.repeat(np.arange(CHUNK_WINDOWS * 4, dtype=np.float32)[:, None], forecaster.window, axis=1)
    with pytest.raises(RuntimeError, match="slice failed"):
        forecaster.predict(windows)
    assert forecaster.predict(windows[:CHUNK_WINDOWS]).shape == (CHUNK_WINDOWS,)  # and it still serves


def test_windows_are_the_last_days_of_each_history_oldest_first(loaded: tuple[str, Forecaster]) -> None:
    _, forecaster = loaded
    histories = [list(range(30)), [5.5] * 14, list(range(100, 120))]
    windows = forecaster.windows(histories)
    assert windows.dtype == np.float32 and windows.shape == (3, 14)
    np.testing.assert_array_equal(windows[0], np.arange(16, 30))
    np.testing.assert_array_equal(windows[1], np.full(14, 5.5))
    np.testing.assert_array_equal(windows[2], np.arange(106, 120))
    with pytest.raises(ValueError, match="at least 14"):
        forecaster.windows([list(range(30)), [1.0] * 13])
