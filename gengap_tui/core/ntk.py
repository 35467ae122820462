"""Infinite-width neural tangent kernel (NTK) of the lab's ReLU MLP, and NTK kernel regression.

The network (NTK parametrization, Jacot et al. 2018; recursion as in Arora et al. 2019, "On
Exact Computation with an Infinitely Wide Neural Net", and Lee et al. 2019) has `depth` hidden
fully-connected ReLU layers of width n -> infinity and a scalar readout; every weight and bias
entry is drawn N(0, 1) and the scale lives in the forward pass:

    h^1     = sqrt(weight_var / D)       W^1     x       + sqrt(bias_var) b^1
    h^{l+1} = sqrt(weight_var / n)       W^{l+1} relu(h^l) + sqrt(bias_var) b^{l+1}
    f(x)    = h^{depth+1}                              (the readout is scaled the same way)

`depth == 0` is the linear model f(x) = sqrt(weight_var / D) w.x + sqrt(bias_var) b.

Defaults: weight_var = 2 (He: the pre-activation variance neither grows nor shrinks with depth)
and bias_var = 0.1 (small, so the kernel is not dominated by a constant, yet nonzero so that
Sigma(x, x) > 0 even for the zero input). `tests/test_ntk.py` builds exactly this finite network
and checks its empirical NTK J J^T against the kernel computed here.

Recursion (Sigma = NNGP kernel, Sigma_dot = kernel of the ReLU derivatives, Theta = NTK):

    Sigma^1(x, x')   = weight_var / D * x.x' + bias_var,           Theta^1 = Sigma^1
    with  c = Sigma^l(x, x') / sqrt(Sigma^l(x, x) Sigma^l(x', x')) clamped to [-1, 1],
          t = arccos(c):
    Sigma^{l+1}      = weight_var * sqrt(Sigma^l(x,x) Sigma^l(x',x')) (sin t + (pi - t) c) / (2 pi)
                       + bias_var
    Sigma_dot^{l+1}  = weight_var * (pi - t) / (2 pi)
    Theta^{l+1}      = Theta^l * Sigma_dot^{l+1} + Sigma^{l+1}

and the NTK of the network is Theta^{depth+1}. On the diagonal the ReLU halves the variance, so
Sigma^{l+1}(x, x) = weight_var / 2 * Sigma^l(x, x) + bias_var, which is precomputed once per row.
A row with Sigma(x, x) == 0 (the zero input with bias_var == 0) has Sigma = Theta = 0 against
everything; its cosine is taken as 0 instead of 0/0.

Everything is computed in float64 on the inputs' device in square tiles of `chunk` x `chunk`
(a few temporaries of chunk^2 doubles: 8 MiB each at the default 1024), so a 5000 x 5000 kernel
costs its 200 MB output plus ~50 MB. When x2 is None (or is x1) only the upper tiles are
computed and mirrored: the kernel is then exactly symmetric, with an exact diagonal.

Precision: arccos is ill-conditioned at cosine 1, so for (nearly) coincident inputs a rounding
error eps in the cosine becomes ~sqrt(eps) ~ 1e-8 in the angle; such entries carry a relative
error of ~1e-8 (the diagonal of the symmetric kernel excepted: its cosines are pinned to 1).
Elsewhere the kernel is accurate to ~1e-13.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

CHUNK = 1024
WEIGHT_VAR = 2.0
BIAS_VAR = 0.1
RIDGE = 1e-4  # relative: the ridge added to K is RIDGE * mean(diag K)

_TWO_PI = 2.0 * math.pi


def _as_rows(x, device=None) -> torch.Tensor:
    x = torch.as_tensor(x)
    if device is not None:
        x = x.to(device)
    if x.dim() == 1:
        x = x[None]
    return x.flatten(1).to(torch.float64)


def _diagonals(x: torch.Tensor, depth: int, weight_var: float,
               bias_var: float) -> list[torch.Tensor]:
    """Sigma^l(x, x) for l = 1 .. depth (the ones the recursion needs)."""
    d = weight_var / x.shape[1] * (x * x).sum(1) + bias_var
    out = [d]
    for _ in range(depth - 1):
        d = weight_var / 2.0 * d + bias_var
        out.append(d)
    return out


def _tile(a: torch.Tensor, b: torch.Tensor, da: list[torch.Tensor], db: list[torch.Tensor],
          depth: int, weight_var: float, bias_var: float, diagonal: bool,
          nngp: bool = False) -> torch.Tensor:
    """Theta (or Sigma when `nngp`) between the rows of a and b; `diagonal`: a is b."""
    sigma = a @ b.T
    sigma.mul_(weight_var / a.shape[1]).add_(bias_var)
    theta = None if nngp else sigma.clone()
    for l in range(depth):
        norm = torch.outer(da[l], db[l]).sqrt_()
        cos = sigma.div_(norm.clamp_min(torch.finfo(torch.float64).tiny))  # 0 where norm == 0
        cos.clamp_(-1.0, 1.0)
        if diagonal:
            cos.diagonal().fill_(1.0)
        t = torch.arccos(cos)
        # sin t + (pi - t) cos t, with sin t = sqrt(1 - cos^2)
        sin = (1.0 - cos * cos).clamp_min_(0.0).sqrt_()
        pi_minus_t = t.neg_().add_(math.pi)
        sigma = sin.add_(pi_minus_t * cos).mul_(norm).mul_(weight_var / _TWO_PI).add_(bias_var)
        if not nngp:
            theta.mul_(pi_minus_t.mul_(weight_var / _TWO_PI)).add_(sigma)
        del cos, norm, pi_minus_t
    return sigma if nngp else theta


def _kernel(x1, x2, depth: int, weight_var: float, bias_var: float, chunk: int,
            nngp: bool) -> torch.Tensor:
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    symmetric = x2 is None or x2 is x1
    a = _as_rows(x1)
    b = a if symmetric else _as_rows(x2, a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"input dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    da = _diagonals(a, depth, weight_var, bias_var)
    db = da if symmetric else _diagonals(b, depth, weight_var, bias_var)
    n1, n2 = a.shape[0], b.shape[0]
    out = torch.empty(n1, n2, dtype=torch.float64, device=a.device)
    for i in range(0, n1, chunk):
        si = slice(i, i + chunk)
        for j in range(i if symmetric else 0, n2, chunk):
            sj = slice(j, j + chunk)
            on_diag = symmetric and i == j
            blk = _tile(a[si], b[sj], [d[si] for d in da], [d[sj] for d in db], depth,
                        weight_var, bias_var, on_diag, nngp)
            if on_diag:
                blk = (blk + blk.T) / 2
            out[si, sj] = blk
            if symmetric and j != i:
                out[sj, si] = blk.T
    return out


@torch.no_grad()
def relu_ntk(x1: torch.Tensor, x2: torch.Tensor | None, depth: int,
             weight_var: float = WEIGHT_VAR, bias_var: float = BIAS_VAR,
             chunk: int = CHUNK) -> torch.Tensor:
    """The (n1, n2) infinite-width NTK Theta(x1, x2) of a `depth`-hidden-layer ReLU MLP in NTK
    parametrization (see the module docstring), float64 on x1's device. Inputs are flattened
    to (N, D); x2=None (or x2 is x1) gives the exactly symmetric kernel of x1 with itself."""
    return _kernel(x1, x2, depth, weight_var, bias_var, chunk, nngp=False)


@torch.no_grad()
def relu_nngp(x1: torch.Tensor, x2: torch.Tensor | None, depth: int,
              weight_var: float = WEIGHT_VAR, bias_var: float = BIAS_VAR,
              chunk: int = CHUNK) -> torch.Tensor:
    """The NNGP kernel Sigma^{depth+1}(x1, x2) of the same network (the covariance of its output
    at initialization), computed like `relu_ntk`."""
    return _kernel(x1, x2, depth, weight_var, bias_var, chunk, nngp=True)


def _cholesky_with_ridge(k: torch.Tensor, ridge: float, max_tries: int = 8):
    """Factor k + lam I in place of k, lam = ridge * mean(diag k); on failure lam grows 10x per
    try (from 1e-10 * mean diag if ridge is 0). Returns (L, lam)."""
    scale = float(k.diagonal().mean()) if k.numel() else 1.0
    scale = scale if scale > 0 else 1.0
    lam = ridge * scale
    k.diagonal().add_(lam)
    added = lam
    for _ in range(max_tries):
        chol, info = torch.linalg.cholesky_ex(k)
        if int(info) == 0:
            return chol, lam
        lam = max(lam * 10.0, 1e-10 * scale)
        k.diagonal().add_(lam - added)
        added = lam
    raise torch.linalg.LinAlgError(
        f"Cholesky of the NTK failed even with ridge {lam:.3g} (mean diagonal {scale:.3g})")


@torch.no_grad()
def ntk_regression(x_train, y_train, x_eval_list, depth: int, num_classes: int,
                   ridge: float = RIDGE, weight_var: float = WEIGHT_VAR,
                   bias_var: float = BIAS_VAR, chunk: int = CHUNK, device=None,
                   return_scores: bool = False) -> list[torch.Tensor]:
    """NTK kernel (ridge) regression on centered one-hot targets, Y = onehot(y) - 1/K: solve
    (K_train + lam I) alpha = Y by Cholesky in float64, lam = ridge * mean(diag K_train)
    (relative; raised 10x at a time if the factorization fails), and predict
    argmax_c (Theta(x, X_train) alpha)_c for each eval set. This is the mean prediction of an
    infinitely wide network trained to convergence by gradient flow on the squared loss from
    a zero-output initialization.

    `x_eval_list`: a list of (N_i, D) inputs (a single tensor counts as one set). An eval set
    that *is* x_train (same object) reuses the solve: K alpha = Y - lam alpha. Returns a list of
    int64 prediction tensors on the compute device (`device`, else x_train's), or, with
    `return_scores`, the (N_i, num_classes) float64 regression outputs."""
    if isinstance(x_eval_list, torch.Tensor) or not isinstance(x_eval_list, Sequence):
        x_eval_list = [x_eval_list]
    xt = _as_rows(x_train, device)
    dev = xt.device
    y = torch.as_tensor(y_train).to(dev).long().flatten()
    if len(y) != len(xt):
        raise ValueError(f"{len(xt)} training inputs but {len(y)} labels")
    targets = torch.nn.functional.one_hot(y, num_classes).to(torch.float64) - 1.0 / num_classes
    k = relu_ntk(xt, None, depth, weight_var, bias_var, chunk)
    chol, lam = _cholesky_with_ridge(k, ridge)
    del k
    alpha = torch.cholesky_solve(targets, chol)
    del chol
    out = []
    for ev in x_eval_list:
        if ev is x_train:
            scores = targets - lam * alpha
        else:
            xe = _as_rows(ev, dev)
            scores = torch.cat([relu_ntk(xe[i : i + chunk], xt, depth, weight_var, bias_var, chunk)
                                @ alpha for i in range(0, len(xe), chunk)]) \
                if len(xe) else torch.empty(0, num_classes, dtype=torch.float64, device=dev)
        out.append(scores if return_scores else scores.argmax(1))
    return out


def ntk_error(x_train, y_train, x_eval, y_eval, depth: int, num_classes: int, **kw) -> float:
    """Classification error of NTK regression (see `ntk_regression`) on one eval set."""
    (pred,) = ntk_regression(x_train, y_train, [x_eval], depth, num_classes, **kw)
    y_eval = torch.as_tensor(y_eval).to(pred.device).long().flatten()
    return float((pred != y_eval).to(torch.float64).mean())
