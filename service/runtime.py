"""Runtime: the one owner of readiness (load, warm-up, calibration, gc.freeze, SIGTERM drain).

Readiness goes: loading the model -> warming up -> ready; from SIGTERM on it is "shutting
down". The order a load balancer needs on SIGTERM: /readyz answers 503 at once (traffic moves
elsewhere), the listener stays open for ``shutdown_drain_s`` (requests still routed here are
served), then the server's own handler runs: uvicorn stops accepting and finishes the requests
in flight within ``graceful_shutdown_s``. A second SIGTERM skips what is left of the drain.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from prometheus_client.registry import Collector

from service import metrics
from service.activations import fused
from service.classifier import normalize
from service.classifier.geometry.feature import Geometry
from service.classifier.inference import Inference
from service.classifier.model import Classifier, warmup_sizes
from service.classifier.monitor.feature import Monitoring
from service.classifier.monitor.metrics import ReluCollector
from service.classifier.monitor.relu import ReluMonitor
from service.classifier.predict import Predictor
from service.config import Settings
from service.errors import GeometryUnavailable, MonitorOff, NotReady
from service.offload import ByteBudget

log = logging.getLogger("relu_serve")


class Runtime:
    """The served model's lifecycle; transports ask it for the predictor or why it is not ready."""

    def __init__(self, settings: Settings, classifier: Classifier | None = None) -> None:
        self.settings = settings
        self.classifier = classifier
        self.inference: Inference | None = None
        #: Set once warmed up and calibrated; None until then (and after stop).
        self.predictor: Predictor | None = None
        #: Set with the predictor: the geometry endpoints' evaluator, or why there is none.
        self.geometry: Geometry | GeometryUnavailable | None = None
        #: Set with the predictor: the ReLU monitor and the OOD scorer (or why not).
        self.monitoring: Monitoring | None = None
        self.stopping = False
        #: Request bytes held across this worker's requests (max_inflight_bytes).
        self.inflight = ByteBudget(settings.max_inflight_bytes)
        self.not_ready_reason = "the application has not started"
        #: Collectors /metrics renders after the service's own series (computed at scrape time).
        self.collectors: list[Collector] = []
        self._warming: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._undo_sigterm: Callable[[], None] = lambda: None
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        """Load the model (unless given), start inference and warm up in the background."""
        settings = self.settings
        if self.classifier is None:
            self.not_ready_reason = f"loading the model {settings.model_path.name}"
            self.classifier = await asyncio.to_thread(Classifier.from_settings, settings)
        self.inference = Inference(self.classifier, settings)
        if settings.metrics:
            meta, info = self.classifier.metadata, self.classifier.session_info
            metrics.MODEL_INFO.labels(meta.name, meta.version, info.providers_active[0]).set(1)
            metrics.READY.set(0)
            self._flusher = asyncio.create_task(metrics.flush_periodically())
        self.inference.start()
        self._warming = asyncio.create_task(self._warm_up(self.inference))
        self._undo_sigterm = self._install_sigterm(settings.shutdown_drain_s)

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        if self.settings.metrics:
            metrics.retire()
        self._undo_sigterm()
        if self._warming is not None:
            self._warming.cancel()
        self.predictor = None
        if self.inference is not None:
            await self.inference.stop()
        if self.monitoring is not None:
            self.monitoring.stop()
            self.monitoring = None
        if self._own_dir is not None:
            self._own_dir.cleanup()

    def ready_predictor(self) -> Predictor:
        """The predictor once warmed up; NotReady with the reason before that."""
        predictor = self.predictor
        if predictor is None:
            raise NotReady(f"not ready: {self.not_ready_reason}")
        return predictor

    def ready_geometry(self) -> Geometry:
        """The geometry evaluator once ready; NotReady before, GeometryUnavailable if none."""
        self.ready_predictor()
        geometry = self.geometry
        if isinstance(geometry, GeometryUnavailable):
            raise GeometryUnavailable(geometry.message)
        assert geometry is not None
        return geometry

    def ready_monitor(self) -> ReluMonitor:
        """The ReLU monitor once ready; NotReady before, MonitorOff when it is switched off."""
        self.ready_predictor()
        relu = self.monitoring.relu if self.monitoring is not None else None
        if relu is None:
            raise MonitorOff(
                "the ReLU monitor is off (RELU_SERVE_MONITOR=false or a model "
                "without activation layers in its metadata)"
            )
        return relu

    def loaded_classifier(self) -> Classifier:
        """The classifier once loaded (it may still be warming up); NotReady before that."""
        if self.classifier is None:
            raise NotReady(f"not ready: {self.not_ready_reason}")
        return self.classifier

    def check_ready(self) -> Classifier:
        """The classifier when this process should get traffic; NotReady saying why not."""
        if self.stopping:
            raise NotReady("not ready: shutting down (SIGTERM received); requests in flight finish")
        return self.ready_predictor().inference.classifier

    async def _warm_up(self, inference: Inference) -> None:
        sizes = warmup_sizes(self.settings.max_images)
        try:
            self.not_ready_reason = f"warming up at batch sizes {', '.join(map(str, sizes))}"
            await asyncio.to_thread(inference.classifier.warm_up, sizes)
            # The compiled activation kernels (numba's cache, seeded from the image's, makes
            # this quick), so that no /activate request pays for a compilation.
            self.not_ready_reason = "compiling the activation kernels"
            started = time.perf_counter()
            await asyncio.to_thread(fused.warm_up, self.settings.numba_cache_seed)
            log.info("activation kernels ready in %.1f s", time.perf_counter() - started)
            self.not_ready_reason = "compiling the classifier's input pass"
            await asyncio.to_thread(normalize.warm_up)  # from the cache fused.warm_up seeded
            inline = await asyncio.to_thread(inference.calibrate)
            monitoring = await asyncio.to_thread(
                Monitoring.load, inference.classifier, self.settings, self._monitor_dir()
            )
            predictor = Predictor(inference, self.settings, monitoring)
            self.geometry = await asyncio.to_thread(_load_geometry, inference, self.settings)
        except Exception as exc:  # readiness must report it; the process stays up for /healthz
            self.not_ready_reason = f"warm-up failed: {exc}"
            log.exception("warm-up failed")
            return
        # Everything alive now (modules, app, session) lives as long as the process: move it out
        # of the collector's sight, so that full collections stop walking it on the request path.
        gc.freeze()
        self.monitoring = monitoring
        if monitoring.relu is not None:
            self.collectors.append(ReluCollector(monitoring.relu))
        self.predictor = predictor
        if self.settings.metrics:
            metrics.READY.set(1)
        meta = inference.classifier.metadata
        log.info(
            "ready: %s %s (batches of up to %d images run inline)", meta.name, meta.version, inline
        )

    def _monitor_dir(self) -> Path:
        """The settings' directory (shared by the workers), else one private to this app."""
        if self.settings.monitor_dir is not None:
            return self.settings.monitor_dir
        self._own_dir = tempfile.TemporaryDirectory(prefix="relu-serve-monitor-")
        return Path(self._own_dir.name)

    def _install_sigterm(self, drain_s: float) -> Callable[[], None]:
        """Put our SIGTERM handler in front of the server's; return the function that undoes it.

        Only the main thread may set signal handlers: elsewhere (an app run by a test client in
        a worker thread), or with no server handler to hand over to, nothing is installed.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        server_handler = signal.getsignal(signal.SIGTERM)
        if not callable(server_handler):
            return lambda: None
        loop = asyncio.get_running_loop()

        def on_sigterm(sig: int, frame: FrameType | None) -> None:
            first = not self.stopping
            self.stopping = True
            if self.settings.metrics:  # not here: the handler may interrupt a metric's lock
                loop.call_soon_threadsafe(metrics.READY.set, 0)
            if first and drain_s > 0:
                # uvicorn's handler only sets flags that its main loop polls: safe from a thread.
                timer = threading.Timer(drain_s, server_handler, (sig, None))
                timer.daemon = True
                timer.start()
            else:
                server_handler(sig, frame)

        def undo() -> None:
            signal.signal(signal.SIGTERM, server_handler)

        signal.signal(signal.SIGTERM, on_sigterm)
        return undo


def _load_geometry(inference: Inference, settings: Settings) -> Geometry | GeometryUnavailable:
    """The evaluator, checked against ONNX Runtime; a model it cannot run keeps /predict."""
    try:
        return Geometry.load(inference.classifier, settings)
    except GeometryUnavailable as exc:
        log.warning("geometry endpoints off: %s", exc.message)
        return exc
