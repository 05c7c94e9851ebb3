"""Where a service worker's time goes under load: py-spy samples of the running process, summed.

A target that is missed needs its profile beside it. py-spy reads the worker's stacks from outside
(no code in the service, no restart), so what is profiled is exactly the process that was measured.
Samples are summed two ways: by the layer whose code was on top of the stack (model, validation,
HTTP, framework, ...) and by function, own time and time including callees.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (layer, substrings of a frame's file path); the first match names the layer of a sample's top frame
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("onnxruntime (the model)", ("onnxruntime/",)),
    ("pydantic (parse and validate the body)", ("pydantic/", "pydantic_core/", "app/jsonbody.py", "app/schemas.py")),
    ("shelfcast forecasting (arrays, answer JSON)", ("app/forecasting.py", "app/routers/", "orjson", "numpy/")),
    ("uvicorn (HTTP protocol)", ("uvicorn/", "httptools/")),
    ("FastAPI and Starlette (routing, middleware, dependencies)", ("fastapi/", "starlette/", "app/limits.py")),
    ("metrics and access log", ("prometheus", "app/observability.py", "logging/")),
    (
        "event loop and thread hand-off",
        ("asyncio/", "selectors.py", "uvloop/", "anyio/", "threading.py", "concurrent/", "queue.py"),
    ),
)
OTHER = "other"
# Top frames that mean a thread was waiting, though py-spy counts it active: uvloop polling inside Runner.run
# (C code under a Python frame; an older commit's service under --compare-ref), pool threads parked on their
# queue. The standard loop's epoll wait is mostly left out by py-spy itself (an idle system call); what it
# does sample of `EpollSelector.select` cannot be told apart from the loop's own work, so it counts as loop.
WAITING = frozenset({"Runner.run (runners.py)", "Condition.wait (threading.py)", "_worker (thread.py)"})


@dataclass(frozen=True)
class Profile:
    name: str
    samples: int  # busy ones: every share below is of these
    waiting: int  # samples whose top frame was a wait (WAITING), left out of the shares
    layers: dict[str, float]  # share of samples whose top frame is in the layer
    own: list[tuple[str, float]]  # function -> share of samples on top of the stack
    inclusive: list[tuple[str, float]]  # shelfcast's own functions -> share of samples anywhere in the stack

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "samples": self.samples,
            "waiting_samples": self.waiting,
            "layers": self.layers,
            "own": [list(pair) for pair in self.own],
            "inclusive": [list(pair) for pair in self.inclusive],
        }


def available() -> str | None:
    """The py-spy executable (this environment's first), or None: profiles are then left out, and the report says so."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def _function(frame: str) -> tuple[str, str]:
    """'forecast (app/routers/forecast.py:71)' -> ('forecast (forecast.py)', 'app/routers/forecast.py')."""
    name, _, location = frame.partition(" (")
    path = location.rsplit(":", 1)[0]
    return f"{name} ({Path(path).name})" if path else name, path


def layer(path: str) -> str:
    return next((name for name, marks in LAYERS if any(mark in path for mark in marks)), OTHER)


def summarize(name: str, raw: str, top: int = 12) -> Profile:
    """py-spy's raw format (one 'frame;frame;... count' line per distinct stack) summed."""
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        function, path = frames[-1]
        if function in WAITING:
            waiting += count
            continue
        total += count
        own[function] += count
        layers[layer(path)] += count
        for function in {f for f, p in frames if (p.startswith("app/") or "/app/" in p) and "__main__" not in p}:
            inclusive[function] += count

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(key, round(value / total, 4)) for key, value in counter.most_common(n)]

    order = [n for n, _ in LAYERS] + [OTHER]
    return Profile(
        name=name,
        samples=total,
        waiting=waiting,
        layers={n: round(layers[n] / total, 4) for n in order if layers[n]} if total else {},
        own=shares(own, top) if total else [],
        inclusive=shares(inclusive, top) if total else [],
    )


def record(pid: int, duration_s: float, rate: int = 250) -> str:
    """py-spy's raw stacks of process `pid` for `duration_s` seconds, every thread but idle ones."""
    executable = available()
    if executable is None:
        raise RuntimeError("py-spy is not installed")
    with tempfile.TemporaryDirectory(prefix="shelfcast-profile-") as folder:
        out = Path(folder) / "stacks.txt"
        command = [
            executable, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
            "--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"py-spy failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return out.read_text()
