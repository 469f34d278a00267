"""Trim the serving virtualenv for the runtime image, then prove the service still imports.

Removes what the service cannot reach: test suites, ONNX Runtime's model-tooling packages,
onnx's conformance test data and the SciPy subpackages that no module of `service/` imports
(SciPy is there for `scipy.special`). Each removal is checked: the SciPy subpackages kept are the ones the service's
source names plus everything they import, and the script fails when `import service.app` or
any kept subpackage no longer imports. Run by the Dockerfile with the venv's own python:

    /opt/venv/bin/python deploy/slim_venv.py service/
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

#: ONNX Runtime's offline tooling (transformer optimiser, quantisation, converters): no part of
#: inference and not imported by `onnxruntime` itself.
ORT_TOOLING = ("transformers", "quantization", "tools", "datasets")
#: onnx's backend conformance data (17 MB of test models): the geometry evaluator only reads
#: the served graph with `onnx` and never imports `onnx.backend`.
ONNX_TEST_DATA = ("backend/test",)
#: SciPy subpackages kept whatever the scan says: special calls into linalg lazily.
SCIPY_ALWAYS = {"_lib", "special", "linalg"}


def scipy_subpackages_named(source: Path) -> set[str]:
    """SciPy subpackages the modules under ``source`` import; {"*"} for a bare `import scipy`."""
    found: set[str] = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "scipy":
                    found.add(parts[1] if len(parts) > 1 else "*")
    return found


def imported_closure(subpackages: set[str]) -> set[str]:
    """SciPy subpackages loaded once ``subpackages`` are imported (in a fresh interpreter)."""
    code = (
        "import importlib, sys\n"
        f"for name in {sorted(subpackages)!r}: importlib.import_module('scipy.' + name)\n"
        "print(' '.join({m.split('.')[1] for m in sys.modules if m.startswith('scipy.')}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def remove(path: Path) -> int:
    """Delete a directory tree; return the bytes freed."""
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    shutil.rmtree(path)
    return size


def main() -> None:
    source = Path(sys.argv[1])
    site = Path(sysconfig.get_paths()["purelib"])
    freed = sum(remove(tests) for tests in list(site.glob("**/tests")) if tests.is_dir())
    freed += sum(
        remove(site / "onnxruntime" / name)
        for name in ORT_TOOLING
        if (site / "onnxruntime" / name).is_dir()
    )
    freed += sum(
        remove(site / "onnx" / name) for name in ONNX_TEST_DATA if (site / "onnx" / name).is_dir()
    )

    named = scipy_subpackages_named(source)
    if "*" not in named and (site / "scipy").is_dir():
        keep = imported_closure(named | SCIPY_ALWAYS)
        for package in sorted((site / "scipy").iterdir()):
            if package.is_dir() and (package / "__init__.py").exists() and package.name not in keep:
                freed += remove(package)
        print(f"slim_venv: scipy keeps {', '.join(sorted(keep))}")
    print(f"slim_venv: freed {freed / 2**20:.0f} MiB")

    check = "import service.app\n" + "".join(
        f"import scipy.{name}\n" for name in sorted(named - {"*"})
    )
    subprocess.run([sys.executable, "-c", check], check=True)


if __name__ == "__main__":
    main()
