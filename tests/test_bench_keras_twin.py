"""The benchmark's Keras twin is the committed ONNX model, not a look-alike: parity on every models/*.onnx.

Float files must match onnxruntime to float32 rounding. INT8 files cannot: onnxruntime quantizes the
activations per batch, while Keras runs the dequantized weights in float32. So for those the twin must
equal an independent numpy run of the ONNX LSTM equations on the dequantized weights, and be close
(median, not max) to onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODELS, WEEKLY

ONNX_FILES = sorted(MODELS.glob("*.onnx"))
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-3  # units; forecasts are ~5..300 units
INT8_MEDIAN_RTOL = 0.02

pytestmark = pytest.mark.slow


def realistic_windows(count: int = 2000, seed: int = 0) -> np.ndarray:
    """Poisson daily sales at levels 5..150 with a weekly pattern, plus one all-zero window: (N, 14, 1) float32."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(5, 150, (count, 1))
    weekday = (rng.integers(0, 7, (count, 1)) + np.arange(14)) % 7
    sales = rng.poisson(levels * WEEKLY[weekday]).astype(np.float32)
    return np.concatenate([sales, np.zeros((1, 14), np.float32)])[..., None]


def onnx_lstm_reference(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The ONNX LSTM spec (gates i, o, f, c) plus the in-graph log scaling, in float64 numpy: no Keras involved."""
    logged = np.log(np.maximum(x[..., 0].astype(np.float64), 0.0) + 1.0)
    level = logged.mean(axis=1, keepdims=True)
    centred = logged - level
    hidden = w["R"].shape[-1]
    kernel, recurrent = w["W"][0].astype(np.float64), w["R"][0].astype(np.float64)
    bias = w["B"][0, : 4 * hidden] + w["B"][0, 4 * hidden :].astype(np.float64)
    h = np.zeros((len(x), hidden))
    c = np.zeros((len(x), hidden))
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for step in range(centred.shape[1]):
        gates = centred[:, step : step + 1] @ kernel.T + h @ recurrent.T + bias
        i, o, f, g = np.split(gates, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    forecast = h @ w["kernel"].astype(np.float64) + w["bias"] + level
    return np.maximum(np.exp(forecast) - 1.0, 0.0)


def run_onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / |b|, with |b| floored at 1 unit (forecasts near zero are compared absolutely)."""
    return np.abs(a - b) / np.maximum(np.abs(b), 1.0)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return realistic_windows()


@pytest.fixture(scope="module")
def twins() -> dict[str, tuple]:
    """Each file's (Keras twin, description, ONNX-layout float weights, quantized?), built once per module."""
    import onnx

    from bench.keras_twin import keras_twin, onnx_weights

    built = {}
    for path in ONNX_FILES:
        model, description = keras_twin(path)
        weights, quantized = onnx_weights(onnx.load(path))
        built[path.stem] = (model, description, weights, quantized)
    return built


def test_every_committed_model_is_covered() -> None:
    names = {p.stem for p in ONNX_FILES}
    assert {"lstm64", "lstm32", "lstm16", "int8"} <= names, names


@pytest.mark.parametrize("path", ONNX_FILES, ids=lambda p: p.stem)
def test_twin_matches_onnxruntime(path: Path, twins, windows) -> None:
    model, description, weights, quantized = twins[path.stem]
    twin = np.asarray(model(windows, training=False))
    served = run_onnxruntime(path, windows)
    reference = onnx_lstm_reference(windows, weights)
    assert twin.shape == served.shape == (len(windows), 1)
    assert np.isfinite(twin).all()

    # The twin computes the ONNX equations on the file's (dequantized) weights, Keras or not.
    np.testing.assert_allclose(twin, reference, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    errors = relative(twin, served)
    print(f"{path.stem}: {description}; vs onnxruntime max rel {errors.max():.2e}, median {np.median(errors):.2e}")
    if quantized:
        assert "int8" in description
        assert np.median(errors) < INT8_MEDIAN_RTOL
    else:
        assert description == "float32 weights copied from the ONNX file"
        np.testing.assert_allclose(reference, served, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)  # the reference is ONNX's
        np.testing.assert_allclose(twin, served, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
        assert errors.max() <= FLOAT_RTOL


@pytest.mark.parametrize("path", ONNX_FILES, ids=lambda p: p.stem)
def test_twin_has_the_float_parameter_count(path: Path, twins) -> None:
    model, _, weights, _ = twins[path.stem]
    hidden = weights["R"].shape[-1]
    assert model.count_params() == 4 * hidden * (hidden + 2) + hidden + 1


@pytest.mark.parametrize("path", [p for p in ONNX_FILES if "int8" in p.stem], ids=lambda p: p.stem)
def test_dequantized_weights_are_the_float_source_within_half_a_step(path: Path, twins) -> None:
    """Checks the DynamicQuantizeLSTM layout (W [1, in, 4H], transposed) against the float model it came from."""
    card = path.with_suffix(".json")
    source = json.loads(card.read_text()).get("derived_from") if card.is_file() else None
    if source not in twins:
        pytest.skip(f"no float source model for {path.stem}")
    quantized, floats = twins[path.stem][2], twins[source][2]
    for name in ("W", "R", "kernel"):
        error = np.abs(quantized[name] - floats[name]).max()
        scale = np.diff(np.unique(quantized[name])).min()  # one quantization step
        assert error <= scale / 2 * 1.001, (name, error, scale)
    np.testing.assert_array_equal(quantized["B"], floats["B"])


def test_tf_function_matches_eager(twins, windows) -> None:
    """The benchmark also times the twin under tf.function; the traced graph must compute the same thing."""
    import tensorflow as tf

    model = twins["lstm32"][0] if "lstm32" in twins else next(iter(twins.values()))[0]
    traced = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    np.testing.assert_allclose(
        traced(windows).numpy(), np.asarray(model(windows, training=False)), rtol=1e-5, atol=1e-4
    )


def test_a_wrong_gate_order_breaks_parity(twins, windows) -> None:
    """Loading the ONNX gate order (i, o, f, c) straight into Keras (i, f, c, o) must be caught by the parity check."""
    from bench.keras_twin import keras_lstm_weights
    from training.model import build_core, wrap_for_units

    name = "lstm32" if "lstm32" in twins else next(iter(twins))
    weights = twins[name][2]
    core = build_core(weights["R"].shape[-1])
    core.get_layer("lstm").set_weights(keras_lstm_weights(weights["W"], weights["R"], weights["B"], gates=(0, 1, 2, 3)))
    core.get_layer("dense").set_weights([weights["kernel"], weights["bias"]])
    swapped = np.asarray(wrap_for_units(core)(windows, training=False))
    errors = relative(swapped, run_onnxruntime(MODELS / f"{name}.onnx", windows))
    assert errors.max() > 100 * FLOAT_RTOL


@pytest.mark.parametrize("quantize", [False, True], ids=["float", "int8"])
def test_newer_export_graph_shape_is_supported(tmp_path: Path, windows, quantize: bool) -> None:
    """Newer exports read the LSTM's Y_h and use Relu, with fresh tensor names; the twin must not care."""
    import onnx

    from bench.keras_twin import keras_twin
    from training.export import compact_names, max_zero_to_relu, read_final_hidden_state
    from training.quantize import quantize_int8

    source = MODELS / "lstm32.onnx"
    if not source.is_file():
        pytest.skip("models/lstm32.onnx not present")
    model = onnx.load(source)
    read_final_hidden_state(model)
    max_zero_to_relu(model)
    compact_names(model)
    assert "Slice" not in {n.op_type for n in model.graph.node}
    data = model.SerializeToString()
    path = tmp_path / "newer.onnx"
    path.write_bytes(quantize_int8(data) if quantize else data)

    twin, description = keras_twin(path)
    assert ("int8" in description) == quantize
    served = run_onnxruntime(path, windows)
    errors = relative(np.asarray(twin(windows, training=False)), served)
    assert np.median(errors) < INT8_MEDIAN_RTOL if quantize else errors.max() <= FLOAT_RTOL
