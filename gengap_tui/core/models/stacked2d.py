"""Many 2-D image networks (`cnn2d.CNN2D`, `resnet.PreActResNet18`) trained as one: `run.seeds`
seeds and the members of a width sweep.

`Grouped2D` is one *bucket*: a copy of the bucket's widest member in which every convolution is a
grouped convolution (`groups = G`: member g owns channels g·C … g·C + C − 1 of every layer) and
every BatchNorm has G·C channels, which is exactly one BatchNorm per member (its statistics are per
channel). Pooling, ReLU and the residual additions act channel by channel, so the trunk's code is
the solo model's own. The linear head is a batched matrix multiply.

Narrower members of a bucket are zero-padded to its widest: their padded channels have zero
weights, bias, BatchNorm scale and shift, so they are exactly zero in every layer (ReLU(0) = 0, a
BatchNorm of a constant zero channel outputs its zero shift), and every gradient that reaches them
is exactly zero (each path out of a padded channel goes through a zero weight, and ReLU's gradient
at 0 is 0): they never move, under every optimizer, weight decay and L1 (tests/test_images.py
checks it after training). `Stacked2D` cuts members of different widths into buckets of similar
cost (`grouped.plan_buckets`) and concatenates their outputs.

forward(x): x is `[G, B, C, H, W]` (one batch per member) or `[B, C, H, W]` (the same images for
all: evaluation on a whole split, where the first convolution is one ordinary convolution with
every member's filters); returns logits `[G, B, classes]`."""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .grouped import plan_buckets



def conv_format(device: torch.device | str) -> torch.memory_format:
    """The memory format image tensors and convolution kernels take on `device`: channels_last on
    CUDA (what cuDNN's tensor-core convolutions run on), the default NCHW on a CPU (torch 2.13's
    oneDNN backward of the pre-activation ResNet in channels_last corrupts memory there:
    `free(): invalid pointer`, reproduced with a width-2 net on 8x8 images)."""
    return torch.channels_last if torch.device(device).type == "cuda" else torch.contiguous_format


def _grouped_conv(ref: nn.Conv2d, G: int, in_per: int, members: list[nn.Conv2d], widths_in: list[int]) -> nn.Conv2d:
    """A grouped convolution holding `members`' filters, zero-padded to `ref`'s shape."""
    out_per = ref.out_channels
    conv = nn.Conv2d(in_per * G, out_per * G, ref.kernel_size, stride=ref.stride, padding=ref.padding,
                     bias=ref.bias is not None, groups=G)
    with torch.no_grad():
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
        for g, (m, ci) in enumerate(zip(members, widths_in)):
            o = m.out_channels
            conv.weight[g * out_per : g * out_per + o, :ci] = m.weight
            if conv.bias is not None:
                conv.bias[g * out_per : g * out_per + o] = m.bias
    return conv


