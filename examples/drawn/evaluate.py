"""Score a running relu-serve on the drawn-digit set: `python examples/drawn/evaluate.py [URL]`.

Posts every examples/drawn/<digit>-<style>.png|jpg to URL/predict (default
http://127.0.0.1:8000) as a multipart upload with the default options, prints each miss, the
accuracy per style and the total. Standard library only, so it can score any version.
"""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def predict(url: str, path: Path) -> str:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/predict",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    return str(answer["predictions"][0]["label"])


def main(url: str = "http://127.0.0.1:8000", folder: Path = HERE) -> float:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
    right: dict[str, list[bool]] = defaultdict(list)
    for path in files:
        digit, style = path.stem.split("-", 1)
        label = predict(url, path)
        right[style].append(label == digit)
        if label != digit:
            print(f"  miss: {path.name} -> {label}")
    for style, hits in right.items():
        print(f"{style:10s} {sum(hits):2d}/{len(hits)}")
    total = sum(sum(h) for h in right.values()) / len(files)
    print(f"total      {sum(sum(h) for h in right.values())}/{len(files)} = {total:.1%}")
    return total


if __name__ == "__main__":
    main(*sys.argv[1:2])
