"""Prometheus series of the monitor: the OOD score histogram and the collector of the ReLU counts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from service.classifier.monitor.relu import BOUNDS, ReluMonitor

#: Both OOD scores of every image that asked for them (return_ood); labels per score only.
#: Hamming distances are whole numbers of units (0..128 for act_fc), energies mostly -40..0.
OOD_SCORE = Histogram(
    "relu_serve_ood_score",
    "OOD scores of /predict images asked with return_ood: score=hamming (units from the nearest "
    "training pattern) or energy (-logsumexp of the logits); higher = less like the training data",
    ["score"],
    buckets=(-40, -30, -25, -20, -15, -10, -5, 0, 1, 2, 4, 8, 16, 32, 64, 128),
)


class ReluCollector(Collector):
    """relu_serve_relu_* from the monitor's counts, summed over every worker at scrape time."""

    def __init__(self, monitor: ReluMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        figures = self.monitor.figures()
        units = GaugeMetricFamily(
            "relu_serve_relu_units", "units of the activation layer (per image)", labels=["layer"]
        )
        dead = GaugeMetricFamily(
            "relu_serve_relu_dead_units",
            "units of the layer that never fired (output > 0) on an image of the monitor's window",
            labels=["layer"],
        )
        active = HistogramMetricFamily(
            "relu_serve_relu_active_fraction",
            "fraction of the layer's units active (output > 0) per sampled image",
            labels=["layer"],
        )
        for layer in figures.layers:
            units.add_metric([layer.name], layer.units)
            dead.add_metric([layer.name], len(layer.dead))
            cumulative, buckets = 0, []
            for bound, count in zip(BOUNDS, layer.histogram, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            buckets.append(("+Inf", layer.images))
            active.add_metric([layer.name], buckets, sum_value=layer.active_fraction_sum)
        yield units
        yield dead
        yield active


def _bound(value: float) -> str:
    return f"{value:g}"
