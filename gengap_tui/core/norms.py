"""Norm-based complexity measures, per epoch (docs/ARCHITECTURE.md, "Norms").

Parameter counts do not explain generalization (D2L 5.5, exercise 1; Zhang et al. 2017); norms of
the weights are the classical alternative (Bartlett 1996, Neyshabur et al. 2017). Every epoch's
metrics.jsonl row carries two of them, for each member of a stack and their mean:

- `weight_norm`: the l2 (Frobenius) norm of all weight matrices and convolution kernels together,
  biases left out (the tensors weight decay acts on);
- `spectral_norm_product`: the product over layers of each layer's largest singular value. A
  linear layer's is its weight matrix's; a convolution's is its kernel unfolded into a matrix of
  `out_channels` rows and `in_channels * kernel_size` columns (`in_channels * kh * kw` for a 2-D
  one: the map from one input patch to one output position). The convolution's operator norm over a whole sequence lies between that and
  sqrt(ceil(kernel_size / stride)) times it (each input position is seen by that many outputs):
  for the 1-D CNN's kernel 5, stride 2, a factor of at most 1.73 per convolution.

A matrix with at most `SMALL` rows or columns gets its largest singular value exactly, from the
eigenvalues of its small Gram matrix (0.2 ms for 64x64 on a CPU core). A bigger one (the MLP's
256x256 hidden layer) by power iteration warm-started from the previous epoch's vector (`ITERS`
steps per epoch, `FIRST_ITERS` at the first measurement): its SVD costs ~3 ms, a tenth of a
default epoch, these steps ~0.1 ms. Power iteration approaches the value from below (within 0.1%
here after a few epochs; tests/test_norms.py); `exact()` computes both measures by SVD, for tests
and for anyone who wants the exact figure of a saved model.
Zero padding (the grouped width sweep's narrower members) changes neither measure. Members are
measured independently: one whose weights are not finite gets NaN, the others their numbers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SMALL = 64
ITERS = 5
FIRST_ITERS = 100


def layer_groups(model: nn.Module) -> list[tuple[slice, list[torch.Tensor]]]:
    """The weight matrices of each member, as `(members, [W_layer [g, rows, cols], ...])` groups:
    members `members` of a stack share a group (a solo model is one group of one)."""
    from .models import GroupedMLP, Stacked2D, StackedCNN1D

    if isinstance(model, GroupedMLP):
        L = model.depth + 1
        return [(slice(bk.start, bk.stop), [model.weights[bi * L + layer] for layer in range(L)])
                for bi, bk in enumerate(model.buckets)]
    if isinstance(model, StackedCNN1D):
        G = model.G
        mats = [c.weight.reshape(G, c.weight.shape[0] // G, -1) for c in model.convs]
        return [(slice(0, G), mats + [model.head_weight])]
    if isinstance(model, Stacked2D):  # per bucket: its members' kernels, unfolded, and their heads
        out = []
        for grp, (a, b) in zip(model.groups, model.spans):
            g = b - a
            mats = [w.reshape(g, w.shape[0] // g, -1) for w in grp.conv_weights()]
            out.append((slice(a, b), mats + [grp.head_weight]))
        return out
    mats = []
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            mats.append(mod.weight.reshape(1, mod.weight.shape[0], -1))
    return [(slice(0, 1), mats)]


class NormTracker:
    """Both measures for every member of `model`, by warm-started power iteration. A member whose
    weights are not finite (a diverged member of a grouped sweep) gets NaN and a fresh start of its
    own warm-start vectors; the other members' numbers are untouched by it."""

    def __init__(self, model: nn.Module, members: int = 1):
        self.model = model
        self.G = members
        self._v: dict[tuple[int, int], torch.Tensor] = {}
        self._fresh: dict[tuple[int, int], list[bool]] = {}  # rows of `_v` started afresh

    @torch.no_grad()
    def measure(self) -> dict[str, list[float]]:
        """`{"weight_norm": [G], "spectral_norm_product": [G]}` for the current weights."""
        dev = next(self.model.parameters()).device
        groups = layer_groups(self.model)
        sq = torch.zeros(self.G, device=dev)
        for members, mats in groups:
            for W in mats:
                sq[members] += W.detach().float().square().sum(dim=(1, 2))
        ok = torch.isfinite(sq)
        all_ok = bool(ok.all())  # (the one host sync before the copy of the numbers)
        rows = None if all_ok else ok.tolist()
        prod = torch.ones(self.G, device=dev)
        for gi, (members, mats) in enumerate(groups):
            for li, W in enumerate(mats):
                prod[members] *= self._sigma(gi, li, W.detach().float(), None if all_ok else ok[members],
                                             None if rows is None else rows[members])
        if not all_ok:  # a diverged member: NaN for it alone (the trainer ends a solo run as diverged)
            nan = torch.tensor(math.nan, device=dev)
            sq, prod = torch.where(ok, sq, nan), torch.where(ok, prod, nan)
        vals = torch.stack([sq.sqrt(), prod]).tolist()
        return {"weight_norm": vals[0], "spectral_norm_product": vals[1]}

    def state(self) -> list[list]:
        """The warm-start vectors, `[[group, layer, v], ...]` (clones), for a checkpoint: a resumed
        run continues the power iteration where the uninterrupted one would be."""
        return [[gi, li, v.detach().clone()] for (gi, li), v in sorted(self._v.items())]

    def load(self, state: list) -> None:
        dev = next(self.model.parameters()).device
        self._v = {(int(gi), int(li)): v.to(dev) for gi, li, v in state}
        self._fresh = {}  # (a checkpoint is of finite weights: no row was started afresh)

    def _sigma(self, gi: int, li: int, W: torch.Tensor, ok: torch.Tensor | None = None,
               ok_rows: list[bool] | None = None) -> torch.Tensor:
        """The largest singular value of each `[rows, cols]` matrix in `W` (`[g, rows, cols]`);
        `ok` (bool `[g]` on the device, `ok_rows` the same on the host; None: all) says which
        members' weights are finite: the others' matrices are taken as zero (their value is NaN
        anyway) and their warm-start vectors start afresh."""
        if ok is not None:
            W = torch.where(ok[:, None, None], W, torch.zeros((), device=W.device))
        if min(W.shape[1], W.shape[2]) <= SMALL:  # exact: the small Gram matrix's top eigenvalue
            gram = W @ W.transpose(1, 2) if W.shape[1] <= W.shape[2] else W.transpose(1, 2) @ W
            return torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0).sqrt()
        key = (gi, li)
        v = self._v.get(key)
        steps = ITERS
        if v is None or v.shape != W.shape[::2]:
            v, steps = self._start(gi, li, W), FIRST_ITERS
            self._fresh.pop(key, None)
        elif any(f and (ok_rows is None or ok_rows[j]) for j, f in enumerate(self._fresh.get(key, ()))):
            steps = FIRST_ITERS  # a member started afresh is finite again: its first measurement
        sigma = W.new_zeros(W.shape[0])
        for _ in range(steps):
            u = torch.bmm(W, v.unsqueeze(2)).squeeze(2)
            u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-30)
            v = torch.bmm(W.transpose(1, 2), u.unsqueeze(2)).squeeze(2)
            sigma = v.norm(dim=1)
            v = v / sigma.unsqueeze(1).clamp_min(1e-30)
        if ok is None or ok_rows is None:  # (both given, or neither)
            self._fresh.pop(key, None)
        else:  # the members that are not finite start afresh (their own rows only)
            v = torch.where(ok[:, None], v, self._start(gi, li, W))
            self._fresh[key] = [not o for o in ok_rows]
        self._v[key] = v
        return sigma

    @staticmethod
    def _start(gi: int, li: int, W: torch.Tensor) -> torch.Tensor:
        """The first measurement's vectors (`[g, cols]`, unit rows, seeded by the layer)."""
        g = torch.Generator(device=W.device).manual_seed(gi * 1000 + li)
        v = torch.randn(W.shape[0], W.shape[2], device=W.device, generator=g)
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)


@torch.no_grad()
def exact(model: nn.Module, members: int = 1) -> dict[str, list[float]]:
    """Both measures by SVD (`torch.linalg.matrix_norm(ord=2)`), for every member."""
    sq = torch.zeros(members, dtype=torch.float64)
    prod = torch.ones(members, dtype=torch.float64)
    for members_slice, mats in layer_groups(model):
        for W in mats:
            W = W.detach().double().cpu()
            sq[members_slice] += W.square().sum(dim=(1, 2))
            prod[members_slice] *= torch.linalg.matrix_norm(W, ord=2)
    return {"weight_norm": sq.sqrt().tolist(), "spectral_norm_product": prod.tolist()}
