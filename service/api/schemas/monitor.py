"""Schema of GET /monitor/relu: per activation layer, what fired on the sampled /predict images."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Per unit of act_fc: the test images (of 270) it fired on; 0 = dead.
_FIRES = (
    "176 0 131 138 140 180 0 141 116 165 0 61 0 0 194 88 133 168 135 0 167 0 146 116 0 177 0 40 "
    "0 172 144 177 0 168 0 211 40 182 0 36 169 178 0 124 159 121 121 148 163 100 140 1 137 113 "
    "69 160 124 125 0 147 108 150 0 116 119 160 156 176 103 90 0 135 103 175 171 149 47 0 0 179 "
    "0 0 0 0 171 151 0 187 114 102 196 167 100 0 122 0 147 185 173 122 118 0 170 166 0 132 45 0 "
    "186 102 224 79 173 3 99 125 0 113 0 0 79 0 0 97 37 159 64 160"
)
_FC_FIRES = [int(count) for count in _FIRES.split()]
#: A real answer of the default model (`make model`) after the export's test split went through
#: /predict with RELU_SERVE_MONITOR_SAMPLE_EVERY=1; of the four layers, act_fc is shown.
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
            "mean_active_fraction": 0.3601273148148148,
            "active_fraction_histogram": [0, 0, 0, 0, 0, 4, 104, 129, 31, 2, *[0] * 10],
            "dead_units": 34,
            "dead_fraction": 0.265625,
            "dead": [i for i, count in enumerate(_FC_FIRES) if count == 0],
            "fires": _FC_FIRES,
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
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    images: int = Field(description="sampled images counted, every worker summed")
    dropped: int = Field(description="sampled images skipped because the counter was behind")
    workers: int = Field(description="worker processes whose counts are summed (dead ones too)")
    worker_images: list[int] = Field(description="images counted by each of those workers")
    sample_every: int = Field(description="1 in this many /predict images is counted")
    window_images: int = Field(description="images per worker the window keeps; 0: all")
    window: str = Field(description="the window in words")
    histogram_bounds: list[float] = Field(description="upper bound of each histogram bin")
    layers: list[LayerActivity]
