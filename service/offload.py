"""Where request work runs: small jobs on the event loop, big ones in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

#: Bodies up to this size are handled on the event loop: a thread hop costs more than the work.
#: (The /predict hot path compares with it itself, skipping even the coroutine of ``by_size``.)
INLINE_BODY_BYTES = 64 * 1024

P = ParamSpec("P")
T = TypeVar("T")


async def by_size(size: int, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``work`` inline when ``size`` (body bytes) is small, else in a worker thread, so
    that a big body never stalls the other connections."""
    if size <= INLINE_BODY_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)
