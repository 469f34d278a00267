"""Logging: the request id on every line, through a context variable the guard sets."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

#: The id of the request being served in this context ("-" outside requests). Worker
#: threads started with asyncio.to_thread inherit it.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, for the formatters to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with the request id in every line."""
    line = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"line": {"format": line}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "relu_serve")
        },
    }
