"""AdamW, a one-cycle schedule and weight averaging, without importing torch's compiler.

torch.optim's optimisers and schedulers import ``torch._dynamo`` on their first call (about 1.3 s
of CPU here, more than a tenth of the default training's budget) to mark graph breaks that only
``torch.compile`` needs. These are the same formulas as ``torch.optim.AdamW`` and
``OneCycleLR(anneal_strategy="cos")`` (a test compares them step by step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class AdamW:
    """Adam with decoupled weight decay; the learning rate and beta1 are given at each step."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        weight_decay: float,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.params: list[torch.Tensor] = [p for p in params if p.requires_grad]
        self.weight_decay, self.beta2, self.eps = weight_decay, beta2, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        #: Steps taken: one count for the schedule, and one tensor per parameter for the kernel.
        self.steps = 0
        self.steps_done = [torch.zeros((), dtype=torch.float32) for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float, beta1: float) -> None:
        """One update by torch's fused AdamW kernel (the one ``AdamW(fused=True)`` calls): one
        pass over each tensor where the step in plain tensor ops takes eight."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]  # as torch: skip
        params = [self.params[i] for i in live]
        steps = [self.steps_done[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            params,
            [p.grad for p in params if p.grad is not None],
            [self.exp_avg[i] for i in live],
            [self.exp_avg_sq[i] for i in live],
            [],
            steps,
            amsgrad=False,
            lr=lr,
            beta1=beta1,
            beta2=self.beta2,
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
        )
        self.steps += 1


def one_cycle(
    step: int, total_steps: int, max_lr: float, pct_start: float = 0.2
) -> tuple[float, float]:
    """(learning rate, beta1) at ``step`` (0-based) of a cosine one-cycle schedule: the rate
    rises from max_lr/25 to max_lr over ``pct_start`` of the steps, then falls to max_lr/25e4,
    while beta1 falls from 0.95 to 0.85 and rises back (torch's OneCycleLR defaults)."""
    initial, final = max_lr / 25, max_lr / 25 / 1e4
    peak_step = float(pct_start * total_steps) - 1
    if peak_step > 0 and step <= peak_step:
        pct = step / peak_step
        return _cos(initial, max_lr, pct), _cos(0.95, 0.85, pct)
    pct = (step - peak_step) / (total_steps - 1 - peak_step)
    return _cos(max_lr, final, pct), _cos(0.85, 0.95, pct)


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class WeightAverage:
    """The running mean of a model's parameters over the snapshots given to ``add``.

    The end-of-epoch weights of the annealed epochs average into a flatter optimum than any one
    of them (stochastic weight averaging): the drawn digits then depend far less on the seed.
    """

    def __init__(self) -> None:
        self.mean: list[torch.Tensor] = []
        self.count = 0

    @torch.no_grad()
    def add(self, model: nn.Module) -> None:
        self.count += 1
        if self.count == 1:
            self.mean = [p.detach().clone() for p in model.parameters()]
            return
        for mean, p in zip(self.mean, model.parameters(), strict=True):
            mean.lerp_(p, 1 / self.count)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for mean, p in zip(self.mean, model.parameters(), strict=True):
            p.copy_(mean)
