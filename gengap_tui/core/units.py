"""The unit of a sweep: a subset of its values trained in one place, reporting to a sink.

    unit = Unit(cfg, "model.width", [2, 4, 8], configs, device, together=True, max_waste=0.25, observe=False)
    finals, status, reason = unit.run(data, sink, label=str(out_dir))

A grouped unit (widths of an MLP, Nakkiran's CNN or ResNet-18: `sweep.GROUPED_WIDTH_KINDS`) trains its values, times `run.seeds` seeds, as one `MultiTrainer`; any
other unit trains its values one after another with the ordinary trainer. Whatever it measures
goes to its `Sink` as records: progress rows (progress.jsonl lines), each value's metrics rows and
events, its kept weights and its summary, and once the unit's trainer exists, `info` (buckets,
padded fraction, members). A local sweep (`sweep.Sweep`) is one unit of all its values with a
`FileSink`, which writes the sweep directory as the records come; a Ray sweep (`raysweep.py`)
runs one unit per bucket (or per value) in Ray tasks whose sink relays the records to the driver,
which writes them through a `FileSink` of its own (docs/ARCHITECTURE.md, "Sweeps: units and sinks").
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import runs
from ..protocol import USER_STOP, exact_value, point_dir_name
from .data import load
from .early_stopping import EarlyStopping
from .factory import make_trainer
from .multi import MultiTrainer
from .sysmetrics import Sampler
from .trainer import Cancelled, Trainer, cancel_reason, device_name, divergence, failure_reason

ROW_KEYS = ("train_loss", "train_err", "val_loss", "val_err", "test_loss", "test_err", "train_clean_err",
            "noisy_memorized", "noisy_true_acc", "weight_norm", "spectral_norm_product")
# with run.seeds > 1, the seeds' spread per value: min and max over them (the rows' means lie between)
BAND_KEYS = ("train_err_min", "train_err_max", "val_err_min", "val_err_max", "test_err_min", "test_err_max")
STD_KEYS = ("train_err_std", "val_err_std", "test_err_std")  # the seeds' std (sweep.jsonl; `gengap-tui table`)
# settings a value's data depends on: a one-at-a-time sweep over one of them loads data per value
DATA_SECTIONS = ("data", "noise", "ratt", "seed")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def observed(epochs_run: int, would_stop: int | None, best_at_stop: int | None, best_overall: int | None,
             restore_best: bool, test_err_at: Callable[[int], float | None], test_err_final: float | None) -> dict:
    """An observing sweep's row fields for one value: `best_epoch` (the epoch whose weights early
    stopping keeps: the best one when it would have stopped; if it never would have, the best of
    the run with restore-best, else the last), `would_stop_epoch`, `test_err_kept` (those weights'
    test error), `test_err_final` (the last epoch's) and `epochs_saved` (epochs run after the
    would-stop epoch: the compute stopping saves)."""
    if would_stop is not None:
        best = best_at_stop
    else:
        best = best_overall if restore_best and best_overall is not None else (epochs_run or None)
    kept = test_err_final if best is None or best == epochs_run else test_err_at(best)
    return {"best_epoch": best, "would_stop_epoch": would_stop, "test_err_kept": kept,
            "test_err_final": test_err_final,
            "epochs_saved": epochs_run - would_stop if would_stop is not None else 0}


def data_key(cfg) -> str:
    """What `data.load(cfg)` depends on, as a string: the key of a Ray unit's preloaded datasets."""
    dump = cfg.dump()
    return runs.dumps({k: dump.get(k) for k in DATA_SECTIONS})


def split_point(point: Any) -> tuple[Any, Any]:
    """(value, value2) of a sweep's point: a value of a one-setting sweep is its own point
    (value2 None); a grid's point is the tuple (value, value2)."""
    return point if isinstance(point, tuple) else (point, None)


def point_columns(points: list) -> dict[str, list]:
    """A progress row's `values` (and a grid's `values2`, aligned with them) for `points`."""
    pairs = [split_point(p) for p in points]
    cols = {"values": [v for v, _ in pairs]}
    if any(isinstance(p, tuple) for p in points):
        cols["values2"] = [v2 for _, v2 in pairs]
    return cols


def point_label(point: Any) -> str:
    """`8`, or a grid's `8 / 0.1` (value / value2)."""
    v, v2 = split_point(point)
    return exact_value(v) if not isinstance(point, tuple) else f"{exact_value(v)} / {exact_value(v2)}"


