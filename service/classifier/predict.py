"""The /predict feature without a transport: options -> decode -> prepare -> logits -> predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from service import offload
from service.classifier.inference import Inference
from service.classifier.limits import Limits
from service.classifier.monitor.feature import Monitoring
from service.classifier.preprocess import batch_from_json, batch_from_npy, images_to_batch
from service.classifier.probabilities import softmax, top_k
from service.codecs import Body, json_arrays
from service.config import Settings
from service.errors import InvalidInput, OodUnavailable, excerpt


class PredictOptions(BaseModel):
    """Options shared by every body type: JSON keys, form fields or query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(3, description="how many classes to list per image, 1..number of labels")
    return_probabilities: bool = Field(False, description="add every class probability")
    return_logits: bool = Field(False, description="add the raw logits")
    return_input: bool = Field(
        False,
        description="add the image as the model saw it, in the raw value range (uploads: "
        "after cropping, centring and block averaging), H x W for one channel",
    )
    normalized: bool = Field(
        False, description="inputs are already normalised (JSON and .npy only)"
    )
    return_ood: bool = Field(
        False,
        description="add out-of-distribution scores per image: hamming (units of the layer the "
        "model's metadata names, act2 by default, whose on/off state differs from the nearest "
        "stored training pattern's) and energy (-logsumexp of the logits)",
    )
    invert: Literal["auto"] | bool = Field(
        "auto",
        description="image files only: auto inverts dark ink on light paper (judged by the "
        "border) to match the light-on-dark training data; true or false forces it",
    )

    @field_validator("top_k", mode="before")
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> Any:
        # Text is parsed leniently by pydantic ("3.0" -> 3); an integer option takes digits.
        if not isinstance(value, str) or not (info.context or {}).get("text"):
            return value
        if not value.strip().lstrip("+-").isdigit():
            raise ValueError("Input should be a whole number such as 3")
        return int(value)


_TEXT = {"text": True}
_Options = TypeVar("_Options", bound=BaseModel)
#: Every option's name, in the order they are documented.
OPTIONS = tuple(PredictOptions.model_fields)
DEFAULT_OPTIONS = PredictOptions()


def parse_options(
    values: Mapping[str, Any],
    *,
    images: bool,
    num_classes: int,
    text: Mapping[str, str] | None = None,
) -> PredictOptions:
    """Validate options from any source; InvalidInput names the option and the rule.

    ``text`` holds options written as text (query parameters, form fields: "3", "true"),
    ``values`` typed ones (JSON keys, which take precedence): there an integer is an integer,
    never true or 3.0.
    """
    if not values and not text:
        return DEFAULT_OPTIONS
    options = validated(PredictOptions, values, text, keys=("inputs",))
    given = {*values, *(text or ())}
    if images and "normalized" in given:
        raise InvalidInput("normalized applies to JSON and .npy inputs, not image files")
    if not images and "invert" in given:
        raise InvalidInput("invert applies to image files, not JSON or .npy inputs")
    if not 1 <= options.top_k <= num_classes:
        raise InvalidInput(
            f"top_k must be between 1 and {num_classes} (the labels), got {options.top_k}"
        )
    return options


