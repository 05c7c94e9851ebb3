"""`shelfcast-bench`: every performance figure, side by side in one run, into reports/performance.{md,json}.

Benchmarks are not tests: this is its own command, and it takes minutes (`--quick` takes seconds and
only proves the pipeline works).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.registry import discover
from bench import http, inprocess, machine, report
from bench.loadgen import available_generator
from bench.training_time import training_time

REPO = Path(__file__).resolve().parent.parent


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _numbers(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shelfcast-bench", description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", type=Path, default=REPO / "models")
    p.add_argument("--out", type=Path, default=REPO / "reports", help="where performance.md and .json go")
    p.add_argument("--variants", type=_names, help="in-process variants (default: every variant in --models-dir)")
    p.add_argument("--http-variants", type=_names, default=http.HttpConfig.variants)
    p.add_argument("--workers", type=_numbers, default=http.HttpConfig.workers, help="uvicorn worker counts")
    p.add_argument("--concurrency", type=_numbers, default=http.HttpConfig.concurrency)
    p.add_argument("--batch-series", type=int, default=http.HttpConfig.batch_series)
    p.add_argument("--duration", type=float, default=http.HttpConfig.duration_s, help="seconds per HTTP load")
    p.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if installed")
    p.add_argument("--no-keras", action="store_true", help="skip the Keras side (no TensorFlow needed)")
    p.add_argument("--no-http", action="store_true")
    p.add_argument(
        "--profile-seconds", type=float, default=http.HttpConfig.profile_s,
        help="py-spy sampling of the service per body after its measured loads (0: none)",
    )  # fmt: skip
    p.add_argument("--compare-ref", help="git ref to measure beside this tree (its models and its service)")
    p.add_argument("--quick", action="store_true", help="tiny configuration: proves the pipeline, measures little")
    return p


@contextmanager
def checkout(ref: str) -> Iterator[tuple[Path, str]]:
    """A temporary git worktree at `ref`; removed afterwards."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="shelfcast-before-") as parent:
        path = Path(parent) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), commit], cwd=REPO, check=True)
        try:
            yield path, commit
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def _dependency_names(pyproject: Path) -> set[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower().replace("-", "_") for d in dependencies}


def added_dependencies(tree: Path) -> tuple[str, ...]:
    """Serving packages this tree depends on and `tree` did not: its service must run without them."""
    return tuple(sorted(_dependency_names(REPO / "pyproject.toml") - _dependency_names(tree / "pyproject.toml")))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    variants = list(args.variants or discover(args.models_dir))
    inproc_config = inprocess.InProcessConfig(keras=not args.no_keras)
    http_config = http.HttpConfig(
        variants=args.http_variants,
        workers=args.workers,
        concurrency=args.concurrency,
        batch_series=args.batch_series,
        duration_s=args.duration,
        generator=args.generator,
        profile_s=args.profile_seconds,
    )
    if args.quick:
        inproc_config = replace(
            inproc_config, rounds=2, single_calls=50, tf_function_calls=5, eager_calls=1, batch_sizes=(1, 100),
            batch_rounds=1, batch_work=200,
        )  # fmt: skip
        http_config = replace(
            http_config, duration_s=min(args.duration, 1.0), warmup_s=0.2, profile_s=min(args.profile_seconds, 1.0)
        )

    command = "shelfcast-bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    results: dict[str, Any] = {"command": command.strip(), "machine": machine.describe(REPO)}
    if args.generator != "python":
        results["machine"]["load_generator"] = available_generator(args.generator)
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shelfcast-bench-logs-")))
        tree, commit = stack.enter_context(checkout(args.compare_ref)) if args.compare_ref else (None, None)
        before_models = tree / "models" if tree is not None else None
        inproc = inprocess.run(args.models_dir, variants, inproc_config, before_dir=before_models)
        results["in_process"] = [r.to_dict() for r in inproc]
        if not args.no_http:
            results["http"], results["profiles"] = http.run(http_config, logs)
        if tree is not None:
            compare: dict[str, Any] = {"ref": args.compare_ref, "commit": commit}
            if not args.no_http:
                first = replace(http_config, variants=http_config.variants[:1], workers=(1,), profile_s=0)
                compare["without_packages"] = added_dependencies(tree)
                compare["http"], _ = http.run(first, logs, cwd=tree, without=compare["without_packages"])
            results["compare"] = compare
    results["training"] = training_time(REPO / "reports" / "benchmark.json", args.models_dir)
    results["targets"] = report.targets(results)
    # the README shows the targets of the committed report only, never those of a run written elsewhere
    readme = REPO / "README.md" if args.out.resolve() == (REPO / "reports").resolve() else None
    json_path, md_path = report.write(results, args.out, readme)
    print(f"wrote {md_path} and {json_path}")
    for target in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "-"}[target["met"]]
        print(f"  {verdict:6s} {target['target']}: {target['measured']}")
    return 0
