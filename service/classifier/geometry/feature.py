"""Geometry: /explain and /regions for the served model, from a request's bytes to the answer.

Images are decoded by the classifier's own path (preprocess.batch_from_json / batch_from_npy,
preprocess.images_to_batch); the float64 work runs in a worker thread, never on the loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from service import offload
from service.classifier.geometry import plane
from service.classifier.geometry.explain import explain, saliency_png
from service.classifier.geometry.graph import Network
from service.classifier.geometry.segment import regions
from service.classifier.limits import Limits
from service.classifier.model import Classifier
from service.classifier.predict import validated
from service.classifier.preprocess import batch_from_json, batch_from_npy, images_to_batch
from service.codecs import Body, json_arrays
from service.config import Settings
from service.errors import GeometryUnavailable, InvalidInput

#: The evaluator must match ONNX Runtime's logits this closely on the load-time check batch.
PARITY_MAX_ABS = 1e-4


class ExplainOptions(BaseModel):
    """Options of /explain: JSON keys, form fields or query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    units: bool = Field(False, description="add each switching layer's per-unit map")
    format: Literal["json", "png"] = Field(
        "json", description="png: a saliency image of the predicted class's weights"
    )
    normalized: bool = Field(False, description="the image is already normalised (JSON, .npy)")
    invert: Literal["auto"] | bool = Field("auto", description="image files only, as /predict")


