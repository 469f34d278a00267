"""The one 413 for a request body over max_body_bytes."""

from __future__ import annotations

from service.errors import TooLarge


def body_too_large(max_bytes: int) -> TooLarge:
    """What a body over the limit gets, wherever it is noticed (header or stream)."""
    return TooLarge(f"the request body exceeds the limit of {max_bytes} bytes")
