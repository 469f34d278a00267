"""Domain errors: what went wrong, in words that say what to fix; no HTTP in here.

ServiceError
├── InvalidInput            the request's data is wrong (shape, dtype, values, parameters)
│   └── UnsupportedMediaType    a content type or file format we cannot read
├── NotFound                a named resource in the path (function, model) does not exist
│   └── MonitorOff              the ReLU monitor is switched off
├── TooLarge                a request over a configured limit (bytes, images, elements)
├── Overloaded              the server is busy (queue full); retry later
├── DeadlineExceeded        the request waited longer than its deadline
├── NotReady                the model is not loaded or warmed up yet
├── GeometryUnavailable     the geometry endpoints cannot evaluate this model (its ops)
├── OodUnavailable          the model has no OOD reference patterns (or the monitor is off)
└── ModelLoadError          the model file is missing, unreadable or lacks our metadata
"""

import reprlib

#: The longest message a client is sent; longer ones are cut (an echo of a huge value, say).
MAX_MESSAGE_CHARS = 400


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request's data is wrong; the message names the value and the rule."""


class UnsupportedMediaType(InvalidInput):
    """A content type or file format the service cannot read."""


class NotFound(ServiceError):
    """A named resource in the path does not exist; the message lists the valid ones."""


class MonitorOff(NotFound):
    """The ReLU monitor is off; the message names the setting."""


class TooLarge(ServiceError):
    """The request exceeds a configured limit; the message names the limit."""


class Overloaded(ServiceError):
    """The server cannot take more work now; retry after a moment."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(ServiceError):
    """The request waited longer than its deadline."""


class NotReady(ServiceError):
    """The model is not loaded or not warmed up yet."""


class GeometryUnavailable(ServiceError):
    """The served model holds ops the geometry evaluator lacks; the message names them."""


class OodUnavailable(ServiceError):
    """The OOD score cannot be computed for this model; the message says why and what to do."""


class ModelLoadError(ServiceError):
    """The model file cannot be served; the message names the problem."""


def excerpt(value: object, limit: int = 60) -> str:
    """A short repr of a client's value for a message: nesting, lists, strings and digits cut
    (reprlib), at most ``limit`` characters; a 1 MB value never comes back in an error."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 3, 6, 4, 6
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 40, 24, 40
