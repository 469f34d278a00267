"""AUROC of the OOD scores: the digits test split (in-distribution) against generated non-digits.

Every image goes through POST /predict with return_ood=true (an in-process app, the served
model): arrays as JSON in the raw 0..16 range, letters as PNG uploads that /predict prepares like
any drawn image. A score separates perfectly at AUROC 1.0; 0.5 is chance. `python -m bench.ood`.
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
BATCH = 64


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an OOD image > score of a digit), ties counted half (Mann-Whitney U)."""
    ranks = rankdata(np.concatenate([inside, outside]))
    u = ranks[len(inside) :].sum() - len(outside) * (len(outside) + 1) / 2
    return float(u / (len(inside) * len(outside)))


def test_digits(seed: int) -> np.ndarray:
    splits = data.split(data.load("digits", 28), seed=seed)
    return np.rint(splits.test.x[:, 0] * 16)


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 16, (n, 8, 8))


def blank() -> np.ndarray:
    """Constant images at every raw level, 0 (empty) to 16 (all ink)."""
    return np.repeat(np.arange(17.0)[:, None, None], 8, axis=1).repeat(8, axis=2)


def letters() -> list[tuple[str, bytes]]:
    """A-Z and a-z, black on white 64x64 PNGs (dark ink on light paper, as people draw)."""
    fonts: list[Any] = [ImageFont.truetype(f, 44) for f in FONTS if Path(f).exists()]
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
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    digits = test_digits(args.seed)
    settings = Settings(model_path=args.model, providers=["cpu"], monitor=False)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        inside = score_arrays(client, digits)
        kinds = {
            f"uniform noise ({len(digits)})": score_arrays(client, noise(len(digits), rng)),
            "letters (104 PNG)": score_files(client, letters()),
            "blank (17 levels)": score_arrays(client, blank()),
            f"inverted digits ({len(digits)})": score_arrays(client, 16 - digits),
        }
    kinds["all of the above"] = {
        s: np.concatenate([scores[s] for scores in kinds.values()]) for s in SCORES
    }
    print(f"in-distribution: the digits test split ({len(digits)} images); model {args.model}")
    print("median score, digits: " + ", ".join(f"{s} {np.median(inside[s]):.2f}" for s in SCORES))
    print(f"\n{'OOD kind':26} {'AUROC hamming':>14} {'AUROC energy':>13}  median hamming, energy")
    for kind, scores in kinds.items():
        aurocs = [auroc(inside[s], scores[s]) for s in SCORES]
        medians = ", ".join(f"{np.median(scores[s]):.2f}" for s in SCORES)
        print(f"{kind:26} {aurocs[0]:14.3f} {aurocs[1]:13.3f}  {medians}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
