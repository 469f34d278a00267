"""GET /playground: the page, and its scripts, styles and vendored libraries from the package."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

router = APIRouter(tags=["playground"])

#: Where the page's own files and the vendored ones are served from.
ASSETS = "/playground/assets"
_PAGE = files("service") / "static" / "playground" / "index.html"


@router.get("/playground", response_class=HTMLResponse)
async def playground() -> HTMLResponse:
    """An interactive page: draw a digit and watch the served network classify it (top-k,
    the 8x8 input it saw, which units fired, dead units, saliency, the region around it), walk
    the linear regions between two digits, and plot any activation function with its gradient.
    Every asset comes from this service; the page talks to no other host."""
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))


def assets() -> Mount:
    """The page's static files (service/static), served from the installed package."""
    return Mount(ASSETS, StaticFiles(packages=[("service", "static")]), name="playground-assets")
