"""End to end: train a tiny LSTM on generated data, export ONNX, publish, and check the contract.

TensorFlow-backed modules are imported inside the tests so collecting this file stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VARIANT = "tiny"
STORES = (1, 2)
ITEMS = (1, 2)


@dataclass(frozen=True)
class Trained:
    meta: dict
    models_dir: Path
    data_path: Path

    @property
    def onnx_path(self) -> Path:
        return self.models_dir / f"{VARIANT}.onnx"

    @property
    def json_path(self) -> Path:
        return self.models_dir / f"{VARIANT}.json"


def tiny_data_config(path: Path):
    from training.config import DataConfig

    return DataConfig(path=path, stores=STORES, items=ITEMS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, write_sales_to) -> Trained:
    from training.config import TrainConfig
    from training.pipeline import train_variant

    root = tmp_path_factory.mktemp("pipeline")
    data_path = write_sales_to(root / "sales.csv", stores=STORES, items=ITEMS)
    config = TrainConfig(units=8, epochs=2, batch_size=32, seed=0, verbose=0)
    meta = train_variant(VARIANT, tiny_data_config(data_path), config, runs=2, models_dir=root / "models")
    return Trained(meta=meta, models_dir=root / "models", data_path=data_path)


@pytest.fixture(scope="module")
def test_windows(trained):
    from training.pipeline import load_split

    return load_split(tiny_data_config(trained.data_path)).test


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    from training.evaluate import onnx_session

    return onnx_session(path).run(None, {"history": np.asarray(x, dtype=np.float32)})[0]


# --- published artifacts ----------------------------------------------------------------------


@pytest.mark.slow
def test_publishes_onnx_and_json_side_by_side(trained):
    assert sorted(p.name for p in trained.models_dir.iterdir()) == [f"{VARIANT}.json", f"{VARIANT}.onnx"]
    on_disk = json.loads(trained.json_path.read_text())
    assert on_disk == json.loads(json.dumps(trained.meta))  # the returned metadata is what was written
    data = trained.onnx_path.read_bytes()
    assert on_disk["file"] == f"{VARIANT}.onnx"
    assert on_disk["variant"] == VARIANT
    assert on_disk["sha256"] == hashlib.sha256(data).hexdigest()
    assert on_disk["size"]["file_bytes"] == len(data)
    assert on_disk["units"] == 8
    assert on_disk["size"]["parameter_bytes"] == 4 * on_disk["parameters"]
    # LSTM(8) on 1 feature: 4 * (8 * (1 + 8) + 8) = 320 weights; Dense(8 -> 1): 9
    assert on_disk["parameters"] == 4 * (8 * (1 + 8) + 8) + 9


@pytest.mark.slow
def test_metadata_records_both_runs(trained):
    meta = trained.meta
    assert [r["seed"] for r in meta["runs"]] == [0, 1]
    assert meta["training"]["seeds"] == [0, 1]
    for key in ("mape", "wape", "smape", "mae"):
        summary = meta["metrics"][key]
        runs = [r["test"][key] for r in meta["runs"]]
        assert summary["runs"] == runs
        assert len(summary["runs"]) == 2
        assert summary["mean"] == pytest.approx(np.mean(runs))
        assert summary["std"] == pytest.approx(np.std(runs))
        assert all(math.isfinite(v) and v > 0 for v in runs)
    best = min(meta["runs"], key=lambda r: r["validation"]["mape"])
    assert meta["selected_run"]["seed"] == best["seed"]
    assert meta["selected_run"]["test"] == best["test"]
    assert meta["data"]["windows"] == {"train": 4 * 76, "validation": 4 * 8, "test": 4 * 22}
    assert meta["runs"][0]["test"]["windows"] == 4 * 22
    assert meta["data"]["source_sha256"] == hashlib.sha256(trained.data_path.read_bytes()).hexdigest()
    assert all(r["onnx_vs_keras_max_abs_diff"] < 1e-3 for r in meta["runs"])
    assert meta["io"]["input"]["shape"] == [None, 14, 1]


@pytest.mark.slow
def test_published_file_is_the_selected_run(trained, test_windows):
    """The file's own test MAPE (onnxruntime) is the selected run's recorded test MAPE."""
    from training.evaluate import metrics, onnx_predict

    measured = metrics(test_windows.y, onnx_predict(trained.onnx_path, test_windows.x))
    assert measured["mape"] == pytest.approx(trained.meta["selected_run"]["test"]["mape"], rel=1e-6)
    assert measured["windows"] == len(test_windows)


@pytest.mark.slow
def test_onnx_graph_is_native_lstm_without_state_plumbing(trained):
    import onnx

    model = onnx.load(str(trained.onnx_path))
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("LSTM") == 1
    for plumbing in ("Expand", "Shape", "ConstantOfShape"):
        assert plumbing not in ops
    lstm = next(node for node in model.graph.node if node.op_type == "LSTM")
    assert len(lstm.input) <= 5 or not any(lstm.input[5:7])  # no initial_h / initial_c

    (graph_input,) = model.graph.input
    assert graph_input.name == "history"
    dims = graph_input.type.tensor_type.shape.dim
    assert len(dims) == 3
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [14, 1]
    (graph_output,) = model.graph.output
    assert graph_output.name == "forecast"
    assert [d.dim_value for d in graph_output.type.tensor_type.shape.dim[1:]] == [1]


@pytest.mark.slow
def test_forecast_is_non_negative(trained):
    histories = np.stack(
        [
            np.zeros(14),
            np.full(14, -5.0),  # negative input is clamped to zero inside the graph
            np.r_[np.zeros(13), 1.0],
            np.full(14, 1e5),
            np.linspace(0, 300, 14),
        ]
    )[..., None]
    forecast = run_onnx(trained.onnx_path, histories)
    assert forecast.shape == (5, 1)
    assert np.all(np.isfinite(forecast))
    assert np.all(forecast >= 0)
    assert forecast[1, 0] == forecast[0, 0]
    assert forecast[3, 0] > 1e4  # keeps the level of the history


@pytest.mark.slow
def test_forecast_scales_with_the_history(trained, test_windows):
    # the test windows with the highest floor, all values >= 20
    floors = test_windows.x.min(axis=(1, 2))
    chosen = test_windows.x[np.argsort(floors)[-8:]]
    assert chosen.min() >= 20
    base = run_onnx(trained.onnx_path, chosen)[:, 0]
    scaled = run_onnx(trained.onnx_path, chosen * 10)[:, 0]
    assert np.all(base > 0)
    np.testing.assert_allclose(scaled / base, 10, rtol=0.15)


@pytest.mark.slow
def test_onnx_matches_keras_wrapped_model(tmp_path, test_windows):
    import keras

    from training.export import export
    from training.model import build_core, wrap_for_units

    keras.utils.set_random_seed(7)
    core = build_core(8)
    model = wrap_for_units(core)
    assert model.count_params() == core.count_params()  # the wrapper adds no parameters
    path = tmp_path / "parity.onnx"
    proto = export(model, path)
    assert path.read_bytes() == proto.SerializeToString()

    rng = np.random.default_rng(1)
    x = np.concatenate([test_windows.x, rng.poisson(5.0, (16, 14, 1)).astype(np.float32)])
    x[-1] = 0.0
    expected = model.predict(x, batch_size=256, verbose=0)
    actual = run_onnx(path, x)
    assert actual.shape == expected.shape == (len(x), 1)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_hand_computed():
    from training.evaluate import metrics

    result = metrics(np.array([10.0, 0.0, 20.0, 5.0]), np.array([[12.0], [3.0], [15.0], [5.0]]))
    # |errors| = 2, 3, 5, 0
    assert result["mape"] == pytest.approx((2 / 10 + 5 / 20 + 0 / 5) / 3 * 100)  # 15%, the zero actual skipped
    assert result["zero_actuals_skipped_in_mape"] == 1
    assert result["wape"] == pytest.approx(10 / 35 * 100)
    assert result["smape"] == pytest.approx((4 / 22 + 6 / 3 + 10 / 35 + 0) / 4 * 100)
    assert result["mae"] == pytest.approx(2.5)
    assert result["windows"] == 4


def test_metrics_perfect_forecast():
    from training.evaluate import metrics

    result = metrics(np.array([3.0, 7.0, 1.0]), np.array([3.0, 7.0, 1.0]))
    assert (result["mape"], result["wape"], result["smape"], result["mae"]) == (0.0, 0.0, 0.0, 0.0)
    assert result["zero_actuals_skipped_in_mape"] == 0


def test_metrics_all_zero_actuals():
    from training.evaluate import metrics

    result = metrics(np.array([0.0, 0.0]), np.array([0.0, 1.0]))
    assert math.isnan(result["mape"])
    assert math.isnan(result["wape"])
    assert result["zero_actuals_skipped_in_mape"] == 2
    assert result["smape"] == pytest.approx(100.0)  # 0/0 counts as 0, |1-0| / ((0+1)/2) = 2
    assert result["mae"] == pytest.approx(0.5)


# --- command line -----------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_bad_csv_exits_1_with_one_line_error(write_csv, tmp_path):
    path = write_csv("date,store,item,sales\n2013-01-01,1,1,3\n2013-01-02,1,1,-2\n", "bad.csv")
    models = tmp_path / "models"
    result = run_cli("train", "--data", str(path), "--models-dir", str(models), "--quiet", "--runs", "1")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]]
    assert errors[0] == f"error: {path}: line 3: column 'sales' must be >= 0, got '-2'"
    assert result.stdout == ""
    assert not models.exists()


def test_cli_reversed_store_range_is_a_usage_error():
    result = run_cli("train", "--stores", "5-1")
    assert result.returncode == 2
    assert "argument --stores" in result.stderr
    assert "'5-1'" in result.stderr
    assert result.stderr.startswith("usage:")
