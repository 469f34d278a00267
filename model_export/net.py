"""The ReLU CNN: conv -> activation (-> pool) blocks, then linear -> activation -> linear."""

from __future__ import annotations

import torch
from torch import nn

#: Activations accepted by --activation: relu by default, the others for experiments.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


class ReluCNN(nn.Module):
    """A small CNN sized from its input shape.

    Each block is conv3x3 -> activation, followed by 2x2 max-pooling while the feature map is at
    least 4 pixels wide (8x8 digits: 8 -> 4 -> 2; 28x28 MNIST: 28 -> 14 -> 7 -> 3). Activation
    modules are attributes named ``act1``, ``act2``, ..., ``act_fc``, so the exported graph names
    their nodes ``/act1/Relu`` etc. and the dead-unit monitor can find them.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        activation: str = "relu",
        width: int = 32,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        self.input_shape = input_shape
        channels, height, width_px = input_shape
        make_act = ACTIVATIONS[activation]
        self.block_names: list[str] = []
        size = min(height, width_px)
        in_ch = channels
        for i, out_ch in enumerate((width, 2 * width, 4 * width), start=1):
            self.add_module(f"conv{i}", nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1))
            self.add_module(f"act{i}", make_act())
            pool = size >= 4
            self.add_module(f"pool{i}", nn.MaxPool2d(2) if pool else nn.Identity())
            if pool:
                height, width_px, size = height // 2, width_px // 2, size // 2
            self.block_names.append(str(i))
            in_ch = out_ch
        self.flat_features = in_ch * height * width_px
        self.fc1 = nn.Linear(self.flat_features, hidden)
        self.act_fc = make_act()
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(hidden, num_classes)

    @property
    def activation_layers(self) -> list[str]:
        """Names of the activation modules, input to output."""
        return [f"act{i}" for i in self.block_names] + ["act_fc"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in self.block_names:
            x = getattr(self, f"conv{i}")(x)
            x = getattr(self, f"act{i}")(x)
            x = getattr(self, f"pool{i}")(x)
        x = torch.flatten(x, 1)
        x = self.dropout(self.act_fc(self.fc1(x)))
        return self.fc2(x)  # type: ignore[no-any-return]
