"""Which trainer a config gets: one model (`trainer.Trainer`), or `run.seeds` seeds stacked into one
(`multi.MultiTrainer`). Its own module so that `trainer.py` never imports `multi.py` (which builds
on it).

    from gengap_tui.core.factory import make_trainer
    summary = make_trainer(cfg).run(on_epoch=print)
"""

from __future__ import annotations

import torch

from .data import Dataset
from .multi import MultiTrainer
from .trainer import Trainer


def make_trainer(config, device: str | torch.device | None = None, data: Dataset | None = None,
                 load_fn=None) -> Trainer:
    """The trainer for a config: one model, or `run.seeds` seeds stacked into one (`multi.py`, which
    loads the other seeds' data with `load_fn`, default `data.load`)."""
    if config.run.seeds > 1:
        return MultiTrainer(config, device, data, load_fn=load_fn)
    return Trainer(config, device, data)
