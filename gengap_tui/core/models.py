"""Models: an MLP (depth, width, activation, dropout) and a small 1-D CNN for sequence inputs
(the MNIST-1D paper's ConvBase: stride-2 convolutions, then one linear layer)."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Module):
    def __init__(self, in_dim: int, num_classes: int, depth: int = 2, width: int = 256,
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = width
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


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


def build_model(cfg, in_dim: int, num_classes: int) -> nn.Module:
    m, reg = cfg.model, cfg.regularization
    if m.kind == "mlp":
        return MLP(in_dim, num_classes, m.depth, m.width, m.activation, reg.dropout)
    return CNN1D(in_dim, num_classes, m.channels, m.conv_layers, m.kernel_size, m.activation, reg.dropout)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
