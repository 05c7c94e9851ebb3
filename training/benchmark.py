"""The whole compression benchmark on one split: every variant x runs, the baselines, the report.

Per seed: LSTM-64, -32 and -16 are trained; from each LSTM-32 run come the pruned variants, its
INT8 file and the pruned-50% + INT8 hybrid, so derived variants have as many runs as their source,
each from a different seed, as in the reference study. Pruning is gradual (30% -> 50% -> 70%, each
level fine-tuned from the one before): one-shot 70% with the same fine-tuning got stuck at 17.7%
MAPE, gradual reaches about 14.8% (measured on seed 0, see the README).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import onnx
from tqdm import tqdm

from training.baselines import BASELINES, Baseline
from training.config import (
    FINETUNE_EPOCHS,
    FINETUNE_LEARNING_RATE,
    FINETUNE_PATIENCE,
    DataConfig,
    TrainConfig,
)
from training.dataset import data_description, load_split
from training.evaluate import metrics
from training.pipeline import (
    Candidate,
    export_candidate,
    float_description,
    measure,
    publish_variant,
    train_candidate,
    training_description,
)
from training.prune import onnx_kernel_sparsity, prune
from training.quantize import integer_weights, quantize_int8
from training.report import write_reports
from training.train import fit
from training.windows import Split

log = logging.getLogger("shelfcast.benchmark")

FLOAT_UNITS = {"lstm64": 64, "lstm32": 32, "lstm16": 16}
SPARSITIES = {"pruned30": 0.3, "pruned50": 0.5, "pruned70": 0.7}


@dataclass(frozen=True)
class BenchmarkConfig:
    data: DataConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    runs: int = 3
    prune_source: str = "lstm32"
    finetune_epochs: int = FINETUNE_EPOCHS
    finetune_learning_rate: float = FINETUNE_LEARNING_RATE
    finetune_patience: int = FINETUNE_PATIENCE
    models_dir: Path = Path("models")
    reports_dir: Path = Path("reports")
    readme: Path | None = Path("README.md")


def int8_candidate(source: Candidate, split: Split) -> Candidate:
    """onnxruntime dynamic INT8 of a float candidate's file, measured like any other file."""
    started = time.perf_counter()
    quantized = quantize_int8(source.onnx_bytes)
    validation, test, _ = measure(quantized, split)
    int8 = integer_weights(onnx.load_from_string(quantized))
    return Candidate(
        seed=source.seed,
        onnx_bytes=quantized,
        parameters=source.parameters,
        nonzero_parameters=source.nonzero_parameters,
        validation=validation,
        test=test,
        seconds=time.perf_counter() - started,
        details={
            "int8_tensors": {name: list(values.shape) for name, values in int8.items() if values.size > 1},
            "source_test_mape": source.test["mape"],
        },
    )


def pruned_candidate(
    core: keras.Model, sparsity: float, split: Split, config: BenchmarkConfig, seed: int
) -> tuple[Candidate, keras.Model]:
    """Magnitude-prune a copy of a core, fine-tune with masks held, export and verify sparsity on the file.

    Returns the candidate and the pruned core, from which the next, sparser level starts.
    """
    started = time.perf_counter()
    pruned = keras.models.clone_model(core)
    pruned.set_weights(core.get_weights())
    masks = prune(pruned, sparsity)
    tune = replace(
        config.train,
        seed=seed,
        epochs=config.finetune_epochs,
        learning_rate=config.finetune_learning_rate,
        patience=config.finetune_patience,
    )
    result = fit(pruned, split, tune, callbacks=[masks])
    candidate = export_candidate(pruned, split, seed, started, epochs_run=result.epochs_run, target_sparsity=sparsity)
    candidate.details["onnx_kernel_sparsity"] = onnx_kernel_sparsity(candidate.onnx_bytes)
    return candidate, pruned


def baseline_row(baseline: Baseline, split: Split) -> dict[str, Any]:
    return {
        "name": baseline.name,
        "description": baseline.description,
        "parameters": baseline.parameters,
        "validation": metrics(split.validation.y, baseline.predict(split.validation.x)),
        "test": metrics(split.test.y, baseline.predict(split.test.x)),
    }


