"""The metrics helpers a scrape relies on: dead workers' live gauges reaped, others kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
