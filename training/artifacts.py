"""The artifact contract shared with the service: `<variant>.onnx` beside `<variant>.json`.

The metadata is written once, here, next to the model it describes; the service and the
reports only read it. Files are written to a temporary name and renamed, so an interrupted
run never leaves a half-written model where a good one was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

SIZE_DEFINITIONS = {
    "parameter_bytes": "parameters x 4 bytes (float32), as the reference study counts size",
    "file_bytes": "bytes of the .onnx file on disk",
    "gzip_bytes": "bytes of the .onnx file after Python's gzip.compress(data, 9, mtime=0)",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "pandas"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def file_sha256(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def write_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; a service running as another user must read it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def publish(models_dir: Path, variant: str, onnx_bytes: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """Write `<variant>.onnx` and `<variant>.json` (with the file's sha256 and sizes) atomically."""
    meta = {
        "schema_version": SCHEMA_VERSION,
        "variant": variant,
        "file": f"{variant}.onnx",
        "sha256": sha256_bytes(onnx_bytes),
        **meta,
    }
    meta["size"] = {**meta.get("size", {}), "file_bytes": len(onnx_bytes), "gzip_bytes": gzip_size(onnx_bytes)}
    meta["size_definitions"] = SIZE_DEFINITIONS
    write_atomic(Path(models_dir) / f"{variant}.onnx", onnx_bytes)
    write_atomic(Path(models_dir) / f"{variant}.json", (json.dumps(meta, indent=2) + "\n").encode())
    return meta
