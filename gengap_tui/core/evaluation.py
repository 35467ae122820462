"""Evaluation: loss and error on the full splits, in eval mode, every epoch, with one host copy
(docs/ARCHITECTURE.md, "Run directory": metrics.jsonl), and the test split once at the end on the
weights that are kept. Never through `batches.Batches`: no input noise or augmentation reaches
these numbers.

`Evaluation` is the solo trainer's (`trainer.Trainer` inherits it), `MemberEvaluation` the
stacked one's (`multi.MultiTrainer`): every member's metrics in one pass (`[G]` tensors), the
mean, and each key's spread over members. Both compute their metrics as one device tensor without
a host sync, so that a CUDA graph can record them (`graphs.py`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import bounds
from .models import GroupedMLP

EVAL_CHUNK = 16384
ACT_BUDGET = 1 << 24  # elements of one evaluation activation: bounds the chunk size
SPREAD_KEYS = ("train_loss", "train_err", "val_loss", "val_err", "gap_loss", "gap_err", "train_clean_err",
               "noisy_memorized", "noisy_true_acc", "ratt_random_err", "ratt_bound", "weight_norm",
               "spectral_norm_product")


ACT_BUDGET_IMAGES = 1 << 26  # the same for image models: 1024 CIFAR images of resnet18 at k = 64


def image_chunk(x: torch.Tensor, width: int, members: int = 1) -> int | None:
    """Images per evaluation chunk for an image model: the first layer's activations (`width`
    channels per member at the input's resolution) within `ACT_BUDGET_IMAGES`; None for flat
    inputs."""
    if x.dim() != 4:
        return None
    return max(64, ACT_BUDGET_IMAGES // (members * width * x.shape[2] * x.shape[3]))


class Evaluation:
    """The solo trainer's evaluation (mixed into `trainer.Trainer`: it reads the trainer's model,
    splits, `_amp`, `_graph_runner`, `norms`)."""

    @torch.inference_mode()
    def _predict(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross-entropy and argmax predictions over a whole split, in chunks."""
        loss = torch.zeros((), device=self.device)
        preds = []
        step = image_chunk(x, self.cfg.model.width) or EVAL_CHUNK
        for i in range(0, len(y), step):
            with self._amp():
                out = self.model(x[i : i + step])
            out = out.float()
            loss = loss + F.cross_entropy(out, y[i : i + step], reduction="sum")
            preds.append(out.argmax(1))
        return loss, torch.cat(preds)

    def _noise_counts(self) -> tuple[Any, Any]:
        """The clean and the noisy training examples' counts (at least 1): the noise metrics'
        denominators (a stack: each member's, `[G]` tensors)."""
        return max(self.x_train.shape[0] - self.n_changed, 1), max(self.n_changed, 1)

    def _eval_tensors(self, with_test: bool = False) -> tuple[list[str], torch.Tensor]:
        """The metrics of `evaluate()` (with the test split's if `with_test`) as one device tensor,
        `[keys]`, or `[keys, G]` for a stack, whose `_predict` gives each member's (no host sync:
        graphable)."""
        self.model.eval()
        tl, tp = self._predict(self.x_train, self.y_train)
        vl, vp = self._predict(self.x_val, self.y_val)
        n, nv = self.x_train.shape[0], self.x_val.shape[0]
        self._train_correct = tp == self.y_train  # (the per-example counters read it: core/examples.py)
        wrong = (tp != self.y_train).float()
        vals = [tl / n, wrong.mean(-1), vl / nv, (vp != self.y_val).float().mean(-1)]
        keys = ["train_loss", "train_err", "val_loss", "val_err"]
        if with_test:
            sl, sp = self._predict(self.x_test, self.y_test)
            vals += [sl / self.x_test.shape[0], (sp != self.y_test).float().mean(-1)]
            keys += ["test_loss", "test_err"]
        if self.track_noise:
            n_clean, n_noisy = self._noise_counts()
            vals.append((wrong * ~self.changed).sum(-1) / n_clean)
            keys.append("train_clean_err")
            if self.n_changed:
                ch = self.changed.float()
                vals.append(((tp == self.y_train).float() * ch).sum(-1) / n_noisy)
                vals.append(((tp == self.y_clean).float() * ch).sum(-1) / n_noisy)
                keys += ["noisy_memorized", "noisy_true_acc"]
        if self.ratt:
            _, rp = self._predict(self.x_random, self.y_random)
            vals.append((rp != self.y_random).float().mean(-1))
            keys.append("ratt_random_err")
        return keys, torch.stack(vals)

    def _graphed_eval(self, key: Any, fn: Callable[[], tuple[Any, torch.Tensor]]) -> tuple[Any, list]:
        """`fn()`'s keys and values, through a CUDA graph where graphs are on; one host copy."""
        graphs = self._graph_runner()
        def run() -> tuple[Any, torch.Tensor]:  # (a replayed graph refills the tensors its recording made)
            out, self._correct_at[key] = fn(), self._train_correct
            return out
        keys, vals = graphs.evaluate(key, run) if graphs is not None else run()
        self._train_correct = self._correct_at.get(key)
        return keys, vals.tolist()

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float | None]:
        """Loss and error on the full training and validation splits, in eval mode, with one
        device-to-host copy."""
        keys, vals = self._graphed_eval("eval", self._eval_tensors)
        out: dict[str, float | None] = dict(zip(keys, vals))
        if self.ratt:
            r = self.cfg.ratt
            out["ratt_bound"] = bounds.ratt_bound(out["train_err"], out["ratt_random_err"], len(self.y_train),
                                                  len(self.y_random), r.delta, self.data.num_classes)
        if self.track_noise and not self.n_changed:
            out["noisy_memorized"] = out["noisy_true_acc"] = None
        out.update({k: v[0] for k, v in self.norms.measure().items()})
        return out

    @torch.inference_mode()
    def evaluate_test(self) -> tuple[float, float]:
        self.model.eval()
        loss, pred = self._predict(self.x_test, self.y_test)
        n = len(self.y_test)
        tl, te = torch.stack([loss / n, (pred != self.y_test).float().mean()]).tolist()
        return tl, te

    def _final_test(self, summary: dict, best_state, would_keep, would_keep_epoch) -> None:
        """Evaluate the test split once, on the weights that are kept."""
        if summary["epochs_run"] == 0:
            return
        es = self.cfg.early_stopping
        observe = self.es.observe  # early stopping's own setting: a live tweak may have changed the config's
        if observe and would_keep is not None:
            # what early stopping would have kept: the cost or saving of stopping, measured
            final = self._snapshot()
            self.model.load_state_dict(would_keep)
            summary["would_stop_best_epoch"] = would_keep_epoch
            summary["would_stop_test_loss"], summary["would_stop_test_err"] = self.evaluate_test()
            self.model.load_state_dict(final)
        restore = es.enabled and es.restore_best and best_state is not None
        if observe or restore:
            summary["final_test_loss"], summary["final_test_err"] = self.evaluate_test()
        if restore:
            self.model.load_state_dict(best_state)
            summary["restored_best"] = True
        summary["test_loss"], summary["test_err"] = self.evaluate_test()


