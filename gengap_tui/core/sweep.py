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

The training itself is a `units.Unit` (here one of all the values) writing through a
`units.FileSink`; `raysweep.py` trains several units in Ray tasks into the same files.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from .. import runs
from ..config import build
from ..protocol import FIT_ERR, exact_value
from .data import load
from .trainer import device_name, pick_device
from .units import BAND_KEYS, STD_KEYS, FileSink, Unit, _finite, value_dir_name

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
        # a local sweep is one unit of all its values (a Ray sweep runs several: raysweep.py)
        self.unit = Unit(cfg, param, self.values, self.configs, self.device, self.together, self.max_waste,
                         self.observe)

    def request_stop(self, reason: str | None = None) -> None:
        """End the sweep as `cancelled` (the value being trained ends within one batch). `reason`
        (the first one given) says who asked, in the summary's reason ("stopped by the user" if
        none). Thread-safe."""
        self.unit.request_stop(reason)

    def _value_dir(self, out_dir: Path, v: float) -> Path:
        return Path(out_dir) / value_dir_name(self.param, v)

    def meta(self, extra: dict | None = None) -> dict:
        """sweep.json, before the trainer adds its buckets."""
        return {"param": self.param, "values": self.values, "preset": self.cfg.name, "epochs": self.cfg.optim.epochs,
                "seeds": self.cfg.run.seeds, "together": self.together, "observe": self.observe,
                "device": device_name(self.device),
                "config": self.cfg.dump(), **(extra or {})}

    # ---------------------------------------------------------------------------------------
    def run(self, out_dir: Path, on_progress: Callable[[dict], Any] | None = None,
            extra: dict | None = None) -> dict[str, Any]:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        data = load(self.cfg)
        sink = FileSink(out_dir, self.param, self.values, self.configs, self.meta(extra), extra, on_progress)
        try:
            if not self.together:
                sink.write_meta()
            finals, status, reason = self.unit.run(data, sink, label=str(out_dir))
        finally:
            sink.close()
        return self.conclude(out_dir, finals, status, reason, time.perf_counter() - t0)

    def conclude(self, out_dir: Path, finals: dict[float, dict], status: str, reason: str | None,
                 wall_seconds: float, **more: Any) -> dict[str, Any]:
        """sweep.jsonl (one row per value: its final numbers, `not_run` without any) and
        summary.json; returns the summary. The row of a value that failed or was cancelled has
        its `reason`."""
        rows = []
        for v, c in zip(self.values, self.configs):
            f = finals.get(v)
            row = {"param": self.param, "value": v, "width": c.model.width if self.param == "model.width" else None,
                   "n_params": None, "train_err": None, "val_err": None, "test_err": None, "test_loss": None,
                   "epochs_run": 0, "status": "not_run", "run_dir": self._value_dir(out_dir, v).name}
            if f:
                row.update({k: f.get(k) for k in FINAL_KEYS if self.observe or k not in OBSERVED_KEYS})
                row.update({k: f[k] for k in BAND_KEYS + STD_KEYS if k in f})  # run.seeds > 1: min, max, std over seeds
                if f.get("status") in ("failed", "cancelled") and f.get("reason"):
                    row["reason"] = f["reason"]
            rows.append(row)
        with open(out_dir / "sweep.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(runs.dumps(r) + "\n")
        summary = {"status": status, "reason": reason, "param": self.param, "values": self.values,
                   "together": self.together, "observe": self.observe, "wall_seconds": wall_seconds,
                   "device": more.pop("device", device_name(self.device)),
                   **shape_of([r for r in rows if r["status"] != "not_run"]), **more}
        runs.write_json_atomic(out_dir / "summary.json", summary)
        return summary
