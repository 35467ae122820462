"""`run.seeds` copies of the 1-D CNN as one model with grouped convolutions."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .grouped import _ACT


class StackedCNN1D(nn.Module):
    """`G` copies of `models.CNN1D` (same shape, each its own weights) as one model: every
    convolution is a grouped convolution (`groups = G`, member g owns channels g·C … g·C + C − 1)
    and the linear head is a batched matrix multiply.

    forward(x): x is `[G, B, L]` (one batch per member) or `[B, L]` (the same inputs for all);
    returns logits `[G, B, classes]`."""

    def __init__(self, members: list, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if not members:
            raise ValueError("StackedCNN1D needs at least one member")
        self.G = len(members)
        self.activation = activation
        self.dropout = dropout
        convs = [[m for m in mem.features if isinstance(m, nn.Conv1d)] for mem in members]
        self.convs = nn.ModuleList()
        for layer, ref in enumerate(convs[0]):
            conv = nn.Conv1d(ref.in_channels * self.G, ref.out_channels * self.G, ref.kernel_size[0],
                             stride=ref.stride[0], padding=ref.padding[0], groups=self.G)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([c[layer].weight for c in convs]))
                conv.bias.copy_(torch.cat([c[layer].bias for c in convs]))
            self.convs.append(conv)
        heads = [mem.head for mem in members]
        self.head_weight = nn.Parameter(torch.stack([h.weight.detach().t() for h in heads]).clone())
        self.head_bias = nn.Parameter(torch.stack([h.bias.detach() for h in heads]).unsqueeze(1).clone())
        self._template = members[0]
        self.widths = [0] * self.G

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G = self.G
        if x.dim() == 2:  # shared inputs
            h = x.unsqueeze(1).expand(-1, G, -1).contiguous()  # [B, G, L]
        else:
            h = x.flatten(2).transpose(0, 1)  # [B, G, L]
        act = _ACT[self.activation]
        for conv in self.convs:
            h = act(conv(h))
            if self.dropout > 0 and self.training:
                h = F.dropout(h, self.dropout, True)
        B = h.shape[0]
        h = h.view(B, G, -1).transpose(0, 1)  # [G, B, C*L'] in each member's flatten order
        return torch.baddbmm(self.head_bias, h, self.head_weight)

    def decay_parameters(self) -> list[nn.Parameter]:
        return [c.weight for c in self.convs] + [self.head_weight]

    def bias_parameters(self) -> list[nn.Parameter]:
        return [c.bias for c in self.convs] + [self.head_bias]

    def member_params(self) -> list[int]:
        n = sum(p.numel() for p in self._template.parameters())
        return [n] * self.G

    def padded_fraction(self) -> float:
        return 1.0

    @torch.no_grad()
    def member(self, g: int):
        """Member `g` as an ordinary `CNN1D` (a copy of its current weights)."""
        m = copy.deepcopy(self._template)
        convs = [mod for mod in m.features if isinstance(mod, nn.Conv1d)]
        for conv, big in zip(convs, self.convs):
            c = conv.out_channels
            conv.weight.copy_(big.weight[g * c : (g + 1) * c])
            conv.bias.copy_(big.bias[g * c : (g + 1) * c])
        m.head.weight.copy_(self.head_weight[g].t())
        m.head.bias.copy_(self.head_bias[g, 0])
        return m.to(self.head_weight.device)
