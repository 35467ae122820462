"""The training loop: data resident on the device, a fresh permutation per epoch, full-split
evaluation in eval mode every epoch, early stopping (docs/ARCHITECTURE.md, "Early stopping"), one
host copy of the epoch's numbers (the norm-based measures, `norms.py`, add their own syncs).

    from gengap_tui.config import build
    from gengap_tui.core.trainer import Trainer
    summary = Trainer(build({}, ["optim.epochs=20"])).run(on_epoch=print)

`run()` never raises for a training failure: it returns the summary with `status` one of
completed | early_stopped | diverged | cancelled | failed (docs/ARCHITECTURE.md, "Run directory")
and a `reason`. `factory.make_trainer` picks this trainer or the stacked one (`multi.py`).
"""

from __future__ import annotations

import math
import platform
import threading
import time
import traceback
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..protocol import FIT_ERR, TWEAKABLE, USER_STOP, check_tweaks  # noqa: F401 - TWEAKABLE: importable here too
from . import baselines, devices
from .batches import Batches, DeviceSplits
from .data import Dataset, load
from .early_stopping import EarlyStopping
from .checkpoints import Checkpoints, Resumable
from .controls import Controls
from .evaluation import EVAL_CHUNK, Evaluation  # noqa: F401 - EVAL_CHUNK: importable here too
from .examples import ExampleCounters
from .graphs import EpochGraphs
from .models import build_model, conv_format, count_params, is_image_model
from .norms import NormTracker
from .schedules import lr_factor
from .sysmetrics import Sampler


class Cancelled(Exception):
    """Raised inside the loop when a stop was requested from outside."""


def pick_device(name: str) -> torch.device:
    """auto | cpu | cuda | cuda:N (`devices.resolve`: a GPU that is not there is a ValueError)."""
    return devices.resolve(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda:{device.index or 0})"
    n = torch.get_num_threads()
    return f"CPU ({platform.machine() or 'unknown'}, {n} thread{'s' * (n != 1)})"


def is_oom(exc: BaseException) -> bool:
    """Out of memory: the device's (torch), the host's (MemoryError), or an allocator's message."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


# The wording a run's end is told in, the one loop's and a grouped sweep's (core/units.py) alike.
def cancel_reason(stop_reason: str | None, epochs_run: int) -> str:
    """A cancelled run's reason: who stopped it and the epoch the stop cut short, the one after the
    last finished, whether the stop came mid-epoch (Ctrl+C) or was seen at the epoch's end (f7):
    "N epochs ... during epoch N+1"."""
    return f"{stop_reason or USER_STOP} during epoch {epochs_run + 1}"


def failure_reason(exc: BaseException, device: str, in_baselines: bool = False) -> str:
    """A failed run's reason: the exception, or what to lower when it is out of memory (the
    baselines' own settings when they were being computed)."""
    if is_oom(exc) and in_baselines:
        return (f"out of memory on {device} computing the baselines: turn off baselines.knn and "
                "baselines.ntk, or lower data.n_train")
    if is_oom(exc):
        return f"out of memory on {device}: lower optim.batch_size or model.width"
    return f"{type(exc).__name__}: {exc}"


def divergence(m: dict[str, Any], epoch: int) -> tuple[str, str] | None:
    """(the loss that is not finite, the reason) when the training or validation loss of the
    metrics `m` is not finite (the run, or a grouped sweep's value, has diverged); else None."""
    bad = next((k for k in ("train_loss", "val_loss") if not _finite(m[k])), None)
    return None if bad is None else (bad, f"{bad} became {m[bad]} at epoch {epoch}")


