"""HTTP on loopback: /forecast under closed-loop load, 1 and N uvicorn workers, single and batch bodies.

Each configuration starts the service fresh with its default settings (only MODEL_VARIANT set), checks
one answer of each body for correctness, records idle RSS, then runs every body x concurrency load and
the peak RSS during it.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.benchmarking import sample_windows
from bench.loadgen import run_load
from bench.service import PeakRss, running_service


@dataclass(frozen=True)
class HttpConfig:
    variants: tuple[str, ...] = ("lstm64", "lstm16-int8")
    workers: tuple[int, ...] = (1, 2)
    concurrency: tuple[int, ...] = (1, 8, 64)
    batch_series: int = 1_000
    duration_s: float = 10.0
    warmup_s: float = 2.0
    generator: str = "auto"


def bodies(batch_series: int) -> dict[str, tuple[bytes, int]]:
    """{body name: (JSON bytes, series in it)}: one store-item series, and a batch of distinct ones."""
    windows = sample_windows(batch_series + 1, 14, seed=42).astype(int).tolist()
    series = [{"store": 1 + i % 10, "item": 1 + i // 10 % 50, "history": w} for i, w in enumerate(windows)]
    return {
        "single series": (json.dumps(series[0]).encode(), 1),
        f"{batch_series:,}-series batch": (json.dumps({"series": series[1:]}).encode(), batch_series),
    }


def _check_answer(url: str, body: bytes, series: int) -> None:
    request = urllib.request.Request(
        f"{url}/forecast", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        payload = json.loads(answer.read())
    forecasts = payload["forecasts"] if series > 1 else [payload]
    if len(forecasts) != series or not all(f["forecast"] >= 0 for f in forecasts):
        raise RuntimeError(f"/forecast answered {len(forecasts)} forecasts for {series} series")


def run(
    config: HttpConfig, log_dir: Path, *, cwd: Path | None = None, without: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """One row per (variant, workers, body, concurrency); rows of one service share its idle RSS."""
    rows: list[dict[str, Any]] = []
    payloads = bodies(config.batch_series)
    steps = len(config.variants) * len(config.workers) * len(payloads) * len(config.concurrency)
    with tqdm(total=steps, desc="http", unit="load") as progress:
        for variant in config.variants:
            for workers in config.workers:
                with running_service(variant, workers, log_dir, cwd=cwd, without=without) as service:
                    for body, series in payloads.values():
                        _check_answer(service.url, body, series)
                    idle = service.rss_mib()
                    for body_name, (body, series) in payloads.items():
                        for concurrency in config.concurrency:
                            progress.set_postfix_str(f"{variant} {workers}w {body_name} c={concurrency}")
                            with PeakRss(service) as peak:
                                load = run_load(
                                    f"{service.url}/forecast",
                                    body,
                                    concurrency=concurrency,
                                    duration_s=config.duration_s,
                                    generator=config.generator,
                                    warmup_s=config.warmup_s,
                                )
                            rows.append(
                                {
                                    "variant": variant,
                                    "workers": workers,
                                    "body": body_name,
                                    "series_per_request": series,
                                    "body_bytes": len(body),
                                    **load.to_dict(),
                                    "forecasts_per_s": round(load.requests_per_s * series, 1),
                                    "rss_idle_mib": idle,
                                    "rss_peak_mib": dict(peak.peaks),
                                }
                            )
                            progress.update()
    return rows
