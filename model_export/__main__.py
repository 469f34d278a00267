"""`python -m model_export` / `relu-export`: train the ReLU CNN and export it to ONNX in one run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_export import report
from model_export.data import DataError, Dataset, Splits
from model_export.export import MIN_OPSET, ExportError
from model_export.net import ACTIVATIONS
from service.metadata import ModelMetadata, PatternsRef

#: The model `make serve` serves; written only for the digits or when --out names it.
DEFAULT_OUT = Path("models/relu_cnn.onnx")

if TYPE_CHECKING:
    import numpy as np

    from model_export.net import ReluCNN
    from model_export.train import TrainResult


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="relu-export", description=__doc__)
    parser.add_argument(
        "--data",
        default="digits",
        help="'digits' (scikit-learn's bundled 8x8 digits), 'folder:PATH' (one "
        "sub-folder of images per class) or 'idx:PATH' (MNIST IDX files)",
    )
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed for split, init and shuffling")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"the ONNX file to write; the report lands beside it (default: {DEFAULT_OUT} for "
        "the digits, models/folder-NAME.onnx (idx-NAME) for your own data, models/dry-run.onnx for "
        "--dry-run: only an explicit --out replaces the served model)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="PyTorch intra-op threads (default 1: this small model trains fastest on one, and "
        "more threads slow it down badly when other work keeps the cores busy)",
    )
    _model_arguments(parser)
    args = parser.parse_args(argv)
    _check(parser, args)
    args.out = args.out.expanduser() if args.out else _default_out(args.data, args.dry_run)
    return args


def _default_out(data: str, dry_run: bool) -> Path:
    """Never the served model for a dry run or your own data unless --out says so."""
    if dry_run:
        return DEFAULT_OUT.with_name("dry-run.onnx")
    kind, _, path = data.partition(":")
    if kind in ("folder", "idx") and path:
        name = Path(path).expanduser().resolve().name or kind
        return DEFAULT_OUT.with_name(f"{kind}-{name}.onnx")
    return DEFAULT_OUT


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    parser.add_argument("--opset", type=int, default=17, help=f"ONNX opset (>= {MIN_OPSET})")
    parser.add_argument(
        "--width",
        type=int,
        default=32,
        help="channels of the first conv block (doubles per block); wider = heavier",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        default=128,
        help="units of the hidden linear layer; 2048 makes the heavy variant the benchmark uses",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=28,
        help="side in pixels that folder images are resized to (digits: 8, IDX: native)",
    )
    parser.add_argument("--name", default="relu_cnn", help="model name reported by the service")
    parser.add_argument(
        "--model-version", default="1.0.0", help="model version reported by the service"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="one epoch of a few batches: a smoke test of the whole pipeline",
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: must be at least 1")
    if args.opset < MIN_OPSET:
        parser.error(f"--opset {args.opset}: must be >= {MIN_OPSET}")
    if args.width < 1 or args.hidden < 1 or args.image_size < 4:
        parser.error("--width and --hidden must be >= 1, --image-size >= 4")
    if args.threads < 1:
        parser.error(f"--threads {args.threads}: must be at least 1")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (DataError, ExportError) as exc:
        print(f"relu-export: error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    # The training modules, imported when a run starts (`--help` still loads torch through
    # model_export.export, imported above for MIN_OPSET and ExportError).
    import torch

    from model_export import export, patterns
    from model_export.train import evaluate, normalise

    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)  # before the painter needs it
    painter = report.Painter()  # imports matplotlib on the other core meanwhile
    try:
        dataset, splits, model, result = _trained(args)
        x_test = normalise(splits.test.x, splits)
        _, test_acc, preds = evaluate(model, x_test, torch.from_numpy(splits.test.y))
        document = _report(args, dataset, splits, model, result, preds, test_acc)
        painter.draw(report.png_path_for(args.out), document)  # drawn while the model exports
        proto = export.to_onnx(model, model.input_shape, args.opset)
        # The OOD reference first: the model's metadata carries its hash.
        reference = patterns.write(*patterns.training_patterns(model, splits), args.out)
        outputs = export.activation_outputs(proto, model.activation_layers)
        metadata = _metadata(args, dataset, splits, test_acc, outputs, reference)
        proto = export.stamp(proto, metadata)
        max_diff = export.check_parity(proto, model, x_test.numpy())
        export.save(proto, args.out)
        painter.wait()
    finally:
        painter.stop()

    document["parity_max_abs_logit_diff"] = max_diff
    document["seconds"] = round(time.perf_counter() - started, 2)
    json_path = report.json_path_for(args.out)
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    size_kb = args.out.stat().st_size / 1024
    first, last = result.averaged_epochs
    print(
        f"{args.out}: {size_kb:.0f} KB, test accuracy {test_acc:.2%} on {len(splits.test.y)} images, "
        f"weights averaged over epochs {first}-{last}, parity max |diff| {max_diff:.2e}, "
        f"{document['seconds']:.1f} s"
    )
    print(f"report: {json_path}, {report.png_path_for(args.out)}")
    return 0


def _trained(args: argparse.Namespace) -> tuple[Dataset, Splits, ReluCNN, TrainResult]:
    """The data set, its splits, and the model trained on them as ``args`` say."""
    import torch

    from model_export import data
    from model_export.net import ReluCNN
    from model_export.train import TrainConfig, seed_everything, train

    torch.set_num_threads(args.threads)
    dataset = data.load(args.data, args.image_size)
    splits = data.split(dataset, seed=args.seed)
    height, width = dataset.images.shape[1:]
    seed_everything(args.seed)
    model = ReluCNN(
        (1, int(height), int(width)),
        len(dataset.class_names),
        args.activation,
        width=args.width,
        hidden=args.hidden,
    )
    config = TrainConfig(
        epochs=args.epochs, seed=args.seed, dry_run_batches=3 if args.dry_run else 0
    )
    return dataset, splits, model, train(model, splits, config)


def _report(
    args: argparse.Namespace,
    dataset: Dataset,
    splits: Splits,
    model: ReluCNN,
    result: TrainResult,
    preds: np.ndarray,
    test_acc: float,
) -> dict[str, Any]:
    """The report's document: dead units and the confusion matrix on the test split (the parity
    and the time are filled in once the export has them)."""
    from model_export.train import dead_units

    dead = dead_units(model, model.activation_layers, splits.test, splits)
    matrix = report.confusion_matrix(splits.test.y, preds, len(dataset.class_names))
    summary = {
        "model": str(args.out),
        "dataset": dataset.name,
        "split_sizes": splits.sizes(),
        "activation": args.activation,
        "seed": args.seed,
        "test_accuracy": test_acc,
        "parity_max_abs_logit_diff": None,
        "seconds": None,
        "dry_run": args.dry_run,
    }
    return report.document(result, summary, matrix, dataset.class_names, dead)


def _metadata(
    args: argparse.Namespace,
    dataset: Dataset,
    splits: Splits,
    test_acc: float,
    activation_outputs: dict[str, str],
    ood_patterns: PatternsRef,
) -> ModelMetadata:
    """The metadata the service reads: what the model is, its input contract and its origin."""
    import torch

    height, width = dataset.images.shape[1:]
    return ModelMetadata(
        name=args.name,
        version=args.model_version,
        labels=dataset.class_names,
        input_shape=(1, int(height), int(width)),
        input_range=dataset.value_range,
        mean=splits.mean,
        std=splits.std,
        dataset=dataset.name,
        split_sizes=splits.sizes(),
        test_accuracy=round(test_acc, 6),
        activation=args.activation,
        seed=args.seed,
        opset=args.opset,
        torch_version=torch.__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        activation_outputs=activation_outputs,
        ood_patterns=ood_patterns,
    )


if __name__ == "__main__":
    sys.exit(main())
