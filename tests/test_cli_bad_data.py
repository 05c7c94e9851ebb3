"""`python -m training train` on bad data, and interrupted: one clear error line, and the models left alone.

Each bad file is one a retailer's export could really produce. The CLI must exit 1 with a single stderr
line that starts with 'error:' and names the problem and where it is (the line, or the series), and the
models folder it would have published to, already holding a good model, must not change by one byte.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import HEADER, MODELS, REPO, generate_sales, to_lines

STORES, ITEMS = "1-2", "1-2"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in the folder (hidden ones too) and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models folder already holding a good published model."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("lstm64.onnx", "lstm64.json"):
        shutil.copyfile(MODELS / name, folder / name)
    return folder


def train_command(data: Path, models: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "training", "train", "--data", str(data), "--runs", "1", "--epochs", "1",
        "--stores", STORES, "--items", ITEMS, "--models-dir", str(models), "--quiet", *extra,
    ]  # fmt: skip


def run_train(data: Path, models: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(data, models, *extra),
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def sales() -> pd.DataFrame:
    """2 stores x 2 items x 60 days; data row i is file line i + 2, store 1 item 1 first."""
    return generate_sales(stores=(1, 2), items=(1, 2), days=60)


def lines_with(row: int, column: str, value: str) -> list[str]:
    lines = to_lines(sales())
    parts = lines[row].split(",")
    parts[["date", "store", "item", "sales"].index(column)] = value
    lines[row] = ",".join(parts)
    return lines


def missing_file(tmp: Path) -> tuple[Path, str]:
    return tmp / "nowhere.csv", "nowhere.csv: file not found"


def directory(tmp: Path) -> tuple[Path, str]:
    (tmp / "exports").mkdir()
    return tmp / "exports", "exports: is a directory, not a CSV file"


def wrong_columns(tmp: Path) -> tuple[Path, str]:
    data = write(tmp / "s.csv", to_lines(sales()), header="day,shop,product,units")
    return data, "missing column(s) date, store, item, sales"


def empty_file(tmp: Path) -> tuple[Path, str]:
    (tmp / "s.csv").write_bytes(b"")
    return tmp / "s.csv", "file is empty"


def header_only(tmp: Path) -> tuple[Path, str]:
    return write(tmp / "s.csv", []), "no data rows"


def unparsable_date(tmp: Path) -> tuple[Path, str]:
    data = write(tmp / "s.csv", lines_with(9, "date", "2013-13-45"))
    return data, "line 11: column 'date' must be a date YYYY-MM-DD, got '2013-13-45'"


def gap(tmp: Path) -> tuple[Path, str]:
    frame = sales()
    missing = (frame["store"] == 2) & (frame["item"] == 1) & (frame["date"] == pd.Timestamp("2013-01-20"))
    return write(tmp / "s.csv", to_lines(frame[~missing])), "store 2 item 1: missing day 2013-01-20"


def duplicate_day(tmp: Path) -> tuple[Path, str]:
    lines = to_lines(sales())
    lines.insert(5, lines[4])  # data row 4 (file line 6) again, as file line 7
    return write(tmp / "s.csv", lines), "line 7: duplicate day 2013-01-05 for store 1 item 1"


def negative_sales(tmp: Path) -> tuple[Path, str]:
    data = write(tmp / "s.csv", lines_with(30, "sales", "-4"))
    return data, "line 32: column 'sales' must be >= 0, got '-4'"


def store_not_in_file(tmp: Path) -> tuple[Path, str]:
    return write(tmp / "s.csv", to_lines(sales())), "no rows for stores [99]"


def series_too_short(tmp: Path) -> tuple[Path, str]:
    frame = sales()
    short = (frame["store"] == 1) & (frame["item"] == 2) & (frame["date"] >= pd.Timestamp("2013-01-11"))
    return write(tmp / "s.csv", to_lines(frame[~short])), "store 1 item 2: 10 day(s) is too short"


BAD_DATA: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "missing file": missing_file,
    "a directory": directory,
    "wrong columns": wrong_columns,
    "empty file": empty_file,
    "header only": header_only,
    "unparsable date": unparsable_date,
    "gap": gap,
    "duplicate day": duplicate_day,
    "negative sales": negative_sales,
    "no rows for the selection": store_not_in_file,
    "series shorter than a window": series_too_short,
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_exits_1_with_one_error_line_and_leaves_models_alone(
    tmp_path: Path, models_dir: Path, case: str
) -> None:
    data, problem = BAD_DATA[case](tmp_path)
    before = snapshot(models_dir)
    extra = ("--stores", "99") if case == "no rows for the selection" else ()

    result = run_train(data, models_dir, *extra)

    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and problem in lines[0], lines[0]
    assert str(data) in lines[0]  # which file
    assert result.stdout == ""
    assert snapshot(models_dir) == before


def test_the_unflawed_data_passes_validation_so_each_case_fails_for_its_flaw(tmp_path: Path) -> None:
    """The unflawed file the cases are cut from passes validation (checked without training a model)."""
    code = (
        "import sys; from training.dataset import load_split; from training.config import DataConfig; "
        "split = load_split(DataConfig(path=sys.argv[1], stores=(1, 2), items=(1, 2))); print(len(split.train))"
    )
    data = write(tmp_path / "s.csv", to_lines(sales()))
    result = subprocess.run(
        [sys.executable, "-c", code, str(data)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) > 0


def test_bad_data_is_reported_before_tensorflow_loads(tmp_path: Path, models_dir: Path) -> None:
    """A bad file should fail in well under a second, not after TensorFlow's multi-second import."""
    data, _ = header_only(tmp_path)
    code = (
        "import sys; from training.cli import main; code = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(code)"
    )
    arguments = train_command(data, models_dir)[3:]  # after `python -m training`
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_leaves_the_models_folder_unchanged(
    tmp_path: Path, models_dir: Path, signum: signal.Signals
) -> None:
    """Stopped mid-fit (after 'run 1/' on stderr and a finished epoch on stdout), nothing is published."""
    data = write(tmp_path / "s.csv", to_lines(generate_sales(stores=(1, 2), items=(1, 2), days=400)))
    before = snapshot(models_dir)
    # many epochs and no early stop, so training is certainly still running when the signal comes
    command = [a for a in train_command(data, models_dir, "--patience", "10000") if a != "--quiet"]
    command[command.index("--epochs") + 1] = "10000"
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell running the tests in the background would have SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen: list[str] = []
    run_started, epoch_done = threading.Event(), threading.Event()

    def read(stream, marker: str, event: threading.Event) -> None:
        for line in stream:
            seen.append(line)
            if marker in line:
                event.set()

    readers = [
        threading.Thread(target=read, args=(process.stderr, "run 1/", run_started), daemon=True),
        threading.Thread(target=read, args=(process.stdout, "Epoch 2/", epoch_done), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:  # the timeouts are safety nets against a hang, not limits on training
        assert run_started.wait(timeout=300) and epoch_done.wait(timeout=300), "".join(seen[-20:])
        process.send_signal(signum)
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(timeout=30)
    assert returncode != 0, "".join(seen[-20:])
    assert snapshot(models_dir) == before  # nothing replaced, and no temporary file left beside the models
    if signum == signal.SIGINT:  # Ctrl-C: one line saying what happened, not a traceback
        assert returncode == 130 and "Traceback" not in "".join(seen)
        assert seen[-1].startswith("error: interrupted"), "".join(seen[-5:])
