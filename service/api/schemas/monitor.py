"""Schema of GET /monitor/relu: per activation layer, what fired on the sampled /predict images."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Per unit of act_fc: the test images (of 270) it fired on; 0 = dead.
_FIRES = (
    "156 0 0 106 132 179 137 0 68 155 0 107 0 94 202 187 155 198 104 1 184 0 129 91 0 187 91 0 "
    "0 130 14 165 0 168 0 138 0 0 0 122 180 157 0 122 170 0 115 77 161 105 141 158 145 99 66 "
    "106 139 134 35 171 109 163 140 116 114 187 169 154 0 105 0 167 157 166 177 152 0 0 0 215 0 "
    "0 68 0 130 141 0 173 112 101 189 178 95 0 112 0 0 212 170 114 99 0 36 150 0 0 54 163 188 "
    "85 217 101 171 0 153 164 0 118 0 73 97 161 167 98 0 109 64 150"
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
            "mean_active_fraction": 0.35836226851851855,
            "active_fraction_histogram": [0, 0, 0, 0, 0, 10, 113, 115, 32, *[0] * 11],
            "dead_units": 35,
            "dead_fraction": 0.2734375,
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
