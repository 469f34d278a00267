"""Smoke-test a running relu-serve: /readyz, a PNG upload to /predict, /activate, /playground.

Standard library only, so it runs on any host with python3 (docker-check's DC_SMOKE, `make
docker-test`):  python3 deploy/smoke.py [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib

#: Digit "0" from the digits test data (8x8, ink 0..16 on a 0 background).
ZERO = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]


def png(rows: list[list[int]]) -> bytes:
    """An 8-bit grayscale PNG of ``rows`` (values 0..255), written without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(row) for row in rows)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def call(url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_ready(base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, body = call(f"{base}/readyz")
            if status == 200:
                print(f"readyz: {body}")
                return
        except (OSError, ValueError) as exc:
            status, body = 0, {"detail": str(exc)}
        if time.monotonic() > deadline:
            sys.exit(f"smoke: {base}/readyz not ready after {timeout_s:.0f} s: {status} {body}")
        time.sleep(0.5)


def predict_png(base: str) -> None:
    image = png([[value * 255 // 16 for value in row] for row in ZERO])
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="zero.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, body = call(f"{base}/predict", form, f"multipart/form-data; boundary={boundary}")
    if status != 200:
        sys.exit(f"smoke: POST /predict (PNG upload) -> {status} {body}")
    prediction = body["predictions"][0]
    print(f"predict: {prediction['label']} ({prediction['confidence']:.3f}) by {body['model']}")
    if prediction["label"] != "0":
        sys.exit(f"smoke: the digit 0 was classified as {prediction['label']!r}")


def activate(base: str) -> None:
    request = {"function": "relu", "x": [-1.5, 0.0, 2.5], "outputs": ["value", "grad"]}
    status, body = call(f"{base}/activate", json.dumps(request).encode(), "application/json")
    if status != 200:
        sys.exit(f"smoke: POST /activate -> {status} {body}")
    print(f"activate: relu value {body['value']} grad {body['grad']}")
    if body["value"] != [0.0, 0.0, 2.5] or body["grad"] != [0.0, 0.0, 1.0]:
        sys.exit(f"smoke: relu of [-1.5, 0, 2.5] gave {body}")
    # exact GELU in float64 (service/special/erfcx.py, double-double): its first digits
    request = {"function": "gelu", "x": [1.0], "dtype": "float64"}
    status, body = call(f"{base}/activate", json.dumps(request).encode(), "application/json")
    if status != 200 or abs(body["value"][0] - 0.8413447460685429) > 1e-12:
        sys.exit(f"smoke: POST /activate gelu(1.0) -> {status} {body}")
    print(f"activate: gelu(1.0) = {body['value'][0]}")


def playground(base: str) -> None:
    """The page and its vendored library: proves the package data made it into the image."""
    for path in ("/playground", "/playground/assets/vendor/uplot/uPlot.iife.min.js"):
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
                size = len(response.read())
        except urllib.error.HTTPError as exc:
            sys.exit(f"smoke: GET {path} -> {exc.code}")
        print(f"playground: GET {path} -> {size:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for /readyz")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    wait_ready(base, args.wait_s)
    predict_png(base)
    activate(base)
    playground(base)
    print("smoke: OK")


if __name__ == "__main__":
    main()