def value_dir_name(param: str, point: Any, param2: str | None = None) -> str:
    """A point's run directory in the sweep directory (`protocol.point_dir_name`: the lab finds
    a sweep point's curves by it)."""
    v, v2 = split_point(point)
    return point_dir_name(param, v, v2 if isinstance(point, tuple) else None, param2)


class Sink:
    """Where a unit's records go. Every method is called from the unit's training thread."""

    def info(self, info: dict) -> None:  # the unit's trainer: buckets, padded_fraction, members
        pass

    def progress(self, row: dict) -> None:  # one progress.jsonl line
        pass

    def metrics(self, value: float, row: dict) -> None:  # one metrics.jsonl row of a value
        pass

    def event(self, value: float, ev: dict) -> None:  # one events.jsonl record of a value
        pass

    def model(self, value: float, state: dict) -> None:  # a value's kept weights (model.pt)
        pass

    def finish(self, value: float, summary: dict) -> None:  # a value's summary.json
        pass

    def examples(self, value: float, counters: Any, rows: slice, noisy: Any) -> None:
        """A value's examples.npz (core/examples.py): the counters' members `rows`. A sweep on Ray
        writes none (the arrays would travel through the relay)."""


class FileSink(Sink):
    """Writes the records into a sweep directory as they come: `progress.jsonl` (and
    `on_progress(row)` after each line is flushed), `sweep.json` (`write_meta`, and `info`), and one
    run directory per value (config.json, metrics.jsonl, events.jsonl, model.pt, summary.json)."""

    def __init__(self, out_dir: Path, param: str, values: list, configs: list, meta: dict,
                 extra: dict | None = None, on_progress: Callable[[dict], Any] | None = None,
                 param2: str | None = None):
        self.out_dir, self.param, self.meta, self.on_progress = Path(out_dir), param, meta, on_progress
        self.param2 = param2  # a grid's second setting: `values` are its points, (value, value2)
        self._infos: list[dict] = []
        self._errors: dict[Any, dict[str, str]] = {}  # a value's files that could not be written
        for v in values:
            self.value_dir(v).mkdir(exist_ok=True)
        self.writers = {v: runs.RunWriter(self.value_dir(v), c.dump(), extra) for v, c in zip(values, configs)}
        self._progress = open(self.out_dir / "progress.jsonl", "a", encoding="utf-8")

    def value_dir(self, v: Any) -> Path:
        return self.out_dir / value_dir_name(self.param, v, self.param2)

    def write_meta(self) -> None:
        runs.write_json_atomic(self.out_dir / "sweep.json", self.meta)

    def info(self, info: dict) -> None:
        """A unit's trainer; a grid's lines are units of their own: their buckets and members add up."""
        self._infos.append(info)
        merged = dict(info)
        for k in ("buckets", "members"):
            if all(k in i for i in self._infos):
                merged[k] = sum(i[k] for i in self._infos)
        self.meta.update(merged)
        self.write_meta()

    def progress(self, row: dict) -> None:
        self._progress.write(runs.dumps(row) + "\n")
        self._progress.flush()
        if self.on_progress is not None:
            self.on_progress(row)

    def metrics(self, value: float, row: dict) -> None:
        self.writers[value].metrics(row)

    def event(self, value: float, ev: dict) -> None:
        self.writers[value].event(ev)

    def model(self, value: float, state: dict) -> None:
        """A value's `model.pt` (as a run's: the weights it keeps), written atomically; a failed
        write (a full disk) is the summary's `model_error`, as for a run (session.py), and the
        sweep goes on."""
        try:
            runs.replace_atomic(self.value_dir(value) / "model.pt", lambda tmp: torch.save(state, tmp))
        except (OSError, RuntimeError) as exc:  # (torch.save reports a full disk as a RuntimeError)
            self._errors.setdefault(value, {})["model_error"] = f"model.pt not written: {exc}"

    def finish(self, value: float, summary: dict) -> None:
        self.writers[value].finish({**summary, **self._errors.pop(value, {})})

    def examples(self, value: float, counters: Any, rows: slice, noisy: Any) -> None:
        """A value's examples.npz; a failed write is the summary's `examples_error` (as `model`)."""
        if counters is not None and counters.recorded(rows):  # (a value that diverged at once: none)
            try:
                runs.replace_atomic(self.value_dir(value) / "examples.npz",
                                    lambda tmp: counters.save(tmp, noisy, rows))
            except OSError as exc:
                self._errors.setdefault(value, {})["examples_error"] = f"examples.npz not written: {exc}"

    def restart(self, value: float) -> None:
        """Empty a value's metrics.jsonl: its unit is trained again from the start (a Ray retry)."""
        self.writers[value].close()
        (self.value_dir(value) / "metrics.jsonl").write_text("", encoding="utf-8")
        self.writers[value] = runs.RunWriter(self.value_dir(value), None)

    def close(self) -> None:
        self._progress.close()
        for w in self.writers.values():
            w.close()


