"""Print the pip arguments that make pip install torch's CPU build, for the Makefile.

PyPI's Linux torch wheel depends on ~3 GB of CUDA packages. A local CPU wheel
(``torch-<pin>+cpu-*.whl``) in deploy/wheels/ or pip's find-links (PIP_FIND_LINKS or pip.conf)
wins, and no other index is asked (offline set-ups work); otherwise the PyTorch CPU index
joins the indexes pip already uses. An empty ``--index-url`` means PyPI's torch. Standard
library only: it runs with the fresh virtualenv's pip, before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pinned_torch(constraints: Path) -> str:
    """The torch version constraints.txt pins (``torch==2.13.0`` -> ``2.13.0``)."""
    match = re.search(r"^torch==([^\s;#]+)", constraints.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f"torch_source.py: {constraints} pins no torch==VERSION")
    return match.group(1)


def pip_config(pip: list[str]) -> dict[str, list[str]]:
    """`pip config list` as {option: values}, keys without their scope (find-links, ...)."""
    done = subprocess.run([*pip, "config", "list"], capture_output=True, text=True, check=False)
    options: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            option = key.rsplit(".", 1)[-1]
            options.setdefault(option, []).extend(" ".join(shlex.split(value)).split())
    return options


def local_wheel(folders: Iterable[str], version: str) -> Path | None:
    """The first folder's torch CPU wheel of ``version``, if any folder has one."""
    for folder in folders:
        path = Path(folder.removeprefix("file://"))
        if path.is_dir():
            wheels = sorted(path.glob(f"torch-{version}+cpu-*.whl"))
            if wheels:
                return wheels[0]
    return None


def pip_args(index_url: str, version: str, wheels: Path, config: dict[str, list[str]]) -> list[str]:
    """--find-links for a local CPU wheel, else --extra-index-url for the CPU index (keeping
    the extra indexes already configured, which a command-line option would replace)."""
    folders = [str(wheels), *config.get("find-links", [])]
    wheel = local_wheel(folders, version)
    if wheel is not None:
        return ["--find-links", str(wheel.parent)]
    if not index_url:
        return []
    args: list[str] = []
    for url in [*config.get("extra-index-url", []), index_url]:
        if url not in args:
            args += ["--extra-index-url", url]
    return args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-url", default=CPU_INDEX, help="torch's CPU index ('' = PyPI)")
    parser.add_argument("--wheels", type=Path, default=ROOT / "deploy" / "wheels")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args(argv)
    config = pip_config([sys.executable, "-m", "pip"])  # PIP_* variables show as ":env:" keys
    print(shlex.join(pip_args(args.index_url, pinned_torch(args.constraints), args.wheels, config)))


if __name__ == "__main__":
    main()
