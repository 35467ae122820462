"""Sweeps: one model per value of a setting, trained *together* where the shapes allow.

    from gengap_tui.core.sweep import Sweep
    sw = Sweep(cfg, "model.width", [2, 4, 8, 16])
    summary = sw.run(out_dir)                       # writes sweep.json, progress.jsonl, sweep.jsonl

    grid = Sweep(cfg, "model.width", [2, 8, 32], param2="noise.label_noise", values2=[0.0, 0.2])

Any number, switch or choice of the schema can be swept (`config.sweep_field`); with `param2` the
sweep is the grid of two settings: one line of `param` per value of `param2`, trained one line after
another, each line a unit of its own. A width sweep of the MLP (`model.width`, or a grid line of
one) trains every width, times `run.seeds` seeds, as one `GroupedMLP` (stacked weights in buckets
of similar width, `models/grouped.py`): one optimizer step per batch for all of them; of an image
network (`cnn2d`, `resnet18`) as one `Stacked2D` (grouped convolutions, buckets of similar cost,
`models/stacked2d.py`). Any other setting (or `together=False`) trains the values one after another
with the ordinary trainer. Either way, sweeps train every value for `optim.epochs` epochs with early
stopping off: the numbers are the final epoch's, as in Nakkiran et al.'s double-descent curves.

Files in `out_dir` (docs/ARCHITECTURE.md, "Run directory"):
    sweep.json       param, values, preset, epochs, together, buckets, padded_fraction, device
    progress.jsonl   one line per epoch: epoch, values, train_err, val_err, test_err, train_loss,
                     val_loss, test_loss (lists aligned with `values`; in one-at-a-time mode just
                     the value being trained) — what the lab's sweep view follows live
    sweep.jsonl      one line per value (a grid: per point) when the sweep ends: param, value,
                     [param2, value2,] width, n_params, train_err, val_err, test_err, test_loss,
                     epochs_run, status, run_dir
    summary.json     status, wall_seconds, interpolation_threshold (the first value whose final
                     training error is <= 1%), peak_value / peak_test_err, dip_value / dip_test_err
                     (the lowest test error before the peak; all four null when no value is a
                     peak), last_test_err, peak_prominence (`shape_of`)
    <param>-<value>/ one run directory per value (config.json, metrics.jsonl, summary.json); a
                     grid's are <param>-<value>+<param2>-<value2>/, and its summary has `lines`

The training itself is a `units.Unit` (here one of all the values; a grid's: one per line) writing through a
`units.FileSink`; `raysweep.py` trains several units in Ray tasks into the same files.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from .. import runs
from ..config import ConfigError, stored_sweep_value, sweep_value, validate
from ..protocol import FIT_ERR, USER_STOP, exact_value
from .data import load
from .models import is_image_model
from .trainer import device_name, pick_device
from .units import BAND_KEYS, DATA_SECTIONS, STD_KEYS, FileSink, Unit, _finite, split_point, value_dir_name

OBSERVED_KEYS = ("best_epoch", "would_stop_epoch", "test_err_kept", "test_err_final", "epochs_saved")
FINAL_KEYS = ("n_params", "train_err", "val_err", "test_err", "test_loss", "epochs_run", "status", "train_clean_err",
              "noisy_memorized", "weight_norm", "spectral_norm_product", *OBSERVED_KEYS)


def observing(cfg) -> bool:
    """A sweep watches early stopping (observe mode) when the preset's early stopping is enabled
    with `observe = true`; otherwise its values train with early stopping off."""
    return cfg.early_stopping.enabled and cfg.early_stopping.observe


def point_config(cfg, settings: list[tuple[str, Any]]):
    """The validated config of one point of a sweep: `cfg` with each (setting, value) of
    `settings` (early stopping off, or observing). Raises ConfigError (a value the config's
    cross-checks refuse) or ValueError (a value out of its setting's range), naming the setting
    and the value."""
    data = cfg.dump()
    if not observing(cfg):
        data["early_stopping"]["enabled"] = False
    source = "sweep " + ", ".join(f"{p} = {exact_value(v)}" for p, v in settings)
    try:
        for param, v in settings:
            section, name = param.split(".")
            data[section][name] = sweep_value(param, v, "")
    except ValueError as exc:  # not a setting, or a value out of its range
        raise ConfigError([str(exc)], source) from None
    return validate(data, source)


def value_configs(cfg, param: str, values: list) -> list:
    """The validated config of each value of a one-setting sweep (`point_config`)."""
    return [point_config(cfg, [(param, v)]) for v in values]


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
# Image networks (cnn2d, resnet18) do real arithmetic per launch at all but the smallest widths:
# padding costs what it computes on a GPU too (bench/images.py measures grouped against one at a time)
MAX_WASTE_IMAGES = {"cpu": 0.25, "cuda": 0.5}


def max_waste_for(kind: str, device_type: str) -> float:
    """The widest padding a bucket may carry: per device, and for image networks their own (a local
    sweep and a Ray unit alike)."""
    return (MAX_WASTE_IMAGES if is_image_model(kind) else MAX_WASTE).get(device_type, 0.25)
# model kinds whose widths train together in a width sweep (grouped: `multi.MultiTrainer`)
GROUPED_WIDTH_KINDS = ("mlp", "cnn2d", "resnet18")




class Sweep:
    """A sweep of `param` over `values`, or with `param2` / `values2` the grid of the two: one
    *line* of `param` per value of `param2`, each line a unit of its own (its widths trained
    together where they are today), trained one line after another. `points` are what is
    trained: the values, or a grid's `(value, value2)` pairs, line after line."""

    def __init__(self, cfg, param: str, values: list, device: str | None = None,
                 together: bool | None = None, max_waste: float | None = None,
                 param2: str | None = None, values2: list | None = None):
        if not values:
            raise ValueError(f"sweep.values: nothing to sweep over for {param} (give --values or the preset's [sweep])")
        if param2 and not values2:
            raise ValueError(f"sweep.values2: nothing to sweep over for {param2} (a grid needs the values of both)")
        if param2 == param:
            raise ValueError(f"sweep.param2: {param2!r} is sweep.param too (a grid needs two different settings)")
        for p, vs in ((param, values), (param2, values2 or [])):
            if len(set(map(repr, map(stored_sweep_value, vs)))) != len(vs):
                raise ValueError(f"sweep.values: {p} values repeat: {vs}")
        self.cfg = cfg
        self.param, self.param2 = param, param2 or None
        self.values = sorted(float(v) for v in values) if param == "model.width" else [stored_sweep_value(v)
                                                                                        for v in values]
        self.values2 = [stored_sweep_value(v) for v in values2 or []] if self.param2 else []
        self.observe = observing(cfg)
        self.device = pick_device(device or cfg.device)
        waste = lambda kind: max_waste_for(kind, self.device.type) if max_waste is None else max_waste  # noqa: E731
        self.max_waste = waste(cfg.model.kind)
        # the lines: (value2, points, configs); a one-setting sweep is one line of its values
        self.lines: list[tuple[Any, list, list]] = []
        for v2 in self.values2 or [None]:
            points = [v if v2 is None else (v, v2) for v in self.values]
            settings = [[(param, v)] if v2 is None else [(param, v), (self.param2, v2)] for v in self.values]
            self.lines.append((v2, points, [point_config(cfg, s) for s in settings]))
        self.points = [p for _, pts, _ in self.lines for p in pts]
        self.configs = [c for _, _, cs in self.lines for c in cs]
        # widths of an MLP or an image network train together; any other setting (an architecture,
        # an optimizer...) one at a time
        grouped = [param == "model.width" and cs[0].model.kind in GROUPED_WIDTH_KINDS for _, _, cs in self.lines]
        self.line_together = [g if together is None else (together and g) for g in grouped]
        self.together = all(self.line_together)
        self._together_of = {p: t for (_, pts, _), t in zip(self.lines, self.line_together) for p in pts}
        self._stop_reason: str | None = None
        self._stopped = False
        # a local sweep is one unit per line (a Ray sweep runs several per line: raysweep.py)
        self.units = [Unit(cfg, param, pts, cs, self.device, t, waste(cs[0].model.kind), self.observe)
                      for (_, pts, cs), t in zip(self.lines, self.line_together)]

    def together_of(self, point: Any) -> bool:
        """Whether the line of `point` trains its values together."""
        return self._together_of[point]

    def request_stop(self, reason: str | None = None) -> None:
        """End the sweep as `cancelled` (the value being trained ends within one batch). `reason`
        (the first one given) says who asked, in the summary's reason ("stopped by the user" if
        none). Thread-safe."""
        if reason and self._stop_reason is None:
            self._stop_reason = reason
        self._stopped = True
        for unit in self.units:
            unit.request_stop(reason)

    def _value_dir(self, out_dir: Path, v: Any) -> Path:
        return Path(out_dir) / value_dir_name(self.param, v, self.param2)

    def meta(self, extra: dict | None = None) -> dict:
        """sweep.json, before the trainer adds its buckets."""
        grid = {"param2": self.param2, "values2": self.values2} if self.param2 else {}
        return {"param": self.param, "values": self.values, **grid, "preset": self.cfg.name,
                "epochs": self.cfg.optim.epochs,
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
        sink = FileSink(out_dir, self.param, self.points, self.configs, self.meta(extra), extra, on_progress,
                        self.param2)
        finals: dict = {}
        status, reason = "completed", None
        failed: str | None = None  # the first failure: the other lines go on, the sweep ends failed
        try:
            if not self.together:
                sink.write_meta()
            per_line_data = (self.param2 or "").split(".")[0] in DATA_SECTIONS
            for (_, _, configs), unit in zip(self.lines, self.units):
                if self._stopped:  # between two lines: the lines not started are not_run
                    status, reason = "cancelled", self._stop_reason or USER_STOP
                    break
                line_data = load(configs[0]) if per_line_data else data
                done, status, reason = unit.run(line_data, sink, label=str(out_dir))
                finals.update(done)
                if status == "failed":
                    failed = failed or reason
                elif status != "completed":
                    break
            if status != "cancelled" and failed:
                status, reason = "failed", failed
        finally:
            sink.close()
        return self.conclude(out_dir, finals, status, reason, time.perf_counter() - t0)

    def conclude(self, out_dir: Path, finals: dict[float, dict], status: str, reason: str | None,
                 wall_seconds: float, **more: Any) -> dict[str, Any]:
        """sweep.jsonl (one row per value: its final numbers, `not_run` without any) and
        summary.json; returns the summary. The row of a value that failed or was cancelled has
        its `reason`."""
        rows = []
        for p, c in zip(self.points, self.configs):
            f = finals.get(p)
            v, v2 = split_point(p)
            row = {"param": self.param, "value": v, **({"param2": self.param2, "value2": v2} if self.param2 else {}),
                   "width": c.model.width if "model.width" in (self.param, self.param2) else None,
                   "n_params": None, "train_err": None, "val_err": None, "test_err": None, "test_loss": None,
                   "epochs_run": 0, "status": "not_run", "run_dir": self._value_dir(out_dir, p).name}
            if f:
                row.update({k: f.get(k) for k in FINAL_KEYS if self.observe or k not in OBSERVED_KEYS})
                row.update({k: f[k] for k in BAND_KEYS + STD_KEYS if k in f})  # run.seeds > 1: min, max, std over seeds
                if f.get("status") in ("failed", "cancelled") and f.get("reason"):
                    row["reason"] = f["reason"]
            rows.append(row)
        with open(out_dir / "sweep.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(runs.dumps(r) + "\n")
        trained = [r for r in rows if r["status"] != "not_run"]
        summary = {"status": status, "reason": reason, "param": self.param, "values": self.values,
                   "together": self.together, "observe": self.observe, "wall_seconds": wall_seconds,
                   "device": more.pop("device", device_name(self.device)),
                   **shape_of([] if self.param2 else trained), **more}
        if self.param2:  # a grid: the shape of each line (a value of param2); none for the whole
            summary.update(param2=self.param2, values2=self.values2,
                           lines=[{"value2": v2, **shape_of([r for r in trained if r["value2"] == v2])}
                                  for v2 in self.values2])
        runs.write_json_atomic(out_dir / "summary.json", summary)
        return summary
