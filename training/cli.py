"""Command line: `shelfcast-train train --data train.csv` (see --help)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from training.config import FINETUNE_EPOCHS, DataConfig, TrainConfig
from training.data import SalesDataError, parse_id_range

DEFAULT_DATA = Path("../shared/data/store_item_demand/train.csv")
VARIANT_UNITS = {"lstm64": 64, "lstm32": 32, "lstm16": 16}


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(parse_id_range(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("SHELFCAST_DATA", DEFAULT_DATA)),
        help="sales CSV (date,store,item,sales); default $SHELFCAST_DATA or %(default)s",
    )
    parser.add_argument("--stores", type=_ids, default=DataConfig.stores, help="store ids, e.g. 1-5 (default)")
    parser.add_argument("--items", type=_ids, default=DataConfig.items, help="item ids, e.g. 1-10 (default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shelfcast-train", description="Train, compress, export and measure shelfcast forecasters."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train one LSTM variant over several seeds and publish the best to models/"
    )
    _data_arguments(train)
    train.add_argument("--variant", choices=sorted(VARIANT_UNITS), default="lstm64")
    train.add_argument("--runs", type=_positive, default=3, help="seeds to train; the best on validation is published")
    train.add_argument("--seed", type=int, default=0, help="first seed (runs use seed, seed+1, ...)")
    train.add_argument("--epochs", type=_positive, default=TrainConfig.epochs)
    train.add_argument("--batch-size", type=_positive, default=TrainConfig.batch_size)
    train.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    train.add_argument("--patience", type=_positive, default=TrainConfig.patience)
    train.add_argument("--models-dir", type=Path, default=Path("models"))
    train.add_argument("--quiet", action="store_true", help="no per-epoch output")

    bench = commands.add_parser(
        "benchmark",
        help="all variants x runs + baselines on the real data; writes models/, reports/ and the README table",
    )
    _data_arguments(bench)
    bench.add_argument("--runs", type=_positive, default=3, help="seeds per variant (default 3)")
    bench.add_argument("--seed", type=int, default=0, help="first seed")
    bench.add_argument("--epochs", type=_positive, default=TrainConfig.epochs)
    bench.add_argument(
        "--finetune-epochs", type=_positive, default=FINETUNE_EPOCHS, help="max epochs of masked fine-tuning"
    )
    bench.add_argument("--models-dir", type=Path, default=Path("models"))
    bench.add_argument("--reports-dir", type=Path, default=Path("reports"))
    bench.add_argument("--readme", type=Path, default=Path("README.md"), help="README whose benchmark block to update")

    horizon = commands.add_parser("horizon", help="MAPE by horizon day of recursive forecasts, into reports/horizon.md")
    _data_arguments(horizon)
    horizon.add_argument(
        "--variants",
        default="lstm64,lstm32,lstm16,pruned30,pruned50,pruned70,int8,pruned50-int8,lstm16-int8",
        help="comma-separated",
    )
    horizon.add_argument("--models-dir", type=Path, default=Path("models"))
    horizon.add_argument("--reports-dir", type=Path, default=Path("reports"))

    report = commands.add_parser("report", help="rebuild reports/ and the README table from models/*.json, no training")
    report.add_argument("--models-dir", type=Path, default=Path("models"))
    report.add_argument("--reports-dir", type=Path, default=Path("reports"))
    report.add_argument("--readme", type=Path, default=Path("README.md"))
    return parser


def _train(args: argparse.Namespace, data: DataConfig) -> str:
    from training.dataset import load_split

    split = load_split(data)  # bad data fails here, before TensorFlow loads
    from training.pipeline import train_variant

    config = TrainConfig(
        units=VARIANT_UNITS[args.variant],
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
        verbose=0 if args.quiet else 2,
    )
    meta = train_variant(args.variant, data, config, args.runs, args.models_dir, split=split)
    mape = meta["metrics"]["mape"]
    return (
        f"{args.variant}: test MAPE {mape['mean']:.2f}% ± {mape['std']:.2f} over {args.runs} run(s); "
        f"published {args.models_dir / meta['file']} ({meta['size']['file_bytes']} bytes)"
    )


def _benchmark(args: argparse.Namespace, data: DataConfig) -> str:
    from training.dataset import load_split

    split = load_split(data)  # bad data fails here, before TensorFlow loads
    from training.benchmark import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(
        data=data,
        train=TrainConfig(epochs=args.epochs, seed=args.seed, verbose=0),
        runs=args.runs,
        finetune_epochs=args.finetune_epochs,
        models_dir=args.models_dir,
        reports_dir=args.reports_dir,
        readme=args.readme,
    )
    result = run_benchmark(config, split=split)
    return f"benchmark done in {result['seconds'] / 60:.1f} min: {args.reports_dir / 'benchmark.md'}"


def _report(args: argparse.Namespace, data: DataConfig | None) -> str:
    from training.report import rebuild

    rebuild(args.models_dir, args.reports_dir, args.readme)
    return f"rebuilt {args.reports_dir / 'benchmark.md'} from {args.models_dir}"


def _horizon(args: argparse.Namespace, data: DataConfig) -> str:
    from training.horizon import evaluate

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    result = evaluate(data, args.models_dir, variants, args.reports_dir)
    day1, day28 = ({v: m[i] for v, m in result["mape_by_day"].items()} for i in (0, result["horizon"] - 1))
    return f"horizon MAPE day 1 {day1}, day 28 {day28}: {args.reports_dir / 'horizon.md'}"


def _stop_now(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM: say so in one line and leave at once.

    Raising KeyboardInterrupt is not safe here: it can surface inside Python called from TensorFlow's
    C++ and abort the process. Nothing is published before the end of a run, so models/ and
    reports/ are as they were.
    """
    name = signal.Signals(signum).name
    print(f"error: interrupted ({name}); models/ and reports/ were left as they were", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "train" else logging.WARNING  # the benchmark shows a progress bar
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # it logs every conversion step at INFO
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_now)
    data = DataConfig(path=args.data, stores=args.stores, items=args.items) if hasattr(args, "data") else None
    command = {"train": _train, "benchmark": _benchmark, "report": _report, "horizon": _horizon}[args.command]
    try:
        message = command(args, data)
    except SalesDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
