"""Print pyproject.toml's requirements (main set or named extras) one a line, for Docker layers.

The Dockerfile installs dependencies from this list before it copies the source, so editing
code does not re-download torch; `--swap onnxruntime=onnxruntime-gpu[cuda,cudnn]` replaces one
requirement by another (the GPU image). Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path


def requirement_name(requirement: str) -> str:
    """The normalised distribution name that starts a PEP 508 requirement."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    if match is None:
        raise SystemExit(f"requirements.py: cannot read a name from {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="extras to add to the main dependencies")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--swap", action="append", default=[], metavar="NAME=REQUIREMENT")
    args = parser.parse_args(argv)

    project = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in args.extras:
        requirements += project["optional-dependencies"][extra]
    swaps = dict(swap.split("=", 1) for swap in args.swap)
    for name in swaps:
        if name not in {requirement_name(r) for r in requirements}:
            raise SystemExit(f"requirements.py: --swap {name}: no such requirement")
    for requirement in requirements:
        print(swaps.get(requirement_name(requirement), requirement))


if __name__ == "__main__":
    main()
