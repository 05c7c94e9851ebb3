"""The service as a user runs it (`python -m app`, default settings), in a child process, with its memory.

The server is a separate process so the load generator and the Python doing the measuring never
share its interpreter; RSS is read per process from the OS (psutil), for each uvicorn worker and
for the supervisor that `--workers 2` adds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    workers: int

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that answer requests: the server itself, or its uvicorn workers."""
        root = psutil.Process(self.process.pid)
        if self.workers == 1:
            return [root]
        children = root.children()
        return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]

    def rss_mib(self) -> dict[str, float]:
        """RSS per process: 'worker 1'..'worker N', plus 'supervisor' when there are several workers."""
        rss = {f"worker {i}": p.memory_info().rss / MIB for i, p in enumerate(self.worker_processes(), start=1)}
        if self.workers > 1:
            rss["supervisor"] = psutil.Process(self.process.pid).memory_info().rss / MIB
        return {name: round(value, 1) for name, value in rss.items()}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


# `python -m app` with some packages made unimportable: an older checkout runs as it did when those
# were not among its dependencies (uvicorn, for one, falls back to h11 and asyncio without httptools and uvloop)
_WITHOUT = "import runpy, sys; sys.modules.update(dict.fromkeys(sys.argv.pop(1).split(','))); runpy.run_module('app', run_name='__main__', alter_sys=True)"  # noqa: E501


@contextmanager
def running_service(
    variant: str,
    workers: int,
    log_dir: Path,
    *,
    cwd: Path | None = None,
    without: tuple[str, ...] = (),
    timeout_s: float = 90.0,
) -> Iterator[Service]:
    """Start `python -m app` with MODEL_VARIANT=variant and wait until every worker is ready."""
    port = free_port()
    log_path = log_dir / f"service-{variant}-{workers}w-{port}.log"
    env = {**os.environ, "MODEL_VARIANT": variant}
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd)
    command = [sys.executable, "-c", _WITHOUT, ",".join(without)] if without else [sys.executable, "-m", "app"]
    command += ["--port", str(port)]
    if workers > 1:  # only then: a checkout from before --workers existed still starts
        command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    service = Service(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path, workers=workers)
    try:
        deadline = time.monotonic() + timeout_s
        while not (_ready(service.url) and len(service.worker_processes()) == workers):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"service {variant} with {workers} worker(s) did not start:\n{tail}")
            time.sleep(0.2)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class PeakRss:
    """Samples every process's RSS in a background thread while a load runs; keeps each one's peak."""

    service: Service
    interval_s: float = 0.1
    peaks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                for name, value in self.service.rss_mib().items():
                    self.peaks[name] = max(self.peaks.get(name, 0.0), value)
            except psutil.Error:
                pass  # a worker restarting mid-sample; the next sample sees it
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
