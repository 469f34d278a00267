"""Limits: the budgets a /predict request is held to, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.config import Settings
from service.metadata import ModelMetadata


@dataclass(frozen=True)
class Limits:
    """The budgets a /predict request is held to, from the settings."""

    max_images: int
    max_elements: int
    max_image_pixels: int
    max_request_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings, meta: ModelMetadata) -> Limits:
        # Generous enough that a wrong shape or too many images get prepare's clearer message.
        per_image = int(np.prod(meta.input_shape))
        elements = max(settings.max_elements, settings.max_images * per_image)
        return cls(
            settings.max_images,
            elements,
            settings.max_image_pixels,
            settings.max_request_pixels,
        )
