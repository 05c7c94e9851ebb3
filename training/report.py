"""Turn a benchmark result into reports/benchmark.{json,md}, the size-vs-MAPE plot and the README table.

Everything here reads the published metadata and measured baselines; nothing is typed in except
the reference study's own table, which is quoted as the target to beat.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from training.artifacts import write_atomic

# The study we reproduce (stores 1-5 x items 1-10, 14-day windows, 3 runs): size in KB (KiB) of
# parameter bytes, MAPE % mean and std. Its INT8 was a float round-trip.
REFERENCE = {
    "lstm64": (66.25, 15.92, 0.10),
    "lstm32": (17.13, 16.22, 0.09),
    "lstm16": (4.57, 16.74, 0.46),
    "pruned30": (11.99, 16.04, 0.09),
    "pruned50": (8.56, 16.20, 0.08),
    "pruned70": (5.14, 16.84, 0.16),
    "int8": (4.28, 16.21, 0.22),
}
SIZE_AIM_BYTES = 4390  # the reference's paper size for INT8, as a real file
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
LINEAR = "linear-14-lags"
SIZE_KINDS = ("parameter_bytes", "file_bytes", "gzip_bytes")


def variant_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    variants = result["variants"]
    base = variants["lstm64"]["size"]
    linear = next(b for b in result["baselines"] if b["name"] == LINEAR)["test"]["mape"]
    rows = []
    for name, meta in variants.items():
        size, mape = meta["size"], meta["metrics"]["mape"]
        reference = REFERENCE.get(name)
        rows.append(
            {
                "variant": name,
                "technique": meta["technique"],
                "derived_from": meta.get("derived_from"),
                "parameters": meta["parameters"],
                "nonzero_parameters": meta["nonzero_parameters"],
                "weight_dtype": meta["weight_dtype"],
                "parameter_bytes": size["parameter_bytes"],
                "file_bytes": size["file_bytes"],
                "gzip_bytes": size["gzip_bytes"],
                "compression_vs_lstm64": {
                    k: base[k] / size[k] for k in ("parameter_bytes", "file_bytes", "gzip_bytes")
                },
                "mape_mean": mape["mean"],
                "mape_std": mape["std"],
                "mape_runs": mape["runs"],
                "published_file_mape": meta["selected_run"]["test"]["mape"],
                "published_seed": meta["selected_run"]["seed"],
                **{f"{k}_mean": meta["metrics"][k]["mean"] for k in ("wape", "smape", "mae")},
                "reference": None
                if reference is None
                else {"size_kb": reference[0], "mape": reference[1], "std": reference[2]},
                "meets_reference": None if reference is None else mape["mean"] <= reference[1],
                "beats_linear_baseline": mape["mean"] < linear,
                "sha256": meta["sha256"],
            }
        )
    return rows


def pareto(points: list[tuple[str, float, float]]) -> set[str]:
    """Names not dominated in (size, MAPE): nothing else is both no larger and no less accurate."""
    front = set()
    for name, size, mape in points:
        dominated = any(s <= size and m <= mape and (s, m) != (size, mape) for _, s, m in points)
        if not dominated:
            front.add(name)
    return front


def _kib(n: float) -> str:
    return f"{n / 1024:.2f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    runs = len(rows[0]["mape_runs"])
    lines = [
        "| variant | weights | non-zero params | parameter KiB | file bytes | gzip bytes | x smaller (file) "
        f"| MAPE % ({runs} runs) | MAPE % of the file | WAPE % | sMAPE % | MAE | reference KB / MAPE % "
        "| <= reference | beats linear |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        ref = r["reference"]
        reference = "-" if ref is None else f"{ref['size_kb']:.2f} / {ref['mape']:.2f} ± {ref['std']:.2f}"
        meets = "-" if ref is None else ("yes" if r["meets_reference"] else "**no**")
        lines.append(
            f"| `{r['variant']}` | {r['weight_dtype']} | {r['nonzero_parameters']:,} | {_kib(r['parameter_bytes'])} "
            f"| {r['file_bytes']:,} | {r['gzip_bytes']:,} | {r['compression_vs_lstm64']['file_bytes']:.1f} "
            f"| {r['mape_mean']:.2f} ± {r['mape_std']:.2f} | {r['published_file_mape']:.2f} "
            f"| {r['wape_mean']:.2f} | {r['smape_mean']:.2f} "
            f"| {r['mae_mean']:.2f} | {reference} | {meets} | {'yes' if r['beats_linear_baseline'] else 'no'} |"
        )
    return "\n".join(lines)


def baseline_table(baselines: list[dict[str, Any]]) -> str:
    lines = ["| baseline | what | MAPE % | WAPE % | sMAPE % | MAE |", "|---|---|---:|---:|---:|---:|"]
    for b in baselines:
        t = b["test"]
        metrics = f"{t['mape']:.2f} | {t['wape']:.2f} | {t['smape']:.2f} | {t['mae']:.2f}"
        lines.append(f"| `{b['name']}` | {b['description']} | {metrics} |")
    return "\n".join(lines)


def summary_lines(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    linear = next(b for b in result["baselines"] if b["name"] == LINEAR)["test"]["mape"]
    beat = ", ".join(f"`{r['variant']}`" for r in rows if r["beats_linear_baseline"]) or "none"
    lose = ", ".join(f"`{r['variant']}`" for r in rows if not r["beats_linear_baseline"]) or "none"
    missed = [r["variant"] for r in rows if r["meets_reference"] is False]
    at_reference = "every variant with a reference row" if not missed else "all but " + ", ".join(missed)
    smallest = min(rows, key=lambda r: r["file_bytes"])
    aim = "meets" if smallest["file_bytes"] <= SIZE_AIM_BYTES else "misses"
    return [
        f"- Variants that beat the linear 14-lag baseline ({linear:.2f}% MAPE): {beat}; that do not: {lose}.",
        f"- At or below the reference MAPE: {at_reference}.",
        f"- Smallest file: `{smallest['variant']}`, {smallest['file_bytes']:,} bytes on disk "
        f"({smallest['gzip_bytes']:,} gzipped); it {aim} the aim of <= {SIZE_AIM_BYTES:,} bytes.",
        f"- Full benchmark wall time: {result['seconds'] / 60:.1f} minutes on this machine.",
    ]


def plot(rows: list[dict[str, Any]], baselines: list[dict[str, Any]], path: Path) -> None:
    """Two panels sharing the MAPE axis: the reference's size measure and the real file on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    markers = ["o", "s", "^", "v", "D", "P", "X", "*", "h", "p"]
    colours = plt.get_cmap("tab10").colors
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.8), sharey=True)
    panels = (
        ("parameter_bytes", "parameter bytes (non-zero x 4, int8 x 1; the reference's size)"),
        ("file_bytes", "ONNX file bytes on disk"),
    )
    for axis, (key, label) in zip(axes, panels, strict=True):
        points = [(r["variant"], float(r[key]), r["mape_mean"]) for r in rows]
        front = pareto(points)
        for index, r in enumerate(rows):
            on_front = r["variant"] in front
            axis.errorbar(
                r[key],
                r["mape_mean"],
                yerr=r["mape_std"],
                fmt=markers[index % len(markers)],
                capsize=3,
                color=colours[index % len(colours)],
                markersize=9 if on_front else 6,
                markeredgecolor="black" if on_front else "none",
                label=r["variant"],
            )
        ordered = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
        axis.step(
            [p[1] for p in ordered],
            [p[2] for p in ordered],
            where="post",
            linestyle="--",
            color="black",
            linewidth=0.8,
            label="Pareto front (outlined)",
        )
        for b, style in zip(baselines, [":", "-.", "--", (0, (1, 3))], strict=False):
            axis.axhline(
                b["test"]["mape"],
                linestyle=style,
                color="grey",
                linewidth=1,
                label=f"baseline {b['name']} ({b['test']['mape']:.2f}%)",
            )
        axis.axhline(
            REFERENCE["lstm64"][1],
            color="firebrick",
            linewidth=1,
            alpha=0.6,
            label=f"reference LSTM-64 ({REFERENCE['lstm64'][1]:.2f}%)",
        )
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())  # 2x10^4, 3x10^4 ... collide
        axis.set_xlabel(f"{label}, log scale")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test MAPE % (mean ± std over runs)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    figure.suptitle("shelfcast: size vs accuracy, stores 1-5 x items 1-10 (lower left is better)", fontsize=11)
    figure.tight_layout(rect=(0, 0, 0.8, 0.96))
    figure.savefig(path, dpi=120)
    plt.close(figure)


