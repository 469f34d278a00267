"""Monitoring: the ReLU monitor and the OOD scorer of the served model, built at warm-up."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service import offload
from service.classifier.model import Classifier
from service.classifier.monitor.ood import OodScorer
from service.classifier.monitor.probe import Probe
from service.classifier.monitor.relu import ReluMonitor
from service.classifier.monitor.store import Layout, Store
from service.config import Settings
from service.errors import ModelLoadError, OodUnavailable

log = logging.getLogger("relu_serve")

#: A batch of at most this many images is scored inline; larger ones in a thread.
OOD_INLINE_IMAGES = 8


@dataclass
class Monitoring:
    """What the served model offers to watch it: None / an OodUnavailable say why not."""

    relu: ReluMonitor | None
    ood: OodScorer | OodUnavailable

    @classmethod
    def load(cls, classifier: Classifier, settings: Settings, directory: Path) -> Monitoring:
        try:
            probe = Probe(classifier)
        except ModelLoadError as exc:
            log.warning("monitor and OOD score off: %s", exc.message)
            return cls(None, OodUnavailable(f"the OOD score is off: {exc.message}"))
        relu = _relu_monitor(probe, settings, directory) if settings.monitor else None
        try:
            ood: OodScorer | OodUnavailable = OodScorer.load(classifier, probe)
        except OodUnavailable as exc:
            log.warning("return_ood off: %s", exc.message)
            ood = exc
        return cls(relu, ood)

    async def ood_scores(
        self, batch: np.ndarray[Any, Any], logits: np.ndarray[Any, Any], deadline_s: float
    ) -> list[dict[str, Any]]:
        """Both OOD scores per image; OodUnavailable (why) when the model has none."""
        scorer = self.ood
        if isinstance(scorer, OodUnavailable):
            raise OodUnavailable(scorer.message)
        if len(batch) <= OOD_INLINE_IMAGES:
            return scorer.scores(batch, logits)
        return await offload.in_thread(deadline_s, scorer.scores, batch, logits)

    def stop(self) -> None:
        if self.relu is not None:
            self.relu.stop()


def _relu_monitor(probe: Probe, settings: Settings, directory: Path) -> ReluMonitor | None:
    """The monitor counting into ``directory``; None (logged) when the directory is unusable:
    /predict must not depend on it."""
    try:
        store = Store(directory, Layout([layer.units for layer in probe.layers]))
    except OSError as exc:
        log.warning("relu monitor off: cannot use %s (%s)", directory, exc.strerror or exc)
        return None
    return ReluMonitor(
        probe,
        store,
        sample_every=settings.monitor_sample_every,
        window_images=settings.monitor_window_images,
    )
