"""What the numbers were measured on: a figure without its machine and versions cannot be compared."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("onnxruntime", "numpy", "fastapi", "starlette", "uvicorn", "pydantic", "tensorflow-cpu", "keras")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


# What a run writes itself: a tree is not "changed" for having a previous run's report in it.
OWN_OUTPUTS = ("reports/performance.md", "reports/performance.json", "README.md")


def describe(repo: Path) -> dict[str, Any]:
    status = _git(repo, "status", "--porcelain", "--", ".", *(f":(exclude){path}" for path in OWN_OUTPUTS))
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: v for name in PACKAGES if (v := _version(name))},
        "thread_variables": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git(repo, "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }
