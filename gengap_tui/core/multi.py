"""Several models of one config trained together: `run.seeds = K` seeds (MLP: `stacked.GroupedMLP`,
1-D CNN: `stacked.StackedCNN1D` with grouped convolutions), and the members of a width sweep
(`sweep.py`, MLP).

    from gengap_tui.config import build
    from gengap_tui.core.multi import MultiTrainer
    summary = MultiTrainer(build({}, ["run.seeds=5", "optim.epochs=20"])).run(on_epoch=print)

Each member is `(seed, width)`. A member starts from exactly the weights a solo `Trainer` with that
seed and width would build, draws its data order from its own generator seeded like the solo
run's, and trains on its own label-noise draw (and RATT random labels) for that seed; so member k
follows the solo run of seed k (up to floating-point summation order in the batched kernels).
Dropout and input noise are drawn for the whole stack at once, so with those on the members are
still independent runs but not the solo runs' exact draws.

Metrics: every metrics.jsonl key is the *mean over members* (early stopping follows the mean),
and for each key `k` there are `k_min`, `k_max` and `k_std` across members; `members` says how
many. The summary's `test_err` is the mean of the members' test errors (each on its own kept
weights: with restore-best, the mean curve's best epoch), plus `test_err_members`, `test_err_std`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import bounds
from .data import Dataset, load
from .models import build_model
from .stacked import GroupedMLP, StackedCNN1D
from .trainer import Cancelled, Trainer

SPREAD_KEYS = ("train_loss", "train_err", "val_loss", "val_err", "gap_loss", "gap_err", "train_clean_err",
               "noisy_memorized", "noisy_true_acc", "ratt_random_err", "ratt_bound", "weight_norm",
               "spectral_norm_product")
ACT_BUDGET = 1 << 24  # elements of one evaluation activation: bounds the chunk size


def _member_config(cfg, seed: int, width: int):
    return cfg.model_copy(update={"seed": seed, "model": cfg.model.model_copy(update={"width": width})})


class MultiTrainer(Trainer):
    """`Trainer` for a stack of members: it overrides the set-up hooks (`_load_data`,
    `_build_model`, `_to_device`, `_make_generators`, `_param_groups`) and the per-epoch work;
    `Trainer.__init__` and `Trainer.run` do the rest."""

    def __init__(self, config, device: str | torch.device | None = None, data: Dataset | None = None,
                 members: list[tuple[int, int]] | None = None, max_waste: float = 0.25, load_fn=None):
        if config.model.kind != "mlp" and len({w for _, w in (members or [])}) > 1:
            raise ValueError("model.kind: members of different widths need 'mlp'")
        self.members = list(members or [(config.seed + k, config.model.width) for k in range(config.run.seeds)])
        self.G = len(self.members)
        self._seeds = sorted({s for s, _ in self.members})
        self._max_waste = max_waste
        self._load_fn = load_fn or load  # a Ray unit's: the datasets its driver loaded (core/units.py)
        self._spread: dict[str, Any] = {}
        self.last_members: dict[str, list] = {}
        self.test_members: tuple[list[float], list[float]] | None = None
        super().__init__(config, device, data)

    # ----------------------------------------------------------------------------- setup hooks
    def _load_data(self, data: Dataset | None) -> None:
        """One dataset per seed (its own label-noise and RATT draws); `self.data` is the first
        member's (inputs and the val / test splits are the same for every seed)."""
        datasets: dict[int, Dataset] = {}
        for s in self._seeds:
            if data is not None and s == self.cfg.seed:
                datasets[s] = data
            else:
                datasets[s] = self._load_fn(self.cfg.model_copy(update={"seed": s}))
        self.data = datasets[self.members[0][0]]
        self._datasets = [datasets[s] for s, _ in self.members]

    def _build_model(self) -> None:
        models = []
        for s, w in self.members:
            torch.manual_seed(s)  # exactly what a solo Trainer does before building its model
            models.append(build_model(_member_config(self.cfg, s, w), self.data.input_dim, self.data.num_classes))
        cfg = self.cfg
        if cfg.model.kind == "mlp":
            self.model = GroupedMLP(models, cfg.model.activation, cfg.regularization.dropout,
                                    self._max_waste).to(self.device)
        else:  # the 1-D CNN: grouped convolutions, one group per seed
            self.model = StackedCNN1D(models, cfg.model.activation, cfg.regularization.dropout).to(self.device)
        self.member_params = self.model.member_params()
        self.n_params = self.member_params[0] if len(set(self.member_params)) == 1 else self.member_params

    def _make_generators(self) -> None:
        """One data-order generator per seed, seeded like the solo run's."""
        self.gens: dict[int, torch.Generator] = {}
        for s in self._seeds:
            g = torch.Generator(device=self.device)
            g.manual_seed(s)
            self.gens[s] = g
        self.gen = None
        self._seed_index = torch.tensor([self._seeds.index(s) for s, _ in self.members], device=self.device)

    def _to_device(self) -> None:
        d, dev = self.data, self.device
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)  # noqa: E731
        ds = self._datasets
        self.x_train = t(d.x_train)
        self.y_train = t(np.stack([x.y_train for x in ds]))  # [G, N]
        self.y_clean = t(np.stack([x.y_train_clean for x in ds]))
        self.changed = t(np.stack([x.changed for x in ds]))
        self.y_train_ref = self.y_train[0]
        self.x_val, self.y_val = t(d.x_val), t(d.y_val)
        self.x_test, self.y_test = t(d.x_test), t(d.y_test)
        self.n_changed_g = self.changed.sum(1)  # [G]
        self.n_changed = int(self.n_changed_g.min())
        self.track_noise = self.cfg.noise.label_noise > 0
        self.ratt = d.x_random is not None
        if self.ratt:
            self.x_random = t(d.x_random)
            self.y_random = t(np.stack([x.y_random for x in ds]))  # [G, m]
            self.x_fit = torch.cat([self.x_train, self.x_random])
            self.y_fit = torch.cat([self.y_train, self.y_random], dim=1)
        else:
            self.x_fit, self.y_fit = self.x_train, self.y_train
        self.ratt_by_epoch = {}

    def _param_groups(self) -> tuple[list, list]:
        # stacked biases have 3 dims too: the model says which tensors are weights
        return self.model.decay_parameters(), self.model.bias_parameters()

    def _gen_state(self) -> Any:
        return torch.stack([self.gens[s].get_state() for s in self._seeds])

    def _set_gen_state(self, state: Any) -> None:
        for s, st in zip(self._seeds, state):
            self.gens[s].set_state(st.clone())

    # ----------------------------------------------------------------------------- epochs
    def _train_epoch(self, gen=None) -> None:  # noqa: ARG002 - each seed has its own generator
        super()._train_epoch(None)

    def _epoch_order(self, gen=None) -> torch.Tensor:  # noqa: ARG002
        """`[G, n]`: each member's data order, from its seed's generator."""
        n, G = self.y_fit.shape[1], self.G
        perms = torch.stack([torch.randperm(n, device=self.device, generator=self.gens[s]) for s in self._seeds])
        return perms[self._seed_index] if len(self._seeds) > 1 else perms.expand(G, n)

    def _epoch_steps(self, perm: torch.Tensor, check_stop: bool) -> None:
        n, bs, G = self.y_fit.shape[1], self.cfg.optim.batch_size, self.G
        reg = self.cfg.regularization
        sgd_decoupled = self.cfg.optim.optimizer == "sgd" and self.decoupled and self.weight_decay > 0
        C = self.data.num_classes
        for i in range(0, n, bs):
            if check_stop and self._stop_requested:
                raise Cancelled
            idx = perm[:, i : i + bs]  # [G, B]
            xb = self.x_fit[idx]  # [G, B, D]
            yb = torch.gather(self.y_fit, 1, idx)
            if reg.input_noise > 0:
                xb = xb + reg.input_noise * torch.randn_like(xb)
            with self._amp():
                out = self.model(xb).float()
            # the sum of the members' mean losses: each member gets exactly its own gradient
            loss = F.cross_entropy(out.reshape(-1, C), yb.reshape(-1)) * G
            self._backward_step(loss, sgd_decoupled)

    def _chunk(self) -> int:
        if isinstance(self.model, StackedCNN1D):  # activations: channels x sequence length
            widest = self.cfg.model.channels * self.data.input_dim
        else:
            widest = max([self.data.num_classes, self.data.input_dim] + [bk.width for bk in self.model.buckets])
        return max(256, ACT_BUDGET // (self.G * widest))

    @torch.inference_mode()
    def _predict_members(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member summed cross-entropy `[G]` and predictions `[G, N]`; `y` is `[N]` (shared
        labels) or `[G, N]` (each member's own)."""
        G, C = self.G, self.data.num_classes
        loss = torch.zeros(G, device=self.device)
        preds = []
        step = self._chunk()
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

    def _member_tensors(self, with_test: bool) -> tuple[list[str], torch.Tensor]:
        """Every member's metrics as one `[keys, G]` device tensor (no host sync: graphable)."""
        self.model.eval()
        tl, tp = self._predict_members(self.x_train, self.y_train)
        vl, vp = self._predict_members(self.x_val, self.y_val)
        n, nv = self.x_train.shape[0], self.x_val.shape[0]
        self._train_correct = tp == self.y_train  # (the per-example counters read it: core/examples.py)
        wrong = (tp != self.y_train).float()
        vals = [tl / n, wrong.mean(1), vl / nv, (vp != self.y_val).float().mean(1)]
        keys = ["train_loss", "train_err", "val_loss", "val_err"]
        if with_test:
            sl, sp = self._predict_members(self.x_test, self.y_test)
            vals += [sl / self.x_test.shape[0], (sp != self.y_test).float().mean(1)]
            keys += ["test_loss", "test_err"]
        if self.track_noise:
            clean = (~self.changed).float()
            vals.append((wrong * clean).sum(1) / clean.sum(1).clamp(min=1))
            keys.append("train_clean_err")
            if self.n_changed:
                ch = self.changed.float()
                nch = self.n_changed_g.clamp(min=1)
                vals.append(((tp == self.y_train).float() * ch).sum(1) / nch)
                vals.append(((tp == self.y_clean).float() * ch).sum(1) / nch)
                keys += ["noisy_memorized", "noisy_true_acc"]
        if self.ratt:
            _, rp = self._predict_members(self.x_random, self.y_random)
            vals.append((rp != self.y_random).float().mean(1))
            keys.append("ratt_random_err")
        return keys, torch.stack(vals)

    @torch.inference_mode()
    def member_metrics(self, with_test: bool = False) -> dict[str, list]:
        """Every member's metrics on the full splits (lists of length G), one host copy."""
        keys, vals = self._graphed_eval(("members", with_test), lambda: self._member_tensors(with_test))
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

    def _row_extras(self) -> dict[str, Any]:
        return dict(self._spread)

    @torch.inference_mode()
    def evaluate_test(self) -> tuple[float, float]:
        self.model.eval()
        loss, pred = self._predict_members(self.x_test, self.y_test)
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

    def member_state_dict(self, g: int) -> dict[str, torch.Tensor]:
        """Member `g`'s weights as an ordinary MLP state dict (loadable into `models.MLP`)."""
        return self.model.member(g).state_dict()