LEGEND = " ".join(
    [
        "The reference is the published compression study this project reproduces (its table is quoted per row).",
        "*parameter KiB*: non-zero parameters x 4 bytes (x 1 for int8) / 1024, as the reference counts size",
        '(its "KB" is KiB). *file bytes*: the `.onnx` file on disk. *gzip bytes*: that file compressed by',
        "Python's `gzip.compress(data, 9, mtime=0)` (the `gzip -9n` command's compressor differs by up to",
        "about 60 bytes either way). *x smaller*: `lstm64`'s file bytes over the variant's.",
        "*MAPE % (n runs)*: mean ± population std over the runs (one model per seed); *MAPE % of the file*:",
        "the committed file alone, the run chosen by validation MAPE. WAPE, sMAPE and MAE are means over the",
        "runs. Pruned files store zeros densely, so their file bytes are about their source's; the zeros show",
        "in gzip bytes.",
    ]
)


def render(result: dict[str, Any]) -> tuple[str, str]:
    """(full report markdown, README block)."""
    rows = variant_rows(result)
    table, baselines = markdown_table(rows), baseline_table(result["baselines"])
    summary = "\n".join(summary_lines(result, rows))
    data = result["data"]
    readme = (
        f"{table}\n\n{LEGEND}\n\nBaselines on the same {data['windows']['test']:,} test windows:\n\n"
        f"{baselines}\n\n{summary}\n\n"
        "![size vs MAPE](reports/size_vs_mape.png)\n"
    )
    report = (
        "# shelfcast compression benchmark\n\n"
        f"Data: `{data['source']}` (sha256 `{data['source_sha256'][:16]}…`), stores {data['stores']}, items "
        f"{data['items']}, {data['window_days']}-day windows; windows train / validation / test = "
        f"{data['windows']['train']:,} / {data['windows']['validation']:,} / {data['windows']['test']:,}. "
        f"Seeds {result['config']['seeds']}. Every metric comes from running the variant's `.onnx` file "
        "through onnxruntime.\n\n"
        f"{LEGEND}\n\n"
        f"## Variants\n\n{table}\n\n## Baselines\n\n{baselines}\n\n## Summary\n\n{summary}\n\n"
        "![size vs MAPE](size_vs_mape.png)\n\n"
        "Reproduce: `shelfcast-train benchmark --data ../shared/data/store_item_demand/train.csv`\n"
    )
    return report, readme


