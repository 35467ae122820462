"""What reaches a run from outside while it trains: live tweaks and stop requests (mixed into
`trainer.Trainer`; docs/ARCHITECTURE.md, "Control"). They come from another thread (the session's
control feeds): `tweak` queues, the training thread applies the queue at the start of an epoch."""

from __future__ import annotations

from typing import Callable, Any

from ..protocol import check_tweaks


class Controls:
    """Live tweaks and stops of a trainer: reads and sets its optimizer, early stopping, learning
    rate and schedule factors (`_lock`, `_pending`, `_stop_requested`, `_stop_reason` are made by
    `Trainer.__init__`)."""

    def tweak(self, **changes: Any) -> None:
        """Queue live changes (`protocol.TWEAKS`: lr, weight_decay, patience, observe, min_delta) for
        the start of the next epoch (a `tweaked` event); `protocol.check_tweaks` raises ValueError
        for a setting or value outside the limits. Thread-safe."""
        changes = check_tweaks(changes)
        with self._lock:
            self._pending.update(changes)

    def request_stop(self, reason: str | None = None) -> None:
        """Ask the run to end as `cancelled` after the current batch (with CUDA graphs: after the
        current epoch, which a graph runs whole). The summary's reason is "<reason> during epoch N"
        with the first `reason` given ("stopped by the user" if none). Thread-safe."""
        if reason and self._stop_reason is None:
            self._stop_reason = reason
        self._stop_requested = True

    def _apply_tweaks(self, epoch: int, emit: Callable) -> None:
        """Apply the queued tweaks (already checked and normalised by `tweak`)."""
        with self._lock:
            changes, self._pending = self._pending, {}
        if not changes:
            return
        for k, v in changes.items():
            if k == "lr":
                self.base_lr = v
            elif k in self.sched:
                self.sched[k] = v
            elif k == "weight_decay":
                self.weight_decay = v
                if self.cfg.optim.optimizer != "sgd" or not self.decoupled:
                    self.opt.param_groups[0]["weight_decay"] = v
            else:  # patience, observe, min_delta: early stopping's own settings
                setattr(self.es, k, v)
        emit("tweaked", epoch=epoch, changes=changes)
