"""A small 1-D CNN for sequence inputs (the MNIST-1D paper's ConvBase: stride-2 convolutions, then
one linear layer)."""

from __future__ import annotations

import torch
from torch import nn

from .mlp import ACTIVATIONS


class CNN1D(nn.Module):
    def __init__(self, length: int, num_classes: int, channels: int = 32, conv_layers: int = 3,
                 kernel_size: int = 5, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c, n = 1, length
        pad = kernel_size // 2 - 1 if kernel_size > 2 else 0
        for _ in range(conv_layers):
            out = (n + 2 * pad - kernel_size) // 2 + 1
            if out < 1:
                break  # the sequence is used up: stop adding layers
            layers += [nn.Conv1d(c, channels, kernel_size, stride=2, padding=pad), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c, n = channels, out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * n, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.flatten(1).unsqueeze(1))
        return self.head(h.flatten(1))
