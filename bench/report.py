"""reports/performance.json (every measurement) and performance.md (tables, targets, ratios) from one run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.inprocess import BEFORE, EAGER, ORT_ONE_THREAD, ORT_RUN, SERVING, TF_FUNCTION
from training.artifacts import write_atomic

README_START, README_END = "<!-- performance:start -->", "<!-- performance:end -->"

TARGET_SINGLE_P50_US = 40.0
TARGET_RATIO_VS_TF_FUNCTION = 25.0
TARGET_BATCH_VARIANT, TARGET_BATCH_SIZE, TARGET_BATCH_MS = "lstm16", 10_000, 20.0
TARGET_HTTP_P50_MS, TARGET_HTTP_RPS, TARGET_BATCH_FORECASTS_PER_S = 2.0, 1_500.0, 100_000.0
TARGET_RSS_MIB = 150.0 * 1e6 / 2**20  # "150 MB" read as 10^6 bytes, the stricter reading: 143.1 MiB


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(slow: float | None, fast: float | None) -> str:
    return "-" if not slow or not fast else f"{slow / fast:,.1f}x"


def _met(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def _single(result: dict[str, Any], path: str) -> dict[str, Any] | None:
    return result["single"].get(path)


def _http_row(rows: list[dict[str, Any]], variant: str, workers: int, body_prefix: str, concurrency: int):
    for row in rows:
        if (
            row["variant"] == variant
            and row["workers"] == workers
            and row["concurrency"] == concurrency
            and row["body"].startswith(body_prefix)
        ):
            return row
    return None


def _target(target: str, measured: str | None = None, met: bool | None = None) -> dict[str, Any]:
    return {"target": target, "measured": measured or "not measured in this run", "met": met}


def _in_process_targets(inproc: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latency = _target(f"onnxruntime single-window p50 <= {TARGET_SINGLE_P50_US:.0f} µs, every variant")
    ratio = _target(f">= {TARGET_RATIO_VS_TF_FUNCTION:.0f}x faster than the same model through tf.function")
    batch = _target(f"{TARGET_BATCH_SIZE:,}-window batch through {TARGET_BATCH_VARIANT} <= {TARGET_BATCH_MS:.0f} ms")
    if inproc:
        worst = max(inproc, key=lambda r: r["single"][SERVING]["p50_us"])
        p50 = worst["single"][SERVING]["p50_us"]
        latency |= {"measured": f"slowest: {worst['variant']} {p50:.1f} µs", "met": p50 <= TARGET_SINGLE_P50_US}
    ratios = [
        (r["variant"], r["single"][TF_FUNCTION]["p50_us"] / r["single"][SERVING]["p50_us"])
        for r in inproc
        if TF_FUNCTION in r["single"]
    ]
    if ratios:
        name, lowest = min(ratios, key=lambda item: item[1])
        ratio |= {"measured": f"lowest: {name} {lowest:.1f}x", "met": lowest >= TARGET_RATIO_VS_TF_FUNCTION}
    row = next((r for r in inproc if r["variant"] == TARGET_BATCH_VARIANT), None)
    timings = {
        path: sizes[str(TARGET_BATCH_SIZE)]
        for path, sizes in (row["batch"].items() if row else ())
        if path.startswith("onnxruntime") and str(TARGET_BATCH_SIZE) in sizes
    }
    if timings:
        best_ms = min(t["p50_us"] for t in timings.values()) / 1000
        measured = ", ".join(f"{path}: {t['p50_us'] / 1000:.1f} ms" for path, t in timings.items())
        batch |= {"measured": measured, "met": best_ms <= TARGET_BATCH_MS}
    return [latency, ratio, batch]


def _http_targets(http: list[dict[str, Any]]) -> list[dict[str, Any]]:
    default = http[0]["variant"] if http else "the default variant"
    latency = _target(f"HTTP single-series p50 <= {TARGET_HTTP_P50_MS:.0f} ms at concurrency 1 ({default}, 1 worker)")
    throughput = _target(
        f"HTTP single-series >= {TARGET_HTTP_RPS:,.0f} requests/s at concurrency 64 ({default}, default settings: "
        "1 worker)"
    )
    memory = _target(f"service RSS <= 150 MB ({TARGET_RSS_MIB:.1f} MiB) per worker")
    if c1 := _http_row(http, default, 1, "single", 1):
        latency |= {"measured": f"{c1['p50_ms']:.2f} ms", "met": c1["p50_ms"] <= TARGET_HTTP_P50_MS}
    if c64 := _http_row(http, default, 1, "single", 64):
        errors = sum(c64["errors"].values())
        throughput |= {
            "measured": f"{c64['requests_per_s']:,.0f} requests/s, {errors} errors",
            "met": c64["requests_per_s"] >= TARGET_HTTP_RPS and not errors,
        }
    batches = []  # one row per variant served: the compute behind a batch differs 4x between them
    for variant in dict.fromkeys(r["variant"] for r in http):
        rows = [r for r in http if r["variant"] == variant and r["series_per_request"] > 1]
        one = _http_row(http, variant, 1, rows[0]["body"], 1) if rows else None
        if one is None:
            continue
        best = max(rows, key=lambda r: r["forecasts_per_s"])
        batches.append(
            _target(
                f"a {one['body']} request >= {TARGET_BATCH_FORECASTS_PER_S:,.0f} forecasts/s end to end "
                f"({variant}, 1 worker, concurrency 1)",
                f"{one['forecasts_per_s']:,.0f}/s (best: {best['forecasts_per_s']:,.0f}/s with "
                f"{best['workers']} worker(s) at concurrency {best['concurrency']})",
                one["forecasts_per_s"] >= TARGET_BATCH_FORECASTS_PER_S,
            )
        )
    peaks = [value for r in http for name, value in r["rss_peak_mib"].items() if name.startswith("worker")]
    if peaks:
        memory |= {
            "measured": f"highest worker peak under load: {max(peaks):.1f} MiB",
            "met": max(peaks) <= TARGET_RSS_MIB,
        }
    if not batches:
        batches = [_target(f"a batch request >= {TARGET_BATCH_FORECASTS_PER_S:,.0f} forecasts/s end to end")]
    return [latency, throughput, *batches, memory]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target, with the figure it is judged on and whether it is met (None: not measured in this run)."""
    return _in_process_targets(results.get("in_process", [])) + _http_targets(results.get("http", []))


