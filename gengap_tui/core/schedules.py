"""Learning-rate schedules (docs/ARCHITECTURE.md, "Learning-rate schedules"): the factor the
trainer multiplies `optim.lr` (live-tweakable) by at each epoch. Pure arithmetic: no torch.

    from gengap_tui.config import build
    from gengap_tui.core.schedules import lr_factor
    o = build({}, ["optim.schedule=exponential", "optim.warmup_epochs=5"]).optim
    [lr_factor(o, e) for e in range(1, 10)]
"""

from __future__ import annotations

import math


def lr_factor(o, epoch: int, sched: dict | None = None) -> float:
    """The schedule's factor at `epoch` (1-based) for an `OptimSection` `o`: a linear warm-up over
    `warmup_epochs` (epoch e of W: e / W), then constant, cosine (from 1 after the warm-up down towards 0: the last epoch's factor is
    (1 + cos(pi (E - W - 1) / (E - W))) / 2, just above 0), step
    (x step_factor every step_every epochs) or exponential (x exp_factor every epoch), counted
    from the end of the warm-up. `sched` holds the live values of the two factors."""
    sched = sched or {"step_factor": o.step_factor, "exp_factor": o.exp_factor}
    w = o.warmup_epochs
    if epoch <= w:
        return epoch / w
    t = epoch - w - 1  # epochs since the warm-up
    if o.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t / (o.epochs - w)))
    if o.schedule == "step":
        return sched["step_factor"] ** (t // o.step_every)
    if o.schedule == "exponential":
        return sched["exp_factor"] ** t
    return 1.0
