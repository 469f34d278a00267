"""GET /metrics: the Prometheus exposition of every worker's series (service/metrics.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from service import metrics
from service.runtime import Runtime

router = APIRouter(tags=["operations"])

#: Excerpts of a real scrape in either format (a server after two one-image /predict requests).
_REQUESTS = """\
relu_serve_requests_total{method="GET",route="/readyz",status="200"} 1.0
relu_serve_requests_total{method="POST",route="/predict",status="200"} 2.0
"""
_BATCHES = """\
# HELP relu_serve_batch_images Images per model run (a batch merges concurrent requests).
# TYPE relu_serve_batch_images histogram
relu_serve_batch_images_sum 2.0
relu_serve_batch_images_bucket{le="1.0"} 2.0
relu_serve_batch_images_bucket{le="2.0"} 2.0
relu_serve_batch_images_bucket{le="+Inf"} 2.0
relu_serve_batch_images_count 2.0
"""
_HELP = "HTTP requests answered, by route template (unmatched: no route), method and status."
TEXT_EXAMPLE = (
    f"# HELP relu_serve_requests_total {_HELP}\n# TYPE relu_serve_requests_total counter\n"
    + _REQUESTS
    + _BATCHES
)
OPENMETRICS_EXAMPLE = (
    f"# HELP relu_serve_requests {_HELP}\n# TYPE relu_serve_requests counter\n"
    + _REQUESTS
    + _BATCHES
    + "# EOF\n"
)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text (version 0.0.4), or OpenMetrics 1.0 when the "
            "Accept header asks for application/openmetrics-text.",
            "content": {
                "text/plain": {"example": TEXT_EXAMPLE},
                "application/openmetrics-text": {"example": OPENMETRICS_EXAMPLE},
            },
        }
    },
)
def scrape(
    request: Request,
    accept: Annotated[
        str, Header(description="`application/openmetrics-text` for OpenMetrics")
    ] = "",
) -> Response:
    """The service's metrics, summed over all its workers, for Prometheus to scrape: requests
    by route template, method and status, request and model-run durations, images per model
    run, the queue, readiness and the model served (the README lists every series)."""
    # A plain def: FastAPI runs it in a thread, as reading the workers' files is disk work.
    runtime: Runtime = request.app.state.runtime
    body, content_type = metrics.render(accept, runtime.collectors)
    return Response(body, media_type=content_type)
