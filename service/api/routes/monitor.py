"""GET /monitor/relu and POST /monitor/relu/reset: the live dead-ReLU monitor."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from service.api import errors
from service.api.deps import RuntimeDep
from service.api.schemas.monitor import LayerActivity, ReluActivity
from service.classifier.monitor.relu import BOUNDS, Figures, ReluMonitor
from service.errors import MonitorOff, NotReady

router = APIRouter(tags=["monitor"])
#: How long a read waits for this worker's queued images to be counted.
FLUSH_S = 2.0


@router.get(
    "/monitor/relu", response_model=ReluActivity, responses=errors.responses(MonitorOff, NotReady)
)
async def relu_activity(runtime: RuntimeDep) -> ReluActivity:
    """Per activation layer, on the sampled /predict images of every worker: units, images,
    the mean and histogram of the fraction of units active per image, how often each unit
    fired, and the dead units (never fired in the window), as the export report counts them."""
    monitor = runtime.ready_monitor()
    figures = await asyncio.to_thread(_read, monitor)
    return _render(monitor, figures)


@router.post(
    "/monitor/relu/reset",
    response_model=ReluActivity,
    responses=errors.responses(MonitorOff, NotReady),
)
async def reset_relu_activity(runtime: RuntimeDep) -> ReluActivity:
    """Zero the monitor's counts in every worker and start a new window; answers the
    (empty) figures. Needs an API key when keys are set, like every route but the probes."""
    monitor = runtime.ready_monitor()
    await asyncio.to_thread(monitor.reset)
    return _render(monitor, await asyncio.to_thread(monitor.figures))


def _read(monitor: ReluMonitor) -> Figures:
    monitor.flush(FLUSH_S)
    return monitor.figures()


def _render(monitor: ReluMonitor, figures: Figures) -> ReluActivity:
    window = monitor.window_images
    return ReluActivity(
        images=figures.images,
        dropped=figures.dropped,
        workers=len(figures.worker_images),
        worker_images=figures.worker_images,
        sample_every=monitor.sample_every,
        window_images=window,
        window=f"the last {window} sampled images of each worker"
        if window
        else "every sampled image since start or the last reset",
        histogram_bounds=list(BOUNDS),
        layers=[
            LayerActivity(
                name=layer.name,
                units=layer.units,
                images=layer.images,
                mean_active_fraction=layer.active_fraction_sum / layer.images
                if layer.images
                else 0.0,
                active_fraction_histogram=layer.histogram,
                dead_units=len(layer.dead),
                dead_fraction=len(layer.dead) / layer.units,
                dead=layer.dead,
                fires=layer.fires.tolist(),
            )
            for layer in figures.layers
        ],
    )
