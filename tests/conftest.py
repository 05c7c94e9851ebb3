"""Shared fixtures for the training tests: small generated sales CSVs and the real Kaggle file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO = REPO_ROOT
MODELS = REPO_ROOT / "models"
HISTORY = [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]  # store 1 item 1, 2013-01-01..14
DEFAULT_REAL_DATA = REPO_ROOT / ".." / "shared" / "data" / "store_item_demand" / "train.csv"
HEADER = "date,store,item,sales"
START = "2013-01-01"
WEEKLY = np.array([0.8, 0.9, 0.95, 1.0, 1.1, 1.3, 1.2])  # Monday .. Sunday


def generate_sales(
    stores: Iterable[int] = (1, 2),
    items: Iterable[int] = (1, 2),
    days: int = 120,
    start: str = START,
    seed: int = 0,
) -> pd.DataFrame:
    """Daily integer sales with weekly seasonality, a slight trend and Poisson noise, Kaggle row order."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    season = WEEKLY[dates.dayofweek.to_numpy()]
    trend = 1 + 0.002 * np.arange(days)
    frames = []
    for store in stores:
        for item in items:
            level = 20 + 8 * store + 5 * item
            sales = rng.poisson(level * season * trend)
            frames.append(pd.DataFrame({"date": dates, "store": store, "item": item, "sales": sales}))
    return pd.concat(frames, ignore_index=True)


def to_lines(frame: pd.DataFrame) -> list[str]:
    """CSV data lines (no header) for a sales frame; data row i is file line i + 2."""
    return [f"{d:%Y-%m-%d},{s},{i},{v}" for d, s, i, v in frame[["date", "store", "item", "sales"]].itertuples(False)]


def write_sales_file(path: Path, frame: pd.DataFrame | None = None, **kwargs) -> Path:
    """Write `frame` (default: generate_sales(**kwargs)) as a date,store,item,sales CSV at `path`."""
    frame = generate_sales(**kwargs) if frame is None else frame
    path.write_text("\n".join([HEADER, *to_lines(frame)]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def write_sales_to() -> Callable[..., Path]:
    """Session-scoped factory: write_sales_file(path, frame=None, **generate_sales arguments)."""
    return write_sales_file


@pytest.fixture
def make_sales() -> Callable[..., pd.DataFrame]:
    """Factory: generate_sales as a fixture, for tests that edit the frame before writing it."""
    return generate_sales


@pytest.fixture
def sales_lines() -> Callable[..., list[str]]:
    """Factory: generated data as CSV lines without the header (same arguments as generate_sales)."""

    def make(**kwargs) -> list[str]:
        return to_lines(generate_sales(**kwargs))

    return make


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write raw text to tmp_path/<name> and return the path."""

    def write(text: str, name: str = "sales.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_lines(write_csv) -> Callable[..., Path]:
    """Factory: write the header plus the given data lines; data line i lands on file line i + 2."""

    def write(lines: list[str], name: str = "sales.csv", header: str = HEADER) -> Path:
        return write_csv("\n".join([header, *lines]) + "\n", name)

    return write


@pytest.fixture
def write_sales_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: generate sales (generate_sales arguments) and write them as date,store,item,sales."""

    def write(name: str = "sales.csv", frame: pd.DataFrame | None = None, **kwargs) -> Path:
        return write_sales_file(tmp_path / name, frame, **kwargs)

    return write


@pytest.fixture
def sales_csv(write_sales_csv) -> Path:
    """2 stores x 2 items x 120 days of generated sales."""
    return write_sales_csv()


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """The Kaggle train.csv: $SHELFCAST_DATA, else ../shared/data/store_item_demand/train.csv from the repo root."""
    configured = os.environ.get("SHELFCAST_DATA")
    path = Path(configured).expanduser() if configured else DEFAULT_REAL_DATA
    path = path.resolve()
    if not path.is_file():
        pytest.skip(f"real sales data not found at {path} (set SHELFCAST_DATA)")
    return path


# --- the service as a real process on loopback ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(env: dict[str, str], args: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), *args],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):  # readiness poll, not a time limit on behaviour
        if process.poll() is not None:
            raise RuntimeError(f"service exited early: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("service did not become ready")


@contextmanager
def service_process(env: dict[str, str], args: Sequence[str] = ()) -> Iterator[tuple[httpx.Client, list[str]]]:
    """A real `python -m app` process on a free loopback port, a client for it, and its output so far.

    The service logs one line per request: its output is read as it comes, since a pipe nobody reads
    fills after a few hundred lines and then blocks the service in its next write.
    """
    process, url = start_app(env, args)
    output: list[str] = []

    def read() -> None:
        for line in process.stdout:
            output.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, output
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)


@contextmanager
def running_app(env: dict[str, str]) -> Iterator[httpx.Client]:
    with service_process(env) as (client, _):
        yield client


@pytest.fixture(scope="module")
def service() -> Iterator[httpx.Client]:
    with running_app({}) as client:
        yield client


def run_app_expecting_failure(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "--port", str(free_port())],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