def _grouped_bn(ref: nn.BatchNorm2d, G: int, members: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    c = ref.num_features
    bn = nn.BatchNorm2d(c * G, eps=ref.eps, momentum=ref.momentum)
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        for g, m in enumerate(members):
            o = m.num_features
            bn.weight[g * c : g * c + o] = m.weight
            bn.bias[g * c : g * c + o] = m.bias
            bn.running_mean[g * c : g * c + o] = m.running_mean
            bn.running_var[g * c : g * c + o] = m.running_var
        bn.num_batches_tracked.copy_(members[0].num_batches_tracked)
    return bn


class Grouped2D(nn.Module):
    """One bucket of 2-D members (same class and input shape; widths up to the widest's)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        G = self.G = len(members)
        widest = max(range(G), key=lambda g: members[g].head.in_features)
        body = copy.deepcopy(members[widest])
        self.shape = body.shape
        self.dropout = body.dropout
        mods = [dict(m.named_modules()) for m in members]
        for name, ref in list(body.named_modules()):
            if isinstance(ref, nn.Conv2d):
                ins = [mods[g][name].in_channels for g in range(G)]
                new = _grouped_conv(ref, G, ref.in_channels, [mods[g][name] for g in range(G)], ins)
            elif isinstance(ref, nn.BatchNorm2d):
                new = _grouped_bn(ref, G, [mods[g][name] for g in range(G)])
            else:
                continue
            parent, _, leaf = name.rpartition(".")
            setattr(body.get_submodule(parent) if parent else body, leaf, new)
        self.stem, self.trunk = body.stem, body.trunk
        F_max, C = body.head.in_features, body.head.out_features
        hw = torch.zeros(G, F_max, C)
        for g, m in enumerate(members):
            hw[g, : m.head.in_features] = m.head.weight.detach().t()
        self.head_weight = nn.Parameter(hw)
        self.head_bias = nn.Parameter(torch.stack([m.head.bias.detach() for m in members]).unsqueeze(1).clone())
        self.widths = [m.head.in_features for m in members]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G = self.G
        if x.dim() in (2, 4):  # the same images for every member: every member's first filters at once
            x = x.view(-1, *self.shape) if x.dim() == 2 else x
            s = self.stem
            h = F.conv2d(x, s.weight, s.bias, s.stride, s.padding)
        else:  # [G, B, ...]: member g's images on its own channels
            B = x.shape[1]
            x = x.reshape(G, B, *self.shape).transpose(0, 1).reshape(B, G * self.shape[0], *self.shape[1:])
            h = self.stem(x.contiguous(memory_format=conv_format(x.device)))
        h = self.trunk(h).flatten(1)  # [B, G * F]
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = h.view(h.shape[0], G, -1).transpose(0, 1)  # [G, B, F]
        return torch.baddbmm(self.head_bias, h, self.head_weight)

    def conv_weights(self) -> list[torch.Tensor]:
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv2d)]


class Stacked2D(nn.Module):
    """Members of any widths, in buckets of similar cost (one bucket for seeds of one width)."""

    def __init__(self, members: list[nn.Module], rebuild: Callable[[int], nn.Module],
                 cost: Callable[[int], int], max_waste: float = 0.25):
        super().__init__()
        self.G = len(members)
        self.widths = [m.stem.out_channels for m in members]
        self._rebuild = rebuild  # width -> a fresh solo model of that width (for `member`)
        self._n_params = [sum(p.numel() for p in m.parameters()) for m in members]
        self._cost = cost
        plan = plan_buckets(self.widths, 0, 0, 0, max_waste, cost=cost)
        self.spans = plan
        self.groups = nn.ModuleList(Grouped2D(members[a:b]) for a, b in plan)

    @property
    def buckets(self) -> list[tuple[int, int]]:
        """The buckets' members, `(start, stop)` (as `GroupedMLP.buckets`, for counting them)."""
        return self.spans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = x.dim() in (2, 4)
        if len(self.groups) == 1:
            return self.groups[0](x)
        return torch.cat([grp(x if shared else x[a:b]) for grp, (a, b) in zip(self.groups, self.spans)])

    def decay_parameters(self) -> list[nn.Parameter]:
        """Convolution kernels and the head's weights (what L2 / L1 act on, as in a solo model)."""
        out = []
        for grp in self.groups:
            out += grp.conv_weights() + [grp.head_weight]
        return out

    def bias_parameters(self) -> list[nn.Parameter]:
        decay = {id(p) for p in self.decay_parameters()}
        return [p for p in self.parameters() if id(p) not in decay]

    def member_params(self) -> list[int]:
        return list(self._n_params)

    def padded_fraction(self) -> float:
        real = sum(self._cost(w) for w in self.widths)
        done = sum((b - a) * self._cost(max(self.widths[a:b])) for a, b in self.spans)
        return done / max(real, 1)

    @torch.no_grad()
    def member(self, g: int) -> nn.Module:
        """Member `g` as an ordinary solo model (a copy of its current weights and BatchNorm
        statistics)."""
        bi = next(i for i, (a, b) in enumerate(self.spans) if a <= g < b)
        grp, k = self.groups[bi], g - self.spans[bi][0]
        m = self._rebuild(self.widths[g])
        big = dict(grp.stem.named_modules(prefix="stem")) | dict(grp.trunk.named_modules(prefix="trunk"))
        for name, mod in m.named_modules():
            if isinstance(mod, nn.Conv2d):
                src = big[name]
                o = src.out_channels // grp.G
                mod.weight.copy_(src.weight[k * o : k * o + mod.out_channels, : mod.in_channels])
                if mod.bias is not None:
                    mod.bias.copy_(src.bias[k * o : k * o + mod.out_channels])
            elif isinstance(mod, nn.BatchNorm2d):
                src = big[name]
                c, o = src.num_features // grp.G, mod.num_features
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    getattr(mod, attr).copy_(getattr(src, attr)[k * c : k * c + o])
                mod.num_batches_tracked.copy_(src.num_batches_tracked)
        m.head.weight.copy_(grp.head_weight[k, : m.head.in_features].t())
        m.head.bias.copy_(grp.head_bias[k, 0])
        return m.to(grp.head_weight.device)
