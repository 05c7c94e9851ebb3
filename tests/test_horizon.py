"""The horizon evaluation rolls forecasts forward exactly as the service does."""

from __future__ import annotations

import numpy as np
import pytest

from app.forecasting import Forecaster


@pytest.mark.slow
def test_recursive_forecast_matches_the_service_and_origins_stay_in_the_test_period(tmp_path, write_sales_to) -> None:
    from training.config import DataConfig, TrainConfig
    from training.evaluate import onnx_session
    from training.export import export
    from training.horizon import mape_by_day, origins, recursive_forecast
    from training.model import wrap_for_units
    from training.pipeline import load_split
    from training.train import train_core

    path = write_sales_to(tmp_path / "sales.csv", stores=(1,), items=(1, 2))
    data = DataConfig(path=path, stores=(1,), items=(1, 2))
    split = load_split(data)
    core = train_core(split, TrainConfig(units=8, epochs=1, batch_size=32, verbose=0)).core
    export(wrap_for_units(core), tmp_path / "m.onnx")

    windows, actuals = origins(data, horizon=5)
    per_series = len(split.test) // 2 - 5 + 1  # test targets that have 5 actual days from them on
    assert windows.shape == (2 * per_series, 14) and actuals.shape == (2 * per_series, 5)
    np.testing.assert_array_equal(windows[0], split.test.x[0, :, 0])  # first origin = first test window
    np.testing.assert_array_equal(actuals[0, 0], split.test.y[0])

    ours = recursive_forecast(tmp_path / "m.onnx", windows, 5)
    service = Forecaster(onnx_session(tmp_path / "m.onnx")).forecast(windows, 5)
    np.testing.assert_allclose(ours, service, rtol=1e-6)
    assert mape_by_day(actuals, ours)[0] == pytest.approx(
        float(np.mean(np.abs(ours[:, 0] - actuals[:, 0]) / actuals[:, 0]) * 100), rel=1e-6
    )


def test_mape_by_day_skips_zero_actuals() -> None:
    from training.horizon import mape_by_day

    actuals = np.array([[10.0, 0.0], [20.0, 5.0]])
    forecasts = np.array([[11.0, 3.0], [18.0, 4.0]])
    assert mape_by_day(actuals, forecasts) == pytest.approx([10.0, 20.0])
