"""Training cost, read from what the compression benchmark wrote; nothing is retrained here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def training_time(benchmark_json: Path, models_dir: Path) -> dict[str, Any] | None:
    """Wall time of `shelfcast-train benchmark` and each variant's seconds per run (train or derive + export)."""
    if not benchmark_json.is_file():
        return None
    report = json.loads(benchmark_json.read_text())
    per_variant = {}
    for row in report["variants"]:
        meta_path = models_dir / f"{row['variant']}.json"
        runs = json.loads(meta_path.read_text()).get("runs", []) if meta_path.is_file() else []
        seconds = [run["seconds"] for run in runs if "seconds" in run]
        per_variant[row["variant"]] = {
            "runs": len(seconds),
            "seconds_per_run": seconds,
            "derived_from": row.get("derived_from"),
        }
    try:  # as the repo names it, not as this machine's folders do
        source = str(benchmark_json.resolve().relative_to(models_dir.resolve().parent))
    except ValueError:
        source = str(benchmark_json)
    return {
        "source": source,
        "wall_seconds": round(report["seconds"], 1),
        "windows": report.get("data", {}).get("train_windows"),
        "per_variant": per_variant,
    }
