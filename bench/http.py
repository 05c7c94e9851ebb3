"""HTTP on loopback: /forecast under closed-loop load, 1 and N uvicorn workers, single and batch bodies.

Each configuration starts the service fresh with its default settings (only MODEL_VARIANT set), checks
one answer of each body for correctness, records idle RSS, then runs every body x concurrency load and
the peak RSS during it.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.benchmarking import sample_windows
from bench import profile
from bench.loadgen import run_load
from bench.service import PeakRss, Service, running_service


@dataclass(frozen=True)
class HttpConfig:
    variants: tuple[str, ...] = ("lstm64", "lstm16-int8")
    workers: tuple[int, ...] = (1, 2)
    concurrency: tuple[int, ...] = (1, 8, 64)
    batch_series: int = 1_000
    duration_s: float = 10.0
    warmup_s: float = 2.0
    generator: str = "auto"
    profile_s: float = 6.0  # py-spy of the first variant's single worker, per body; 0 for none


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
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per (variant, workers, body, concurrency), and the profiles; rows of one service share its idle RSS."""
    rows: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
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
                    if workers == 1 and variant == config.variants[0] and config.profile_s > 0:
                        profiles.extend(_profiles(service, variant, payloads, config))
    return rows, profiles


def _sample(pid: int, seconds: float, into: dict[str, str]) -> None:
    try:
        into["raw"] = profile.record(pid, seconds)
    except RuntimeError as exc:
        into["error"] = str(exc)


def _profiles(
    service: Service, variant: str, payloads: dict[str, tuple[bytes, int]], config: HttpConfig
) -> list[dict[str, Any]]:
    """Each body under load again, this time with py-spy sampling the worker (single: top concurrency; batch: 1).

    A separate load from the measured rows, so sampling never touches a reported figure.
    """
    if profile.available() is None:
        return []
    out = []
    pid = service.worker_processes()[0].pid
    for body_name, (body, series) in payloads.items():
        concurrency = max(config.concurrency) if series == 1 else min(config.concurrency)
        stacks: dict[str, str] = {}
        sampler = threading.Thread(target=_sample, args=(pid, config.profile_s, stacks))
        sampler.start()
        load = run_load(
            f"{service.url}/forecast",
            body,
            concurrency=concurrency,
            duration_s=config.profile_s + 1.0,
            generator=config.generator,
            warmup_s=0.5,
        )
        sampler.join()
        name = f"{variant}, 1 worker, {body_name}, concurrency {concurrency}"
        if "raw" in stacks:
            summary = profile.summarize(name, stacks["raw"]).to_dict()
            out.append({**summary, "requests_per_s_while_sampled": round(load.requests_per_s, 1)})
        else:
            out.append({"name": name, "error": stacks.get("error", "no samples")})
    return out
