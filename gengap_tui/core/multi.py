"""Several models of one config trained together: `run.seeds = K` seeds (MLP: `models.GroupedMLP`,
1-D CNN: `models.StackedCNN1D`, image networks: `models.Stacked2D`, both with grouped
convolutions), and the members of a width sweep (`sweep.py`: MLP and image networks).

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

from typing import Any

import torch

from .data import Dataset, load
from .evaluation import SPREAD_KEYS, MemberEvaluation  # noqa: F401 - SPREAD_KEYS: importable here too
from .models import GroupedMLP, Stacked2D, StackedCNN1D, build_model, conv_format, is_image_model, width_cost
from .trainer import Trainer


def _member_config(cfg, seed: int, width: int):
    return cfg.model_copy(update={"seed": seed, "model": cfg.model.model_copy(update={"width": width})})


class MultiTrainer(MemberEvaluation, Trainer):
    """`Trainer` for a stack of members: it overrides the set-up hooks (`_load_data`,
    `_build_model`, `_to_device`, `_make_generators`, `_param_groups`), the data order and the
    evaluation (`evaluation.MemberEvaluation`); `Trainer.__init__` and `Trainer.run` do the rest."""

    def __init__(self, config, device: str | torch.device | None = None, data: Dataset | None = None,
                 members: list[tuple[int, int]] | None = None, max_waste: float = 0.25, load_fn=None):
        if config.model.kind == "cnn1d" and len({w for _, w in (members or [])}) > 1:
            raise ValueError("model.kind: members of different widths need 'mlp', 'cnn2d' or 'resnet18'")
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
        d, cfg = self.data, self.cfg
        for s, w in self.members:
            torch.manual_seed(s)  # exactly what a solo Trainer does before building its model
            models.append(build_model(_member_config(cfg, s, w), d.input_dim, d.num_classes, d.image_shape))
        if cfg.model.kind == "mlp":
            self.model = GroupedMLP(models, cfg.model.activation, cfg.regularization.dropout,
                                    self._max_waste).to(self.device)
        elif is_image_model(cfg.model.kind):  # grouped convolutions, width buckets padded to their widest
            rebuild = lambda w: build_model(_member_config(cfg, cfg.seed, w), d.input_dim, d.num_classes,  # noqa: E731
                                            d.image_shape)
            cost = width_cost(cfg.model.kind, d.input_dim, cfg.model.depth, d.num_classes, d.image_shape)
            self.model = Stacked2D(models, rebuild, cost, self._max_waste).to(self.device,
                                                                               memory_format=conv_format(self.device))
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
        """The splits with every member's labels (`y_train` is `[G, N]`, RATT's `y_random` `[G, m]`)."""
        super()._to_device(members=self._datasets)
        self.n_changed_g = self.changed.sum(1)  # [G]
        self.n_changed = int(self.n_changed_g.min())

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
        n, G = len(self.batches), self.G
        perms = torch.stack([torch.randperm(n, device=self.device, generator=self.gens[s]) for s in self._seeds])
        return perms[self._seed_index] if len(self._seeds) > 1 else perms.expand(G, n)

    def _draw_augment(self, gen=None) -> None:  # noqa: ARG002
        """Each member's draws from its seed's generator, after its permutation: a member draws
        exactly its solo run's crops and flips."""
        self.batches.redraw([self.gens[s] for s in self._seeds], self._seed_index if len(self._seeds) > 1 else None)

    def _row_extras(self) -> dict[str, Any]:
        return dict(self._spread)

    def member_state_dict(self, g: int) -> dict[str, torch.Tensor]:
        """Member `g`'s weights as an ordinary solo model's state dict (loadable into `models.MLP`,
        `CNN1D`, `CNN2D` or `PreActResNet18`)."""
        return self.model.member(g).state_dict()