class Unit:
    """Values of one sweep trained in one place: together (`together`: widths as one
    `MultiTrainer`) or one after another. `values` are the sweep's points: its values, or in a
    grid `(value, value2)` pairs of one line (`configs` say what each trains). `request_stop` ends
    it as cancelled (the value being trained ends within one batch); thread-safe."""

    def __init__(self, cfg, param: str, values: list[float], configs: list, device: torch.device,
                 together: bool, max_waste: float, observe: bool):
        self.cfg, self.param, self.values, self.configs = cfg, param, list(values), list(configs)
        self.device, self.together, self.max_waste, self.observe = device, together, max_waste, observe
        self._stop = False
        self._stop_reason: str | None = None
        self._trainer: Trainer | None = None

    def request_stop(self, reason: str | None = None) -> None:
        if reason and self._stop_reason is None:
            self._stop_reason = reason
        self._stop = True
        if self._trainer is not None:
            self._trainer.request_stop(reason)

    def run(self, data, sink: Sink, label: str = "", load_fn: Callable | None = None) -> tuple[dict, str, str | None]:
        """Train every value; returns (finals: value -> its final numbers, status, reason).
        `label` names the sweep in the `started` events; `load_fn(cfg)` loads the data a value or
        seed needs beyond `data` (default `data.load`)."""
        if self.together:
            return self._run_together(data, sink, label, load_fn)
        return self._run_each(data, sink, load_fn or load)

    # ---------------------------------------------------------------------------------------
    def _run_together(self, data, sink: Sink, label: str, load_fn):
        cfg = self.configs[0]
        K = self.cfg.run.seeds
        members = [(self.cfg.seed + k, c.model.width) for c in self.configs for k in range(K)]
        tr = MultiTrainer(cfg, self.device, data, members=members, max_waste=self.max_waste, load_fn=load_fn)
        self._trainer = tr
        if self._stop:
            tr.request_stop(self._stop_reason)
        device = device_name(self.device)
        sink.info({"buckets": len(tr.model.buckets), "padded_fraction": tr.model.padded_fraction(),
                   "members": len(members)})
        n_params = {v: tr.member_params[i * K] for i, v in enumerate(self.values)}
        sysm = Sampler(self.device)  # GPU / CPU use per epoch, as a single run's (core/sysmetrics.py)
        gpu: dict = {}
        status, reason = "completed", None
        diverged: dict[float, str] = {}  # a diverged value's reason, as a solo run's
        last: dict[float, dict] = {}
        # observe mode: early stopping of its own for each value (on the mean over its seeds)
        es_cfg = cfg.early_stopping
        stoppers = {v: EarlyStopping.from_config(es_cfg) for v in self.values} if self.observe else {}
        test_at: dict[float, dict[int, float]] = {v: {} for v in self.values}
        best_at_stop: dict[float, int | None] = {}

        def emit(kind: str, **fields: Any) -> None:  # an event of the whole unit: every value's
            for v in self.values:
                sink.event(v, {"event": kind, "time": time.time(), **fields})

        done = 0  # the epochs finished
        try:  # (from the sampler's start on: its thread is stopped whatever happens)
            gpu = sysm.begin(warn := [])
            for v in self.values:
                sink.event(v, {"event": "started", "time": time.time(), "epoch": 0, "device": device,
                               "n_params": n_params[v], "sweep": label, **gpu})
                for text in warn:
                    sink.event(v, {"event": "warning", "time": time.time(), "epoch": 0, "message": text,
                                   "about": "shared_gpu"})
            for epoch in range(1, cfg.optim.epochs + 1):
                # one epoch of training and the full-split evaluation of every member (the solo
                # loop's step: `Trainer._train_and_measure`), the test split included
                lr, m, dt = tr._train_and_measure(epoch, lambda: tr.member_metrics(with_test=True), emit)
                sys_row = sysm.epoch()
                prog: dict[str, Any] = {"epoch": epoch, **point_columns(self.values), "epoch_seconds": dt,
                                        "n_params": [n_params[v] for v in self.values], **sys_row}
                counting: list[bool] = []  # the members whose examples this epoch counts
                for i, v in enumerate(self.values):
                    # each value's row: the mean over its seeds (and their spread)
                    row = self._value_row(m, slice(i * K, (i + 1) * K), epoch)
                    row.update(lr=lr, epoch_seconds=dt, es_wait=None, es_best=None, es_best_epoch=None, **sys_row)
                    # a value whose loss is no longer finite has diverged, as a solo run would: no
                    # row for that epoch, and nothing of it counted from then on
                    if v not in diverged and (bad := divergence(row, epoch)):
                        diverged[v] = bad[1]
                        sink.event(v, {"event": "diverged", "time": time.time(), "epoch": epoch, "key": bad[0],
                                       "value": str(row[bad[0]])})
                    live = v not in diverged
                    counting += [live] * K
                    for k in ROW_KEYS + BAND_KEYS:
                        if k in row:
                            prog.setdefault(k, []).append(row[k] if live else None)
                    if not live:
                        continue
                    if self.observe and _finite(row[es_cfg.monitor]):  # early stopping's step
                        es = stoppers[v]
                        step = es.step(epoch, row[es_cfg.monitor])
                        row.update(es_wait=es.wait, es_best=es.best if es.best_epoch else None,
                                   es_best_epoch=es.best_epoch)
                        test_at[v][epoch] = row.get("test_err")
                        if step.fired:
                            best_at_stop[v] = es.best_epoch
                            sink.event(v, {"event": "would_stop", "time": time.time(), "epoch": epoch,
                                           "best_epoch": es.best_epoch, "best_value": es.best})
                    sink.metrics(v, row)
                    last[v] = row
                if tr.examples is not None:  # which examples each member predicts right (examples.npz)
                    tr.examples.update(epoch, tr._train_correct, None if all(counting) else counting)
                sink.progress(prog)
                done = epoch
                if self._stop:
                    raise Cancelled
                if len(diverged) == len(self.values):  # nothing left to train (as a solo run stops)
                    break
        except (KeyboardInterrupt, Cancelled):  # the solo trainer's wording and numbering
            status = "cancelled"
            reason = cancel_reason(self._stop_reason or tr._stop_reason, done)
        except Exception as exc:  # noqa: BLE001 - a failure still writes what was measured
            status, reason = "failed", failure_reason(exc, device)
        finals = {}
        ended = {**gpu, **sysm.end()}  # the GPU, the unit's peak memory
        for v in self.values:
            r = last.get(v)
            st = "diverged" if v in diverged else status
            s = {"status": st, "epochs_run": r["epoch"] if r else 0, "n_params": n_params[v],
                 "reason": diverged.get(v, reason), "device": device, "stop_epoch": None, "best_epoch": None,
                 "restored_best": False, **ended}
            if r:
                s.update({k: r.get(k) for k in ROW_KEYS + BAND_KEYS + STD_KEYS if k in r})
                s.update(final_train_err=r["train_err"], final_val_err=r["val_err"])
                if self.observe:
                    es = stoppers[v]
                    s.update(observed(r["epoch"], es.would_stop_epoch, best_at_stop.get(v), es.best_epoch,
                                      es_cfg.restore_best, test_at[v].get, r.get("test_err")))
            i = self.values.index(v)
            sink.examples(v, tr.examples, slice(i * K, (i + 1) * K), tr.changed[i * K:(i + 1) * K])
            if r and st != "diverged":  # the first seed's weights, as an ordinary MLP's state dict
                sink.model(v, tr.member_state_dict(self.values.index(v) * K))
            if st != "diverged":  # (a diverged value's event came when it diverged)
                sink.event(v, {"event": st if st != "completed" else "finished", "time": time.time(),
                               "epoch": s["epochs_run"]})
            sink.finish(v, s)
            finals[v] = s
        return finals, status, reason

    @staticmethod
    def _value_row(m: dict[str, list], sl: slice, epoch: int) -> dict[str, Any]:
        """A value's metrics.jsonl row from its members `sl` of the stack's metrics `m`: each key's
        mean over its seeds, with several seeds their min, max and std, and the gaps."""
        row: dict[str, Any] = {"epoch": epoch}
        K = sl.stop - sl.start
        for k in ROW_KEYS:
            if k in m:
                row[k] = sum(m[k][sl]) / K
        if K > 1:  # the seeds' spread around the mean
            for k in ("train_err", "val_err", "test_err"):
                if k in m:
                    row[k + "_min"], row[k + "_max"] = min(m[k][sl]), max(m[k][sl])
                    row[k + "_std"] = float(np.std(m[k][sl]))
        row["gap_loss"] = row["val_loss"] - row["train_loss"]
        row["gap_err"] = row["val_err"] - row["train_err"]
        return row

    def _run_each(self, data, sink: Sink, load_fn):
        """One value after another. A value that fails (its data, its trainer, its training: out of
        memory) is `failed` with its reason and the others go on; the unit then ends `failed`,
        naming the first such value. A stop ends it at once."""
        status, reason = "completed", None
        failed: str | None = None
        finals: dict[float, dict] = {}
        tr: Trainer | None = None
        for v, c in zip(self.values, self.configs):
            self._trainer = tr = None  # (the last value's trainer and its memory go first)
            if self._stop:
                status, reason = "cancelled", self._stop_reason or USER_STOP
                break
            try:
                d = data if self.param.split(".")[0] not in DATA_SECTIONS else load_fn(c)
                tr = make_trainer(c, self.device, d, load_fn=load_fn)
            except Exception as exc:  # noqa: BLE001 - this value fails, the sweep goes on
                s = self._unbuilt(v, exc, sink)
                finals[v] = s
                failed = failed or f"{self.param} = {point_label(v)}: {s['reason']}"
                continue
            self._trainer = tr
            if self._stop:
                tr.request_stop(self._stop_reason)

            last: dict = {}

            def on_epoch(row: dict, v=v, last=last, n=tr.n_params) -> None:
                sink.metrics(v, row)
                last.update(row)
                sink.progress({"epoch": row["epoch"], **point_columns([v]), "epoch_seconds": row["epoch_seconds"],
                               "n_params": [n], **{k: [row[k]] for k in ROW_KEYS + BAND_KEYS if k in row}})

            s = tr.run(on_epoch=on_epoch, on_event=lambda ev, v=v: sink.event(v, ev))
            if s.get("epochs_run") and (s.get("status") != "diverged" or s.get("restored_best")):
                sink.model(v, tr.model.state_dict())
            sink.examples(v, tr.examples, slice(None), tr.changed)
            sink.finish(v, s)
            # the last epoch's numbers, as the grouped sweep reports them (memorization included)
            finals[v] = {**{k: last[k] for k in ("train_clean_err", "noisy_memorized", "weight_norm",
                                                 "spectral_norm_product", *BAND_KEYS[:4], *STD_KEYS[:2]) if k in last}, **s,
                         "train_err": s.get("final_train_err"), "val_err": s.get("final_val_err")}
            if self.observe and s["epochs_run"]:  # the row's test_err is the last epoch's; kept apart
                final = s.get("final_test_err", s.get("test_err"))
                finals[v].update(observed(s["epochs_run"], s.get("would_stop_epoch"), s.get("would_stop_best_epoch"),
                                          s.get("best_epoch"), s.get("restored_best", False),
                                          lambda _e, s=s: s.get("would_stop_test_err", s.get("test_err")), final),
                                 test_err=final, test_loss=s.get("final_test_loss", s.get("test_loss")))
                for k in ("test_err_min", "test_err_max", "test_err_std"):  # the seeds' spread of the kept weights
                    finals[v].pop(k, None)
            if s["epochs_run"]:  # the value's test error, measured once at its end
                f = finals[v]
                sink.progress({"epoch": s["epochs_run"], **point_columns([v]), "train_err": [f["train_err"]],
                               "val_err": [f["val_err"]], "test_err": [f.get("test_err")],
                               "test_loss": [f.get("test_loss")], "n_params": [tr.n_params],
                               **{k: [f[k]] for k in BAND_KEYS if k in f},
                               **({"test_err_kept": [f["test_err_kept"]]} if "test_err_kept" in f else {})})
            if s["status"] == "cancelled":
                status, reason = s["status"], s.get("reason")
                break
            if s["status"] == "failed":
                failed = failed or f"{self.param} = {point_label(v)}: {s.get('reason')}"
        self._trainer = None
        if status == "completed" and failed:
            status, reason = "failed", failed
        return finals, status, reason

    def _unbuilt(self, v: Any, exc: BaseException, sink: Sink) -> dict:
        """The summary of a value whose data or trainer could not be made (`failed`, no epoch)."""
        device = device_name(self.device)
        why = failure_reason(exc, device)
        s = {"status": "failed", "epochs_run": 0, "reason": why, "device": device, "stop_epoch": None,
             "best_epoch": None, "restored_best": False}
        sink.event(v, {"event": "failed", "time": time.time(), "epoch": 0, "error": why})
        sink.finish(v, s)
        return s
