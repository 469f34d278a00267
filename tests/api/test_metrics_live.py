"""Metrics and request logs of a real `python -m service`: two workers summed, the metrics
directory's life, JSON log lines, and the README's metric table against a live scrape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api.schemas.predict import ZERO
from tests.api.test_predict_live import wait_every_worker_ready
from tests.live_server import live_server

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def total(base: str, name: str, **labels: str) -> float:
    """A sample's value in one scrape (on a new connection: whichever worker accepts it)."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_two_workers_are_summed(dry_run_model: Path, tmp_path: Path) -> None:
    stale = tmp_path / "metrics" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")
    with live_server(dry_run_model, workers="2", metrics_dir=str(stale.parent)) as base:
        assert not stale.exists(), "the metrics directory is made fresh at start"
        wait_every_worker_ready(base)
        sent = 40
        for _ in range(sent):  # new connections: the kernel spreads them over both workers
            assert httpx.post(f"{base}/predict", json={"inputs": ZERO}, timeout=30).is_success
        pids = {path.stem.rsplit("_", 1)[1] for path in stale.parent.glob("counter_*.db")}
        assert len(pids) == 2, f"both workers write their own files: {pids}"
        labels = {"route": "/predict", "method": "POST", "status": "200"}
        # A worker adds its counts to its files at least every FLUSH_S (and the scraped one
        # before it answers): within a few seconds, every scrape sums both workers' counts.
        deadline = time.monotonic() + 30
        while total(base, "relu_serve_requests_total", **labels) != sent:
            assert time.monotonic() < deadline, "the workers' counts never added up"
            time.sleep(0.5)
        for _ in range(6):  # whichever worker answers the scrape
            assert total(base, "relu_serve_requests_total", **labels) == sent
            assert total(base, "relu_serve_inference_images_total") == sent
            assert total(base, "relu_serve_ready") == 1


def test_the_default_metrics_directory_is_removed_at_exit(dry_run_model: Path) -> None:
    temp = Path(os.environ.get("TMPDIR", "/tmp"))
    before = set(temp.glob("relu-serve-metrics-*"))
    with live_server(dry_run_model) as base:
        made = set(temp.glob("relu-serve-metrics-*")) - before
        assert len(made) == 1, made
        assert httpx.get(f"{base}/metrics").status_code == 200
    assert not any(path.exists() for path in made)


def test_prometheus_client_is_imported_after_the_directory_is_set() -> None:
    """prometheus_client picks in-memory or per-process values when first imported: the entry
    point must not import it before main() has set PROMETHEUS_MULTIPROC_DIR."""
    check = "import sys, service.__main__; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


def json_lines(log: Path) -> list[dict[str, object]]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def test_json_access_lines_carry_the_request(dry_run_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with live_server(
        dry_run_model, log=log, access_log="true", log_format="json", log_level="info"
    ) as base:
        headers = {"x-request-id": "access-test-1"}
        answer = httpx.post(f"{base}/predict", json={"inputs": [ZERO] * 3}, headers=headers)
        assert answer.status_code == 200
        assert (
            httpx.get(f"{base}/activations/nope", headers={"x-request-id": "nope-1"}).status_code
            == 404
        )
    lines = json_lines(log)
    assert lines, log.read_text()
    assert all({"time", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
    (predict,) = [line for line in lines if line["request_id"] == "access-test-1"]
    assert predict["logger"] == "relu_serve.access"
    assert (predict["route"], predict["method"], predict["status"], predict["images"]) == (
        "/predict",
        "POST",
        200,
        3,
    )
    assert isinstance(predict["duration_ms"], float)
    assert predict["duration_ms"] > 0
    (missing,) = [line for line in lines if line["request_id"] == "nope-1"]
    assert (missing["route"], missing["status"], missing["images"]) == (
        "/activations/{name}",
        404,
        None,
    )


def test_a_5xx_is_logged_with_its_request_id_with_the_access_log_off(
    dry_run_model: Path, tmp_path: Path
) -> None:
    """Batches of one image run inline and the queue holds one image: a two-image request is
    refused with 503 (Overloaded), which is logged although the access log is off."""
    log = tmp_path / "server.log"
    with live_server(
        dry_run_model, log=log, log_format="json", max_batch_size="1", max_queue_images="1"
    ) as base:
        headers = {"x-request-id": "overload-1"}
        refused = httpx.post(f"{base}/predict", json={"inputs": [ZERO] * 2}, headers=headers)
        assert refused.status_code == 503, refused.text
        assert httpx.post(f"{base}/predict", json={"inputs": ZERO}).status_code == 200
    lines = json_lines(log)
    (line,) = [line for line in lines if line.get("request_id") == "overload-1"]
    assert (line["level"], line["status"], line["route"]) == ("ERROR", 503, "/predict")
    assert not [line for line in lines if line.get("status") == 200], "access log is off"
    # live_server polled /readyz through the warm-up: its 503s are answers, not faults.
    assert not [line for line in lines if line.get("route") == "/readyz"]


def test_text_access_lines(dry_run_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with live_server(dry_run_model, log=log, access_log="true", log_level="info") as base:
        httpx.post(f"{base}/predict", json={"inputs": ZERO}, headers={"x-request-id": "text-1"})
    (line,) = [line for line in log.read_text().splitlines() if "[text-1]" in line]
    assert re.search(
        r"INFO relu_serve\.access \[text-1\] POST /predict 200 [\d.]+ ms images=1$", line
    )


TABLE_ROW = re.compile(r"^\| `(relu_serve_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


def readme_table() -> dict[str, tuple[str, set[str]]]:
    section = README.read_text().split("### Metrics", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for name, kind, labels in TABLE_ROW.findall(section):
        rows[name] = (kind, {label.strip(" `") for label in labels.split(",") if label.strip()})
    return rows


def test_the_readme_metric_table_lists_every_series_of_a_live_scrape(dry_run_model: Path) -> None:
    with live_server(dry_run_model) as base:
        # return_ood: the OOD histogram has samples only once a score was observed.
        httpx.post(f"{base}/predict", json={"inputs": ZERO, "return_ood": True})
        families = list(text_string_to_metric_families(httpx.get(f"{base}/metrics").text))
    live: dict[str, tuple[str, set[str]]] = {}
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {key for sample in family.samples for key in sample.labels if key != "le"}
        live[name] = (family.type, labels)
    assert readme_table() == live
