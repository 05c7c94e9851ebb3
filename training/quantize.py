"""Real INT8: weights stored as int8 in the ONNX file and executed by onnxruntime's integer kernels.

onnxruntime's dynamic quantization rewrites the LSTM into `DynamicQuantizeLSTM` (int8 W and R with
scales) and the Dense MatMul into `MatMulInteger`; activations are quantized on the fly per batch.
This is not a float round-trip: the file holds int8 tensors and onnxruntime computes with them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from training.export import compact_names, drop_unused_metadata


def quantize_int8(model_bytes: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="shelfcast-int8-") as workdir:
        source, target = Path(workdir) / "float.onnx", Path(workdir) / "int8.onnx"
        source.write_bytes(model_bytes)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=False)
        model = onnx.load(target)
    compact_names(model)
    drop_unused_metadata(model)
    model.producer_name = "shelfcast"
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def integer_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The int8 initializers of a quantized model, by name."""
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.data_type == TensorProto.INT8}


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all initializer payloads (what the weights cost, without graph structure)."""
    return int(sum(numpy_helper.to_array(i).nbytes for i in model.graph.initializer))
