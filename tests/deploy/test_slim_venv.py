"""deploy/slim_venv.py: which SciPy subpackages the service's source names."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

spec = importlib.util.spec_from_file_location("slim_venv", REPO / "deploy" / "slim_venv.py")
assert spec is not None
assert spec.loader is not None
slim_venv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(slim_venv)


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("from scipy import special", {"special"}),
        ("from scipy.special import erfc", {"special"}),
        ("import scipy.linalg as la", {"linalg"}),
        ("def f():\n    from scipy import stats, optimize", {"stats", "optimize"}),
        ("import scipy", {"*"}),  # the whole package: nothing may be removed
        ("from scipy import *", {"*"}),
        ("import numpy\nfrom . import scipy", set()),
    ],
)
def test_scipy_subpackages_named(tmp_path: Path, source: str, named: set[str]) -> None:
    (tmp_path / "module.py").write_text(source + "\n", encoding="utf-8")
    assert slim_venv.scipy_subpackages_named(tmp_path) == named


def test_the_service_imports_no_scipy() -> None:
    # Exact GELU and the geometry's smooth ops use service/special (erfcx, erf, expit): SciPy's
    # erfc/erfcx were too inexact, and the serving venv does not install SciPy at all.
    assert slim_venv.scipy_subpackages_named(REPO / "service") == set()
