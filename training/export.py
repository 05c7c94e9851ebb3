"""Export a Keras forecaster to a self-contained ONNX file with a native LSTM op.

tf2onnx's `from_keras` does not work with Keras 3 (onnx/tensorflow-onnx#2329), so the model is
traced through a `tf.function` with an explicit signature. tf2onnx then builds the LSTM's zero
initial states at run time (Shape/Slice/Concat/Expand); ONNX's LSTM defaults them to zero
anyway, so `strip_zero_initial_states` removes that plumbing and the file gets smaller and faster.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import numpy_helper

from training.config import INPUT_NAME, OUTPUT_NAME

OPSET = 18


def keras_to_onnx(model: keras.Model) -> onnx.ModelProto:
    import tensorflow as tf
    import tf2onnx

    window = int(model.inputs[0].shape[1])
    signature = [tf.TensorSpec((None, window, 1), tf.float32, name=INPUT_NAME)]
    traced = tf.function(lambda history: model(history, training=False), input_signature=signature)
    proto, _ = tf2onnx.convert.from_function(traced, input_signature=signature, opset=OPSET)
    return proto


def _constant_value(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


_SHAPE_ONLY = {"Unsqueeze", "Squeeze", "Reshape", "Cast", "Identity"}


def _is_zero_fill(graph: onnx.GraphProto, name: str) -> bool:
    """True if `name` is an all-zero tensor: Expand/ConstantOfShape of zero, through shape-only ops."""
    producer = next((n for n in graph.node if name in n.output), None)
    if producer is None:
        value = _constant_value(graph, name)
        return value is not None and not np.any(value)
    if producer.op_type in _SHAPE_ONLY:
        return _is_zero_fill(graph, producer.input[0])
    if producer.op_type == "Expand":
        value = _constant_value(graph, producer.input[0])
        return value is not None and not np.any(value)
    if producer.op_type == "ConstantOfShape":
        value = [a.t for a in producer.attribute if a.name == "value"]
        return not value or not np.any(numpy_helper.to_array(value[0]))
    return False


def strip_zero_initial_states(model: onnx.ModelProto) -> int:
    """Drop LSTM initial_h/initial_c inputs that are all zeros (the ONNX default). Returns how many."""
    stripped = 0
    for node in model.graph.node:
        if node.op_type != "LSTM":
            continue
        for position in (5, 6):  # initial_h, initial_c
            if len(node.input) > position and node.input[position] and _is_zero_fill(model.graph, node.input[position]):
                node.input[position] = ""
                stripped += 1
        while node.input and node.input[-1] == "":
            node.input.pop()
    return stripped


def _consumers(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    return [node for node in graph.node if name in node.input]


def _axes(graph: onnx.GraphProto, node: onnx.NodeProto) -> list[int] | None:
    value = _constant_value(graph, node.input[1]) if len(node.input) > 1 else None
    return None if value is None else [int(a) for a in np.ravel(value)]


def read_final_hidden_state(model: onnx.ModelProto) -> int:
    """Take the LSTM's last hidden state from its Y_h output instead of slicing it out of Y.

    tf2onnx reads every step's output Y (seq, 1, batch, hidden) and slices the last step:
    Squeeze -> Slice -> Squeeze. Y_h holds exactly that step, and with Y unread onnxruntime never
    writes the full sequence (10,000 windows x 14 steps x 64 floats = 36 MB per batch). Returns how
    many LSTMs were rewired; any other pattern is left alone.
    """
    graph = model.graph
    rewired = 0
    for lstm in [n for n in graph.node if n.op_type == "LSTM"]:
        outputs = list(lstm.output) + [""] * (3 - len(lstm.output))
        readers = _consumers(graph, outputs[0])
        if any(_consumers(graph, o) for o in outputs[1:] if o) or len(readers) != 1:
            continue
        squeeze = readers[0]
        slices = _consumers(graph, squeeze.output[0])
        if squeeze.op_type != "Squeeze" or _axes(graph, squeeze) != [1] or len(slices) != 1:
            continue
        last = slices[0]
        bounds = [_constant_value(graph, name) for name in last.input[1:4]]
        if last.op_type != "Slice" or len(last.input) != 4 or any(b is None for b in bounds):
            continue
        starts, ends, axes = (np.ravel(b).tolist() for b in bounds)
        finals = _consumers(graph, last.output[0])
        if starts != [-1] or ends[0] < 1 or axes != [0] or len(finals) != 1:
            continue
        final = finals[0]
        if final.op_type != "Squeeze" or _axes(graph, final) != [0]:
            continue
        # Y_h is (1, batch, hidden): the same Squeeze over axis 0 gives (batch, hidden).
        hidden = f"{lstm.name or 'lstm'}_Y_h"
        lstm.output[:] = ["", hidden]
        final.input[0] = hidden
        rewired += 1
    if rewired:
        remove_dead_nodes(model)
    return rewired


def max_zero_to_relu(model: onnx.ModelProto) -> int:
    """Max(x, 0) is Relu(x); onnxruntime's Relu is a vectorised kernel, its broadcasting Max is not."""
    graph = model.graph
    replaced = 0
    for position, node in enumerate(graph.node):
        if node.op_type != "Max" or len(node.input) != 2:
            continue
        zero = _constant_value(graph, node.input[1])
        if zero is None or zero.size != 1 or zero.ndim != 0 or float(zero) != 0.0:
            continue
        graph.node[position].CopyFrom(onnx.helper.make_node("Relu", [node.input[0]], list(node.output), name=node.name))
        replaced += 1
    if replaced:
        remove_dead_nodes(model)
    return replaced


def remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Remove nodes and initializers that no graph output depends on."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    live = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)


def rename_output(model: onnx.ModelProto, new_name: str) -> None:
    old = model.graph.output[0].name
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new_name
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new_name
    model.graph.output[0].name = new_name


def compact_names(model: onnx.ModelProto) -> None:
    """Rename every internal tensor and node to a short name; graph input and output keep theirs.

    tf2onnx's names ("lstm64_1/lstm64_core_1/dense_1/Cast/ReadVariableOp:0") are a large part of
    a 4 KB file and mean nothing to onnxruntime.
    """
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    # Names follow first use along the node order, not tf2onnx's initializer order (which varies
    # between processes), and initializers are stored in name order: the same model, the same bytes.
    for number, node in enumerate(graph.node):
        node.name = f"n{number}"
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for init in graph.initializer:
        init.name = short(init.name)
    ordered = sorted(graph.initializer, key=lambda init: int(init.name[1:]) if init.name[1:].isdigit() else -1)
    copies = [onnx.TensorProto.FromString(init.SerializeToString()) for init in ordered]
    del graph.initializer[:]
    graph.initializer.extend(copies)
    for info in graph.value_info:
        info.name = short(info.name)


def drop_unused_metadata(model: onnx.ModelProto) -> None:
    """Remove opset imports no node uses (tf2onnx adds ai.onnx.ml) and converter metadata props."""
    used = {node.domain for node in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    del model.metadata_props[:]


def clean(model: onnx.ModelProto) -> onnx.ModelProto:
    """Smaller, deterministic graph with the documented input/output names; checked by onnx."""
    strip_zero_initial_states(model)
    remove_dead_nodes(model)
    read_final_hidden_state(model)
    max_zero_to_relu(model)
    rename_output(model, OUTPUT_NAME)
    compact_names(model)
    drop_unused_metadata(model)
    model.producer_name = "shelfcast"
    model.graph.name = "shelfcast_forecaster"
    model.graph.doc_string = ""
    onnx.checker.check_model(model, full_check=True)
    return model


def export(model: keras.Model, path: Path) -> onnx.ModelProto:
    proto = clean(keras_to_onnx(model))
    Path(path).write_bytes(proto.SerializeToString())
    return proto
