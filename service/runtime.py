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
import threading
from collections.abc import Callable
from types import FrameType

from service.activations import fused
from service.classifier.inference import Inference
from service.classifier.model import Classifier, warmup_sizes
from service.classifier.predict import Predictor
from service.config import Settings
from service.errors import NotReady

log = logging.getLogger("relu_serve")


class Runtime:
    """The served model's lifecycle; transports ask it for the predictor or why it is not ready."""

    def __init__(self, settings: Settings, classifier: Classifier | None = None) -> None:
        self.settings = settings
        self.classifier = classifier
        self.inference: Inference | None = None
        #: Set once warmed up and calibrated; None until then (and after stop).
        self.predictor: Predictor | None = None
        self.stopping = False
        self.not_ready_reason = "the application has not started"
        self._warming: asyncio.Task[None] | None = None
        self._undo_sigterm: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Load the model (unless given), start inference and warm up in the background."""
        settings = self.settings
        if self.classifier is None:
            self.not_ready_reason = f"loading the model {settings.model_path.name}"
            self.classifier = await asyncio.to_thread(Classifier.from_settings, settings)
        self.inference = Inference(self.classifier, settings)
        self.inference.start()
        self._warming = asyncio.create_task(self._warm_up(self.inference))
        self._undo_sigterm = self._install_sigterm(settings.shutdown_drain_s)

    async def stop(self) -> None:
        self._undo_sigterm()
        if self._warming is not None:
            self._warming.cancel()
        self.predictor = None
        if self.inference is not None:
            await self.inference.stop()

    def ready_predictor(self) -> Predictor:
        """The predictor once warmed up; NotReady with the reason before that."""
        predictor = self.predictor
        if predictor is None:
            raise NotReady(f"not ready: {self.not_ready_reason}")
        return predictor

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
            # The compiled float32 activation kernels (numba's cache makes this quick after the
            # first start), so that no /activate request pays for a compilation.
            self.not_ready_reason = "compiling the activation kernels"
            await asyncio.to_thread(fused.warm_up)
            inline = await asyncio.to_thread(inference.calibrate)
            predictor = Predictor(inference, self.settings)
        except Exception as exc:  # readiness must report it; the process stays up for /healthz
            self.not_ready_reason = f"warm-up failed: {exc}"
            log.exception("warm-up failed")
            return
        # Everything alive now (modules, app, session) lives as long as the process: move it out
        # of the collector's sight, so that full collections stop walking it on the request path.
        gc.freeze()
        self.predictor = predictor
        meta = inference.classifier.metadata
        log.info(
            "ready: %s %s (batches of up to %d images run inline)", meta.name, meta.version, inline
        )

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

        def on_sigterm(sig: int, frame: FrameType | None) -> None:
            first = not self.stopping
            self.stopping = True
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
