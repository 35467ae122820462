"""Many MLPs trained as one: seeds (`run.seeds`) and width sweeps (`gengap-tui sweep`).

A *member* is one ordinary `models.MLP` (built with its own seed, so its initial weights are the
ones a solo run would start from). `GroupedMLP` copies the members' weights into stacked tensors
and runs them with batched matrix multiplies (`torch.baddbmm`), one call per layer per *bucket*:

- members of equal width (seeds) share one bucket, no padding at all;
- members of different widths (a sweep) are sorted into buckets of similar width; inside a bucket
  narrower members are zero-padded to the bucket's widest and masked, so padded units are exactly
  zero in the forward pass and get exactly zero gradient (they never move). Buckets are cut so the
  padded arithmetic stays within `max_waste` of the real arithmetic (padding a whole 2..300 sweep
  to the widest width would do ~6x the work).

Every member sees its own batches (`x` is `[G, B, D]`), its own labels and its own data order; the
training loss is the *sum* of the members' mean losses, so each member's gradient is exactly its
own, and element-wise optimizers (SGD with momentum, Adam, AdamW) update each slice as they would
update that member alone. `members()` unstacks the weights back into ordinary `MLP`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import MLP

_ACT = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "silu": F.silu,
    "leaky_relu": F.leaky_relu,
    "sigmoid": torch.sigmoid,
}


def mlp_cost(in_dim: int, width: int, depth: int, num_classes: int) -> int:
    """Multiply-adds per example of an MLP (the arithmetic the bucketing weighs)."""
    if depth == 0:
        return in_dim * num_classes
    return in_dim * width + (depth - 1) * width * width + width * num_classes


def plan_buckets(widths: list[int], in_dim: int, depth: int, num_classes: int,
                 max_waste: float = 0.25, cost: Callable[[int], int] | None = None) -> list[tuple[int, int]]:
    """Cut the members (in the given order) into contiguous buckets `(start, stop)` such that
    padding each bucket to its widest member costs at most `max_waste` more arithmetic than the
    members' own. Sort members by width first to get few buckets. `cost(width)` is a member's
    arithmetic (default: the MLP's, `mlp_cost`)."""
    if cost is None:
        cost = lambda w: mlp_cost(in_dim, w, depth, num_classes)  # noqa: E731
    buckets: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(widths) + 1):
        if i == len(widths):
            buckets.append((start, i))
            break
        cand = widths[start : i + 1]
        wmax = max(cand)
        real = sum(cost(w) for w in cand)
        padded = len(cand) * cost(wmax)
        if padded > (1 + max_waste) * real:
            buckets.append((start, i))
            start = i
    return buckets


@dataclass
class _Bucket:
    start: int
    stop: int
    width: int  # padded width of the bucket
    padded: bool


