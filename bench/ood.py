"""AUROC of the OOD scores: the digits test split (in-distribution) against generated non-digits.

Every image goes through POST /predict with return_ood=true (an in-process app, the served
model): arrays as JSON in the raw 0..16 range, letters as PNG uploads that /predict prepares like
any drawn image. A score separates perfectly at AUROC 1.0; 0.5 is chance. `python -m bench.ood`.

`--dev` scores another set the same way: the validation split, letters in three other fonts and
noise of another seed. Choices about the score (which layer, which patterns) were made on it, so
that the default (test) figures were not tuned on.
"""

from __future__ import annotations

import argparse
import io
import string
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from scipy.stats import rankdata

from model_export import data
from service.app import create_app
from service.config import Settings

SCORES = ("hamming", "energy")
#: Debian's DejaVu when installed (letters in two styles), else Pillow's bundled font.
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
)
#: --dev's fonts: none of them is in FONTS.
DEV_FONTS = (
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed.ttf",
)
#: Letters that can pass for a digit once cropped to 8x8 (O/o/D as 0, I/l as 1, Z/z as 2,
#: S/s as 5, b/G as 6, B as 8, g/q as 9): kept in the set, and also scored apart.
DIGIT_LIKE = frozenset("OoDIlZzSsbGBgq")
BATCH = 64
#: Digits people drew and photographed (examples/drawn): in distribution, in other styles.
DRAWN = sorted(
    p
    for p in (Path(__file__).parents[1] / "examples" / "drawn").iterdir()
    if p.suffix in (".png", ".jpg")
)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an OOD image > score of a digit), ties counted half (Mann-Whitney U)."""
    ranks = rankdata(np.concatenate([inside, outside]))
    u = ranks[len(inside) :].sum() - len(outside) * (len(outside) + 1) / 2
    return float(u / (len(inside) * len(outside)))


def digits(seed: int, *, dev: bool) -> np.ndarray:
    """The test split (or with ``dev`` the validation split) in the raw 0..16 range."""
    splits = data.split(data.load("digits", 28), seed=seed)
    return np.rint((splits.val if dev else splits.test).x[:, 0] * 16)


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 16, (n, 8, 8))


def blank() -> np.ndarray:
    """Constant images at every raw level, 0 (empty) to 16 (all ink)."""
    return np.repeat(np.arange(17.0)[:, None, None], 8, axis=1).repeat(8, axis=2)


def letters(font_files: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """A-Z and a-z, black on white 64x64 PNGs (dark ink on light paper, as people draw)."""
    fonts: list[Any] = [ImageFont.truetype(f, 44) for f in font_files if Path(f).exists()]
    fonts = fonts or [ImageFont.load_default(size=44)]
    files = []
    for font in fonts:
        for char in string.ascii_letters:
            image = Image.new("L", (64, 64), 255)
            ImageDraw.Draw(image).text((32, 32), char, fill=0, font=font, anchor="mm")
            png = io.BytesIO()
            image.save(png, format="PNG")
            files.append((f"{char}.png", png.getvalue()))
    return files


def score_arrays(client: TestClient, images: np.ndarray) -> dict[str, np.ndarray]:
    found: dict[str, list[float]] = {s: [] for s in SCORES}
    for start in range(0, len(images), BATCH):
        body = {"inputs": images[start : start + BATCH].tolist(), "return_ood": True}
        _collect(client.post("/predict", json=body), found)
    return {s: np.array(v) for s, v in found.items()}


def score_files(client: TestClient, files: list[tuple[str, bytes]]) -> dict[str, np.ndarray]:
    found: dict[str, list[float]] = {s: [] for s in SCORES}
    for start in range(0, len(files), BATCH):
        parts = [("files", (name, png, "image/png")) for name, png in files[start : start + BATCH]]
        _collect(client.post("/predict", files=parts, data={"return_ood": "true"}), found)
    return {s: np.array(v) for s, v in found.items()}


def _collect(response: Any, found: dict[str, list[float]]) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"/predict answered {response.status_code}: {response.text}")
    for prediction in response.json()["predictions"]:
        for score in SCORES:
            found[score].append(prediction["ood"][score])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ood", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/relu_cnn.onnx"))
    parser.add_argument("--seed", type=int, default=0, help="the export's split seed")
    parser.add_argument(
        "--dev", action="store_true", help="the development set: validation split, other fonts"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1 if args.dev else 0)
    inside_raw = digits(args.seed, dev=args.dev)
    files = letters(DEV_FONTS if args.dev else FONTS)
    settings = Settings(model_path=args.model, providers=["cpu"], monitor=False)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        inside = score_arrays(client, inside_raw)
        n = len(inside_raw)
        kinds = {
            f"uniform noise ({n})": score_arrays(client, noise(n, rng)),
            f"letters ({len(files)} PNG)": score_files(client, files),
            "blank (17 levels)": score_arrays(client, blank()),
            f"inverted digits ({n})": score_arrays(client, 16 - inside_raw),
        }
        drawn = score_files(client, [(p.name, p.read_bytes()) for p in DRAWN])
    every = {s: np.concatenate([scores[s] for scores in kinds.values()]) for s in SCORES}
    like = np.array([name[0] in DIGIT_LIKE for name, _ in files])
    letter_scores = kinds[f"letters ({len(files)} PNG)"]
    rows = list(kinds.items())
    rows[2:2] = [
        (f"  of which digit-like ({like.sum()})", {s: letter_scores[s][like] for s in SCORES}),
        (f"  of which the others ({(~like).sum()})", {s: letter_scores[s][~like] for s in SCORES}),
    ]
    rows.append(("all of the above", every))
    split = "validation" if args.dev else "test"
    print(f"in-distribution: the digits {split} split ({n} images); model {args.model}")
    print("median score, digits: " + ", ".join(f"{s} {np.median(inside[s]):.2f}" for s in SCORES))
    print(f"\n{'OOD kind':30} {'AUROC hamming':>14} {'AUROC energy':>13}  median hamming, energy")
    for kind, scores in [*rows, (f"not OOD: drawn digits ({len(DRAWN)})", drawn)]:
        aurocs = [auroc(inside[s], scores[s]) for s in SCORES]
        medians = ", ".join(f"{np.median(scores[s]):.2f}" for s in SCORES)
        print(f"{kind:30} {aurocs[0]:14.3f} {aurocs[1]:13.3f}  {medians}")
    print(
        "(drawn digits are digits in other styles, examples/drawn: the closer to 0.5, the fewer "
        "false alarms on them)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
