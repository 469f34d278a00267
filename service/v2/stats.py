"""The statistics extension: per model, counts and cumulative nanoseconds of each phase."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: The phases of one request, in order (Triton's names).
PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


class Phases:
    """The clock of one request: ``mark(phase)`` ends ``phase`` now."""

    __slots__ = ("last", "ns", "started")

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter_ns()
        self.ns: dict[str, int] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter_ns()
        self.ns[phase] = self.ns.get(phase, 0) + now - self.last
        self.last = now


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns


@dataclass
class ModelStats:
    """What one model (name, version) has served since start-up, in this worker."""

    name: str
    version: str
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    durations: dict[str, Duration] = field(
        default_factory=lambda: {p: Duration() for p in ("success", "fail", *PHASES)}
    )

    def record(self, phases: Phases, batch: int, ok: bool) -> None:
        """One request done: ``batch`` items (images, or 1 for an activation call)."""
        self.last_inference_ms = time.time_ns() // 1_000_000
        total = time.perf_counter_ns() - phases.started
        if not ok:
            self.durations["fail"].add(total)
            return
        self.durations["success"].add(total)
        for phase in PHASES:
            self.durations[phase].add(phases.ns.get(phase, 0))
        self.inference_count += batch
        self.execution_count += 1

    def document(self) -> dict[str, Any]:
        """The statistics extension's JSON object for this model."""
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                phase: {"count": d.count, "ns": d.ns} for phase, d in self.durations.items()
            },
            "batch_stats": [],
        }
