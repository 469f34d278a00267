"""Where request work runs: small jobs on the event loop, big ones in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any, ParamSpec, TypeVar

from service.errors import DeadlineExceeded, Overloaded

#: Bodies up to this size are handled on the event loop: a thread hop costs more than the work.
#: (The /predict hot path compares with it itself, skipping even the coroutine of ``by_size``.)
INLINE_BODY_BYTES = 64 * 1024

P = ParamSpec("P")
T = TypeVar("T")


async def by_size(
    size: int, deadline_s: float, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``work`` inline when ``size`` (body bytes) is small, else in a worker thread, so
    that a big body never stalls the other connections."""
    if size <= INLINE_BODY_BYTES:
        return work(*args, **kwargs)
    return await in_thread(deadline_s, work, *args, **kwargs)


async def in_thread(
    deadline_s: float, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``work`` in a worker thread, answered DeadlineExceeded after ``deadline_s``.

    A thread cannot be stopped: work past its deadline runs on to its end (its budgets bound
    it) while the client already has its 504.
    """
    try:
        return await asyncio.wait_for(asyncio.to_thread(work, *args, **kwargs), deadline_s)
    except TimeoutError:
        raise DeadlineExceeded(
            f"decoding and computing took more than {deadline_s * 1000:g} ms "
            "(request_timeout_ms); send less data per request"
        ) from None


class ByteBudget:
    """Request bytes held by a worker at once, against a limit (used on the event loop only).

    Each request's share is kept in its own ``holder`` dict (the ASGI scope), so that it is
    released exactly once, however the request ends.
    """

    KEY = "relu_serve.held_bytes"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, holder: MutableMapping[str, Any], size: int) -> None:
        """Hold ``size`` more bytes for ``holder``; Overloaded (nothing held) past the limit."""
        if self.held + size > self.limit:
            raise Overloaded(
                f"the server holds {self.held} bytes of requests (max_inflight_bytes "
                f"{self.limit}); retry shortly",
                retry_after_s=1.0,
            )
        self.held += size
        holder[self.KEY] = holder.get(self.KEY, 0) + size

    def release(self, holder: MutableMapping[str, Any]) -> None:
        self.held -= holder.pop(self.KEY, 0)
