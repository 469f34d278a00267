"""schemathesis over every operation of /openapi.json against a live server, all default checks.

JSON bodies come from the published schemas; .npy/.npz bodies and image uploads from the
strategies below (valid files: the schema cannot describe their insides). One check is
narrowed, for the POST operations: their bodies obey rules JSON Schema cannot state
(/activate: softmax's dim within x's rank, glu's even size, prelu's weight per channel,
rectangular nesting; /predict: invert only with image files, normalized only without; v2
infer: the model's own inputs, shapes and parameters), so a
schema-valid body may be refused there: with 422 and a message, which ``refused_with_a_reason``
checks instead of ``positive_data_acceptance``. Damaged files are
the fuzz test's (tests/api/test_fuzz_live.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from service.config import Settings
from tests.live_server import live_server

#: The three layouts /predict takes, valid for /activate too (which takes any shape).
SHAPES = st.sampled_from([(8, 8), (1, 8, 8), (3, 8, 8), (2, 1, 8, 8)])


def digits(dtype: str) -> st.SearchStrategy[np.ndarray]:
    values = st.floats(0, 16, width=32) if dtype != "|u1" else st.integers(0, 16)
    return SHAPES.flatmap(lambda shape: hnp.arrays(np.dtype(dtype), shape, elements=values))


ARRAYS = st.sampled_from(["<f4", "<f8", ">f4"]).flatmap(digits)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(x: np.ndarray, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x=x, grad_output=x)
    return buffer.getvalue()


def _image(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, fmt)
    return buffer.getvalue()


#: Colour modes with formats that can hold them.
KINDS = [("L", "PNG"), ("RGB", "BMP"), ("RGBA", "PNG"), ("1", "TIFF"), ("P", "GIF")]
KINDS += [("I;16", "PNG"), ("RGB", "JPEG"), ("L", "WEBP"), ("CMYK", "TIFF")]
IMAGES = st.builds(
    lambda kind, size: _image(kind[0], size, kind[1]),
    st.sampled_from(KINDS),
    st.tuples(st.integers(1, 64), st.integers(1, 64)),
)
schemathesis.openapi.media_type("application/x-npy", ARRAYS.map(_npy))
schemathesis.openapi.media_type("application/x-npz", st.builds(_npz, ARRAYS, st.booleans()))
schemathesis.openapi.format("binary", IMAGES)

#: The document the server publishes (built without a model: routes and schemas only).
DOCUMENT = create_app(Settings(model_path=Path("unused.onnx"))).openapi()
OPERATIONS = [
    result.ok()  # type: ignore[union-attr]
    for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations()
]
#: Operations with something to get wrong (a body or a parameter): the negative runs.
NEGATIVE = [
    op
    for op in OPERATIONS
    if (op.method == "post" and len(op.body)) or len(op.query) or len(op.path_parameters)
]


def refused_with_a_reason(ctx: CheckContext, response, case) -> bool | None:  # type: ignore[no-untyped-def]
    """A schema-valid request is answered 2xx, or refused with 422 and a message (a v2 infer:
    with Triton's 400, or 404 for a model name the schema cannot list, and ``error``)."""
    if response.status_code < 300:
        return None
    if case.path.startswith("/v2/"):
        assert response.status_code in (400, 404), f"{response.status_code}: {response.text[:300]}"
        assert response.json()["error"], response.text
        return None
    assert response.status_code == 422, f"{response.status_code}: {response.text[:300]}"
    assert response.json()["detail"], response.text
    return None


#: The geometry deadline (default 10 s), raised below the client's 60 s: these runs check what
#: the document promises, and a region plane of the largest size once took over 10 s on a busy
#: machine (a 504, which the server-error check fails). The deadline has its own tests.
GEOMETRY_TIMEOUT_MS = "50000"


@pytest.fixture(scope="module")
def base(dry_run_model: Path) -> Iterator[str]:
    with live_server(dry_run_model, geometry_timeout_ms=GEOMETRY_TIMEOUT_MS) as url:
        yield url


def run(base: str, operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
    narrowed = operation.method == "post" and mode == GenerationMode.POSITIVE
    excluded: Any = [positive_data_acceptance] if narrowed else None
    extra: Any = [refused_with_a_reason] if narrowed else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=base, timeout=60, excluded_checks=excluded, additional_checks=extra
        )

    check()


@pytest.mark.slow
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_valid_requests_get_what_the_document_promises(
    base: str, operation: schemathesis.APIOperation
) -> None:
    run(base, operation, GenerationMode.POSITIVE)


@pytest.mark.slow
@pytest.mark.parametrize("operation", NEGATIVE, ids=lambda operation: operation.label)
def test_invalid_requests_are_refused_as_the_document_says(
    base: str, operation: schemathesis.APIOperation
) -> None:
    run(base, operation, GenerationMode.NEGATIVE)
