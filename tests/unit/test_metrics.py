"""Metrics and logs helpers: dead workers' live gauges reaped, the metrics directory's life,
JSON log lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import MULTIPROC_ENV, metrics_directory
from service.config import Settings
from service.logs import JsonFormatter
from service.metrics import reap


def test_reap_drops_only_the_live_gauges_of_dead_processes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead, alive = int(done.stdout), os.getpid()
    names = [
        f"gauge_livesum_{dead}.db",
        f"gauge_livemin_{dead}.db",
        f"counter_{dead}.db",  # a dead worker's counts stay: counters never go back
        f"gauge_livesum_{alive}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert reap(str(tmp_path)) == [dead]
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted([f"counter_{dead}.db", f"gauge_livesum_{alive}.db"])
    assert reap(str(tmp_path)) == []


def test_the_metrics_directory_is_made_fresh_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "/somewhere/else")
    remove = metrics_directory(Settings(metrics=False))
    assert MULTIPROC_ENV not in os.environ
    remove()

    remove = metrics_directory(Settings())
    made = Path(os.environ[MULTIPROC_ENV])
    assert made.is_dir()
    assert made.name.startswith("relu-serve-metrics-")
    remove()
    assert not made.exists()

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("not ours")
    remove = metrics_directory(Settings(metrics_dir=given))
    assert os.environ[MULTIPROC_ENV] == str(given)
    assert [path.name for path in given.iterdir()] == ["notes.txt"]
    remove()
    assert given.exists(), "a directory the operator named is left in place"
    monkeypatch.delenv(MULTIPROC_ENV)


def test_json_log_lines() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "relu_serve.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None
    )
    record.request_id, record.route, record.status, record.images = "r-1", "/x", 200, None
    line = json.loads(formatter.format(record))
    assert line["message"] == "GET /x"
    assert (line["request_id"], line["route"], line["status"], line["images"]) == (
        "r-1",
        "/x",
        200,
        None,
    )
    assert line["time"].endswith("+00:00")
    assert "method" not in line, "only the fields the record has"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord(
            "relu_serve", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = json.loads(formatter.format(failed))
    assert line["request_id"] == "-"
    assert "ValueError: boom" in line["exc"]