def write_reports(result: dict[str, Any], reports_dir: Path, readme: Path | None) -> None:
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    rows = variant_rows(result)
    report, block = render(result)
    document = {
        "seconds": result["seconds"],
        "config": result["config"],
        "data": result["data"],
        "variants": rows,
        "baselines": result["baselines"],
    }
    write_atomic(reports_dir / "benchmark.json", (json.dumps(document, indent=2) + "\n").encode())
    write_atomic(reports_dir / "benchmark.md", report.encode())
    plot(rows, result["baselines"], reports_dir / "size_vs_mape.png")
    if readme is not None and Path(readme).is_file():
        text = Path(readme).read_text()
        pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
        if pattern.search(text):
            write_atomic(Path(readme), pattern.sub(f"{README_START}\n{block}{README_END}", text).encode())


def rebuild(models_dir: Path, reports_dir: Path, readme: Path | None) -> dict[str, Any]:
    """Re-render every report from the published metadata and the last benchmark's baselines, no training."""
    previous = json.loads((Path(reports_dir) / "benchmark.json").read_text())
    variants = {}
    for name in [r["variant"] for r in previous["variants"]]:
        variants[name] = json.loads((Path(models_dir) / f"{name}.json").read_text())
    result = {**previous, "variants": variants}
    write_reports(result, reports_dir, readme)
    return result
