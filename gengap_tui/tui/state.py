"""What the lab knows, apart from how it is drawn: the run on screen, the sweep on screen, the
status message. Messages from the source go in through `LabState.apply`; widgets and plot
functions read it. No Textual here, so all of it is testable without an app
(docs/ARCHITECTURE.md, "The lab").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import singledispatchmethod
from pathlib import Path
from typing import Any

from .. import presets, runs
from ..compare import diff_labels
from ..config import ConfigError, build, validate
from ..protocol import (Epoch, Error, Event, Progress, RunDir, Summary, SweepMeta, SweepRows, SweepSummary,
                        TWEAK_FIELDS, Warning, point_dir_name, run_config)
from .series import RunSeries, SweepSeries


def _value(cfg, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(cfg, section), name)


@dataclass
class RunState:
    """The run on screen: its rows, events and summary, and the config it runs with."""
    cfg: Any = None                       # the run's Config (the panels' until a run starts)
    series: RunSeries = field(default_factory=RunSeries)
    events: list[dict] = field(default_factory=list)
    summary: dict | None = None
    run_dir: Path | None = None
    paused: bool = False
    applied: dict = field(default_factory=dict)  # the tweakable values the run uses now

    def __post_init__(self) -> None:
        if self.cfg is not None:
            self.applied = {d: _value(self.cfg, d) for d in TWEAK_FIELDS}

    def change(self, cfg, dotted: str | None):
        """What the panels' `cfg` (just edited at field `dotted`) means for this run: a live tweak
        `(dotted, value)`, "restart" (a setting a run cannot change while it trains), or None
        (nothing the run uses changed; the sweep panel's [sweep] is not a run's business)."""
        if dotted in TWEAK_FIELDS:
            value = _value(cfg, dotted)
            return None if value == self.applied.get(dotted) else (dotted, value)
        a, b = cfg.dump(), self.cfg.dump()
        a.pop("sweep", None)
        b.pop("sweep", None)
        for d in TWEAK_FIELDS:
            section, name = d.split(".")
            a[section].pop(name, None)
            b[section].pop(name, None)
        return "restart" if a != b else None

    def event_epoch(self, kind: str) -> int | None:
        return next((e.get("epoch") for e in self.events if e.get("event") == kind), None)

    @property
    def stop(self) -> tuple[int, int | None] | None:
        """(the epoch early stopping fired, the epoch it kept), or None."""
        ev = next((e for e in self.events if e.get("event") == "early_stop"), None)
        return None if ev is None else (ev.get("epoch"), ev.get("best_epoch"))

    @property
    def patience(self) -> int:
        """The patience in force: the config's, or the last live tweak's."""
        patience = self.cfg.early_stopping.patience
        for e in self.events:
            if e.get("event") == "tweaked" and "patience" in e.get("changes", {}):
                patience = e["changes"]["patience"]
        return patience

    @property
    def device(self) -> str | None:
        return next((e.get("device") for e in self.events if e.get("event") == "started"), None)

    @property
    def seeds(self) -> int:
        """How many stacked seeds the run has (its rows say; 1 for an ordinary run)."""
        k = (self.series.last or {}).get("members")
        return int(k) if isinstance(k, (int, float)) and not isinstance(k, bool) and k > 1 else 1

    @property
    def live(self) -> bool:
        return self.summary is None


@dataclass
class SweepState:
    """The sweep on screen: each value's latest numbers, its sweep.json and summary. A grid sweep
    has `param2`: one line of `param` per value of it."""
    param: str = "model.width"
    series: SweepSeries = field(default_factory=SweepSeries)
    meta: dict | None = None
    summary: dict | None = None
    sweep_dir: Path | None = None
    paused: bool = False
    param2: str | None = None
    system: dict = field(default_factory=dict)  # the last progress line's system fields (tui/system.py)
    cursor: int | None = None   # the sweep view's cursor: an index into `series.order()`, or None
    cursor_line: int = 0        # ... and a grid's line (an index into `series.lines`)

    def move(self, dx: int = 0, dy: int = 0, to: int | None = None) -> tuple | None:
        """Move the cursor by `dx` values and `dy` lines (clamped), or to value index `to` (-1:
        the last); the first relative move puts it on the interpolation threshold (the value
        everybody asks about), else the first value. Returns the point under it: (value, a grid's
        value2 or None)."""
        order, lines = self.series.order(), self.series.lines
        if not order:
            return None
        if to is not None:
            self.cursor = to % len(order)
        elif self.cursor is None:
            thr = self.series.threshold(lines[min(self.cursor_line, len(lines) - 1)])
            self.cursor = order.index(thr) if thr in order else 0
        else:
            self.cursor += dx
        self.cursor = max(0, min(len(order) - 1, self.cursor))
        self.cursor_line = max(0, min(len(lines) - 1, self.cursor_line + dy))
        return self.point

    @property
    def point(self) -> tuple | None:
        """(value, value2 or None) under the cursor, or None."""
        order, lines = self.series.order(), self.series.lines
        if self.cursor is None or not order:
            return None
        return order[min(self.cursor, len(order) - 1)], lines[min(self.cursor_line, len(lines) - 1)]

    def point_dir(self, sweep_dir: Path | None = None) -> Path | None:
        """The run directory of the point under the cursor (it may not exist yet), in this sweep's
        directory (or `sweep_dir`: the one a sweep directory source reads)."""
        p, base = self.point, self.sweep_dir or sweep_dir
        if p is None or base is None:
            return None
        return Path(base) / point_dir_name(self.param, p[0], p[1], self.param2)

    @classmethod
    def expecting(cls, param: str, values: list, param2: str | None = None,
                  values2: list | None = None) -> "SweepState":
        values = sorted(values) if param == "model.width" else list(values)  # as core.sweep orders them
        return cls(param=param, series=SweepSeries(values, values2 if param2 else None), param2=param2 or None)


class LabState:
    """The run and the sweep on screen and the status message; `apply` takes a message from the
    source of the given kind and returns whether anything changed."""

    def __init__(self, cfg) -> None:
        self.run = RunState(cfg)
        self.sweep: SweepState | None = None
        self.status = "ready"

    def new_run(self, cfg, status: str) -> None:
        self.run = RunState(cfg)
        self.status = status

    def new_sweep(self, sweep: SweepState, status: str) -> None:
        self.sweep = sweep
        self.status = status

    def apply(self, msg, kind: str = "run") -> None:  # pragma: no mutate - any kind but "sweep" is a run's
        if kind == "sweep":
            self._sweep_message(msg)
        else:
            self._run_message(msg)

    # ------------------------------------------------------------------ a run's messages
    @singledispatchmethod
    def _run_message(self, msg) -> None:  # messages a run never sends are ignored
        pass

    @_run_message.register
    def _(self, msg: RunDir) -> None:
        self.run.run_dir = Path(msg.path)

    @_run_message.register
    def _(self, msg: Epoch) -> None:
        self.run.series.add(msg.row)
        if self.status.startswith("starting"):
            self.status = "running"

    @_run_message.register
    def _(self, msg: Event) -> None:
        self.run.events.append(msg.event)
        if msg.kind == "tweaked":
            self.status = f"tweaked at epoch {msg.event.get('epoch')}: {msg.event.get('changes')}"
        elif msg.kind == "warning":  # (a GPU shared with other processes, bfloat16 on a CPU)
            self.status = f"[b yellow]{str(msg.event.get('message')).replace('[', chr(92) + '[')}[/]"
        elif msg.kind == "started" and isinstance(msg.event.get("gpu"), dict) and msg.event["gpu"].get("chosen"):
            self.status = str(msg.event["gpu"]["chosen"])  # which GPU `auto` took, and why
        elif msg.kind == "checkpoint_failed":
            error = str(msg.event.get("error")).replace("[", "\\[")  # shown as text, not markup
            self.status = (f"[b yellow]checkpoint not saved after epoch {msg.event.get('epoch')}: "
                           f"{error}[/] (the run goes on)")

    @_run_message.register
    def _(self, msg: Summary) -> None:
        self.run.summary = msg.summary
        self.status = msg.summary.get("status", "finished")

    @_run_message.register
    def _(self, msg: Error) -> None:
        self.status = f"[b red]{msg.message}[/]"

    @_run_message.register
    def _(self, msg: Warning) -> None:
        self.status = f"[b yellow]{msg.message}[/]"

    # ------------------------------------------------------------------ a sweep's messages
    @singledispatchmethod
    def _sweep_message(self, msg) -> None:
        pass

    @_sweep_message.register
    def _(self, msg: RunDir) -> None:
        self._sweep().sweep_dir = Path(msg.path)

    @_sweep_message.register
    def _(self, msg: Error) -> None:
        self.status = f"[b red]sweep: {msg.message}[/]"

    @_sweep_message.register
    def _(self, msg: Warning) -> None:
        self.status = f"[b yellow]{msg.message}[/]"

    @_sweep_message.register
    def _(self, msg: SweepMeta) -> None:
        sw = self._sweep()
        sw.meta = msg.meta
        sw.param = msg.meta.get("param") or sw.param
        sw.param2 = msg.meta.get("param2") or None
        if msg.meta.get("values"):
            sw.series.set_values(msg.meta["values"], msg.meta.get("values2") if sw.param2 else None)

    @_sweep_message.register
    def _(self, msg: Progress) -> None:
        self._sweep().series.add_progress(msg.row)
        if "cpu_percent" in msg.row:
            self._sweep().system = msg.row
        if self.status.startswith(("starting", "following")):
            self.status = "sweeping"

    @_sweep_message.register
    def _(self, msg: SweepRows) -> None:
        self._sweep().series.add_final(msg.rows)

    @_sweep_message.register
    def _(self, msg: SweepSummary) -> None:
        s = self._sweep().summary = msg.summary
        self.status = f"sweep {s.get('status', 'finished')}" + (f": {s['reason']}" if s.get("reason") else "")

    def _sweep(self) -> SweepState:
        if self.sweep is None:
            self.sweep = SweepState()
        return self.sweep


def load_compared(dirs: list[str], cfg) -> tuple[list[tuple[str, RunSeries]], str]:
    """Recorded runs to overlay, each labelled by the settings that tell them apart (and the
    label of the run on screen, configured as `cfg`)."""
    records = []
    for d in dirs:
        try:
            records.append(runs.load_run(d))
        except (OSError, ValueError):
            continue

    def normalized(raw: dict | None) -> dict:  # defaults filled in, so older runs compare fairly
        try:
            return validate(run_config(raw)).dump()
        except ConfigError:
            return run_config(raw)

    labels = diff_labels([normalized(r.config) for r in records] + [cfg.dump()],
                         [r.path.name for r in records] + ["this run"])
    compared = []
    for rec, label in zip(records, labels):
        series = RunSeries()
        for row in rec.metrics:
            series.add(row)
        compared.append((label, series))
    return compared, (labels[-1] if records else "")


def sweep_config(sweep_dir: Path, preset: str) -> tuple[dict, Any, str]:
    """The config a sweep directory was made with (sweep.json), for the panels, its [sweep] what
    the sweep swept (the sweep panel shows it: f4 sweeps it again), and a note; the preset's when sweep.json is not written yet or does not validate here (the view needs neither)."""
    meta = runs.read_json(sweep_dir / "sweep.json") or {}
    raw = meta.get("config")
    note = ""
    if isinstance(raw, dict):
        raw = run_config(raw)
        if meta.get("param") and isinstance(meta.get("values"), list):  # the sweep panel: what was swept
            raw["sweep"] = {"param": meta["param"], "values": meta["values"], "param2": meta.get("param2") or "",
                            "values2": (meta.get("values2") or []) if meta.get("param2") else []}
        try:
            return raw, validate(raw, str(sweep_dir / "sweep.json")), ""
        except ConfigError as exc:
            note = f"the sweep's config does not validate here ({exc}): the panels show {preset}"
    base = presets.load_raw(preset)
    return base, build(base), note