def _machine_md(machine: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    threads = ", ".join(f"{k}={v}" for k, v in machine["thread_variables"].items()) or "none set"
    return [
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu']}, {machine['usable_cores']} usable of {machine['logical_cores']} logical cores |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS, Python | {machine['os']}, Python {machine['python']} |",
        f"| packages | {packages} |",
        f"| thread variables | {threads} |",
        f"| load average at start | {', '.join(map(str, machine['load_average_at_start']))} |",
        f"| commit | {machine['git_commit']}{' (with uncommitted changes)' if machine['git_dirty'] else ''} |",
        f"| date | {machine['date']} |",
    ]


def _single_md(inproc: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| variant | session.run p50 / p99 µs | service Forecaster p50 / p99 µs | tf.function p50 / p99 µs "
        "| Keras eager p50 µs | tf.function ÷ Forecaster | eager ÷ Forecaster |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in inproc:
        run, serving, traced, eager = (_single(r, p) for p in (ORT_RUN, SERVING, TF_FUNCTION, EAGER))

        def pair(t: dict[str, Any] | None) -> str:
            return "-" if t is None else f"{t['p50_us']:,.1f} / {t['p99_us']:,.1f}"

        lines.append(
            f"| {r['variant']} | {pair(run)} | {pair(serving)} | {pair(traced)} "
            f"| {_fmt(eager and eager['p50_us'], 0)} "
            f"| {_ratio(traced and traced['p50_us'], serving['p50_us'])} "
            f"| {_ratio(eager and eager['p50_us'], serving['p50_us'])} |"
        )
    return lines


def _batch_md(inproc: list[dict[str, Any]]) -> list[str]:
    paths = list(dict.fromkeys(p for r in inproc for p in r["batch"]))
    keras = next((p for p in paths if p.startswith(TF_FUNCTION)), None)
    lines = [
        "| variant | batch | "
        + " | ".join(f"{p} (forecasts/s, p50 ms)" for p in paths)
        + " | best onnxruntime ÷ Keras |",
        "|---|---|" + "---|" * len(paths) + "---|",
    ]
    for r in inproc:
        sizes = list(dict.fromkeys(n for timings in r["batch"].values() for n in timings))
        for size in sizes:
            cells = []
            for path in paths:
                t = r["batch"].get(path, {}).get(size)
                cells.append("-" if t is None else f"{t['forecasts_per_s']:,.0f} ({t['p50_us'] / 1000:,.3f})")
            best_ort = max(
                (
                    t[size]["forecasts_per_s"]
                    for p, t in r["batch"].items()
                    if p.startswith("onnxruntime") and size in t
                ),
                default=None,
            )
            tf_rate = r["batch"].get(keras, {}).get(size, {}).get("forecasts_per_s") if keras else None
            lines.append(
                f"| {r['variant']} | {int(size):,} | " + " | ".join(cells) + f" | {_ratio(best_ort, tf_rate)} |"
            )
    return lines


def _http_md(http: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| variant | workers | body | concurrency | requests/s | forecasts/s | p50 ms | p99 ms | errors "
        "| RSS idle MiB | RSS peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in http:
        errors = sum(r["errors"].values())
        idle = ", ".join(f"{k} {v:.0f}" for k, v in r["rss_idle_mib"].items())
        peak = ", ".join(f"{k} {v:.0f}" for k, v in r["rss_peak_mib"].items())
        # a row in which no request finished has no latency to show, only the fact
        p50, p99 = (f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}") if r.get("requests", 1) else ("none answered", "-")
        lines.append(
            f"| {r['variant']} | {r['workers']} | {r['body']} | {r['concurrency']} | {r['requests_per_s']:,.0f} "
            f"| {r['forecasts_per_s']:,.0f} | {p50} | {p99} | {errors} | {idle} | {peak} |"
        )
    return lines


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _profiles_md(profiles: list[dict[str, Any]]) -> list[str]:
    if not profiles:
        return ["Not profiled in this run (py-spy is not installed: `pip install py-spy`)."]
    lines = [
        "py-spy sampled the worker (250 samples/s, every thread that was not idle) during a separate load "
        "after the measured rows, so sampling touched no reported figure. Shares are of busy samples: those "
        "whose top frame is a wait (a parked pool thread; uvloop's polling in an older commit) are counted apart; "
        "the event loop's epoll wait is mostly left out by py-spy, and what it samples of it counts as event loop. "
        "*Layer*: the code "
        "on top of the stack (where the CPU was); *own*: a function on top of the stack; *with callees*: "
        "shelfcast's own functions (`app/`), anywhere in the stack.",
    ]
    for prof in profiles:
        lines += ["", f"**{prof['name']}**"]
        if "error" in prof:
            lines += ["", f"Not profiled: {prof['error']}"]
            continue
        lines += [
            f" ({prof['samples']:,} busy samples, {prof['waiting_samples']:,} waiting; "
            f"{prof['requests_per_s_while_sampled']:,.0f} requests/s while sampled)",
            "",
            "| layer | share of samples |",
            "|---|---|",
            *(f"| {name} | {_percent(share)} |" for name, share in prof["layers"].items()),
            "",
            "| function (own time) | share | function (with callees) | share |",
            "|---|---|---|---|",
        ]
        inclusive = prof["inclusive"]
        for i, (function, share) in enumerate(prof["own"]):
            right = inclusive[i] if i < len(inclusive) else ("", None)
            lines.append(
                f"| `{function}` | {_percent(share)} | "
                + (f"`{right[0]}` | {_percent(right[1])} |" if right[1] is not None else " | |")
            )
    return lines


def _training_md(training: dict[str, Any]) -> list[str]:
    lines = [
        f"`shelfcast-train benchmark` took **{training['wall_seconds'] / 60:.1f} minutes** of wall time "
        f"in its own run (read from `{training['source']}`, not rerun here): every variant, 3 seeds each.",
        "",
        "| variant | derived from | seconds per run (train or derive, export, measure) |",
        "|---|---|---|",
    ]
    for name, row in training["per_variant"].items():
        seconds = ", ".join(f"{s:.0f}" for s in row["seconds_per_run"]) or "-"
        lines.append(f"| {name} | {row['derived_from'] or '-'} | {seconds} |")
    return lines


def _compare_md(compare: dict[str, Any], inproc: list[dict[str, Any]], http: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"Commit `{compare['ref']}` ({compare['commit']}) measured in the same run, in alternating rounds with "
        "this tree: its model files through a session set up as its service set them up (onnxruntime defaults "
        "with one thread: memory arena on; `session.run` on the whole batch), against this tree's files through "
        "the service's Forecaster.",
        "",
        "| variant | before: one window p50 µs | after: one window p50 µs | before ÷ after "
        "| before: 10,000 windows ms | after: 10,000 windows ms | before ÷ after |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in inproc:
        before, after = row["single"].get(BEFORE), row["single"][SERVING]
        if before is None:
            continue
        big_before = row["batch"].get(BEFORE, {}).get("10000")
        big_after = row["batch"].get(ORT_ONE_THREAD, {}).get("10000")
        b_ms, a_ms = (t and t["p50_us"] / 1000 for t in (big_before, big_after))
        lines.append(
            f"| {row['variant']} | {before['p50_us']:.1f} | {after['p50_us']:.1f} "
            f"| {_ratio(before['p50_us'], after['p50_us'])} "
            f"| {_fmt(b_ms, 1)} | {_fmt(a_ms, 1)} | {_ratio(b_ms, a_ms)} |"
        )
    if compare.get("http"):
        without = ", ".join(compare.get("without_packages", ()))
        lines += [
            "",
            "HTTP, before and after (same load, same machine, same run; the old service ran with the packages "
            f"it declared{f', i.e. without {without}' if without else ''}):",
            "",
        ]
        lines += [
            "| body | concurrency | before requests/s | after requests/s | before p50 ms | after p50 ms "
            "| before p99 ms | after p99 ms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for b in compare["http"]:
            a = _http_row(http, b["variant"], b["workers"], b["body"], b["concurrency"])
            if a is None:
                continue
            lines.append(
                f"| {b['body']} ({b['variant']}, {b['workers']} worker) | {b['concurrency']} "
                f"| {b['requests_per_s']:,.0f} | {a['requests_per_s']:,.0f} | {b['p50_ms']:.2f} | {a['p50_ms']:.2f} "
                f"| {b['p99_ms']:.2f} | {a['p99_ms']:.2f} |"
            )
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# shelfcast performance",
        "",
        "Written by the command below; every figure comes from one run of it on the machine described, except "
        "the training time, read from the training benchmark's own report. Latencies are percentiles over many "
        "calls after a warm-up. Ratios compare paths measured side by side in this run.",
        "",
        "```",
        results["command"],
        "```",
        *(
            [
                "",
                "**`--quick`**: a tiny configuration that proves the pipeline works; its figures are not "
                "representative (rows last a second, a slow row may answer nothing).",
            ]
            if "--quick" in results["command"].split()
            else []
        ),
        "",
        "## Machine",
        "",
        *_machine_md(results["machine"]),
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {t['target']} | {t['measured']} | {_met(t['met'])} |" for t in results["targets"]),
    ]
    if any(t["met"] is False for t in results["targets"]):
        lines += [
            "",
            "A missed target's profile is under \"Where the service's time goes\" below; the README's "
            "Performance section says what is left, why, and the next step.",
        ]
    inproc = results.get("in_process", [])
    if inproc:
        keras_note = next((r["keras_weights"] for r in inproc if r.get("keras_weights")), None)
        lines += [
            "",
            "## In-process: one window",
            "",
            "Numpy in, numpy out on every path. onnxruntime runs with 1 intra-op and 1 inter-op thread (the "
            "service's defaults); `session.run` is the plain call, the service Forecaster is what `/forecast` "
            "runs (a per-thread IOBinding over preallocated buffers). Keras runs the same weights rebuilt from "
            "each ONNX file and checked against it (`bench/keras_twin.py`), with TensorFlow's default threads"
            + (f"; int8 variants: {keras_note.split(';')[0]}" if keras_note and "int8" in keras_note else "")
            + ".",
            "",
            *_single_md(inproc),
            "",
            "## In-process: batch throughput",
            "",
            "One call per batch. Forecasts per second = batch / p50 latency.",
            "",
            *_batch_md(inproc),
        ]
    http = results.get("http", [])
    if http:
        lines += [
            "",
            "## HTTP on loopback",
            "",
            f"Load generator: {http[0]['generator']}, closed loop (each connection sends its next request when "
            f"the answer arrives), {http[0]['duration_s']:.0f} s per row after a warm-up; the service started "
            "fresh per variant and worker count with default settings (`python -m app`, MODEL_VARIANT set). "
            "The generator shares the machine's cores with the service. RSS is per process, read by psutil: "
            "idle after the first answers, peak sampled every 0.1 s during the row.",
            "",
            *_http_md(http),
        ]
    if "profiles" in results:
        lines += ["", "## Where the service's time goes", "", *_profiles_md(results["profiles"])]
    if results.get("training"):
        lines += ["", "## Training time", "", *_training_md(results["training"])]
    if results.get("compare"):
        lines += ["", "## Before and after", "", *_compare_md(results["compare"], inproc, http)]
    return "\n".join(lines) + "\n"


def readme_block(results: dict[str, Any]) -> str:
    """The targets table for the README, with the command and a pointer to the full report."""
    return "\n".join(
        [
            f"Measured by `{results['command']}` on {results['machine']['cpu']} "
            f"({results['machine']['usable_cores']} cores), commit {results['machine']['git_commit']}; "
            "every figure and ratio is in [reports/performance.md](reports/performance.md).",
            "",
            "| target | measured | |",
            "|---|---|---|",
            *(f"| {t['target']} | {t['measured']} | {_met(t['met'])} |" for t in results["targets"]),
            "",
        ]
    )


def write(results: dict[str, Any], out_dir: Path, readme: Path | None = None) -> tuple[Path, Path]:
    """The two reports, and the README's block between its performance markers when a README is given."""
    json_path, md_path = out_dir / "performance.json", out_dir / "performance.md"
    write_atomic(json_path, (json.dumps(results, indent=2) + "\n").encode())
    write_atomic(md_path, markdown(results).encode())
    if readme is not None and readme.is_file():
        text = readme.read_text()
        pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
        if pattern.search(text):
            block = f"{README_START}\n{readme_block(results)}{README_END}"
            write_atomic(readme, pattern.sub(lambda _: block, text).encode())
    return json_path, md_path