def run_benchmark(config: BenchmarkConfig, split: Split | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    split = split or load_split(config.data)
    data = data_description(config.data, split)
    seeds = [config.train.seed + run for run in range(config.runs)]
    steps = config.runs * (len(FLOAT_UNITS) + len(SPARSITIES)) + len(BASELINES)
    candidates: dict[str, list[Candidate]] = defaultdict(list)
    sources: list[tuple[int, keras.Model, Candidate]] = []

    with tqdm(total=steps, desc="benchmark", unit="step") as progress:
        for seed in seeds:
            for name, units in FLOAT_UNITS.items():
                progress.set_postfix_str(f"{name} seed {seed}")
                candidate, core = train_candidate(split, replace(config.train, units=units, seed=seed))
                candidates[name].append(candidate)
                if name == config.prune_source:
                    sources.append((seed, core, candidate))
                progress.update()
            _, core, source = sources[-1]
            candidates["int8"].append(int8_candidate(source, split))
            candidates["lstm16-int8"].append(int8_candidate(candidates["lstm16"][-1], split))
            for name, sparsity in SPARSITIES.items():  # gradual: 30% -> 50% -> 70%, each from the last
                progress.set_postfix_str(f"{name} seed {seed}")
                pruned, core = pruned_candidate(core, sparsity, split, config, seed)
                candidates[name].append(pruned)
                if name == "pruned50":
                    candidates["pruned50-int8"].append(int8_candidate(pruned, split))
                progress.update()
            keras.backend.clear_session(free_memory=True)
        baselines = []
        for make in BASELINES:
            progress.set_postfix_str(make.__name__)
            baselines.append(baseline_row(make(split), split))
            progress.update()

    published = publish_all(candidates, config, data, seeds)
    result = {
        "seconds": time.perf_counter() - started,
        "data": data,
        "variants": published,
        "baselines": baselines,
        "config": {
            "runs": config.runs,
            "seeds": seeds,
            "prune_source": config.prune_source,
            "finetune": {
                "epochs_max": config.finetune_epochs,
                "learning_rate": config.finetune_learning_rate,
                "patience": config.finetune_patience,
            },
        },
    }
    write_reports(result, config.reports_dir, config.readme)
    return result


def publish_all(
    candidates: dict[str, list[Candidate]], config: BenchmarkConfig, data: dict[str, Any], seeds: list[int]
) -> dict[str, dict[str, Any]]:
    common = {"data": data, "training": training_description(config.train, seeds)}
    tune = {"finetune_epochs_max": config.finetune_epochs, "finetune_learning_rate": config.finetune_learning_rate}
    source_units = FLOAT_UNITS[config.prune_source]
    published: dict[str, dict[str, Any]] = {}
    for name, units in FLOAT_UNITS.items():
        published[name] = publish_variant(
            name,
            candidates[name],
            config.models_dir,
            technique="baseline" if units == 64 else "architecture sizing",
            description=float_description(units, config.train.dropout),
            weight_dtype="float32",
            bytes_per_parameter=4,
            extra={"units": units},
            **common,
        )
    previous = config.prune_source
    for name, sparsity in SPARSITIES.items():
        published[name] = publish_variant(
            name,
            candidates[name],
            config.models_dir,
            technique="magnitude pruning",
            derived_from=previous,
            description=f"{config.prune_source} pruned gradually to {sparsity:.0%}: starting from {previous}, the "
            "smallest-magnitude entries of each kernel zeroed (biases kept), fine-tuned with the masks re-applied "
            "after every step",
            weight_dtype="float32",
            bytes_per_parameter=4,
            extra={"units": source_units, "sparsity": sparsity, "finetune": tune},
            **common,
        )
        previous = name
    int8_sources = {"int8": config.prune_source, "pruned50-int8": "pruned50", "lstm16-int8": "lstm16"}
    for name, source in int8_sources.items():
        published[name] = publish_variant(
            name,
            candidates[name],
            config.models_dir,
            technique="INT8 quantization",
            derived_from=source,
            description=f"{source} with int8 weights (onnxruntime dynamic quantization: DynamicQuantizeLSTM, "
            "MatMulInteger; activations quantized per batch at run time)",
            weight_dtype="int8",
            bytes_per_parameter=1,
            extra={"units": FLOAT_UNITS.get(source, source_units)},
            **common,
        )
    return published
