"""OodScorer: per image, the Hamming distance of its act_fc pattern to the training patterns and
the energy of its logits; both grow as an image looks less like the training digits."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from service.classifier.model import Classifier
from service.classifier.monitor.metrics import OOD_SCORE
from service.classifier.monitor.probe import Probe
from service.errors import OodUnavailable
from service.metadata import PatternsRef

#: Images compared against the patterns at once: (chunk x patterns x words) uint64 in memory.
CHUNK = 64


class OodScorer:
    """Scores images against the training set's activation patterns of one layer."""

    def __init__(self, probe: Probe, patterns: np.ndarray[Any, Any], ref: PatternsRef) -> None:
        self.probe = probe
        self.ref = ref
        self._layer = (ref.layer,)
        self._bytes = patterns.shape[1]
        self._patterns = _words(patterns)

    @classmethod
    def load(cls, classifier: Classifier, probe: Probe) -> OodScorer:
        """The scorer of the served model; OodUnavailable says why there is none."""
        ref = classifier.metadata.ood_patterns
        if ref is None:
            raise OodUnavailable(
                "this model carries no OOD reference patterns (exported before they existed); "
                "re-export it with `python -m model_export` to get return_ood"
            )
        path = classifier.path.parent / ref.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OodUnavailable(
                f"the OOD reference patterns {path} cannot be read ({exc.strerror}); keep the "
                "file the export wrote beside the model"
            ) from None
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise OodUnavailable(
                f"{path} does not match the SHA-256 in the model's metadata; it belongs to "
                "another export: copy the model and its .patterns.npy together"
            )
        patterns = np.load(path, allow_pickle=False)
        bytes_per = -(-ref.units // 8)
        if patterns.dtype != np.uint8 or patterns.ndim != 2 or patterns.shape[1] != bytes_per:
            raise OodUnavailable(f"{path}: expected uint8 rows of {bytes_per} bytes")
        return cls(probe, patterns, ref)

    def scores(
        self, batch: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
    ) -> list[dict[str, Any]]:
        """{"hamming": int, "energy": float} per image of a normalised batch and its logits."""
        acts = self.probe.run(batch, self._layer)[self.ref.layer]
        hamming = self.hamming(np.packbits(acts > 0, axis=1))
        energy = energy_score(logits)
        for h, e in zip(hamming.tolist(), energy.tolist(), strict=True):
            OOD_SCORE.labels(score="hamming").observe(h)
            OOD_SCORE.labels(score="energy").observe(e)
        return [
            {"hamming": h, "energy": e}
            for h, e in zip(hamming.tolist(), energy.tolist(), strict=True)
        ]

    def hamming(self, packed: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Minimum Hamming distance of each bit-packed pattern (N, bytes) to the training's."""
        words = _words(packed)
        out = np.empty(len(words), dtype=np.int64)
        for start in range(0, len(words), CHUNK):
            chunk = words[start : start + CHUNK, None, :] ^ self._patterns[None, :, :]
            out[start : start + CHUNK] = np.bitwise_count(chunk).sum(axis=2, dtype=np.int64).min(1)
        return out


def energy_score(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """-logsumexp of each row of logits, in float64 (stable: the row maximum first)."""
    z = logits.astype(np.float64)
    top = z.max(axis=1)
    result: np.ndarray[Any, np.dtype[np.float64]] = -(
        top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    )
    return result


def _words(packed: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Bit-packed rows as uint64 words (zero-padded to a multiple of 8 bytes): one XOR and one
    popcount per 64 units."""
    pad = -packed.shape[1] % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)
