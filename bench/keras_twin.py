"""Rebuild a committed ONNX forecaster as the same Keras 3 model, to time both runtimes on one model.

A benchmark that compares onnxruntime with Keras is only fair if both run the identical network, so
the twin is not retrained: it is `build_core` + `wrap_for_units` with every weight read from the ONNX
file. Layers are found by op type and tensor shape, never by tensor name (names like "t8" change
between exports, and newer exports read the LSTM's Y_h and use Relu; neither matters here).

Layouts: ONNX `LSTM` stores W [1, 4H, in], R [1, 4H, H], B [1, 8H] (input biases, then recurrent)
with gates in the order i, o, f, c. onnxruntime's `DynamicQuantizeLSTM` stores int8 W [1, in, 4H]
and R [1, H, 4H], the transpose, with a per-tensor scale and zero point each. Keras stores kernel
[in, 4H], recurrent_kernel [H, 4H] and one bias [4H] with gates i, f, c, o.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import numpy_helper

from training.model import build_core, wrap_for_units

FLOAT_DESCRIPTION = "float32 weights copied from the ONNX file"
INT8_DESCRIPTION = "int8 weights dequantized to float32 (Keras has no int8 LSTM kernel)"

# Keras gate k is ONNX gate KERAS_FROM_ONNX[k]: Keras i, f, c, o <- ONNX i(0), f(2), c(3), o(1).
KERAS_FROM_ONNX = (0, 2, 3, 1)
_KERAS_ACTIVATIONS = [b"Sigmoid", b"Tanh", b"Tanh"]  # recurrent activation, activation, cell output activation


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every initializer and Constant-node output, by tensor name."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _only(graph: onnx.GraphProto, op_types: set[str]) -> onnx.NodeProto:
    nodes = [node for node in graph.node if node.op_type in op_types]
    if len(nodes) != 1:
        raise ValueError(f"expected exactly one {sorted(op_types)} node, found {len(nodes)}")
    return nodes[0]


def _consumer(graph: onnx.GraphProto, name: str, op_type: str) -> onnx.NodeProto:
    for node in graph.node:
        if node.op_type == op_type and name in node.input:
            return node
    raise ValueError(f"no {op_type} node reads {name!r}")


def _other_constant(node: onnx.NodeProto, known: str, constants: dict[str, np.ndarray]) -> np.ndarray:
    """The constant operand of a binary node whose other operand is `known`."""
    (other,) = [name for name in node.input if name != known]
    if other not in constants:
        raise ValueError(f"{node.op_type} {node.name!r}: operand {other!r} is not a constant")
    return constants[other]


def _dequantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """(q - zero_point) * scale, in float32 (onnxruntime's per-tensor int8 convention)."""
    return ((values.astype(np.float32) - zero_point.astype(np.float32)) * scale.astype(np.float32)).astype(np.float32)


def keras_lstm_weights(
    w: np.ndarray, r: np.ndarray, b: np.ndarray, gates: tuple[int, ...] = KERAS_FROM_ONNX
) -> list[np.ndarray]:
    """ONNX LSTM W [1, 4H, in], R [1, 4H, H], B [1, 8H] -> Keras [kernel, recurrent_kernel, bias].

    `gates` is exposed so a test can show that a wrong order breaks parity.
    """
    hidden = r.shape[-1]
    w_gates = np.split(w[0], 4, axis=0)  # each [H, in]
    r_gates = np.split(r[0], 4, axis=0)  # each [H, H]
    b_gates = np.split(b[0][: 4 * hidden] + b[0][4 * hidden :], 4)  # Keras has one bias: Wb + Rb
    kernel = np.concatenate([w_gates[g].T for g in gates], axis=1)
    recurrent = np.concatenate([r_gates[g].T for g in gates], axis=1)
    bias = np.concatenate([b_gates[g] for g in gates])
    return [a.astype(np.float32) for a in (kernel, recurrent, bias)]


def onnx_weights(model: onnx.ModelProto) -> tuple[dict[str, np.ndarray], bool]:
    """(weights, quantized): float32 W, R, B in ONNX LSTM layout, dense kernel [H, 1] and bias [1].

    INT8 files are dequantized, so both kinds come out in one layout for `keras_lstm_weights`.
    """
    graph = model.graph
    constants = _constants(graph)
    lstm = _only(graph, {"LSTM", "DynamicQuantizeLSTM"})
    dense = _only(graph, {"MatMul", "MatMulInteger"})
    quantized = lstm.op_type == "DynamicQuantizeLSTM"
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in lstm.attribute}
    if attributes.get("direction", b"forward") != b"forward":
        raise ValueError("only a forward LSTM has a Keras twin here")
    if attributes.get("activations", _KERAS_ACTIVATIONS) != _KERAS_ACTIVATIONS or {"clip", "input_forget"} & set(
        attributes
    ):
        raise ValueError(f"LSTM attributes {attributes} differ from keras.layers.LSTM(activation='tanh')")
    if len(lstm.input) > 7 and lstm.input[7]:
        raise ValueError("peephole weights (P) have no Keras LSTM equivalent")
    if any(name for name in lstm.input[4:7]):
        raise ValueError("sequence lengths or non-default initial states are not supported")

    if quantized:
        # inputs: X, W, R, B, seq_lens, initial_h, initial_c, P, W_scale, W_zero_point, R_scale, R_zero_point
        _, w_q, r_q, bias, *_, w_scale, w_zero, r_scale, r_zero = (constants.get(n) for n in lstm.input)
        # DynamicQuantizeLSTM keeps W [1, in, 4H] and R [1, H, 4H]: transpose to the ONNX LSTM layout.
        w = _dequantize(w_q, w_scale, w_zero).transpose(0, 2, 1)
        r = _dequantize(r_q, r_scale, r_zero).transpose(0, 2, 1)
        # MatMulInteger(a_q, kernel_q, a_zero, kernel_zero) -> Cast -> Mul(a_scale * kernel_scale) -> Add(bias)
        activations, kernel_q, _, kernel_zero = dense.input
        quantizer = next(n for n in graph.node if n.op_type == "DynamicQuantizeLinear" and n.output[0] == activations)
        kernel_scale = _other_constant(_consumer(graph, quantizer.output[1], "Mul"), quantizer.output[1], constants)
        kernel = _dequantize(constants[kernel_q], kernel_scale, constants[kernel_zero])
        scaled = _consumer(graph, _consumer(graph, dense.output[0], "Cast").output[0], "Mul")
        add = _consumer(graph, scaled.output[0], "Add")
        dense_bias = _other_constant(add, scaled.output[0], constants)
    else:
        w, r, bias = (constants[name] for name in lstm.input[1:4])
        _, kernel_name = dense.input
        kernel = constants[kernel_name]
        dense_bias = _other_constant(_consumer(graph, dense.output[0], "Add"), dense.output[0], constants)

    hidden = r.shape[-1]
    expected = {"W": (1, 4 * hidden, 1), "R": (1, 4 * hidden, hidden), "B": (1, 8 * hidden), "kernel": (hidden, 1)}
    found = {"W": w.shape, "R": r.shape, "B": bias.shape, "kernel": kernel.shape}
    if found != expected or np.size(dense_bias) != 1:
        raise ValueError(f"unexpected weight shapes {found} (bias {np.shape(dense_bias)}), expected {expected}")
    weights = {"W": w, "R": r, "B": bias, "kernel": kernel, "bias": np.reshape(dense_bias, (1,))}
    return {k: v.astype(np.float32) for k, v in weights.items()}, quantized


def _window(model: onnx.ModelProto) -> int:
    """Time steps of the graph input (N, T, 1)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 3 or not dims[1].dim_value:
        raise ValueError("graph input is not (N, T, 1) with a fixed T")
    return dims[1].dim_value


def keras_twin(onnx_path: Path) -> tuple[keras.Model, str]:
    """Returns (model taking raw units (N,14,1) float32 -> (N,1), description).

    The description says whether the weights were copied as stored or int8 dequantized to float32,
    since a Keras int8 twin would be a different computation from onnxruntime's integer kernels.
    """
    model = onnx.load(Path(onnx_path))
    weights, quantized = onnx_weights(model)
    hidden = weights["R"].shape[-1]
    core = build_core(hidden, window=_window(model))
    core.get_layer("lstm").set_weights(keras_lstm_weights(weights["W"], weights["R"], weights["B"]))
    core.get_layer("dense").set_weights([weights["kernel"], weights["bias"]])
    return wrap_for_units(core), INT8_DESCRIPTION if quantized else FLOAT_DESCRIPTION