class Trainer(Controls, Resumable, Evaluation):
    """One model. `__init__` is a template: the shared set-up, around the hooks `_load_data`,
    `_build_model`, `_make_optimizer`, `_to_device`, `_make_generators` that `MultiTrainer`
    overrides (their order is the order of the random draws: keep it). The batches it trains on
    come from `batches.Batches`, its metrics from `evaluation.Evaluation`, its resumable state
    from `checkpoints.Resumable`, its live tweaks and stops from `controls.Controls`."""

    G = 1  # models trained at once (`MultiTrainer`: one per member)
    track_examples = True  # per-example counters (core/examples.py); bench/examples_cost.py turns them off

    def __init__(self, config, device: str | torch.device | None = None, data: Dataset | None = None):
        self.cfg = config
        self.device = torch.device(device) if isinstance(device, torch.device) else pick_device(device or config.device)
        self._load_data(data)
        self._pending: dict[str, Any] = {}  # tweaks queued for the next epoch
        self._lock = threading.Lock()
        self._stop_requested = False
        self._stop_reason: str | None = None
        self._build_model()  # seeds torch first: a model's initial weights depend on its seed only
        self.base_lr = config.optim.lr
        self.sched = {"step_factor": config.optim.step_factor, "exp_factor": config.optim.exp_factor}  # tweakable
        self.weight_decay = config.regularization.weight_decay
        self.es = EarlyStopping.from_config(config.early_stopping)
        self._make_optimizer()
        self._to_device()
        self._make_generators()
        self.norms = NormTracker(self.model, self.G)  # weight_norm, spectral_norm_product per epoch
        # which training examples are learned when (examples.npz), from evaluate()'s predictions
        self.examples = ExampleCounters((self.G, self.x_train.shape[0]), self.device) if self.track_examples else None
        self._train_correct: torch.Tensor | None = None  # the last evaluation's prediction == label
        self._correct_at: dict[Any, torch.Tensor] = {}  # the same, per evaluation graph
        self.best_state: dict[str, torch.Tensor] | None = None
        self.would_keep: dict[str, torch.Tensor] | None = None
        self.would_keep_epoch: int | None = None
        self.start_epoch = 0
        self._last_row: dict[str, Any] = {}
        self.epochs_to_fit: int | None = None  # the first epoch with train_err <= FIT_ERR

    # ----------------------------------------------------------------------------- setup hooks
    def _load_data(self, data: Dataset | None) -> None:
        """`self.data`: the dataset given, or the config's."""
        self.data = data if data is not None else load(self.cfg)

    def _build_model(self) -> None:
        """`self.model` on the device (built right after `torch.manual_seed(seed)`) and `self.n_params`."""
        torch.manual_seed(self.cfg.seed)
        self.model = build_model(self.cfg, self.data.input_dim, self.data.num_classes,
                                 self.data.image_shape).to(self.device)
        if self.images:
            self.model = self.model.to(memory_format=conv_format(self.device))
        self.n_params = count_params(self.model)

    @property
    def images(self) -> bool:
        """Whether the model reads images `(N, C, H, W)` (`batches.DeviceSplits`)."""
        return is_image_model(self.cfg.model.kind)

    def _make_generators(self) -> None:
        """The data-order generator, seeded with the run's seed."""
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(self.cfg.seed)

    def _to_device(self, members: list | None = None) -> None:
        """The splits on the device (`batches.DeviceSplits`: `self.x_train`, `self.y_fit`, …) and
        the `Batches` training takes from them."""
        d = self.data
        splits = DeviceSplits.build(d, self.device, self.images, members)
        self.__dict__.update(vars(splits))
        self.batches = Batches(splits, self.cfg)
        self.y_train_ref = self.y_train if members is None else self.y_train[0]  # the labels the baselines use
        self.n_changed = int(d.changed.sum())
        self.track_noise = self.cfg.noise.label_noise > 0
        self.ratt = d.x_random is not None  # RATT: its randomly labelled points are trained alongside
        self.ratt_by_epoch: dict[int, tuple[float, float]] = {}

    @property
    def decoupled(self) -> bool:
        o = self.cfg.optim.optimizer
        return o == "adamw" or self.cfg.regularization.decoupled

    def _param_groups(self) -> tuple[list, list]:
        """(weights, biases): L2 / L1 act on weights (tensors of 2+ dims), not on biases."""
        params = list(self.model.parameters())
        return [p for p in params if p.ndim > 1], [p for p in params if p.ndim <= 1]

    def _make_optimizer(self) -> None:
        self.decay_params, other = self._param_groups()
        o = self.cfg.optim
        coupled_wd = 0.0 if self.decoupled else self.weight_decay
        groups = [{"params": self.decay_params, "weight_decay": coupled_wd},
                  {"params": other, "weight_decay": 0.0}]
        if o.optimizer == "sgd":
            cls, kw = torch.optim.SGD, {"momentum": o.momentum}
        elif self.decoupled:
            # AdamW's decay is lr * wd * w per step, decoupled from the adaptive gradient
            groups[0]["weight_decay"] = self.weight_decay
            cls, kw = torch.optim.AdamW, {}
        else:
            cls, kw = torch.optim.Adam, {}
        try:  # fused kernels: measured ~20% faster per CPU epoch than the default (bench/)
            self.opt = cls(groups, lr=o.lr, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError):
            self.opt = cls(groups, lr=o.lr, **kw)

    def _amp(self) -> torch.autocast:
        """bfloat16 autocast for forward passes when `run.precision = "bfloat16"` (weights, optimizer
        state and the loss stay float32); a no-op context otherwise."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.run.precision == "bfloat16",
                              cache_enabled=not self._capturing)

    def _lr_at(self, epoch: int) -> float:
        """`lr` (live-tweakable) times the schedule's factor at `epoch` (docs/ARCHITECTURE.md,
        "Learning-rate schedules")."""
        return self.base_lr * lr_factor(self.cfg.optim, epoch, self.sched)

    # ----------------------------------------------------------------------------- epochs
    def _train_epoch(self, gen: torch.Generator) -> None:
        self.model.train()
        perm = self._epoch_order(gen)
        if self.batches.augmenting:  # this epoch's crops and flips, from the same generator(s)
            self._draw_augment(gen)
        graphs = self._graph_runner()
        if graphs is not None:
            graphs.train_epoch(perm)
        else:
            self._epoch_steps(perm, check_stop=True)

    def _epoch_order(self, gen: torch.Generator) -> torch.Tensor:
        """This epoch's data order, from the run's data-order generator."""
        return torch.randperm(len(self.batches), device=self.device, generator=gen)

    def _draw_augment(self, gen: torch.Generator) -> None:
        """This epoch's augmentation draws, one per example, from the data-order generator right
        after the permutation: the same seed gives the same augmented batches."""
        self.batches.redraw([gen])

    def _epoch_steps(self, perm: torch.Tensor, check_stop: bool) -> None:
        """One pass over the data in the order `perm` (`[n]`, or `[G, n]`: one per stacked member):
        device work only, no host sync, so that it can also be recorded as a CUDA graph
        (`graphs.py`; then `check_stop` is False)."""
        n, bs, G = len(self.batches), self.cfg.optim.batch_size, self.G
        sgd_decoupled = self.cfg.optim.optimizer == "sgd" and self.decoupled and self.weight_decay > 0
        for i in range(0, n, bs):
            if check_stop and self._stop_requested:
                raise Cancelled
            xb, yb = self.batches.take(perm[..., i : i + bs])
            with self._amp():
                out = self.model(xb)
            loss = F.cross_entropy(out.float().reshape(-1, out.shape[-1]), yb.reshape(-1))
            if G > 1:  # the sum of the members' mean losses: each member gets exactly its own gradient
                loss = loss * G
            self._backward_step(loss, sgd_decoupled)

    # ----------------------------------------------------------------------------- CUDA graphs
    _capturing = False  # True while graphs.py records a graph (autocast must not cache then)
    _in_baselines = False  # True while `_start` computes the baselines (an OOM there says so)
    _graphs: EpochGraphs | None = None

    def _graphs_wanted(self) -> bool:
        """CUDA graphs (`run.cuda_graphs = "auto"`): on a CUDA device, with a constant learning
        rate (a cosine schedule changes the rate every epoch, which a graph bakes in)."""
        return (self.device.type == "cuda" and self.cfg.run.cuda_graphs == "auto"
                and self.cfg.optim.schedule == "constant" and self.cfg.optim.warmup_epochs == 0)

    def _epochs_atomic(self) -> bool:
        """Whether an epoch always runs to its end once started (a graphed epoch cannot stop
        between batches), so that any state seen between epochs is an epoch boundary. Not once a
        recording has failed: the epochs then run eagerly and a stop can cut one short."""
        return self._graphs_wanted() and not (self._graphs is not None and self._graphs.failed)

    def _graph_runner(self) -> EpochGraphs | None:
        if self._graphs is None and self._graphs_wanted():
            self._graphs = EpochGraphs(self)
        if self._graphs is not None and self._graphs.failed:
            return None
        return self._graphs

    def _graph_key(self) -> tuple:
        """The numbers a recorded epoch bakes in: a change (a live tweak) records a new graph."""
        return (tuple((g["lr"], g["weight_decay"]) for g in self.opt.param_groups), self.weight_decay)

    def _backward_step(self, loss: torch.Tensor, sgd_decoupled: bool) -> None:
        """L1 penalty, backward pass, decoupled SGD decay, optimizer step (one training step's tail,
        shared with the stacked trainer)."""
        l1 = self.cfg.regularization.l1
        if l1 > 0:
            loss = loss + l1 * sum(p.abs().sum() for p in self.decay_params)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if sgd_decoupled:
            with torch.no_grad():
                torch._foreach_mul_(self.decay_params, 1.0 - self.opt.param_groups[0]["lr"] * self.weight_decay)
        self.opt.step()

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # ----------------------------------------------------------------------------- run
    def run(self, on_epoch: Callable[[dict], Any] | None = None,
            on_event: Callable[[dict], Any] | None = None,
            on_checkpoint: Callable[[dict], Any] | None = None,
            checkpoint_every_s: float = 5.0) -> dict[str, Any]:
        """Train. `on_checkpoint(state)` (if given) receives a resumable state at most every
        `checkpoint_every_s` seconds and once more when the run ends, always at an epoch
        boundary (a run cancelled mid-epoch resumes from the last finished epoch)."""
        t0 = time.perf_counter()

        def emit(kind: str, **fields: Any) -> None:
            if on_event is not None:
                on_event({"event": kind, "time": time.time(), **fields})

        summary = self._skeleton()
        saves = Checkpoints(self, on_checkpoint, checkpoint_every_s)
        last: dict[str, Any] = dict(self._last_row)
        epoch = self.start_epoch
        self._sys: Sampler | None = None
        try:
            # start: the sampler, `started` (and `resumed_run`), the baselines (k-NN / NTK can run
            # out of memory: inside the try, so that run() still ends with a summary)
            self._start(emit, summary)
            for epoch in range(self.start_epoch + 1, self.cfg.optim.epochs + 1):
                # tweaks queued since the last epoch apply from this one on
                self._apply_tweaks(epoch, emit)
                # one epoch of training and the full-split evaluation: the row, early stopping's step
                saves.leave_boundary()
                out = self._epoch(epoch, emit, summary)
                if out is None:  # a loss is not finite: diverged
                    break
                row, step = out
                last = row
                if on_epoch is not None:
                    on_epoch(row)
                if step.fired and self.es.observe:  # observe mode: note what stopping would keep
                    self.would_keep, self.would_keep_epoch = self.best_state, self.es.best_epoch
                    emit("would_stop", epoch=epoch, best_epoch=self.es.best_epoch, best_value=self.es.best)
                # a resumable state, when one is due
                saves.after_epoch(epoch, row, emit)
                # the end: early stopping, or a stop request
                if step.stop:
                    summary.update(status="early_stopped", stop_epoch=epoch, reason=f"no improvement in "
                                   f"{self.cfg.early_stopping.monitor} for {self.es.wait} epochs")
                    emit("early_stop", epoch=epoch, best_epoch=self.es.best_epoch, best_value=self.es.best)
                    break
                if self._stop_requested:
                    raise Cancelled
        except (KeyboardInterrupt, Cancelled):  # (the epoch the stop cut short: `cancel_reason`)
            summary.update(status="cancelled", reason=cancel_reason(self._stop_reason, summary["epochs_run"]))
            emit("cancelled", epoch=summary["epochs_run"])
        except Exception as exc:  # noqa: BLE001 - every failure ends the run with a summary
            reason = failure_reason(exc, summary["device"], in_baselines=self._in_baselines)
            self._in_baselines = False
            summary.update(status="failed", reason=reason)
            emit("failed", epoch=summary["epochs_run"], error=reason, traceback=traceback.format_exc())

        # finish: the last checkpoint (none for a diverged run), then the test split; the
        # sampling thread stops whatever happens
        try:
            if summary["status"] != "diverged":
                saves.flush(emit)
            self._finish(summary, last)
        finally:
            if self._sys is not None:
                summary.update(self._sys.end())  # gpu_mem_peak_mb
        summary["wall_seconds"] = time.perf_counter() - t0
        return summary

    def _skeleton(self) -> dict[str, Any]:
        """The summary's skeleton, with the records a checkpoint brought back."""
        cfg = self.cfg
        return {
            "status": "completed", "epochs_run": self.start_epoch, "stop_epoch": None, "best_epoch": None,
            "best_value": None, "monitor": cfg.early_stopping.monitor, "would_stop_epoch": None,
            "restored_best": False, "test_loss": None, "test_err": None, "wall_seconds": None,
            "device": device_name(self.device), "reason": None, "n_params": self.n_params,
            "n_train": len(self.x_train), "n_corrupted": self.data.n_corrupted, "epochs_to_fit": self.epochs_to_fit,
        }

    def _start(self, emit: Callable, summary: dict[str, Any]) -> None:
        """What comes before the first epoch: the sampler (`self._sys`, stopped by `run` whatever
        happens), the `started` event, a precision warning, the baselines (computed here),
        `resumed_run`."""
        cfg = self.cfg
        # a resumed run's `started` says where it takes up (its epoch: the checkpoint's), then
        # `resumed_run` as before: events.jsonl stays in epoch order, and "started at epoch 0" is
        # the run's one real start
        resumed = {"resumed_from": self.start_epoch} if self.start_epoch else {}
        self._sys = Sampler(self.device)  # GPU / CPU use per epoch; the GPU's facts (`gpu`)
        summary.update(self._sys.begin(warn := []))  # (a GPU shared with others: a warning after `started`)
        emit("started", epoch=self.start_epoch, device=summary["device"], n_params=self.n_params, **resumed,
             **{k: summary[k] for k in ("gpu",) if k in summary})
        for text in warn:
            emit("warning", epoch=0, message=text, about="shared_gpu")
        if cfg.run.precision == "bfloat16" and self.device.type == "cpu":
            emit("warning", epoch=0, message="run.precision = bfloat16 on a CPU: autocast is emulated here and "
                                             "can be much slower than float32 (it is meant for GPUs)")
        if cfg.baselines.knn or cfg.baselines.ntk:
            if baselines.ntk_note(cfg):
                emit("warning", epoch=0, message=baselines.ntk_note(cfg))
            self._in_baselines = True
            summary.update(baselines.reference_lines(self))
            self._in_baselines = False
            emit("baseline", epoch=0, **{k: v for k, v in summary.items() if k.startswith("baseline_")})
        if self.start_epoch:
            emit("resumed_run", epoch=self.start_epoch)
        self._graph_warned = False  # a failed CUDA graph recording is reported once per run

    def _epoch(self, epoch: int, emit: Callable, summary: dict) -> tuple[dict[str, Any], Any] | None:
        """Train one epoch and evaluate: (the metrics.jsonl row, early stopping's step), with the
        summary's `epochs_run` / `epochs_to_fit` brought up to date; None, after the summary and a
        `diverged` event say so, when a loss is not finite."""
        lr, m, dt = self._train_and_measure(epoch, self.evaluate, emit)
        if bad := divergence(m, epoch):
            summary.update(status="diverged", reason=bad[1])
            emit("diverged", epoch=epoch, key=bad[0], value=str(m[bad[0]]))
            return None
        if self.examples is not None:  # which examples are predicted right now (device ops only)
            self.examples.update(epoch, self._train_correct)
        step = self.es.step(epoch, m[self.cfg.early_stopping.monitor])
        es_cfg = self.cfg.early_stopping
        if step.improved and es_cfg.enabled and (es_cfg.restore_best or self.es.observe):
            self.best_state = self._snapshot()
        row = {
            "epoch": epoch, "train_loss": m["train_loss"], "train_err": m["train_err"],
            "val_loss": m["val_loss"], "val_err": m["val_err"],
            "gap_loss": m["val_loss"] - m["train_loss"], "gap_err": m["val_err"] - m["train_err"],
            "lr": lr, "epoch_seconds": dt,
            # training examples per second, over all stacked members
            "samples_per_s": len(self.x_train) * self.G / dt if dt > 0 else None,
            "es_wait": self.es.wait, "es_best": self.es.best if self.es.best_epoch is not None else None,
            "es_best_epoch": self.es.best_epoch,
        }
        for k in ("train_clean_err", "noisy_memorized", "noisy_true_acc", "ratt_random_err", "ratt_bound",
                  "weight_norm", "spectral_norm_product"):
            if k in m:
                row[k] = m[k]
        row.update(self._row_extras())
        row.update(self._sys.epoch())  # cpu_percent, rss_mb, gpu_* (sysmetrics.SYS_KEYS)
        if self.ratt:
            self.ratt_by_epoch[epoch] = (m["ratt_random_err"], m["ratt_bound"])
        summary["epochs_run"] = epoch
        if self.epochs_to_fit is None and m["train_err"] <= FIT_ERR:
            self.epochs_to_fit = epoch  # memorized the training labels (Zhang et al.)
        summary["epochs_to_fit"] = self.epochs_to_fit
        return row, step

    _graph_warned = False  # a failed CUDA graph recording was told (reset by `_start`)

    def _train_and_measure(self, epoch: int, measure: Callable[[], dict], emit: Callable) -> tuple[float, dict, float]:
        """An epoch's training and evaluation, the one loop's (`_epoch`) and a grouped sweep's
        (core/units.py): the learning rate at `epoch`, one epoch of training, `measure()` (the
        full-split evaluation); (lr, its metrics, seconds). A failed CUDA graph recording is told
        once, by `emit("warning", ...)`."""
        lr = self._lr_at(epoch)
        for g in self.opt.param_groups:
            g["lr"] = lr
        te = time.perf_counter()
        self._train_epoch(self.gen)
        m = measure()
        dt = time.perf_counter() - te
        if self._graphs is not None and self._graphs.failed and not self._graph_warned:
            self._graph_warned = True
            emit("warning", epoch=epoch, message=self._graphs.failed)
        return lr, m, dt

    def _row_extras(self) -> dict[str, Any]:
        """Extra metrics.jsonl keys for the epoch just evaluated (stacked seeds: the spread)."""
        return {}

    def _finish(self, summary: dict, last: dict) -> None:
        """The summary's closing keys: early stopping's record, the last row's errors, RATT's bound
        at the kept epoch, and the test split, evaluated once on the weights that are kept."""
        cfg = self.cfg
        summary.update(best_epoch=self.es.best_epoch,
                       best_value=self.es.best if self.es.best_epoch is not None else None,
                       would_stop_epoch=self.es.would_stop_epoch)
        if last:
            summary.update(final_train_err=last["train_err"], final_val_err=last["val_err"])
        if self.ratt and self.ratt_by_epoch:
            kept = self.es.best_epoch if (cfg.early_stopping.enabled and cfg.early_stopping.restore_best
                                          and self.best_state is not None) else max(self.ratt_by_epoch)
            kept = kept if kept in self.ratt_by_epoch else max(self.ratt_by_epoch)
            summary.update(ratt_epoch=kept, ratt_random_err=self.ratt_by_epoch[kept][0],
                           ratt_bound=self.ratt_by_epoch[kept][1], ratt_n_random=len(self.x_random),
                           ratt_delta=cfg.ratt.delta)
        try:
            self._final_test(summary, self.best_state, self.would_keep, self.would_keep_epoch)
        except Exception as exc:  # noqa: BLE001
            summary.setdefault("reason", None)
            summary["test_error_reason"] = f"{type(exc).__name__}: {exc}"