class GroupedMLP(nn.Module):
    """`G` MLPs (same depth, activation, input and output size; any widths) as stacked weights.

    forward(x): x is `[G, B, D]` (one batch per member) or `[B, D]` (the same inputs for all);
    returns logits `[G, B, C]`."""

    def __init__(self, members: list[MLP], activation: str = "relu", dropout: float = 0.0,
                 max_waste: float = 0.25):
        super().__init__()
        if not members:
            raise ValueError("GroupedMLP needs at least one member")
        self.activation = activation
        self.dropout = dropout
        linears = [[m for m in mem.net if isinstance(m, nn.Linear)] for mem in members]
        depths = {len(ls) - 1 for ls in linears}
        if len(depths) != 1:
            raise ValueError("GroupedMLP members must have the same depth")
        self.depth = depths.pop()
        self.G = len(members)
        self.in_dim = linears[0][0].in_features
        self.num_classes = linears[0][-1].out_features
        self.widths = [ls[0].out_features if self.depth else 0 for ls in linears]
        plan = plan_buckets(self.widths, self.in_dim, self.depth, self.num_classes, max_waste)
        self.buckets: list[_Bucket] = []
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        masks = []
        for bi, (a, b) in enumerate(plan):
            wmax = max(self.widths[a:b])
            padded = any(w != wmax for w in self.widths[a:b])
            self.buckets.append(_Bucket(a, b, wmax, padded))
            dims = [self.in_dim] + [wmax] * self.depth + [self.num_classes]
            for layer in range(self.depth + 1):
                W = torch.zeros(b - a, dims[layer], dims[layer + 1])
                bias = torch.zeros(b - a, 1, dims[layer + 1])
                for g in range(a, b):
                    lin = linears[g][layer]
                    W[g - a, : lin.in_features, : lin.out_features] = lin.weight.detach().t()
                    bias[g - a, 0, : lin.out_features] = lin.bias.detach()
                self.weights.append(nn.Parameter(W))
                self.biases.append(nn.Parameter(bias))
            mask = torch.zeros(b - a, 1, wmax)
            for g in range(a, b):
                mask[g - a, 0, : self.widths[g]] = 1.0
            masks.append(mask)
        for bi, m in enumerate(masks):
            self.register_buffer(f"mask{bi}", m)

    # -------------------------------------------------------------------------------------
    def _bucket_forward(self, bi: int, x: torch.Tensor) -> torch.Tensor:
        """One bucket's members: `x` is `[g, B, D]`, or `[B, D]` shared by every member (evaluation
        on a whole split), where the first layer is one matrix multiply for the whole bucket."""
        bk = self.buckets[bi]
        L = self.depth + 1
        g = bk.stop - bk.start
        mask = getattr(self, f"mask{bi}") if bk.padded else None
        h = x
        for layer in range(L):
            W, b = self.weights[bi * L + layer], self.biases[bi * L + layer]
            if h.dim() == 2:  # shared inputs: [B, D] @ [D, g*out] instead of g copies of the inputs
                out = W.shape[2]
                h = torch.addmm(b.permute(1, 0, 2).reshape(1, g * out), h, W.permute(1, 0, 2).reshape(-1, g * out))
                h = h.view(-1, g, out).transpose(0, 1)
            else:
                h = torch.baddbmm(b, h, W)
            if layer < L - 1:
                # in place: baddbmm's backward needs its inputs, not its output
                h = torch.relu_(h) if self.activation == "relu" else _ACT[self.activation](h)
                if mask is not None:
                    h = h * mask
                if self.dropout > 0 and self.training:
                    h = F.dropout(h, self.dropout, True)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = x.dim() == 2
        x = x.flatten(1) if shared else x.flatten(2)
        if len(self.buckets) == 1:
            return self._bucket_forward(0, x)
        return torch.cat([self._bucket_forward(i, x if shared else x[bk.start : bk.stop])
                          for i, bk in enumerate(self.buckets)])

    # -------------------------------------------------------------------------------------
    def decay_parameters(self) -> list[nn.Parameter]:
        """The weight matrices (L2 / L1 act on these, not on biases)."""
        return list(self.weights)

    def bias_parameters(self) -> list[nn.Parameter]:
        return list(self.biases)

    def member_params(self) -> list[int]:
        """Parameter count of each member (its own, unpadded)."""
        out = []
        for w in self.widths:
            dims = [self.in_dim] + [w] * self.depth + [self.num_classes]
            out.append(sum(dims[i] * dims[i + 1] + dims[i + 1] for i in range(self.depth + 1)))
        return out

    def padded_fraction(self) -> float:
        """Arithmetic actually done / arithmetic the members need (1.0 = no padding)."""
        real = sum(mlp_cost(self.in_dim, w, self.depth, self.num_classes) for w in self.widths)
        done = sum((bk.stop - bk.start) * mlp_cost(self.in_dim, bk.width, self.depth, self.num_classes)
                   for bk in self.buckets)
        return done / max(real, 1)

    @torch.no_grad()
    def member(self, g: int) -> MLP:
        """Member `g` as an ordinary `MLP` (a copy of its current weights)."""
        bi = next(i for i, bk in enumerate(self.buckets) if bk.start <= g < bk.stop)
        bk, L = self.buckets[bi], self.depth + 1
        w = self.widths[g]
        m = MLP(self.in_dim, self.num_classes, self.depth, max(w, 1), self.activation, self.dropout)
        lins = [mod for mod in m.net if isinstance(mod, nn.Linear)]
        for layer, lin in enumerate(lins):
            W, b = self.weights[bi * L + layer], self.biases[bi * L + layer]
            lin.weight.copy_(W[g - bk.start, : lin.in_features, : lin.out_features].t())
            lin.bias.copy_(b[g - bk.start, 0, : lin.out_features])
        return m.to(self.weights[0].device)
