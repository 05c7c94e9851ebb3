"""Model integrity: the service serves only the exact bytes training published, checked by sha256 at startup.

Each way a model file can go wrong (a flipped byte, cut short, garbage, another variant's valid ONNX file,
deleted) is tried on a copy of models/: on the active variant startup refuses with exit code 2 and one
line naming the variant and the reason; on any other variant the service starts without it and says why.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import HISTORY, MODELS, REPO, run_app_expecting_failure, service_process

ACTIVE = "lstm64"  # the default MODEL_VARIANT


def copy_models(target: Path) -> Path:
    for source in MODELS.iterdir():
        if source.suffix in {".json", ".onnx"}:
            shutil.copyfile(source, target / source.name)
    return target


def variants(models_dir: Path) -> list[str]:
    return sorted(p.stem for p in models_dir.glob("*.json"))


def flip_byte(path: Path, donor: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path, donor: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path, donor: Path) -> None:
    path.write_bytes(b"\x00\xffnot an onnx model\n" * 512)


def other_valid_model(path: Path, donor: Path) -> None:
    assert donor.read_bytes() != path.read_bytes()
    shutil.copyfile(donor, path)


def delete(path: Path, donor: Path) -> None:
    path.unlink()


TAMPERS: dict[str, tuple[Callable[[Path, Path], None], str]] = {  # how, and the reason the service must give
    "flipped byte": (flip_byte, "sha256 mismatch"),
    "truncated": (truncate, "sha256 mismatch"),
    "garbage": (garbage, "sha256 mismatch"),
    "another variant's model": (other_valid_model, "sha256 mismatch"),
    "deleted": (delete, "is missing"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_active_model_refuses_startup_with_one_clear_line(tmp_path: Path, tamper: str) -> None:
    models = copy_models(tmp_path)
    donor = next(models / f"{name}.onnx" for name in variants(models) if name != ACTIVE)
    how, reason = TAMPERS[tamper]
    how(models / f"{ACTIVE}.onnx", donor)

    result = run_app_expecting_failure({"MODELS_DIR": str(models), "MODEL_VARIANT": ACTIVE})

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: variant '{ACTIVE}': ") and reason in lines[0], lines[0]
    assert str(models / f"{ACTIVE}.onnx") in lines[0]
    assert "Traceback" not in result.stderr


def test_tampered_other_variants_are_listed_unavailable_and_the_active_one_serves(tmp_path: Path) -> None:
    """Each tamper on a different non-active variant, all in one service."""
    models = copy_models(tmp_path)
    others = [name for name in variants(models) if name != ACTIVE]
    assert len(others) >= len(TAMPERS), "needs a non-active variant per tamper case"
    broken = dict(zip(TAMPERS, others, strict=False))  # tamper case -> the variant it breaks
    for tamper, name in broken.items():
        how, _ = TAMPERS[tamper]
        how(models / f"{name}.onnx", models / f"{ACTIVE}.onnx")
    intact = sorted(set(variants(models)) - set(broken.values()))

    with service_process({"MODELS_DIR": str(models), "MODEL_VARIANT": ACTIVE}) as (client, _):
        listed = {v["variant"]: v for v in client.get("/models").json()["variants"]}
        assert sorted(listed) == variants(models)  # broken variants are still listed, with their metadata
        for tamper, name in broken.items():
            summary = listed[name]
            assert summary["available"] is False, name
            assert TAMPERS[tamper][1] in summary["unavailable_reason"] and name in summary["unavailable_reason"]
            assert client.get(f"/models/{name}").json()["available"] is False
        for name in intact:
            assert listed[name]["available"] is True and listed[name]["unavailable_reason"] is None

        benchmarked = client.get("/benchmark", params={"iterations": 10, "batch_size": 4})
        assert benchmarked.status_code == 200
        assert [r["variant"] for r in benchmarked.json()["results"]] == intact
        asked = client.get("/benchmark", params={"variants": next(iter(broken.values())), "iterations": 10})
        assert asked.status_code == 422 and "unavailable" in asked.json()["detail"][0]["msg"]

        forecast = client.post("/forecast", json={"store": 1, "item": 1, "history": HISTORY})
        assert forecast.status_code == 200 and forecast.json()["variant"] == ACTIVE


def test_the_service_keeps_serving_the_bytes_it_verified(tmp_path: Path) -> None:
    """The model file is read once, hashed, and the session built from those bytes: changing or deleting
    the file afterwards changes nothing until a restart (which would then refuse it)."""
    models = copy_models(tmp_path)
    request = {"store": 1, "item": 1, "history": HISTORY, "horizon": 3}
    with service_process({"MODELS_DIR": str(models), "MODEL_VARIANT": ACTIVE}) as (client, _):
        before = client.post("/forecast", json=request).json()
        active = models / f"{ACTIVE}.onnx"
        other = next(models / f"{name}.onnx" for name in variants(models) if name != ACTIVE)
        shutil.copyfile(other, active)  # a valid model with different weights
        swapped = client.post("/forecast", json=request).json()
        active.unlink()
        deleted = client.post("/forecast", json=request).json()
        assert swapped == before and deleted == before
        assert client.get(f"/models/{ACTIVE}").json()["available"] is True
    restarted = run_app_expecting_failure({"MODELS_DIR": str(models), "MODEL_VARIANT": ACTIVE})
    assert restarted.returncode == 2 and "is missing" in restarted.stderr


UNSAFE_LOADERS = re.compile(
    r"\bimport\s+(pickle|cPickle|dill|cloudpickle|joblib|shelve|marshal)\b"
    r"|\bfrom\s+(pickle|dill|cloudpickle|joblib|shelve|marshal)\b"
    r"|\b(pickle|dill|cloudpickle|joblib|marshal)\.loads?\("
    r"|\btorch\.load\("
    r"|allow_pickle\s*=\s*True"
    r"|\byaml\.(unsafe_)?load\("
    r"|\bload_model\("
)


def unsafe_loads(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if UNSAFE_LOADERS.search(line)]


@pytest.mark.parametrize(
    "line",
    [
        "import pickle",
        "from joblib import load",
        "weights = torch.load(path)",
        "np.load(path, allow_pickle=True)",
        "model = keras.models.load_model(path)",
        "data = yaml.load(stream)",
    ],
)
def test_the_unsafe_loader_scan_recognises(line: str) -> None:
    assert unsafe_loads(f"x = 1\n    {line}\n") == [line]


def test_no_code_deserialises_with_pickle_or_other_code_executing_loaders() -> None:
    """Models travel as ONNX bytes (no code) plus JSON; nothing loads pickles, joblib or Keras files."""
    sources = sorted((REPO / "app").rglob("*.py")) + sorted((REPO / "training").rglob("*.py"))
    assert len(sources) > 20
    found = {str(p.relative_to(REPO)): unsafe_loads(p.read_text(encoding="utf-8")) for p in sources}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_sessions_are_built_from_the_hashed_bytes_not_reopened_from_disk() -> None:
    """Static companion to the test above: the one InferenceSession call takes the bytes that were hashed."""
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO / "app").rglob("*.py")}
    built = {p: re.findall(r"InferenceSession\((\w+)", text) for p, text in sources.items()}
    built = {p: names for p, names in built.items() if names}
    assert len(built) == 1 and len(next(iter(built.values()))) == 1, built  # one place builds sessions
    (path, [argument]) = next(iter(built.items()))
    assert re.search(rf"hashlib\.sha256\({argument}\)", sources[path]), "the session's bytes are not the hashed ones"
    assert re.search(rf"{argument} = \w+(\.\w+)*\.read_bytes\(\)", sources[path])