def validated(
    kind: type[_Options],
    values: Mapping[str, Any],
    text: Mapping[str, str] | None = None,
    *,
    keys: tuple[str, ...] = (),
) -> _Options:
    """Options of ``kind`` from JSON keys (``values``, typed: an integer is an integer, never
    true or 3.0) and from text (``text``: query parameters, form fields), each checked, the
    JSON keys winning; InvalidInput names the option and the rule (``keys``: the body's other
    keys, listed with the options when one is unknown). Every feature's options go through it."""
    try:
        typed = dict(values)
        if text:
            parsed = kind.model_validate_strings(dict(text), strict=True, context=_TEXT)
            typed = {**parsed.model_dump(exclude_unset=True), **typed}
        return kind.model_validate(typed, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"][:1])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join([*keys, *kind.model_fields])
        raise InvalidInput(f"unknown option {excerpt(name)}; allowed: {allowed}")
    message = error["msg"].removeprefix("Value error, ")
    raise InvalidInput(f"{name}: {message} (got {excerpt(error.get('input'))})")


class Predictor:
    """The whole of /predict for the served model; every transport calls these methods.

    ``query`` holds options given beside the body (query parameters); body keys and form
    fields take precedence over them.
    """

    def __init__(
        self, inference: Inference, settings: Settings, monitoring: Monitoring | None = None
    ) -> None:
        self.inference = inference
        self.monitoring = monitoring
        # The ReLU monitor's sampler, called with every batch served (None: the monitor is off).
        self._observe = monitoring.relu.observe if monitoring and monitoring.relu else None
        self.meta = inference.classifier.metadata
        self.limits = Limits.from_settings(settings, self.meta)
        self.deadline_s = settings.request_timeout_ms / 1000
        self._model = {"name": self.meta.name, "version": self.meta.version}

    async def from_array(
        self, body: Body, query: Mapping[str, str], *, npy: bool = False
    ) -> dict[str, Any]:
        """A JSON object {"inputs": [...], option: value, ...}, or with ``npy`` the bytes of
        numpy.save(f, images) with options from ``query`` only."""
        decode = self._decode_npy if npy else self._decode_json
        # offload.by_size's rule, spelled here: on this path even its coroutine shows.
        if len(body) <= offload.INLINE_BODY_BYTES:
            batch, options = decode(body, query)
        else:
            batch, options = await offload.in_thread(self.deadline_s, decode, body, query)
        logits = self.inference.run_now(batch)  # inline when it may: no coroutine on the way
        if logits is None:
            logits = await self.inference.logits(batch)
        return await self._finish(batch, logits, options)

    async def from_images(
        self,
        files: Sequence[tuple[str, bytes]],
        fields: Mapping[str, str],
        query: Mapping[str, str],
    ) -> dict[str, Any]:
        """Image files (name, bytes) with options as form ``fields`` or ``query``."""
        classes = self.meta.num_classes
        if query and fields:  # a bad query value is refused even where a field overrides it
            parse_options({}, text=query, images=True, num_classes=classes)
        options = parse_options({}, text={**query, **fields}, images=True, num_classes=classes)
        invert = None if options.invert == "auto" else bool(options.invert)
        batch = await self.images(files, invert)
        return await self._finish(batch, await self.inference.logits(batch), options)

    async def images(
        self, files: Sequence[tuple[str, bytes]], invert: bool | None
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Image files (name, bytes) -> the model's input, as every upload path prepares them;
        always in a thread: a tiny file may declare millions of pixels."""
        limits = self.limits
        return await offload.in_thread(
            self.deadline_s,
            images_to_batch,
            files,
            self.meta,
            invert=invert,
            max_images=limits.max_images,
            max_pixels=limits.max_image_pixels,
            max_request_pixels=limits.max_request_pixels,
        )

    def observe(self, batch: np.ndarray[Any, Any]) -> None:
        """Hand a served batch to the ReLU monitor's sampler (when it is on); every transport
        calls it once per batch it ran."""
        if self._observe is not None:
            self._observe(batch)

    async def _finish(
        self, batch: np.ndarray[Any, Any], logits: np.ndarray[Any, Any], options: PredictOptions
    ) -> dict[str, Any]:
        self.observe(batch)
        if options.return_ood:
            return await self._with_ood(batch, logits, options)
        return self.answer(logits, options, batch)

    async def ood_scores(
        self, batch: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]
    ) -> list[dict[str, Any]]:
        """{"hamming": int, "energy": float} per image of a served batch and its logits;
        OodUnavailable says why not (every transport's OOD output comes from here)."""
        if self.monitoring is None:
            raise OodUnavailable("the OOD score is not loaded for this model")
        return await self.monitoring.ood_scores(batch, logits, self.deadline_s)

    async def _with_ood(
        self, batch: np.ndarray[Any, Any], logits: np.ndarray[Any, Any], options: PredictOptions
    ) -> dict[str, Any]:
        scores = await self.ood_scores(batch, logits)
        answer = self.answer(logits, options, batch)
        for prediction, score in zip(answer["predictions"], scores, strict=True):
            prediction["ood"] = score
        return answer

    def _decode_json(
        self, body: Body, query: Mapping[str, str]
    ) -> tuple[np.ndarray[Any, Any], PredictOptions]:
        json_arrays.check_values(body, self.limits.max_elements)
        document = json_arrays.parse_json(body)
        if not isinstance(document, dict) or "inputs" not in document:
            raise InvalidInput('the JSON body must be an object with "inputs": [[...], ...]')
        inputs = document.pop("inputs")
        options = parse_options(
            document, text=query, images=False, num_classes=self.meta.num_classes
        )
        batch = batch_from_json(inputs, body, self.meta, self.limits, normalized=options.normalized)
        return batch, options

    def _decode_npy(
        self, body: Body, query: Mapping[str, str]
    ) -> tuple[np.ndarray[Any, Any], PredictOptions]:
        options = parse_options({}, text=query, images=False, num_classes=self.meta.num_classes)
        return batch_from_npy(body, self.meta, self.limits, normalized=options.normalized), options

    def answer(
        self, logits: np.ndarray[Any, Any], options: PredictOptions, batch: np.ndarray[Any, Any]
    ) -> dict[str, Any]:
        """Label, index, confidence and top-k per image (plus probabilities, logits and the
        input ``batch`` in the raw range if asked)."""
        labels = self.meta.labels
        # The sum first (one ufunc call); only a non-finite sum needs the elementwise look.
        if not np.isfinite(np.add.reduce(logits, axis=None)) and not np.isfinite(logits).all():
            image = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
            raise InvalidInput(
                f"the model's logits for image {image} are not finite: its values are too large "
                "for the model; send values in the raw range GET /model reports (or normalised "
                "ones with normalized=true)"
            )
        probabilities = softmax(logits)
        order = top_k(probabilities, options.top_k).tolist()
        rows = probabilities.tolist()
        # One comprehension over plain lists: this runs per image, 64 times for 64 images.
        predictions: list[dict[str, Any]] = [
            {
                "label": labels[indices[0]],
                "index": indices[0],
                "confidence": row[indices[0]],
                "top_k": [{"label": labels[i], "index": i, "probability": row[i]} for i in indices],
            }
            for indices, row in zip(order, rows, strict=True)
        ]
        if options.return_probabilities:
            for prediction, row in zip(predictions, rows, strict=True):
                prediction["probabilities"] = row
        if options.return_logits:
            # float32 rows: orjson writes each value's shortest float32 form.
            for prediction, logit_row in zip(predictions, logits, strict=True):
                prediction["logits"] = logit_row
        if options.return_input:
            # 5 decimals: the float32 input carries ~1e-6 of the raw range's rounding noise.
            seen = self.meta.raw(batch).round(5) + 0.0  # + 0.0: no -0.0 from the rounding
            for prediction, image in zip(predictions, seen, strict=True):
                prediction["input"] = image[0] if len(image) == 1 else image
        return {"model": self._model, "predictions": predictions}
