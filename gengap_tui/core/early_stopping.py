"""Early stopping as a small pure state machine (a contract: docs/ARCHITECTURE.md, "Early stopping").

For each epoch e (1-based) with monitored value v (lower is better):
- epochs e <= start_from_epoch are not monitored: wait stays 0, best is unchanged;
- the first monitored epoch is always an improvement;
- improvement iff v < best - min_delta (abs) or v < best * (1 - min_delta) (rel);
- on improvement best = v, best_epoch = e, wait = 0; otherwise wait += 1;
- it fires at the first epoch where wait == patience; in observe mode training goes on and that
  epoch is recorded as would_stop_epoch.

Non-finite values are the trainer's business (the run ends as `diverged`), not this class's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class StepResult:
    improved: bool
    fired: bool  # this epoch is the (would-)stop epoch
    stop: bool  # training should end now (fired and not in observe mode)


@dataclass
class EarlyStopping:
    patience: int = 10
    min_delta: float = 0.0
    min_delta_mode: str = "abs"
    start_from_epoch: int = 0
    observe: bool = False
    enabled: bool = True

    best: float = math.inf
    best_epoch: int | None = None
    wait: int = 0
    stop_epoch: int | None = None
    would_stop_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError("patience must be >= 1")
        if self.min_delta < 0:
            raise ValueError("min_delta must be >= 0")
        if self.min_delta_mode not in ("abs", "rel"):
            raise ValueError("min_delta_mode must be 'abs' or 'rel'")

    @classmethod
    def from_config(cls, es) -> "EarlyStopping":
        return cls(
            patience=es.patience,
            min_delta=es.min_delta,
            min_delta_mode=es.min_delta_mode,
            start_from_epoch=es.start_from_epoch,
            observe=es.observe,
            enabled=es.enabled,
        )

    def is_improvement(self, value: float) -> bool:
        if self.best_epoch is None:
            return True
        if self.min_delta_mode == "abs":
            return value < self.best - self.min_delta
        return value < self.best * (1.0 - self.min_delta)

    def step(self, epoch: int, value: float) -> StepResult:
        if epoch <= self.start_from_epoch:
            return StepResult(False, False, False)
        improved = self.is_improvement(value)
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        fired = False
        # `>=` rather than `==`: identical under fixed settings (wait grows by one per epoch), and
        # it still fires when a live tweak lowers patience below the current wait.
        if self.wait >= self.patience and self.enabled and self.stop_epoch is None:
            if self.observe:
                if self.would_stop_epoch is None:
                    self.would_stop_epoch = epoch
                    fired = True
            else:
                self.stop_epoch = epoch
                fired = True
        return StepResult(improved, fired, fired and not self.observe)

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "EarlyStopping":
        return cls(**state)
