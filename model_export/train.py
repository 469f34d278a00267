"""The training loop: seeded, deterministic on CPU, keeps the best epoch on validation."""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model_export.data import Split, Splits
from service.metadata import standardize


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3  # AdamW peak learning rate, cosine-annealed to 0
    weight_decay: float = 1e-4
    seed: int = 0
    #: Random affine augmentation per image: rotation (degrees), scale and shift (pixels).
    max_rotation_deg: float = 10.0
    max_scale: float = 0.1
    max_shift_px: float = 1.0
    #: Stroke width: blend each image up to this far towards its 3x3 dilation (thicker) or
    #: erosion (thinner), then stretch its brightest pixel back to full ink, as uploads are.
    max_stroke: float = 0.5
    #: Blank a random square of this side (pixels) in this fraction of the images, so that no
    #: single stroke (the crossbar most 7s of the digits have) decides a class alone.
    cutout_px: int = 3
    cutout_fraction: float = 0.75
    #: Stop after this many batches per epoch and one epoch (smoke tests); 0 = no limit.
    dry_run_batches: int = 0


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass
class TrainResult:
    best_epoch: int
    history: list[EpochStats] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Same seed and data -> same weights: seed torch and forbid non-deterministic kernels."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    # torch.use_deterministic_algorithms(True) also imports the Inductor compiler only to set
    # its config (0.7-1.3 s of a 10 s budget); we never compile, so set the kernels' flag alone.
    torch._C._set_deterministic_algorithms(True)


def normalise(x: np.ndarray, splits: Splits) -> torch.Tensor:
    """[0, 1] images -> the model's input, by the service's own function (service/metadata.py)."""
    return torch.from_numpy(standardize(x.copy(), splits.mean, splits.std))


def train(model: nn.Module, splits: Splits, config: TrainConfig) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    generator = torch.Generator().manual_seed(config.seed)
    x_val, y_val = normalise(splits.val.x, splits), torch.from_numpy(splits.val.y)
    epochs = 1 if config.dry_run_batches else config.epochs
    batches = _batches(len(splits.train.y), config)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=epochs * batches, pct_start=0.2
    )
    result = TrainResult(best_epoch=0)
    best_state, best_val = copy.deepcopy(model.state_dict()), -1.0
    # A live bar on a terminal; elsewhere (CI logs, `make serve | tee`) one line per epoch.
    live = sys.stdout.isatty()
    progress = tqdm(
        range(1, epochs + 1), desc="training", unit="epoch", leave=False, disable=not live
    )
    started = time.perf_counter()
    for epoch in progress:
        train_loss, train_acc = _epoch(model, splits, config, generator, optimiser, schedule)
        val_loss, val_acc, _ = evaluate(model, x_val, y_val)
        stats = EpochStats(epoch, train_loss, train_acc, val_loss, val_acc)
        result.history.append(stats)
        # ">=" keeps the later epoch on ties: it has seen more of the annealed schedule.
        if val_acc >= best_val:
            best_val, result.best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        progress.set_postfix(
            loss=f"{stats.train_loss:.3f}",
            acc=f"{stats.train_accuracy:.3f}",
            val_acc=f"{val_acc:.3f}",
        )
        if not live:
            print(_epoch_line(stats, epochs, time.perf_counter() - started), flush=True)
    model.load_state_dict(best_state)
    model.eval()
    return result


def _epoch_line(stats: EpochStats, epochs: int, elapsed_s: float) -> str:
    return (
        f"epoch {stats.epoch}/{epochs}: loss {stats.train_loss:.4f}, "
        f"accuracy {stats.train_accuracy:.2%}, validation accuracy {stats.val_accuracy:.2%}, "
        f"{elapsed_s:.1f} s"
    )


def _batches(samples: int, config: TrainConfig) -> int:
    batches = math.ceil(samples / config.batch_size)
    return min(batches, config.dry_run_batches) if config.dry_run_batches else batches


def _epoch(
    model: nn.Module,
    splits: Splits,
    config: TrainConfig,
    generator: torch.Generator,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[float, float]:
    """One pass over the shuffled, augmented training split; its mean loss and accuracy."""
    x_train, y_train = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    model.train()
    order = torch.randperm(len(y_train), generator=generator)
    loss_sum, correct, seen = 0.0, 0, 0
    for b in range(_batches(len(y_train), config)):
        idx = order[b * config.batch_size : (b + 1) * config.batch_size]
        xb = augment(x_train[idx], config, generator)
        logits = model((xb - splits.mean) / splits.std)
        loss = F.cross_entropy(logits, y_train[idx])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        schedule.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == y_train[idx]).sum())
        seen += len(idx)
    return loss_sum / seen, correct / seen


def augment(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Per image: a random stroke width, a small rotation, scaling and shift, and a blanked
    square (images in [0, 1], zero background)."""
    return _cutout(_affine(_stroke(x, config, generator), config, generator), config, generator)


def _uniform(n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * bound


def _stroke(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Thicker or thinner strokes: a blend towards the 3x3 dilation or erosion, re-stretched."""
    amount = _uniform(len(x), config.max_stroke, generator).view(-1, 1, 1, 1)
    thicker = F.max_pool2d(x, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-x, 3, stride=1, padding=1)
    out = x + amount.clamp(min=0) * (thicker - x) + (-amount).clamp(min=0) * (thinner - x)
    peak = out.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)
    return out / peak


def _cutout(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A random ``cutout_px`` square set to background in ``cutout_fraction`` of the images."""
    n, _, h, w = x.shape
    side = config.cutout_px
    if side <= 0 or config.cutout_fraction <= 0:
        return x
    top = torch.randint(0, h - side + 1, (n,), generator=generator).view(-1, 1, 1)
    left = torch.randint(0, w - side + 1, (n,), generator=generator).view(-1, 1, 1)
    chosen = (torch.rand(n, generator=generator) < config.cutout_fraction).view(-1, 1, 1)
    rows = torch.arange(h).view(1, -1, 1)
    cols = torch.arange(w).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return x * ~(inside & chosen).unsqueeze(1)


def _affine(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A random small rotation, scaling and shift per image."""
    n, _, h, w = x.shape

    def uniform(bound: float) -> torch.Tensor:
        return _uniform(n, bound, generator)

    angle = uniform(math.radians(config.max_rotation_deg))
    scale = 1 + uniform(config.max_scale)
    tx, ty = uniform(2 * config.max_shift_px / w), uniform(2 * config.max_shift_px / h)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy and predicted classes on normalised inputs."""
    model.eval()
    logits = model(x)
    preds = logits.argmax(1)
    return float(F.cross_entropy(logits, y)), float((preds == y).float().mean()), preds.numpy()


@torch.no_grad()
def dead_units(
    model: nn.Module, layers: list[str], split: Split, splits: Splits
) -> dict[str, dict[str, float]]:
    """Per activation layer: the fraction of units (and of channels) that never fire on ``split``.

    A unit is one element of the layer's output for one image position; it is dead when its output
    is <= 0 for every image: the dying-ReLU figure.
    """
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out)
        )
        for name in layers
    ]
    try:
        model.eval()
        model(normalise(split.x, splits))
    finally:
        for hook in hooks:
            hook.remove()
    report = {}
    for name in layers:
        fired = (outputs[name] > 0).any(dim=0)  # per unit: fired on some image
        channels = fired.reshape(fired.shape[0], -1).any(dim=1) if fired.dim() > 1 else fired
        report[name] = {
            "units": float(fired.numel()),
            "dead_fraction": float(1 - fired.float().mean()),
            "dead_channel_fraction": float(1 - channels.float().mean()),
        }
    return report
