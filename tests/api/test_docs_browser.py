"""/docs and /redoc render their operations in a real headless browser with no internet."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import live_server

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
    ),
]


@pytest.fixture(scope="module")
def server(dry_run_model: Path) -> Iterator[str]:
    with live_server(dry_run_model) as base:
        yield base


def render(url: str, profile: Path) -> str:
    """The DOM after scripts ran, with every host but loopback unreachable.

    Headless Chromium now and then dumps an empty DOM on a loaded machine; retries absorb
    that without hiding a page that really stays blank (its DOM is never empty).
    """
    for attempt in range(3):
        dom = _dump(url, profile / str(attempt))
        if dom.strip():
            return dom
    return dom


def _dump(url: str, profile: Path) -> str:
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # The network cut: names resolve nowhere and any proxied request goes to a closed
            # port; Chromium never proxies loopback, so only the service itself is reachable.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_pages_name_no_outside_host(server: str) -> None:
    for path in ("/docs", "/redoc"):
        page = httpx.get(server + path).text
        assert "cdn.jsdelivr.net" not in page
        assert "https://" not in page.replace("https://fastapi.tiangolo.com", "")


def test_swagger_ui_shows_the_operations_offline(server: str, tmp_path: Path) -> None:
    dom = render(f"{server}/docs", tmp_path)
    assert "swagger-ui" in dom
    for path in ("/predict", "/model", "/healthz", "/readyz"):
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "opblock-post" in dom


def test_redoc_shows_the_operations_offline(server: str, tmp_path: Path) -> None:
    dom = render(f"{server}/redoc", tmp_path)
    assert "/predict" in dom
    assert "/model" in dom
    assert "Classify one or many images" in dom


def test_a_page_needing_the_internet_stays_blank(tmp_path: Path) -> None:
    """The network cut is real: a CDN stylesheet host does not resolve."""
    dom = render("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css", tmp_path)
    assert ".swagger-ui" not in dom
