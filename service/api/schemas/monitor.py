"""Schema of GET /monitor/relu: per activation layer, what fired on the sampled /predict images."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE: dict[str, Any] = {
    "images": 270,
    "dropped": 0,
    "workers": 1,
    "worker_images": [270],
    "sample_every": 1,
    "window_images": 0,
    "window": "every sampled image since start or the last reset",
    "histogram_bounds": [round(0.05 * (b + 1), 2) for b in range(20)],
    "layers": [
        {
            "name": "act_fc",
            "units": 128,
            "images": 270,
            "mean_active_fraction": 0.2766,
            "active_fraction_histogram": [0, 0, 0, 0, 42, 152, 70, 6, *[0] * 12],
            "dead_units": 34,
            "dead_fraction": 0.265625,
            "dead": [0, 3, 9, "..."],
            "fires": [0, 112, 57, "..."],
        }
    ],
}


class LayerActivity(BaseModel):
    name: str = Field(description="the activation layer, as the model's metadata names it")
    units: int = Field(description="units of the layer per image (channels x height x width)")
    images: int = Field(description="images counted in the window")
    mean_active_fraction: float = Field(
        description="mean over the images of the fraction of units active (output > 0)"
    )
    active_fraction_histogram: list[int] = Field(
        description="images per active-fraction bin; bin b holds (b/20, (b+1)/20], bin 0 also 0"
    )
    dead_units: int = Field(description="units that never fired on an image of the window")
    dead_fraction: float = Field(
        description="dead_units / units: the export report's dead_fraction on the same images"
    )
    dead: list[int] = Field(description="indices of the dead units (C-order over C x H x W)")
    fires: list[int] = Field(description="per unit, the images it fired on")


class ReluActivity(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": EXAMPLE})

    images: int = Field(description="sampled images counted, every worker summed")
    dropped: int = Field(description="sampled images skipped because the counter was behind")
    workers: int = Field(description="worker processes whose counts are summed (dead ones too)")
    worker_images: list[int] = Field(description="images counted by each of those workers")
    sample_every: int = Field(description="1 in this many /predict images is counted")
    window_images: int = Field(description="images per worker the window keeps; 0: all")
    window: str = Field(description="the window in words")
    histogram_bounds: list[float] = Field(description="upper bound of each histogram bin")
    layers: list[LayerActivity]
