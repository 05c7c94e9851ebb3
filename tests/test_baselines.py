"""The baselines compute what their names say, on the same windows as the LSTMs."""

from __future__ import annotations

import numpy as np
import pytest

from training.windows import Split, WindowSet


def _windows(series: np.ndarray, window: int = 14) -> WindowSet:
    view = np.lib.stride_tricks.sliding_window_view(series, window + 1)
    return WindowSet(view[:, :window, None].astype(np.float32), view[:, window].astype(np.float32), np.zeros(len(view)))


@pytest.fixture
def weekly_split() -> Split:
    """A noiseless weekly cycle: the next day is exactly the value 7 days earlier."""
    cycle = np.array([20, 22, 25, 30, 40, 50, 35], dtype=float)
    windows = _windows(np.tile(cycle, 60))
    n = len(windows)
    return Split(
        windows.take(np.arange(0, n - 120)),
        windows.take(np.arange(n - 120, n - 60)),
        windows.take(np.arange(n - 60, n)),
    )


def test_seasonal_naive_and_window_mean(weekly_split: Split) -> None:
    from training.baselines import seasonal_naive, window_mean

    x = weekly_split.test.x
    np.testing.assert_array_equal(seasonal_naive(weekly_split).predict(x), weekly_split.test.y)
    np.testing.assert_allclose(window_mean(weekly_split).predict(x), x[:, :, 0].mean(axis=1))


def test_linear_lags_learns_the_weekly_lag(weekly_split: Split) -> None:
    from training.baselines import linear_lags

    baseline = linear_lags(weekly_split)
    assert baseline.parameters == 15
    np.testing.assert_allclose(baseline.predict(weekly_split.test.x), weekly_split.test.y, rtol=1e-3)


@pytest.mark.slow
def test_lightgbm_lags_fits_and_is_scale_aware(weekly_split: Split) -> None:
    from training.baselines import lightgbm_lags

    baseline = lightgbm_lags(weekly_split)
    forecast = baseline.predict(weekly_split.test.x)
    assert np.median(np.abs(forecast - weekly_split.test.y) / weekly_split.test.y) < 0.05
    assert baseline.parameters > 0
