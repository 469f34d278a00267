"""The statistics extension: per model, counts and cumulative nanoseconds of each phase."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: The phases of one request, in order (Triton's names).
PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


#: The clock of one request: ``[clock()]`` at its start, then one ``clock()`` appended as each
#: phase of PHASES ends, in order (``phases.append(clock())``: a list method, no Python call
#: per phase on this per-request path).
Phases = list[int]
clock = time.perf_counter_ns


@dataclass
class Duration:
    count: int = 0
    ns: int = 0


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
        now = clock()
        self.last_inference_ms = time.time_ns() // 1_000_000
        durations = self.durations
        total = durations["success" if ok else "fail"]
        total.count += 1  # counted here, not by a method: six calls a request
        total.ns += now - phases[0]
        if not ok:
            return
        marked = len(phases)
        for index, phase in enumerate(PHASES, 1):  # a phase not marked lasted 0 ns
            duration = durations[phase]
            duration.count += 1
            duration.ns += phases[index] - phases[index - 1] if index < marked else 0
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
