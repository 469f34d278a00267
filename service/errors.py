"""Domain errors: what went wrong, in words that say what to fix; no HTTP in here.

ServiceError
├── InvalidInput            the request's data is wrong (shape, dtype, values, parameters)
│   └── UnsupportedMediaType    a content type or file format we cannot read
├── NotFound                a named resource in the path (function, model) does not exist
├── TooLarge                a request over a configured limit (bytes, images, elements)
├── Overloaded              the server is busy (queue full); retry later
├── DeadlineExceeded        the request waited longer than its deadline
├── NotReady                the model is not loaded or warmed up yet
├── GeometryUnavailable     the geometry endpoints cannot evaluate this model (its ops)
└── ModelLoadError          the model file is missing, unreadable or lacks our metadata
"""


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request's data is wrong; the message names the value and the rule."""


class UnsupportedMediaType(InvalidInput):
    """A content type or file format the service cannot read."""


class NotFound(ServiceError):
    """A named resource in the path does not exist; the message lists the valid ones."""


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


class ModelLoadError(ServiceError):
    """The model file cannot be served; the message names the problem."""
