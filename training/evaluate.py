"""Accuracy of the file we serve: every published metric comes from onnxruntime running the .onnx.

MAPE skips windows whose actual is zero (a percentage of zero is undefined) and the count
skipped is reported; WAPE, sMAPE and MAE use every window. On the reference subset (stores
1-5, items 1-10) there are no zero actuals; the full Kaggle file has one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from training.config import INPUT_NAME


def metrics(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    actual = np.asarray(actual, dtype=np.float64).ravel()
    forecast = np.asarray(forecast, dtype=np.float64).ravel()
    error = np.abs(forecast - actual)
    nonzero = actual != 0
    denominator = np.abs(actual) + np.abs(forecast)
    smape_terms = np.divide(2 * error, denominator, out=np.zeros_like(error), where=denominator != 0)
    return {
        "mape": float(np.mean(error[nonzero] / np.abs(actual[nonzero])) * 100) if nonzero.any() else float("nan"),
        "wape": float(error.sum() / np.abs(actual).sum() * 100) if actual.any() else float("nan"),
        "smape": float(np.mean(smape_terms) * 100),
        "mae": float(error.mean()),
        "windows": int(actual.size),
        "zero_actuals_skipped_in_mape": int((~nonzero).sum()),
    }


def onnx_session(model: bytes | str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def onnx_predict(model: bytes | str | Path, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    session = onnx_session(model)
    parts = [session.run(None, {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(parts)[:, 0]
