"""JSON responses rendered by orjson (numpy arrays included), our one JSON response class."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

#: orjson options: numpy arrays serialise natively (no .tolist() copy); NaN is not JSON, so
#: handlers never put one in a response.
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class OrjsonResponse(JSONResponse):
    """Like FastAPI's deprecated ORJSONResponse, kept here because big arrays need orjson's speed."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=ORJSON_OPTIONS)
