"""Graceful stop: on SIGTERM turn unready, keep serving for a drain period, then let the server stop.

The order a load balancer needs: /readyz answers 503 at once (so traffic moves elsewhere), the
listener stays open for ``shutdown_drain_s`` (requests still routed here are served), then the
server's own handler runs: uvicorn stops accepting and finishes the requests in flight within
``graceful_shutdown_s``. A second SIGTERM skips what is left of the drain.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


class Lifecycle:
    """Whether this process is stopping; set from the SIGTERM handler, read by /readyz."""

    def __init__(self) -> None:
        self.stopping = False

    def install(self, drain_s: float) -> Callable[[], None]:
        """Put our SIGTERM handler in front of the server's; return the function that undoes it.

        Only the main thread may set signal handlers: elsewhere (an app run by a test client in a
        worker thread), or with no server handler to hand over to, nothing is installed.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        server_handler = signal.getsignal(signal.SIGTERM)
        if not callable(server_handler):  # no server handler to hand over to: leave it alone
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
