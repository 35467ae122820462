"""The runs directory as the lab's run picker (f3) shows it: one entry per run with its preset, the
settings that differ from the other runs of that preset, status, test error and date; a sweep's
value runs grouped under it; and the filter that typing applies. Pure: no Textual, no torch.

    from gengap_tui.run_index import index, filtered
    entries = index("runs")
    [e.line() for e in filtered(entries, "label-noise cancelled")]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import runs
from .compare import diff_labels, flatten
from .protocol import fmt_value, run_config

LIMIT = 300  # entries read (newest first): the picker of a runs directory of thousands stays quick
# besides what a run trained with (`protocol.run_config` drops where it ran: torch, device, threads,
# GPU), the keys that name a run rather than set it: never a difference between two runs
RUN_LABEL_KEYS = ("name", "description")
TIME_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


@dataclass
class Entry:
    path: Path
    kind: str                  # "run" | "sweep" | "value" (a run of a sweep, listed under it)
    preset: str
    settings: str              # what differs from the other runs of its preset (a value: its value)
    status: str
    test_err: float | None
    date: str
    sweep: Path | None = None  # a value's sweep directory
    values: list = field(default_factory=list)  # a sweep's value entries

    @property
    def selectable(self) -> bool:
        """Runs and a sweep's value runs can be compared or attached to; a sweep header cannot."""
        return self.kind != "sweep"

    def line(self) -> str:
        """The row's text (plain: the dialog adds the markup)."""
        te = f"test err {self.test_err:.3f}" if isinstance(self.test_err, (int, float)) else ""
        if self.kind == "sweep":
            return f"{self.date:16}  sweep {self.preset}  {self.settings}  {self.status}  {te}".rstrip()
        if self.kind == "value":
            return f"  └ {self.settings:28}  {self.status:13} {te}".rstrip()
        return f"{self.date:16}  {self.preset:16} {self.settings:28} {self.status:13} {te}".rstrip()

    def text(self) -> str:
        """What the filter searches: the row, and the directory's name."""
        return f"{self.line()} {self.path.name}".lower()


def date_of(name: str) -> str:
    m = TIME_RE.match(name)
    return f"{m[1]}-{m[2]}-{m[3]} {m[4]}:{m[5]}" if m else ""


def _status(d: Path) -> tuple[str, float | None]:
    s = runs.read_json(d / "summary.json")
    if s is None:
        return ("running" if (d / "metrics.jsonl").is_file() else "starting"), None
    te = s.get("test_err")
    return str(s.get("status", "?")), (te if isinstance(te, (int, float)) else None)


def _run(d: Path, kind: str = "run", sweep: Path | None = None) -> tuple[Entry, dict]:
    cfg = runs.read_json(d / "config.json") or {}
    status, te = _status(d)
    return Entry(d, kind, str(cfg.get("name") or "?"), "", status, te, date_of(d.name), sweep), cfg


def _values_text(param, values) -> str:
    """`model.width = 4, 16 (2 values)`: the first four values as the lab writes them (a switch
    true / false, not 1 / 0)."""
    what = str(param or "?")
    if values:
        shown = ", ".join(fmt_value(v) if isinstance(v, (int, float, str)) else str(v) for v in values[:4])
        what += f" = {shown}{', …' if len(values) > 4 else ''} ({len(values)} values)"
    return what


def _sweep(d: Path) -> Entry:
    meta = runs.read_json(d / "sweep.json") or {}
    summary = runs.read_json(d / "summary.json")
    cfg = meta.get("config") or {}
    what = _values_text(meta.get("param"), meta.get("values") or [])
    if meta.get("param2"):  # a grid: its second setting too
        what += " × " + _values_text(meta["param2"], meta.get("values2") or [])
    status = "running" if summary is None else str(summary.get("status", "?"))
    entry = Entry(d, "sweep", str(cfg.get("name") or "?"), what, status, None, date_of(d.name))
    for v in sorted((p for p in d.iterdir() if p.is_dir() and (p / "config.json").is_file()),
                    key=lambda p: _value_key(p.name)):
        e, _ = _run(v, "value", d)
        # `width-8` -> width=8; a grid point's `width-8+label_noise-0.1` -> width=8 label_noise=0.1
        e.settings = " ".join(part.replace("-", "=", 1) for part in v.name.split("+"))
        entry.values.append(e)
    return entry


def _value_key(name: str) -> tuple:
    """Value directories in the order of their values (`width-9` before `width-10`); a grid
    point's (`width-9+label_noise-0.1`) by each of its settings in turn, numbers as numbers."""
    key = []
    for part in name.split("+"):
        head, _, tail = part.partition("-")
        try:
            key.append((head, 0, float(tail), ""))
        except ValueError:
            key.append((head, 1, 0.0, tail))
    return tuple(key)


def index(runs_dir: str | Path, limit: int = LIMIT) -> list[Entry]:
    """Runs and sweeps under `runs_dir`, newest first (at most `limit`), a sweep's value runs in its
    `values`. Each run's `settings` names what differs from the other runs of the same preset."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    dirs = sorted((p for p in d.iterdir() if p.is_dir() and ((p / "config.json").is_file()
                                                            or (p / "sweep.json").is_file())),
                  key=lambda p: p.name, reverse=True)[:limit]
    entries: list[Entry] = []
    by_preset: dict[str, list[tuple[Entry, dict]]] = {}
    for p in dirs:
        if (p / "sweep.json").is_file():
            entries.append(_sweep(p))
            continue
        e, cfg = _run(p)
        entries.append(e)
        by_preset.setdefault(e.preset, []).append((e, cfg))
    for group in by_preset.values():
        if len(group) < 2:
            continue
        configs = [{k: v for k, v in run_config(c).items() if k not in RUN_LABEL_KEYS} for _, c in group]
        flat = [flatten(c) for c in configs]
        if all(f == flat[0] for f in flat):
            continue
        for (e, _), label in zip(group, diff_labels(configs, max_keys=3)):
            e.settings = label
    return entries


def filtered(entries: list[Entry], query: str) -> list[Entry]:
    """The rows to show for the filter `query`: every whitespace-separated term (any case) found in
    the row. A sweep is shown with all its runs when it matches, with the matching ones otherwise."""
    terms = query.lower().split()
    out: list[Entry] = []
    for e in entries:
        hit = all(t in e.text() for t in terms)
        if e.kind == "sweep":
            values = e.values if hit else [v for v in e.values if all(t in v.text() or t in e.text() for t in terms)]
            if hit or values:
                out.append(e)
                out.extend(values)
        elif hit:
            out.append(e)
    return out