class MemberEvaluation(Evaluation):
    """The stacked trainer's evaluation (mixed into `multi.MultiTrainer`): `Evaluation`'s metrics
    from every member's predictions at once."""

    def _chunk(self, x: torch.Tensor) -> int:
        images = image_chunk(x, max(getattr(self.model, "widths", None) or [self.cfg.model.width]), self.G)
        if images is not None:
            return images
        if not isinstance(self.model, GroupedMLP):  # the 1-D CNN: activations are channels x sequence length
            widest = self.cfg.model.channels * self.data.input_dim
        else:
            widest = max([self.data.num_classes, self.data.input_dim] + [bk.width for bk in self.model.buckets])
        return max(256, ACT_BUDGET // (self.G * widest))

    @torch.inference_mode()
    def _predict(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member summed cross-entropy `[G]` and predictions `[G, N]`; `y` is `[N]` (shared
        labels) or `[G, N]` (each member's own)."""
        G, C = self.G, self.data.num_classes
        loss = torch.zeros(G, device=self.device)
        preds = []
        step = self._chunk(x)
        for i in range(0, x.shape[0], step):
            with self._amp():
                out = self.model(x[i : i + step])
            out = out.float()  # [G, b, C]
            yc = y[..., i : i + step]
            yc = yc.expand(G, -1) if yc.dim() == 1 else yc
            ce = F.cross_entropy(out.reshape(-1, C), yc.reshape(-1), reduction="none").view(G, -1)
            loss = loss + ce.sum(1)
            preds.append(out.argmax(-1))
        return loss, torch.cat(preds, dim=1)

    def _noise_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (~self.changed).float().sum(1).clamp(min=1), self.n_changed_g.clamp(min=1)

    @torch.inference_mode()
    def member_metrics(self, with_test: bool = False) -> dict[str, list]:
        """Every member's metrics on the full splits (lists of length G), one host copy."""
        keys, vals = self._graphed_eval(("members", with_test), lambda: self._eval_tensors(with_test))
        n = self.x_train.shape[0]
        out: dict[str, list] = dict(zip(keys, vals))
        out["gap_loss"] = [v - t for v, t in zip(out["val_loss"], out["train_loss"])]
        out["gap_err"] = [v - t for v, t in zip(out["val_err"], out["train_err"])]
        out.update(self.norms.measure())
        if self.ratt:
            r = self.cfg.ratt
            out["ratt_bound"] = [bounds.ratt_bound(e, re, n, self.x_random.shape[0], r.delta, self.data.num_classes)
                                 for e, re in zip(out["train_err"], out["ratt_random_err"])]
        return out

    def evaluate(self) -> dict[str, float | None]:
        per = self.member_metrics()
        self.last_members = per
        out: dict[str, float | None] = {}
        spread: dict[str, Any] = {"members": self.G}
        for k, vs in per.items():
            mean = float(sum(vs) / len(vs))
            out[k] = mean
            if k in SPREAD_KEYS:
                finite = [v for v in vs if math.isfinite(v)]
                spread[f"{k}_min"] = min(vs)
                spread[f"{k}_max"] = max(vs)
                spread[f"{k}_std"] = float(np.std(finite)) if len(finite) == len(vs) else float("nan")
        if self.track_noise and not self.n_changed:
            out["noisy_memorized"] = out["noisy_true_acc"] = None
        self._spread = spread
        return out

    @torch.inference_mode()
    def evaluate_test(self) -> tuple[float, float]:
        self.model.eval()
        loss, pred = self._predict(self.x_test, self.y_test)
        n = self.x_test.shape[0]
        tl, te = torch.stack([loss / n, (pred != self.y_test).float().mean(1)]).tolist()
        self.test_members = (tl, te)
        return float(np.mean(tl)), float(np.mean(te))

    def _final_test(self, summary: dict, best_state, would_keep, would_keep_epoch) -> None:
        super()._final_test(summary, best_state, would_keep, would_keep_epoch)
        summary["members"] = self.G
        summary["member_seeds"] = [s for s, _ in self.members]
        if self.test_members is not None and summary.get("test_err") is not None:
            summary["test_err_members"] = self.test_members[1]
            summary["test_loss_members"] = self.test_members[0]
            summary["test_err_std"] = float(np.std(self.test_members[1]))
            summary["test_err_min"] = min(self.test_members[1])
            summary["test_err_max"] = max(self.test_members[1])
