"""The training pieces that replace library calls: torch.optim's AdamW and OneCycleLR, scikit-learn's
digits loader and stratified split (both kept out of the export's start-up time)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from model_export import data
from model_export.optim import AdamW, WeightAverage, one_cycle


def tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def test_adamw_and_one_cycle_match_torch_optim_step_by_step() -> None:
    ours, theirs = tiny_model(0), tiny_model(0)
    total, max_lr = 40, 5e-3
    optimiser = AdamW(ours.parameters(), weight_decay=1e-2)
    reference = torch.optim.AdamW(theirs.parameters(), lr=max_lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=max_lr, total_steps=total, pct_start=0.2
    )
    generator = torch.Generator().manual_seed(1)
    for step in range(total):
        x = torch.randn(8, 6, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        lr, beta1 = one_cycle(step, total, max_lr)
        assert lr == pytest.approx(reference.param_groups[0]["lr"], rel=1e-12)
        assert beta1 == pytest.approx(reference.param_groups[0]["betas"][0], rel=1e-12)
        for model in (ours, theirs):
            nn.functional.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
        optimiser.step(lr, beta1)
        optimiser.zero_grad()
        reference.step()
        reference.zero_grad()
        schedule.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert lr == pytest.approx(max_lr / 25 / 1e4, rel=1e-9)  # annealed to the floor


def test_weight_average_is_the_mean_of_the_snapshots() -> None:
    snapshots = [tiny_model(seed) for seed in range(3)]
    average = WeightAverage()
    for model in snapshots:
        average.add(model)
    target = tiny_model(9)
    average.copy_to(target)
    for name, p in target.named_parameters():
        expected = torch.stack([dict(m.named_parameters())[name] for m in snapshots]).mean(0)
        torch.testing.assert_close(p, expected)


def test_digits_are_scikit_learns() -> None:
    ours, theirs = data.load("digits", 8), load_digits()
    np.testing.assert_array_equal(ours.images, theirs.images)
    np.testing.assert_array_equal(ours.labels, theirs.target)
    assert ours.class_names == tuple(str(t) for t in theirs.target_names)


@pytest.mark.parametrize(
    ("counts", "seed"), [((), 0), ((), 3), ((12, 8, 10), 0), ((12, 8, 10), 1), ((7, 3, 9, 4), 2)]
)
def test_split_draws_scikit_learns_indices(counts: tuple[int, ...], seed: int) -> None:
    """The digits (counts ``()``) and small uneven classes, where ties are broken at random."""
    dataset = data.load("digits", 8)
    if counts:
        labels = np.repeat(np.arange(len(counts)), counts)
        images = np.random.default_rng(seed).uniform(0, 16, (len(labels), 8, 8))
        dataset = data.Dataset("small", images, labels, ("a", "b", "c", "d"), (0.0, 16.0))
    splits = data.split(dataset, seed=seed)
    x = (dataset.images[:, None] / 16).astype(np.float32)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, dataset.labels, test_size=0.15, stratify=dataset.labels, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.15 / 0.85, stratify=y_rest, random_state=seed
    )
    for ours, theirs in ((splits.train, (x_train, y_train)), (splits.val, (x_val, y_val))):
        np.testing.assert_array_equal(ours.x, theirs[0])
        np.testing.assert_array_equal(ours.y, theirs[1])
    np.testing.assert_array_equal(splits.test.x, x_test)
    np.testing.assert_array_equal(splits.test.y, y_test)
    assert splits.mean == pytest.approx(float(x_train.mean()))


def test_too_few_images_to_split_is_a_data_error() -> None:
    labels = np.repeat(np.arange(3), (3, 4, 5))
    dataset = data.Dataset("tiny", np.zeros((12, 8, 8)), labels, ("a", "b", "c"), (0.0, 16.0))
    with pytest.raises(data.DataError, match="12 images are too few to split 3 classes"):
        data.split(dataset, seed=0)
