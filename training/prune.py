"""Per-layer magnitude pruning of kernels, kept exact through fine-tuning by re-applying masks.

tensorflow-model-optimization does not support Keras 3, so this is a small callback: after every
optimizer step the pruned entries are set back to zero, so the sparsity at the end is exactly the
one asked for. Biases are never pruned (they are few and carry the level of the forecast).
"""

from __future__ import annotations

import keras
import numpy as np

PRUNABLE = ("kernel", "recurrent_kernel")


def prunable_weights(model: keras.Model) -> list[keras.Variable]:
    """The LSTM input kernel, LSTM recurrent kernel and Dense kernel: every kernel, no bias."""
    return [w for w in model.weights if w.path.rsplit("/", 1)[-1] in PRUNABLE]


def magnitude_mask(values: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask zeroing exactly round(sparsity * size) smallest-magnitude entries (ties broken by position)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    flat = np.abs(values).ravel()
    n_pruned = round(sparsity * flat.size)
    mask = np.ones(flat.size, dtype=bool)
    mask[np.argsort(flat, kind="stable")[:n_pruned]] = False
    return mask.reshape(values.shape)


class MaskWeights(keras.callbacks.Callback):
    """Holds one mask per pruned weight and re-applies it after every training batch."""

    def __init__(self, weights: list[keras.Variable], masks: list[np.ndarray]):
        super().__init__()
        self.pairs = list(zip(weights, [m.astype(np.float32) for m in masks], strict=True))

    def apply(self) -> None:
        for weight, mask in self.pairs:
            weight.assign(np.asarray(weight.numpy()) * mask)

    def on_train_begin(self, logs=None) -> None:
        self.apply()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.apply()

    def on_train_end(self, logs=None) -> None:
        self.apply()


def prune(model: keras.Model, sparsity: float) -> MaskWeights:
    """Zero the smallest kernels of each layer now; return the callback that keeps them zero."""
    weights = prunable_weights(model)
    masks = [magnitude_mask(np.asarray(w.numpy()), sparsity) for w in weights]
    callback = MaskWeights(weights, masks)
    callback.apply()
    return callback


def sparsity_report(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """Fraction of exact zeros in each named array."""
    return {name: float(np.mean(values == 0)) for name, values in arrays.items()}


def onnx_kernels(model_bytes: bytes) -> dict[str, np.ndarray]:
    """The kernels as stored in an ONNX file: LSTM W and R, and the Dense MatMul weight."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    initializers = {i.name: i for i in model.graph.initializer}
    found: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.op_type == "LSTM":
            found["lstm_input_kernel"] = numpy_helper.to_array(initializers[node.input[1]])
            found["lstm_recurrent_kernel"] = numpy_helper.to_array(initializers[node.input[2]])
        elif node.op_type == "MatMul" and node.input[1] in initializers:
            found["dense_kernel"] = numpy_helper.to_array(initializers[node.input[1]])
    return found


def onnx_kernel_sparsity(model_bytes: bytes) -> dict[str, float]:
    """Sparsity of each kernel in the exported file: pruning must survive export, not just training."""
    return sparsity_report(onnx_kernels(model_bytes))
