"""Which training examples are learned when, and which are forgotten again (Toneva et al. 2019,
"An empirical study of example forgetting during deep neural network learning").

Per training example (and per member of a stack) from the full-split predictions the trainer
already makes every epoch: no extra forward pass, counters on the device, updated with a few
elementwise ops and no host sync (docs/ARCHITECTURE.md, "Run directory": `examples.npz`).

    counters = ExampleCounters((G, N), device)
    counters.update(epoch, correct)      # correct: bool [G, N], prediction == training label
    np.savez(path, **counters.arrays(noisy))

An example is *correct* at an epoch when the model predicts its training label (for a noisy
example: the flipped label, so "learned" means memorized). A *forgetting event* is a
correct -> wrong transition between two consecutive epochs; a learning event wrong -> correct
(the first epoch counts as one when the example is correct then).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# what examples.npz holds, besides `epochs` (a scalar) and `noisy` (the label-noise mask)
FIELDS = ("first_learned", "last_learned", "last_forgotten", "forgetting_events", "correct")


class ExampleCounters:
    """Device-side counters of one run's training examples; `shape` is `(G, N)` (members, examples).
    Epochs are 1-based; 0 means never."""

    def __init__(self, shape: tuple[int, int], device: torch.device):
        z = lambda: torch.zeros(shape, dtype=torch.int32, device=device)  # noqa: E731
        self.first_learned = z()      # the first epoch it was predicted correctly
        self.last_learned = z()       # the last wrong -> correct epoch (learned for good if still correct)
        self.last_forgotten = z()     # the last correct -> wrong epoch
        self.forgetting_events = z()  # how many correct -> wrong transitions
        self.correct = torch.zeros(shape, dtype=torch.bool, device=device)  # at the last epoch
        self.epochs = 0
        self.member_epochs = [0] * shape[0]  # epochs recorded per member (a diverged one stops)

    def update(self, epoch: int, correct: torch.Tensor, members: list[bool] | None = None) -> None:
        """Record epoch `epoch`'s predictions (`correct`: bool, this object's shape, or `[N]` for
        one member) for the members `members` says (None: all; a grouped sweep leaves out those
        of its values that have diverged, as a solo run stops counting). In place, on the device:
        no host sync."""
        correct = correct.view(self.correct.shape)
        if members is not None and not all(members):  # the others' rows stay as they are
            keep = torch.tensor(members, device=correct.device).unsqueeze(1)
            correct = torch.where(keep, correct, self.correct)
        learned = correct & ~self.correct
        forgotten = self.correct & ~correct
        self.first_learned.masked_fill_(correct & (self.first_learned == 0), epoch)
        self.last_learned.masked_fill_(learned, epoch)
        self.last_forgotten.masked_fill_(forgotten, epoch)
        self.forgetting_events.add_(forgotten.to(torch.int32))
        self.correct.copy_(correct)
        self.epochs = epoch
        on = members if members is not None else [True] * len(self.member_epochs)
        self.member_epochs = [epoch if o else e for e, o in zip(self.member_epochs, on)]

    def recorded(self, rows: slice = slice(None)) -> int:
        """How many epochs were recorded for the members `rows` (a diverged one stopped early)."""
        return max(self.member_epochs[rows], default=0)

    def state(self) -> dict[str, Any]:
        """For a checkpoint: clones on the device (no host sync; never the live counters, which the
        next epoch updates in place); `checkpoints.Checkpoints` moves them to the host when it
        saves (`torch.load(weights_only=True)` reads them)."""
        out: dict[str, Any] = {k: getattr(self, k).detach().clone() for k in FIELDS}
        out["epochs"] = self.epochs
        return out

    def load(self, state: dict[str, Any]) -> None:
        for k in FIELDS:
            getattr(self, k).copy_(state[k].to(getattr(self, k).device))
        self.epochs = int(state["epochs"])
        self.member_epochs = [self.epochs] * len(self.member_epochs)

    def arrays(self, noisy: np.ndarray | torch.Tensor, rows: slice = slice(None)) -> dict[str, np.ndarray]:
        """What examples.npz holds: every field `[G, N]` (the members `rows`), `noisy` (bool
        `[G, N]`: the label was flipped) and `epochs` (how many epochs were recorded for them)."""
        out = {k: getattr(self, k)[rows].detach().cpu().numpy() for k in FIELDS}
        noisy = noisy.detach().cpu().numpy() if isinstance(noisy, torch.Tensor) else np.asarray(noisy)
        out["noisy"] = np.broadcast_to(noisy.astype(bool), out["correct"].shape).copy()
        out["epochs"] = np.asarray(self.recorded(rows), dtype=np.int32)
        return out

    def save(self, path: str, noisy: np.ndarray | torch.Tensor, rows: slice = slice(None)) -> None:
        """Write examples.npz (compressed) to `path` (no `.npz` is added to the name)."""
        with open(path, "wb") as f:
            np.savez_compressed(f, **self.arrays(noisy, rows))