class PairOptions(BaseModel):
    """Options every endpoint over two or three images takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalized: bool = Field(False, description="the images are already normalised")


class RegionsOptions(PairOptions):
    """Options of /regions: JSON keys or query parameters."""

    logits: bool = Field(
        False,
        description="add the logits at every knot (linear piece ends and decision changes): "
        "exact, and affine in t between knots",
    )


class PlaneOptions(PairOptions):
    """Options of /regions/plane: JSON keys or query parameters."""

    grid: int = Field(96, ge=8, le=256, description="sample points per side of the plane")
    span: float = Field(
        1.0,
        gt=0,
        le=1,
        description="u and v run over [0, span]: zoom in on a (two digits are ~1,500-2,000 "
        "regions apart, so at span 1 most cells hold a region of their own)",
    )


EXPLAIN_OPTIONS = tuple(ExplainOptions.model_fields)
REGIONS_OPTIONS = tuple(RegionsOptions.model_fields)
PLANE_OPTIONS = tuple(PlaneOptions.model_fields)
_Pair = TypeVar("_Pair", bound=PairOptions)


class Geometry:
    """The geometry of the served model; every transport calls these methods."""

    def __init__(self, network: Network, classifier: Classifier, settings: Settings) -> None:
        self.network = network
        self.meta = classifier.metadata
        self.limits = Limits.from_settings(settings, self.meta)
        self.max_breakpoints = settings.geometry_max_breakpoints
        self.timeout_s = settings.geometry_timeout_ms / 1000
        #: Decoding and the float64 work, all in a worker thread, within the request deadline.
        self.deadline_s = settings.request_timeout_ms / 1000
        self._model = {"name": self.meta.name, "version": self.meta.version}

    @classmethod
    def load(cls, classifier: Classifier, settings: Settings) -> Geometry:
        """Build the evaluator from the model file and check it against ONNX Runtime;
        GeometryUnavailable says why not (ops it lacks, a mismatch)."""
        data = classifier.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != classifier.sha256:
            raise GeometryUnavailable(
                f"{classifier.path} changed since it was loaded; restart to serve the new file"
            )
        network = Network.from_bytes(data, classifier.metadata.input_shape)
        batch = check_batch(classifier.metadata.input_shape)
        worst = float(np.abs(classifier.predict(batch) - network.logits(batch.astype(float))).max())
        if not worst <= PARITY_MAX_ABS:
            raise GeometryUnavailable(
                f"the float64 evaluator differs from ONNX Runtime by {worst:.3g} in the logits "
                f"(limit {PARITY_MAX_ABS}); the geometry endpoints are off, /predict is unaffected"
            )
        return cls(network, classifier, settings)

    async def explain_array(
        self, body: Body, query: Mapping[str, str], *, npy: bool
    ) -> dict[str, Any] | bytes:
        return await offload.in_thread(self.deadline_s, self._explain_array, body, query, npy)

    async def explain_images(
        self,
        files: Sequence[tuple[str, bytes]],
        fields: Mapping[str, str],
        query: Mapping[str, str],
    ) -> dict[str, Any] | bytes:
        return await offload.in_thread(self.deadline_s, self._explain_images, files, fields, query)

    async def plane_array(
        self, body: Body, query: Mapping[str, str], *, npy: bool
    ) -> tuple[bytes, dict[str, str]]:
        return await offload.in_thread(self.deadline_s, self._plane_array, body, query, npy)

    async def regions_array(
        self, body: Body, query: Mapping[str, str], *, npy: bool
    ) -> dict[str, Any]:
        return await offload.in_thread(self.deadline_s, self._regions_array, body, query, npy)

    def _explain_array(
        self, body: Body, query: Mapping[str, str], npy: bool
    ) -> dict[str, Any] | bytes:
        document: dict[str, Any] = {}
        inputs: Any = None  # the .npy body holds the image
        if not npy:
            document = _document(body, ("inputs",), '{"inputs": [[...], ...]}')
            inputs = document.pop("inputs")
        if "invert" in document or "invert" in query:
            raise InvalidInput("invert applies to image files, not JSON or .npy inputs")
        options = validated(ExplainOptions, document, query)
        batch = self._batch(body, inputs, npy=npy, normalized=options.normalized)
        return self._explain(_one(batch, "/explain takes one image"), options)

    def _batch(
        self, body: Body, inputs: Any, *, npy: bool, normalized: bool
    ) -> np.ndarray[Any, Any]:
        """The .npy ``body``, or JSON ``inputs`` (from ``body``): the model's input."""
        if npy:
            return batch_from_npy(body, self.meta, self.limits, normalized=normalized)
        return batch_from_json(inputs, body, self.meta, self.limits, normalized=normalized)

    def _explain_images(
        self,
        files: Sequence[tuple[str, bytes]],
        fields: Mapping[str, str],
        query: Mapping[str, str],
    ) -> dict[str, Any] | bytes:
        values = {**query, **fields}
        if query and fields:  # a bad query value is refused even where a field overrides it
            validated(ExplainOptions, {}, query)
        options = validated(ExplainOptions, {}, values)
        if "normalized" in values:
            raise InvalidInput("normalized applies to JSON and .npy inputs, not image files")
        if len(files) != 1:
            raise InvalidInput(f"/explain takes one image file, got {len(files)}")
        invert = None if options.invert == "auto" else bool(options.invert)
        batch = images_to_batch(
            files,
            self.meta,
            invert=invert,
            max_images=1,
            max_pixels=self.limits.max_image_pixels,
            max_request_pixels=self.limits.max_request_pixels,
        )
        return self._explain(batch[0], options)

    def _explain(
        self, image: np.ndarray[Any, Any], options: ExplainOptions
    ) -> dict[str, Any] | bytes:
        x = image.astype(np.float64)
        if options.format == "png":
            return saliency_png(self.network, x)
        return {"model": self._model, **explain(self.network, self.meta, x, units=options.units)}

    def _regions_array(self, body: Body, query: Mapping[str, str], npy: bool) -> dict[str, Any]:
        options, (start, end) = self._images(body, query, npy, ("start", "end"), RegionsOptions)
        answer = regions(
            self.network,
            self.meta,
            start,
            end,
            max_breakpoints=self.max_breakpoints,
            timeout_s=self.timeout_s,
            logits=options.logits,
        )
        return {"model": self._model, **answer}

    def _plane_array(
        self, body: Body, query: Mapping[str, str], npy: bool
    ) -> tuple[bytes, dict[str, str]]:
        options, (a, b, c) = self._images(body, query, npy, ("a", "b", "c"), PlaneOptions)
        grid = options.grid
        cells, labels = plane.sample(
            self.network, a, b, c, grid=grid, span=options.span, timeout_s=self.timeout_s
        )
        info = {
            "x-regions-sampled": f"{grid}x{grid} grid over u, v in [0, {options.span:g}]",
            "x-regions-seen": str(cells.max() + 1),
        }
        return plane.render(cells, labels), info

    def _images(
        self,
        body: Body,
        query: Mapping[str, str],
        npy: bool,
        names: tuple[str, ...],
        kind: type[_Pair],
    ) -> tuple[_Pair, list[np.ndarray[Any, np.dtype[np.float64]]]]:
        """Options and the named images (a .npy holds them in order), for a piecewise-linear
        model only: these endpoints walk its regions."""
        if not self.network.piecewise_linear:
            raise InvalidInput(
                f"/regions needs a piecewise-linear model; this one uses "
                f"{', '.join(self.network.smooth_ops)}, whose regions are not polytopes "
                "(POST /explain still gives the Jacobian)"
            )
        if npy:
            options = validated(kind, {}, query)
            images = self._batch(body, None, npy=True, normalized=options.normalized)
            if len(images) != len(names):
                raise InvalidInput(
                    f"a .npy body holds {len(names)} images ({', '.join(names)}), got {len(images)}"
                )
            return options, [image.astype(np.float64) for image in images]
        shape = ", ".join(f'"{name}": [[...]]' for name in names)
        document = _document(body, names, "{" + shape + "}")
        given = [document.pop(name) for name in names]
        options = validated(kind, document, query)
        normalized = options.normalized
        return options, [
            _one(
                self._batch(body, image, npy=False, normalized=normalized), f"{name} is one image"
            ).astype(np.float64)
            for image, name in zip(given, names, strict=True)
        ]


def check_batch(input_shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The load-time check: zeros (the warm-up input) and 8 seeded standard-normal images."""
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((9, *input_shape)).astype(np.float32)
    batch[0] = 0
    return batch


def _document(body: Body, keys: tuple[str, ...], shape: str) -> dict[str, Any]:
    document = json_arrays.parse_json(body)
    if not isinstance(document, dict) or any(k not in document for k in keys):
        raise InvalidInput(f"the JSON body must be an object {shape}")
    return document


def _one(batch: np.ndarray[Any, Any], what: str) -> np.ndarray[Any, Any]:
    if len(batch) != 1:
        raise InvalidInput(f"{what}, got {len(batch)} images")
    image: np.ndarray[Any, Any] = batch[0]
    return image
