"""Pruning, INT8, graph cleanup and the report builder, on a tiny model and generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

STORES, ITEMS = (1, 2), (1, 2)


@pytest.fixture(scope="module")
def split(tmp_path_factory, write_sales_to):
    from training.config import DataConfig
    from training.pipeline import load_split

    path = write_sales_to(tmp_path_factory.mktemp("compression") / "sales.csv", stores=STORES, items=ITEMS)
    return load_split(DataConfig(path=path, stores=STORES, items=ITEMS))


@pytest.fixture(scope="module")
def trained_core(split):
    from training.config import TrainConfig
    from training.train import train_core

    return train_core(split, TrainConfig(units=8, epochs=2, batch_size=32, verbose=0)).core


def test_magnitude_mask_zeroes_exactly_the_smallest_entries() -> None:
    from training.prune import magnitude_mask

    values = np.array([[0.1, -5.0, 0.3], [-0.2, 4.0, 0.05]])
    mask = magnitude_mask(values, 0.5)
    assert mask.tolist() == [[False, True, True], [False, True, False]]
    assert magnitude_mask(values, 0.0).all()
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(values, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", [0.3, 0.7])
def test_masks_stay_exact_through_fine_tuning_and_export(trained_core, split, sparsity) -> None:
    import keras

    from training.config import TrainConfig
    from training.pipeline import export_candidate
    from training.prune import onnx_kernel_sparsity, prunable_weights, prune
    from training.train import fit

    core = keras.models.clone_model(trained_core)
    core.set_weights(trained_core.get_weights())
    biases_before = [np.asarray(w.numpy()).copy() for w in core.weights if w.path.endswith("bias")]
    callback = prune(core, sparsity)
    fit(core, split, TrainConfig(units=8, epochs=2, batch_size=32, learning_rate=1e-3, verbose=0), callbacks=[callback])

    kernels = prunable_weights(core)
    assert {w.path.rsplit("/", 1)[-1] for w in kernels} == {"kernel", "recurrent_kernel"}
    assert len(kernels) == 3  # LSTM input kernel, LSTM recurrent kernel, Dense kernel
    for weight, (_, mask) in zip(kernels, callback.pairs, strict=True):
        values = np.asarray(weight.numpy())
        assert np.all(values[mask == 0] == 0)  # pruned entries are exactly zero after Adam steps
        assert np.mean(values == 0) == pytest.approx(round(sparsity * values.size) / values.size)
    biases_after = [np.asarray(w.numpy()) for w in core.weights if w.path.endswith("bias")]
    assert any(
        not np.array_equal(a, b) for a, b in zip(biases_before, biases_after, strict=True)
    )  # trained, not pruned
    assert all(np.count_nonzero(b) == b.size for b in biases_after)

    candidate = export_candidate(core, split, seed=0, started=0.0)
    on_disk = onnx_kernel_sparsity(candidate.onnx_bytes)
    sizes = {"lstm_input_kernel": 4 * 8 * 1, "lstm_recurrent_kernel": 4 * 8 * 8, "dense_kernel": 8}
    assert set(on_disk) == set(sizes)
    for name, size in sizes.items():  # the same count of exact zeros as in Keras, after gate reordering
        assert on_disk[name] == pytest.approx(round(sparsity * size) / size), name


@pytest.mark.slow
def test_int8_file_holds_integer_weights_and_runs(trained_core, split) -> None:
    import onnx
    from onnx import TensorProto

    from training.benchmark import int8_candidate
    from training.evaluate import onnx_predict
    from training.pipeline import export_candidate

    source = export_candidate(trained_core, split, seed=0, started=0.0)
    quantized = int8_candidate(source, split)
    model = onnx.load_from_string(quantized.onnx_bytes)
    ops = {node.op_type for node in model.graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert "MatMulInteger" in ops
    int8 = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8 and np.prod(i.dims) > 1]
    assert sum(int(np.prod(i.dims)) for i in int8) == 4 * 8 * (1 + 8) + 8  # W, R and the Dense kernel
    assert not any(i.data_type == TensorProto.FLOAT and np.prod(i.dims) >= 4 * 8 * 8 for i in model.graph.initializer)
    float_forecast = onnx_predict(source.onnx_bytes, split.test.x)
    int8_forecast = onnx_predict(quantized.onnx_bytes, split.test.x)
    assert not np.array_equal(float_forecast, int8_forecast)  # really computed with integers
    assert np.median(np.abs(int8_forecast - float_forecast) / float_forecast) < 0.05
    from training.quantize import weight_bytes

    float_weights = weight_bytes(onnx.load_from_string(source.onnx_bytes))
    assert weight_bytes(model) < 0.5 * float_weights  # int8 kernels: a quarter; biases stay float


@pytest.mark.slow
def test_graph_cleanup_keeps_outputs_equal(trained_core, split) -> None:
    import onnx

    from training.evaluate import onnx_predict
    from training.export import clean, keras_to_onnx
    from training.model import wrap_for_units

    raw = keras_to_onnx(wrap_for_units(trained_core))
    raw_bytes = raw.SerializeToString()
    cleaned = clean(onnx.load_from_string(raw_bytes))
    cleaned_bytes = cleaned.SerializeToString()
    assert {"Shape", "Expand"} <= {n.op_type for n in raw.graph.node}
    assert not {"Shape", "Expand"} & {n.op_type for n in cleaned.graph.node}
    # the last hidden state comes from Y_h, so the full sequence Y is never written, and Max(x, 0) is Relu
    assert {"Slice", "Max"} <= {n.op_type for n in raw.graph.node}
    assert not {"Slice", "Max"} & {n.op_type for n in cleaned.graph.node}
    (lstm,) = [n for n in cleaned.graph.node if n.op_type == "LSTM"]
    assert lstm.output[0] == "" and lstm.output[1]
    assert len(cleaned_bytes) < len(raw_bytes)
    x = split.test.x
    raw_output = onnx_predict(raw_bytes, x)
    np.testing.assert_array_equal(onnx_predict(cleaned_bytes, x), raw_output)
    assert raw.graph.output[0].name != "forecast" and cleaned.graph.output[0].name == "forecast"


@pytest.mark.slow
def test_export_bytes_do_not_depend_on_initializer_order(trained_core) -> None:
    """tf2onnx lists initializers in a per-process order; the cleaned file must not inherit it."""
    import onnx

    from training.export import clean, keras_to_onnx
    from training.model import wrap_for_units

    raw = keras_to_onnx(wrap_for_units(trained_core))
    shuffled = onnx.load_from_string(raw.SerializeToString())
    reordered = list(reversed([onnx.TensorProto.FromString(i.SerializeToString()) for i in shuffled.graph.initializer]))
    del shuffled.graph.initializer[:]
    shuffled.graph.initializer.extend(reordered)
    assert [i.name for i in shuffled.graph.initializer] != [i.name for i in raw.graph.initializer]
    assert clean(shuffled).SerializeToString() == clean(raw).SerializeToString()


def _fake_meta(name: str, file_bytes: int, mape: float, weight_dtype: str = "float32") -> dict:
    return {
        "technique": "t",
        "derived_from": None,
        "parameters": 100,
        "nonzero_parameters": 100,
        "weight_dtype": weight_dtype,
        "sha256": "0" * 64,
        "size": {"parameter_bytes": 400, "file_bytes": file_bytes, "gzip_bytes": file_bytes // 2},
        "metrics": {
            k: {"mean": mape, "std": 0.1, "runs": [mape - 0.1, mape + 0.1]} for k in ("mape", "wape", "smape", "mae")
        },
        "selected_run": {"seed": 1, "test": {"mape": mape + 0.1}},
    }


def test_report_builder_marks_reference_baseline_and_pareto(tmp_path: Path) -> None:
    from training.report import README_END, README_START, pareto, write_reports

    result = {
        "seconds": 90.0,
        "config": {"seeds": [0, 1], "runs": 2},
        "data": {
            "source": "s.csv",
            "source_sha256": "ab" * 32,
            "stores": [1],
            "items": [1],
            "window_days": 14,
            "windows": {"train": 10, "validation": 2, "test": 5},
        },
        "variants": {
            "lstm64": _fake_meta("lstm64", 70000, 15.0),
            "lstm16": _fake_meta("lstm16", 6000, 17.0),  # misses the reference 16.74
            "int8": _fake_meta("int8", 4000, 16.0, "int8"),
        },
        "baselines": [
            {
                "name": "linear-14-lags",
                "description": "linear",
                "parameters": 15,
                "test": {"mape": 16.5, "wape": 1.0, "smape": 1.0, "mae": 1.0},
            }
        ],
    }
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\noutro\n")
    write_reports(result, tmp_path / "reports", readme)

    document = json.loads((tmp_path / "reports" / "benchmark.json").read_text())
    rows = {r["variant"]: r for r in document["variants"]}
    assert rows["lstm64"]["meets_reference"] is True and rows["lstm16"]["meets_reference"] is False
    assert rows["lstm64"]["beats_linear_baseline"] and not rows["lstm16"]["beats_linear_baseline"]
    assert rows["int8"]["compression_vs_lstm64"]["file_bytes"] == pytest.approx(17.5)
    assert rows["int8"]["published_file_mape"] == pytest.approx(16.1)
    markdown = (tmp_path / "reports" / "benchmark.md").read_text()
    assert "all but lstm16" in markdown and "`int8`, 4,000 bytes" in markdown and "meets the aim" in markdown
    assert (tmp_path / "reports" / "size_vs_mape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "| `lstm16` |" in text
    assert pareto([("a", 1, 3), ("b", 2, 2), ("c", 3, 3), ("d", 2, 1)]) == {"a", "d"}
