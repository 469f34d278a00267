"""Vendor the playground's third-party files from npm: pinned, integrity-checked, with licence.

`python deploy/vendor.py` (or `make vendor`) runs `npm pack NAME@VERSION` for each package
below, checks the tarball against the registry's sha512 integrity pinned here, and copies the
listed files into service/static/vendor/NAME/ beside the package's LICENSE. The files are
committed: serving never needs npm, and the page loads nothing from elsewhere.
`--digits` rewrites the playground's preset digits (service/static/playground/digits.js) from
scikit-learn's bundled data set instead (the export extra's venv).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "service" / "static"
VENDOR = STATIC / "vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    #: `npm view NAME@VERSION dist.integrity`
    integrity: str
    files: tuple[str, ...]


PACKAGES = (
    Package(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        ("dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"),
    ),
)


def vendor(package: Package, work: Path) -> list[Path]:
    spec = f"{package.name}@{package.version}"
    done = subprocess.run(
        ["npm", "pack", "--silent", spec], cwd=work, check=True, capture_output=True, text=True
    )
    tarball = work / done.stdout.strip().splitlines()[-1]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != package.integrity:
        raise SystemExit(f"{spec}: the tarball's sha512 does not match the pinned integrity")
    target = VENDOR / package.name
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(tarball) as archive:
        for name in package.files:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"{spec}: {name} is not a file in the package")
            path = target / Path(name).name
            path.write_bytes(member.read())
            written.append(path)
    (target / "VERSION").write_text(f"{spec} {package.integrity}\n")
    return written


def digits() -> Path:
    """The first image of each class of the UCI digits, as the playground's presets."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rows = []
    for digit in range(10):
        image = data.images[list(data.target).index(digit)].astype(int).tolist()
        rows.append("  " + str(image).replace(" ", "") + ",")
    path = STATIC / "playground" / "digits.js"
    header = (
        "// Ten digits from the UCI handwritten digits (scikit-learn's load_digits, the training\n"
        "// data set; CC BY 4.0), the first of each class: 8x8, values 0..16. Made by\n"
        "// `python deploy/vendor.py --digits`; the regions panel offers them as presets.\n"
    )
    path.write_text(header + "export const DIGITS = [\n" + "\n".join(rows) + "\n];\n")
    return path


def main() -> int:
    if sys.argv[1:] == ["--digits"]:
        print(digits())
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            for path in vendor(package, Path(tmp)):
                print(f"{path.relative_to(VENDOR.parents[2])}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
