"""14-day windows and the chronological per-series train | validation | test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import WINDOW, DataConfig
from training.data import SalesDataError, Series, load_sales, select_series
from training.windows import series_windows, split_windows

START = pd.Timestamp("2013-01-01")


def expected_counts(length: int) -> tuple[int, int, int]:
    """(train without validation, validation, test) windows for one series of `length` days."""
    windows = length - WINDOW
    train = int(0.8 * windows)
    validation = int(train * 0.1)
    return train - validation, validation, windows - train


def ramp_series(number: int, length: int) -> Series:
    """Values 1000 * number + day index: every target value tells its series and day."""
    values = (1000 * number + np.arange(length)).astype(np.float32)
    return Series(store=number, item=number + 10, start=START, sales=values)


def target_days(y: np.ndarray, tags: np.ndarray, number: int) -> np.ndarray:
    """Day index (within the series) of each target of series `number`, for ramp_series data."""
    return (y[tags == number] - 1000 * number).astype(int)


@pytest.fixture
def generated_series(sales_csv) -> list[Series]:
    return select_series(load_sales(sales_csv), [1, 2], [1, 2], source=sales_csv)


def test_series_windows_alignment():
    values = np.arange(20, dtype=np.float32) * 3
    x, y = series_windows(values)
    assert x.shape == (6, WINDOW)
    assert y.shape == (6,)
    for t in range(6):
        np.testing.assert_array_equal(x[t], values[t : t + WINDOW])
        assert y[t] == values[t + WINDOW]


def test_window_and_split_counts_on_generated_data(generated_series):
    split = split_windows(generated_series)
    fit, validation, test = expected_counts(120)
    assert (fit, validation, test) == (76, 8, 22)  # 106 windows: 84 train (8 of them validation), 22 test
    assert len(split.train) == 4 * fit
    assert len(split.validation) == 4 * validation
    assert len(split.test) == 4 * test
    for part in (split.train, split.validation, split.test):
        assert part.x.shape == (len(part), WINDOW, 1)
        assert part.x.dtype == np.float32
        assert part.y.dtype == np.float32
        assert part.series.shape == (len(part),)
        assert np.bincount(part.series).tolist() == [len(part) // 4] * 4


@pytest.mark.parametrize("length", [16, 17, 30, 33, 57, 120, 365])
def test_split_counts_per_length(length):
    split = split_windows([ramp_series(0, length), ramp_series(1, length + 7)])
    for number, days in ((0, length), (1, length + 7)):
        fit, validation, test = expected_counts(days)
        assert (split.train.series == number).sum() == fit
        assert (split.validation.series == number).sum() == validation
        assert (split.test.series == number).sum() == test
        assert fit + validation + test == days - WINDOW


@pytest.mark.parametrize("length", [16, 30, 120, 365])
def test_split_is_chronological_and_complete(length):
    series = [ramp_series(number, length + 5 * number) for number in range(3)]
    split = split_windows(series)
    for number, s in enumerate(series):
        train = target_days(split.train.y, split.train.series, number)
        validation = target_days(split.validation.y, split.validation.series, number)
        test = target_days(split.test.y, split.test.series, number)
        # in time order inside each part ...
        for days in (train, validation, test):
            assert np.all(np.diff(days) == 1)
        # ... train < validation < test ...
        assert train.max() < test.min()
        if len(validation):
            assert train.max() < validation.min()
            assert validation.max() < test.min()
        # ... and together every target day exactly once, the first one right after the first window
        together = np.concatenate([train, validation, test])
        np.testing.assert_array_equal(together, np.arange(WINDOW, len(s.sales)))


def test_validation_is_the_end_of_the_training_period():
    split = split_windows([ramp_series(0, 214)])  # 200 windows: 160 train of which the last 16 validate
    assert target_days(split.train.y, split.train.series, 0).tolist() == list(range(14, 14 + 144))
    assert target_days(split.validation.y, split.validation.series, 0).tolist() == list(range(158, 174))
    assert target_days(split.test.y, split.test.series, 0).tolist() == list(range(174, 214))


def test_x_y_alignment_on_generated_data(generated_series):
    split = split_windows(generated_series)
    parts = (split.train, split.validation, split.test)
    for number, s in enumerate(generated_series):
        x = np.concatenate([part.x[part.series == number, :, 0] for part in parts])
        y = np.concatenate([part.y[part.series == number] for part in parts])
        assert len(y) == len(s.sales) - WINDOW
        for t in range(len(y)):
            assert y[t] == s.sales[t + WINDOW]
            np.testing.assert_array_equal(x[t], s.sales[t : t + WINDOW])


def test_too_short_series_names_the_series():
    good = ramp_series(0, 60)
    short = Series(store=3, item=7, start=START, sales=np.ones(15, dtype=np.float32))
    with pytest.raises(SalesDataError) as excinfo:
        split_windows([good, short])
    message = str(excinfo.value)
    assert message.startswith("store 3 item 7: 15 day(s) is too short")
    assert "need at least 16" in message


def test_shortest_usable_series_splits():
    split = split_windows([ramp_series(0, WINDOW + 2)])
    assert (len(split.train), len(split.validation), len(split.test)) == (1, 0, 1)


def test_too_few_windows_for_the_fractions_names_the_series():
    with pytest.raises(SalesDataError, match=r"^store 4 item 14: too few windows \(2\)"):
        split_windows([ramp_series(4, WINDOW + 2)], train_fraction=0.3)


@pytest.mark.parametrize(("train_fraction", "validation_fraction"), [(0.0, 0.1), (1.0, 0.1), (0.8, 1.0), (0.8, -0.1)])
def test_bad_fractions_rejected(train_fraction, validation_fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        split_windows([ramp_series(0, 60)], train_fraction=train_fraction, validation_fraction=validation_fraction)


@pytest.mark.realdata
def test_reference_split_on_real_data(real_data_path):
    config = DataConfig(path=real_data_path)
    assert config.stores == (1, 2, 3, 4, 5)
    assert config.items == tuple(range(1, 11))
    series = select_series(load_sales(real_data_path), config.stores, config.items, source=real_data_path)
    assert len(series) == 50
    split = split_windows(series, config.window, config.train_fraction, config.validation_fraction)
    assert len(split.train) + len(split.validation) == 72_450
    assert len(split.validation) == 50 * int(1449 * 0.1)
    assert len(split.test) == 18_150
