"""The performance suite end to end on a tiny configuration: it runs, and its report is well formed.

Benchmarks measure speed; this only checks behaviour, so no figure is compared with a limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("perf")
    command = [
        sys.executable, "-m", "bench", "--quick", "--out", str(out),
        "--variants", "lstm16,lstm16-int8", "--http-variants", "lstm16", "--workers", "1,2",
        "--concurrency", "1,4", "--batch-series", "50", "--duration", "1", "--compare-ref", "HEAD",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "performance.json").read_text()), (out / "performance.md").read_text(), done.stdout


@pytest.mark.slow
def test_every_in_process_path_is_measured_per_variant(quick_report) -> None:
    results, _, _ = quick_report
    assert [r["variant"] for r in results["in_process"]] == ["lstm16", "lstm16-int8"]
    for row in results["in_process"]:
        paths = set(row["single"])
        assert paths == {
            "onnxruntime session.run",
            "onnxruntime (service Forecaster)",
            "Keras tf.function",
            "Keras eager",
            "before: old file, session.run",  # --compare-ref HEAD: the same file, in the same rounds
        }
        for timing in row["single"].values():
            assert timing["calls"] >= 2 and 0 < timing["p50_us"] <= timing["p99_us"]
        assert set(row["batch"]) == {
            "onnxruntime (service Forecaster), 1 thread",
            "onnxruntime (service Forecaster), 2 intra-op threads",
            "onnxruntime (service Forecaster), 2 slice threads (service default)",
            "Keras tf.function, TensorFlow default threads",
            "before: old file, session.run",
        }
        for sizes in row["batch"].values():
            assert set(sizes) == {"1", "100"}
            assert sizes["100"]["forecasts_per_s"] == pytest.approx(100 / (sizes["100"]["p50_us"] / 1e6), rel=1e-3)
    int8 = results["in_process"][1]
    assert "dequantized" in int8["keras_weights"]


@pytest.mark.slow
def test_http_rows_cover_workers_bodies_and_concurrency_without_errors(quick_report) -> None:
    results, _, _ = quick_report
    rows = results["http"]
    assert {(r["workers"], r["series_per_request"], r["concurrency"]) for r in rows} == {
        (w, s, c) for w in (1, 2) for s in (1, 50) for c in (1, 4)
    }
    for row in rows:
        assert row["requests"] > 0 and not any(row["errors"].values())
        assert row["forecasts_per_s"] == pytest.approx(row["requests_per_s"] * row["series_per_request"], rel=1e-3)
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        workers = [k for k in row["rss_peak_mib"] if k.startswith("worker")]
        assert len(workers) == row["workers"] and all(row["rss_peak_mib"][k] > 10 for k in workers)
        assert ("supervisor" in row["rss_idle_mib"]) == (row["workers"] > 1)


@pytest.mark.slow
def test_report_states_machine_targets_training_time_and_the_before_after(quick_report) -> None:
    results, markdown, stdout = quick_report
    machine = results["machine"]
    assert machine["usable_cores"] >= 1 and machine["cpu"] and "onnxruntime" in machine["packages"]
    assert results["command"].startswith("shelfcast-bench --quick")
    assert results["command"] in markdown
    assert results["training"]["wall_seconds"] > 0
    assert set(results["training"]["per_variant"]) >= {"lstm64", "lstm16", "lstm16-int8"}
    assert results["compare"]["ref"] == "HEAD" and results["compare"]["without_packages"] == []
    assert {(r["series_per_request"], r["concurrency"]) for r in results["compare"]["http"]} == {
        (s, c) for s in (1, 50) for c in (1, 4)
    }
    targets = results["targets"]
    assert len(targets) == 7
    not_measured = {t["target"] for t in targets if t["met"] is None}
    assert len(not_measured) == 2  # the quick run has no 10,000-window batch and no concurrency 64
    assert all("10,000-window" in t or "concurrency 64" in t for t in not_measured)
    assert all(isinstance(t["met"], bool) for t in targets if t["target"] not in not_measured)
    for heading in ("## Machine", "## Targets", "## In-process: one window", "## In-process: batch throughput",
                    "## HTTP on loopback", "## Training time", "## Before and after"):  # fmt: skip
        assert heading in markdown
    for target in targets:
        assert target["target"] in markdown and target["target"] in stdout
    assert "**`--quick`**" in markdown and "not representative" in markdown
    assert results["training"]["source"] == "reports/benchmark.json"  # not this machine's folders
    unanswered = [r for r in results["http"] if r["requests"] == 0]
    assert markdown.count("| none answered | - |") == len(unanswered)
    missed = any(t["met"] is False for t in targets)
    assert ("the README's Performance section says what is left" in markdown) == missed


@pytest.mark.slow
def test_the_service_is_profiled_under_each_body(quick_report) -> None:
    from bench.profile import available

    results, markdown, _ = quick_report
    assert "## Where the service's time goes" in markdown
    if available() is None:
        assert results["profiles"] == [] and "Not profiled" in markdown
        return
    profiles = results["profiles"]
    assert [p["name"] for p in profiles] == ["lstm16, 1 worker, single series, concurrency 4",
                                             "lstm16, 1 worker, 50-series batch, concurrency 1"]  # fmt: skip
    for prof in profiles:
        assert "error" not in prof, prof.get("error")
        assert prof["samples"] > 0 and sum(prof["layers"].values()) == pytest.approx(1, abs=0.01)
        assert prof["own"] and all(0 < share <= 1 for _, share in prof["own"])
        # the requests were computed, on the loop or in a pool thread, and the profile must have seen it
        assert any(name.startswith("_compute (forecast.py)") for name, _ in prof["inclusive"])
        assert f"**{prof['name']}**" in markdown


def test_bad_arguments_are_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--concurrency", "0,8", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--concurrency" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_older_tree_runs_without_the_serving_packages_it_did_not_declare(tmp_path: Path) -> None:
    from bench.cli import added_dependencies
    from bench.service import running_service

    old = tmp_path / "old"
    old.mkdir()
    current = (REPO / "pyproject.toml").read_text()
    (old / "pyproject.toml").write_text(
        current.replace('    "httptools', '    # "httptools').replace('    "orjson', '    # "orjson')
    )
    assert added_dependencies(old) == ("httptools", "orjson")

    blocked = ("httptools",)
    with running_service("lstm16", 1, tmp_path, without=blocked) as service:
        assert service.rss_mib()["worker 1"] > 10
    log = service.log_path.read_text()
    assert "Application startup complete" in log
    probe = [sys.executable, "-c", "import sys; sys.modules.update(dict.fromkeys(['httptools'])); import httptools"]
    assert subprocess.run(probe, capture_output=True).returncode != 0  # the mechanism: None in sys.modules


def test_a_tree_is_changed_only_by_files_the_run_does_not_write_itself(tmp_path: Path) -> None:
    from bench.machine import describe

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "app.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "performance.md").write_text("# an earlier run\n")
    (tmp_path / "README.md").write_text("readme with an earlier run's targets\n")
    assert describe(tmp_path)["git_dirty"] is False
    (tmp_path / "app.py").write_text("x = 2\n")
    assert describe(tmp_path)["git_dirty"] is True
