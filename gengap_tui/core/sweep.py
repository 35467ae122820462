"""Sweeps: one model per value of a setting, trained *together* where the shapes allow.

    from gengap_tui.core.sweep import Sweep
    sw = Sweep(cfg, "model.width", [2, 4, 8, 16])
    summary = sw.run(out_dir)                       # writes sweep.json, progress.jsonl, sweep.jsonl

A width sweep of the MLP (`model.width`) trains every width, times `run.seeds` seeds, as one
`GroupedMLP` (stacked weights in buckets of similar width, `stacked.py`): one optimizer step per
batch for all of them. Any other setting (or `together=False`) trains the values one after another
with the ordinary trainer. Either way, sweeps train every value for `optim.epochs` epochs with early
stopping off: the numbers are the final epoch's, as in Nakkiran et al.'s double-descent curves.

Files in `out_dir` (docs/ARCHITECTURE.md, "Run directory"):
    sweep.json       param, values, preset, epochs, together, buckets, padded_fraction, device
    progress.jsonl   one line per epoch: epoch, values, train_err, val_err, test_err, train_loss,
                     val_loss, test_loss (lists aligned with `values`; in one-at-a-time mode just
                     the value being trained) — what the lab's sweep view follows live
    sweep.jsonl      one line per value when the sweep ends: param, value, width, n_params,
                     train_err, val_err, test_err, test_loss, epochs_run, status, run_dir
    summary.json     status, wall_seconds, interpolation_threshold (the first value whose final
                     training error is <= 1%), peak_value / peak_test_err, dip_value / dip_test_err
                     (the lowest test error before the peak; all four null when no value is a
                     peak), last_test_err, peak_prominence (`shape_of`)
    <param>-<value>/ one run directory per value (config.json, metrics.jsonl, summary.json)
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import runs
from ..config import build
from ..protocol import FIT_ERR, USER_STOP, exact_value
from .data import load
from .early_stopping import EarlyStopping
from .factory import make_trainer
from .multi import MultiTrainer
from .trainer import Cancelled, Trainer, device_name, pick_device

ROW_KEYS = ("train_loss", "train_err", "val_loss", "val_err", "test_loss", "test_err", "train_clean_err",
            "noisy_memorized", "noisy_true_acc", "weight_norm", "spectral_norm_product")
OBSERVED_KEYS = ("best_epoch", "would_stop_epoch", "test_err_kept", "test_err_final", "epochs_saved")
FINAL_KEYS = ("n_params", "train_err", "val_err", "test_err", "test_loss", "epochs_run", "status", "train_clean_err",
              "noisy_memorized", "weight_norm", "spectral_norm_product", *OBSERVED_KEYS)


def observing(cfg) -> bool:
    """A sweep watches early stopping (observe mode) when the preset's early stopping is enabled
    with `observe = true`; otherwise its values train with early stopping off."""
    return cfg.early_stopping.enabled and cfg.early_stopping.observe


def value_configs(cfg, param: str, values: list[float]) -> list:
    """The validated config of each value (early stopping off, or observing); raises ConfigError
    naming the setting and the value."""
    base = cfg.dump()
    keep_es = [] if observing(cfg) else ["early_stopping.enabled=false"]
    out = []
    for v in values:
        c = build(base, [f"{param}={exact_value(v)}", *keep_es], source=f"sweep {param} = {exact_value(v)}")
        out.append(c)
    return out


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


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def shape_of(rows: list[dict]) -> dict[str, Any]:
    """Interpolation threshold (the first value whose final training error is <= 1%), and the
    double-descent peak: the intermediate value whose test error stands highest above both the
    lowest test error before it (the dip) and the last value's; `peak_prominence` is the smaller
    of the two heights. A peak stands strictly above both (prominence > 0): when no value does,
    `peak_value`, `peak_test_err`, `dip_value` and `dip_test_err` are None and `peak_prominence`
    is the best candidate's height (<= 0: how far it fell short); with fewer than 3 values that
    have a test error, there is no candidate and `peak_prominence` is None too."""
    out: dict[str, Any] = {"interpolation_threshold": None, "peak_value": None, "peak_test_err": None,
                           "dip_value": None, "dip_test_err": None, "last_test_err": None,
                           "peak_prominence": None, "interpolation_lost_at": None}
    ok = [r for r in rows if _finite(r.get("test_err"))]
    if not ok:
        return out
    fit = [r for r in ok if _finite(r.get("train_err")) and r["train_err"] <= FIT_ERR]
    if fit:
        out["interpolation_threshold"] = fit[0]["value"]
        # the first value after a fitting one that no longer fits (a regularizer strong enough)
        after = ok[ok.index(fit[0]) + 1:]
        lost = next((r for r in after if _finite(r.get("train_err")) and r["train_err"] > FIT_ERR), None)
        out["interpolation_lost_at"] = lost["value"] if lost else None
    te = [r["test_err"] for r in ok]
    out["last_test_err"] = te[-1]
    if len(ok) < 3:
        return out
    best_i, best_h = None, -math.inf
    for i in range(1, len(ok) - 1):
        h = min(te[i] - min(te[:i]), te[i] - te[-1])
        if h > best_h:
            best_i, best_h = i, h
    out["peak_prominence"] = best_h
    if best_h <= 0:  # no value stands above both the dip before it and the last value
        return out
    dip_i = min(range(best_i), key=lambda j: te[j])
    out.update(peak_value=ok[best_i]["value"], peak_test_err=te[best_i], dip_value=ok[dip_i]["value"],
               dip_test_err=te[dip_i], peak_prominence=best_h)
    return out


def save_model(run_dir: Path, state: dict) -> None:
    """A value's `model.pt` (as a run's: the weights it keeps), written atomically."""
    runs.replace_atomic(run_dir / "model.pt", lambda tmp: torch.save(state, tmp))


# How much padded arithmetic a grouped width sweep may do beyond the members' own (`plan_buckets`),
# by device. A CPU pays for every padded multiply-add: 0.25 (10 buckets for the double-descent
# widths, 1.15x the arithmetic). A GPU is launch-bound at these sizes, so fewer, wider buckets win:
# on an H200 the double-descent sweep took 32.7 ms/epoch in 10 buckets and 9.8 ms in one (6.9x
# the arithmetic; bench/sweep.py --max-waste 10).
MAX_WASTE = {"cpu": 0.25, "cuda": 8.0}


class Sweep:
    def __init__(self, cfg, param: str, values: list[float], device: str | None = None,
                 together: bool | None = None, max_waste: float | None = None):
        if not values:
            raise ValueError(f"sweep.values: nothing to sweep over for {param} (give --values or the preset's [sweep])")
        if len(set(values)) != len(values):
            raise ValueError(f"sweep.values: {param} values repeat: {values}")
        self.cfg = cfg
        self.param = param
        self.values = sorted(float(v) for v in values) if param == "model.width" else [float(v) for v in values]
        self.configs = value_configs(cfg, param, self.values)
        self.observe = observing(cfg)
        self.device = pick_device(device or cfg.device)
        groupable = param == "model.width" and cfg.model.kind == "mlp"
        self.together = groupable if together is None else (together and groupable)
        self.max_waste = MAX_WASTE.get(self.device.type, 0.25) if max_waste is None else max_waste
        self._stop = False
        self._stop_reason: str | None = None
        self._trainer: Trainer | None = None

    def request_stop(self, reason: str | None = None) -> None:
        """End the sweep as `cancelled` (the value being trained ends within one batch). `reason`
        (the first one given) says who asked, in the summary's reason ("stopped by the user" if
        none). Thread-safe."""
        if reason and self._stop_reason is None:
            self._stop_reason = reason
        self._stop = True
        if self._trainer is not None:
            self._trainer.request_stop(reason)

    def _value_dir(self, out_dir: Path, v: float) -> Path:
        leaf = self.param.split(".")[-1]
        return out_dir / f"{leaf}-{exact_value(v)}"

    # ---------------------------------------------------------------------------------------
    def run(self, out_dir: Path, on_progress: Callable[[dict], Any] | None = None,
            extra: dict | None = None) -> dict[str, Any]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        data = load(self.cfg)
        meta = {"param": self.param, "values": self.values, "preset": self.cfg.name, "epochs": self.cfg.optim.epochs,
                "seeds": self.cfg.run.seeds, "together": self.together, "observe": self.observe,
                "device": device_name(self.device),
                "config": self.cfg.dump(), **(extra or {})}
        for v in self.values:
            self._value_dir(out_dir, v).mkdir(exist_ok=True)
        writers = {v: runs.RunWriter(self._value_dir(out_dir, v), c.dump(), extra) for v, c in zip(self.values, self.configs)}
        progress = open(out_dir / "progress.jsonl", "a", encoding="utf-8")

        def emit(row: dict) -> None:
            progress.write(runs.dumps(row) + "\n")
            progress.flush()
            if on_progress is not None:
                on_progress(row)

        status, reason = "completed", None
        finals: dict[float, dict] = {}
        try:
            if self.together:
                finals, status, reason = self._run_together(out_dir, data, meta, writers, emit)
            else:
                runs.write_json_atomic(out_dir / "sweep.json", meta)
                finals, status, reason = self._run_each(data, writers, emit)
        finally:
            progress.close()
            for w in writers.values():
                w.close()
        rows = []
        for v, c in zip(self.values, self.configs):
            f = finals.get(v)
            row = {"param": self.param, "value": v, "width": c.model.width if self.param == "model.width" else None,
                   "n_params": None, "train_err": None, "val_err": None, "test_err": None, "test_loss": None,
                   "epochs_run": 0, "status": "not_run", "run_dir": self._value_dir(out_dir, v).name}
            if f:
                row.update({k: f.get(k) for k in FINAL_KEYS if self.observe or k not in OBSERVED_KEYS})
            rows.append(row)
        with open(out_dir / "sweep.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(runs.dumps(r) + "\n")
        summary = {"status": status, "reason": reason, "param": self.param, "values": self.values,
                   "together": self.together, "observe": self.observe, "wall_seconds": time.perf_counter() - t0,
                   "device": device_name(self.device), **shape_of([r for r in rows if r["status"] != "not_run"])}
        runs.write_json_atomic(out_dir / "summary.json", summary)
        return summary

    # ---------------------------------------------------------------------------------------
    def _run_together(self, out_dir, data, meta, writers, emit):
        cfg = self.configs[0]
        K = self.cfg.run.seeds
        members = [(self.cfg.seed + k, int(v)) for v in self.values for k in range(K)]
        tr = MultiTrainer(cfg, self.device, data, members=members, max_waste=self.max_waste)
        self._trainer = tr
        if self._stop:
            tr.request_stop(self._stop_reason)
        meta.update(buckets=len(tr.model.buckets), padded_fraction=tr.model.padded_fraction(),
                    members=len(members))
        runs.write_json_atomic(out_dir / "sweep.json", meta)
        n_params = {v: tr.member_params[i * K] for i, v in enumerate(self.values)}
        for v, w in writers.items():
            w.event({"event": "started", "time": time.time(), "epoch": 0, "device": meta["device"],
                     "n_params": n_params[v], "sweep": str(out_dir)})
        status, reason = "completed", None
        per_value_status = {v: "completed" for v in self.values}
        last: dict[float, dict] = {}
        # observe mode: early stopping of its own for each value (on the mean over its seeds)
        es_cfg = cfg.early_stopping
        stoppers = {v: EarlyStopping.from_config(es_cfg) for v in self.values} if self.observe else {}
        test_at: dict[float, dict[int, float]] = {v: {} for v in self.values}
        best_at_stop: dict[float, int | None] = {}
        epoch = 0
        try:
            for epoch in range(1, cfg.optim.epochs + 1):
                lr = tr._lr_at(epoch)
                for g in tr.opt.param_groups:
                    g["lr"] = lr
                te = time.perf_counter()
                tr._train_epoch()
                m = tr.member_metrics(with_test=True)
                dt = time.perf_counter() - te
                prog: dict[str, Any] = {"epoch": epoch, "values": self.values, "epoch_seconds": dt,
                                        "n_params": [n_params[v] for v in self.values]}
                for k in ROW_KEYS:
                    if k in m:
                        prog[k] = []
                for i, v in enumerate(self.values):
                    sl = slice(i * K, (i + 1) * K)
                    row: dict[str, Any] = {"epoch": epoch}
                    for k in ROW_KEYS:
                        if k in m:
                            vals = m[k][sl]
                            row[k] = sum(vals) / K
                            prog[k].append(row[k])
                    row["gap_loss"] = row["val_loss"] - row["train_loss"]
                    row["gap_err"] = row["val_err"] - row["train_err"]
                    row.update(lr=lr, epoch_seconds=dt, es_wait=None, es_best=None, es_best_epoch=None)
                    if per_value_status[v] == "completed" and self.observe and _finite(row[es_cfg.monitor]):
                        es = stoppers[v]
                        step = es.step(epoch, row[es_cfg.monitor])
                        row.update(es_wait=es.wait, es_best=es.best if es.best_epoch else None,
                                   es_best_epoch=es.best_epoch)
                        test_at[v][epoch] = row.get("test_err")
                        if step.fired:
                            best_at_stop[v] = es.best_epoch
                            writers[v].event({"event": "would_stop", "time": time.time(), "epoch": epoch,
                                              "best_epoch": es.best_epoch, "best_value": es.best})
                    if per_value_status[v] == "completed":
                        bad = next((k for k in ("train_loss", "val_loss") if not _finite(row[k])), None)
                        if bad:
                            per_value_status[v] = "diverged"
                            writers[v].event({"event": "diverged", "time": time.time(), "epoch": epoch, "key": bad,
                                              "value": str(row[bad])})
                        writers[v].metrics(row)
                        last[v] = row
                emit(prog)
                if self._stop:
                    raise Cancelled
        except (KeyboardInterrupt, Cancelled):
            status, reason = "cancelled", f"{self._stop_reason or USER_STOP} during epoch {epoch}"
        except Exception as exc:  # noqa: BLE001 - a failure still writes what was measured
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
            if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
                reason = f"out of memory on {meta['device']}: fewer values, smaller widths or optim.batch_size"
        finals = {}
        for v in self.values:
            r = last.get(v)
            st = per_value_status[v] if status == "completed" else status
            s = {"status": st, "epochs_run": r["epoch"] if r else 0, "n_params": n_params[v], "reason": reason,
                 "device": meta["device"], "stop_epoch": None, "best_epoch": None, "restored_best": False}
            if r:
                s.update({k: r.get(k) for k in ROW_KEYS if k in r})
                s.update(final_train_err=r["train_err"], final_val_err=r["val_err"])
                if self.observe:
                    es = stoppers[v]
                    s.update(observed(r["epoch"], es.would_stop_epoch, best_at_stop.get(v), es.best_epoch,
                                      es_cfg.restore_best, test_at[v].get, r.get("test_err")))
            if r and st != "diverged":  # the first seed's weights, as an ordinary MLP's state dict
                save_model(self._value_dir(out_dir, v), tr.member_state_dict(self.values.index(v) * K))
            writers[v].event({"event": st if st != "completed" else "finished", "time": time.time(),
                              "epoch": s["epochs_run"]})
            writers[v].finish(s)
            finals[v] = s
        return finals, status, reason

    def _run_each(self, data, writers, emit):
        status, reason = "completed", None
        finals: dict[float, dict] = {}
        for v, c in zip(self.values, self.configs):
            if self._stop:
                status, reason = "cancelled", self._stop_reason or USER_STOP
                break
            d = data if self.param.split(".")[0] not in ("data", "noise", "ratt", "seed") else load(c)
            tr = make_trainer(c, self.device, d)
            self._trainer = tr
            if self._stop:
                tr.request_stop(self._stop_reason)
            w = writers[v]

            last: dict = {}

            def on_epoch(row: dict, v=v, w=w, last=last, n=tr.n_params) -> None:
                w.metrics(row)
                last.update(row)
                emit({"epoch": row["epoch"], "values": [v], "epoch_seconds": row["epoch_seconds"], "n_params": [n],
                      **{k: [row[k]] for k in ROW_KEYS if k in row}})

            s = tr.run(on_epoch=on_epoch, on_event=w.event)
            if s.get("epochs_run") and (s.get("status") != "diverged" or s.get("restored_best")):
                save_model(w.path, tr.model.state_dict())
            w.finish(s)
            # the last epoch's numbers, as the grouped sweep reports them (memorization included)
            finals[v] = {**{k: last[k] for k in ("train_clean_err", "noisy_memorized", "weight_norm",
                                                 "spectral_norm_product") if k in last}, **s,
                         "train_err": s.get("final_train_err"), "val_err": s.get("final_val_err")}
            if self.observe and s["epochs_run"]:  # the row's test_err is the last epoch's; kept apart
                final = s.get("final_test_err", s.get("test_err"))
                finals[v].update(observed(s["epochs_run"], s.get("would_stop_epoch"), s.get("would_stop_best_epoch"),
                                          s.get("best_epoch"), s.get("restored_best", False),
                                          lambda _e, s=s: s.get("would_stop_test_err", s.get("test_err")), final),
                                 test_err=final, test_loss=s.get("final_test_loss", s.get("test_loss")))
            if s["epochs_run"]:  # the value's test error, measured once at its end
                f = finals[v]
                emit({"epoch": s["epochs_run"], "values": [v], "train_err": [f["train_err"]], "val_err": [f["val_err"]],
                      "test_err": [f.get("test_err")], "test_loss": [f.get("test_loss")], "n_params": [tr.n_params],
                      **({"test_err_kept": [f["test_err_kept"]]} if "test_err_kept" in f else {})})
            if s["status"] in ("cancelled", "failed"):
                status, reason = s["status"], s.get("reason")
                break
        return finals, status, reason
