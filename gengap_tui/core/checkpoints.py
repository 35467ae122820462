"""When a run hands its resumable state to `on_checkpoint` (`Trainer.run`, `Trainer._capture`)."""

from __future__ import annotations

import copy
import time
from typing import Any, Callable

import torch

from .early_stopping import EarlyStopping


class Checkpoints:
    """When `Trainer.run` hands a resumable state (`Trainer._capture`) to `on_checkpoint`: at most
    every `every_s` seconds after an epoch, and once more at the end (`flush`). With CUDA graphs an
    epoch is never cut short, so the state at the end of the run is an epoch boundary: capture it
    then (and when a save is due) instead of after every epoch, which cost ~0.7 ms beside a 4.8 ms
    epoch on an H200 (0.1 ms/epoch outside the epochs now). `lazy` is asked again after every
    epoch: once a graph recording fails the epochs run eagerly, a stop can cut one short, and the
    state is captured after every epoch again. `boundary` is the finished epoch whose end state
    the model holds right now (None while an epoch is under way)."""

    def __init__(self, trainer, on_checkpoint: Callable[[dict], Any] | None, every_s: float):
        self.tr, self.save, self.every_s = trainer, on_checkpoint, every_s
        self.lazy = trainer._epochs_atomic()
        self.pending: dict[str, Any] | None = None
        self.boundary: tuple[int, dict] | None = None
        self.saved_at = time.monotonic()

    def leave_boundary(self) -> None:
        """An epoch starts: the model no longer holds the last epoch's end state."""
        self.boundary = None

    def after_epoch(self, epoch: int, row: dict, emit: Callable) -> None:
        if self.save is None:
            return
        due = time.monotonic() - self.saved_at >= self.every_s
        self.lazy = self.lazy and self.tr._epochs_atomic()  # (a failed recording: eager from now on)
        if self.lazy and not due:
            self.boundary, self.pending = (epoch, row), None
        else:
            self.pending = self.tr._capture(epoch, row)
        if due:
            self._save(emit)
            self.pending, self.saved_at = None, time.monotonic()

    def flush(self, emit: Callable) -> None:
        """The run ended: hand over the last finished epoch's state, if not handed over yet."""
        if self.pending is None and self.boundary is not None:
            self.pending = self.tr._capture(*self.boundary)
        if self.pending is not None:
            self._save(emit)

    def _save(self, emit: Callable) -> None:
        """Hand over the pending state, its example counters (device clones until now: no copy to
        the host at every capture) moved to the host; a failure (a full disk) is a
        `checkpoint_failed` event and the run goes on: losing a checkpoint must not lose the run or
        its summary."""
        try:
            ex = self.pending.get("examples")
            if ex:
                self.pending["examples"] = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in ex.items()}
            self.save(self.pending)
        except Exception as exc:  # noqa: BLE001
            emit("checkpoint_failed", epoch=self.pending["epoch"], error=f"{type(exc).__name__}: {exc}")


class Resumable:
    """What a resumable state holds, and how a run continues from one (mixed into
    `trainer.Trainer`: it reads and sets the trainer's model, optimizer, early stopping, generators
    and records)."""

    def _capture(self, epoch: int, last_row: dict) -> dict[str, Any]:
        """Everything needed to continue after `epoch` exactly as if never stopped: weights,
        optimizer, early-stopping state (tweaks included), RNG streams, kept weights, and the
        records of past epochs that the summary reports (`epochs_to_fit`, RATT's bound per epoch),
        so that a resumed run's summary is the uninterrupted run's. Loadable with
        `torch.load(weights_only=True)`."""
        state = {
            "epoch": epoch, "model": self._snapshot(), "optimizer": copy.deepcopy(self.opt.state_dict()),
            "early_stopping": self.es.state(), "torch_rng": torch.get_rng_state(), "generator": self._gen_state(),
            "best_state": self.best_state or {}, "would_keep": self.would_keep or {},
            "would_keep_epoch": self.would_keep_epoch, "base_lr": self.base_lr, "weight_decay": self.weight_decay,
            "sched": dict(self.sched),
            "last_row": dict(last_row), "epochs_to_fit": self.epochs_to_fit,
            "ratt_by_epoch": [[e, err, bound] for e, (err, bound) in sorted(self.ratt_by_epoch.items())],
            "examples": self.examples.state() if self.examples is not None else {},
            # the power iteration's warm-start vectors: without them a resumed run's
            # spectral_norm_product drifts from the uninterrupted run's
            "norms": self.norms.state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def _gen_state(self) -> Any:
        return self.gen.get_state()

    def _set_gen_state(self, state: Any) -> None:
        self.gen.set_state(state)

    def load_checkpoint(self, state: dict[str, Any]) -> None:
        """Continue from a `_capture`d state: the next `run()` starts at its epoch + 1."""
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        for g in self.opt.param_groups:  # a graphed run saves capturable=True; a new run captures anew
            if "capturable" in g:
                g["capturable"] = False
        self._graphs = None  # a recorded graph would read the replaced optimizer state
        self.es = EarlyStopping.from_state(state["early_stopping"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self._set_gen_state(state["generator"])
        self.best_state = state["best_state"] or None
        self.would_keep = state["would_keep"] or None
        self.would_keep_epoch = state["would_keep_epoch"]
        self.base_lr = float(state["base_lr"])
        self.sched.update(state.get("sched") or {})
        self.weight_decay = float(state["weight_decay"])  # (the param groups came with the optimizer)
        self.start_epoch = int(state["epoch"])
        self._last_row = dict(state.get("last_row") or {})
        # (absent from checkpoints written before they were saved: those resume without them)
        self.epochs_to_fit = state.get("epochs_to_fit")
        self.ratt_by_epoch = {int(e): (err, bound) for e, err, bound in state.get("ratt_by_epoch") or []}
        if state.get("examples") and self.examples is not None:
            self.examples.load(state["examples"])
        self.norms.load(state.get("norms") or [])
