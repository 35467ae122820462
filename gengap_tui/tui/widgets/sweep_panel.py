"""The sweep panel: what f4 sweeps, set in the lab (docs/ARCHITECTURE.md, "The lab").

Parameter (any sweepable setting), values (a list or a range: `2..300 x20 log`), a second
parameter and its values for a grid, and the seeds and observe switch a sweep trains with (the
same settings as the Run and Early stopping panels' `seeds` and `observe`: the two fields show one
value, edited in either place). The panel's text becomes the config's [sweep] table
(`sweep_values.parse_values`, then the config's own rules, `config.check_sweep`), validated on
every keystroke with the rest of the form; ctrl+s saves it into the preset's [sweep].
"""

from __future__ import annotations

from typing import Any, Literal, get_origin

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Label, Static

from ...config import SECTIONS, UNSWEPT_SECTIONS, Config
from ...sweep_values import MAX_VALUES, as_text, parse_values, shown
from .fields import Field, Tick

# the panel's fields: dotted name of the [sweep] key (or of the setting a mirror shows), its label
SWEEP_FIELDS = ("sweep.param", "sweep.values", "sweep.param2", "sweep.values2")
LABELS = {"sweep.param": "parameter", "sweep.values": "values", "sweep.param2": "parameter 2",
          "sweep.values2": "values 2"}
# the run settings a sweep trains with, shown here too (one value, two fields): widget id -> dotted
MIRRORS = {"sw-seeds": "run.seeds", "sw-observe": "early_stopping.observe"}
PLACEHOLDERS = {"sweep.param": "model.width", "sweep.values": "2..300 x20 log  or  2,4,8",
                "sweep.param2": "none (a grid: a 2nd setting)", "sweep.values2": "its values"}


def sweepable() -> list[str]:
    """Every setting one can sweep (the parameter fields suggest them as you type)."""
    out = []
    for section, model in SECTIONS.items():
        if section in UNSWEPT_SECTIONS:
            continue
        for name, f in model.model_fields.items():
            if f.annotation in (int, float, bool, str) or get_origin(f.annotation) is Literal:
                out.append(f"{section}.{name}")
    return out


def sweep_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--")


def texts_of(cfg: Config) -> dict[str, str]:
    s = cfg.sweep
    return {"sweep.param": s.param, "sweep.values": as_text(s.values), "sweep.param2": s.param2,
            "sweep.values2": as_text(s.values2)}


def parse_sweep(texts: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The [sweep] table the panel's texts make, and the problems by field (a bad parameter, a
    bad list or range). Empty values are no sweep yet: not a problem here (f4 says so)."""
    table: dict[str, Any] = {"param": texts["sweep.param"].strip(), "values": [],
                             "param2": texts["sweep.param2"].strip(), "values2": []}
    problems: dict[str, str] = {}
    for key, param_key, limit in (("values", "param", MAX_VALUES), ("values2", "param2", 64)):
        text, param = texts[f"sweep.{key}"].strip(), table[param_key]
        if not text or (key == "values2" and not param):
            table[key] = [text] if text else []  # values2 without param2: the config says what is wrong
            continue
        try:
            table[key] = parse_values(param, text, f"sweep.{key}", limit)
        except ValueError as exc:
            field = f"sweep.{param_key}" if str(exc).startswith(f"sweep.{param_key}") else f"sweep.{key}"
            problems[field] = str(exc)
    return table, problems


class SweepPanel(Vertical):
    """The panel's widgets (mounted with the settings fields, `SettingsForm.populate`); `texts`
    holds what they show, before they are mounted too."""

    def __init__(self, cfg: Config, **kw) -> None:
        super().__init__(**kw)
        self.texts = texts_of(cfg)
        self.mirrored = {d: (cfg.run.seeds if d == "run.seeds" else cfg.early_stopping.observe)
                         for d in MIRRORS.values()}
        self.table: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        self._widgets: dict[str, Any] = {}

    def _w(self, wid: str):
        """A widget of the panel by id, looked up once (the form validates on every keystroke)."""
        w = self._widgets.get(wid)
        if w is None:
            w = self._widgets[wid] = self.query_one("#" + wid)
        return w

    def compose(self) -> ComposeResult:
        yield Label("Sweep (f4 starts it)", classes="section")
        names = sweepable()
        for dotted in SWEEP_FIELDS:
            suggester = SuggestFromList(names, case_sensitive=False) if dotted.endswith(("param", "param2")) else None
            control = Field(self.texts[dotted], id=sweep_id(dotted), compact=True, suggester=suggester,
                            placeholder=PLACEHOLDERS[dotted])
            yield Horizontal(Label(LABELS[dotted], classes="name"), control, classes="field")
            yield Label("", id=sweep_id(dotted) + "-err", classes="err")
        yield Horizontal(Label("seeds", classes="name"),
                         Field(str(self.mirrored["run.seeds"]), id="sw-seeds", compact=True), classes="field")
        yield Horizontal(Label("observe", classes="name"),
                         Tick("", value=self.mirrored["early_stopping.observe"], id="sw-observe", compact=True),
                         classes="field")
        yield Static("", id="sweep-note", classes="note")

    def read(self) -> dict[str, Any]:
        """The [sweep] table the panel says (its problems in `problems`)."""
        if self.is_mounted and self.children:
            for dotted in SWEEP_FIELDS:
                self.texts[dotted] = self._w(sweep_id(dotted)).value
        self.table, self.problems = parse_sweep(self.texts)
        return self.table

    def mark(self, errors: dict[str, str]) -> None:
        """Mark the panel's bad fields (the config's sweep problems and the panel's own), and say
        what f4 would sweep."""
        if not (self.is_mounted and self.children):
            return
        for dotted in SWEEP_FIELDS:
            msg = errors.get(dotted, "")
            self._w(sweep_id(dotted)).set_class(bool(msg), "-invalid")
            label = self._w(sweep_id(dotted) + "-err")
            label.update(msg)
            label.set_class(bool(msg), "-shown")
        for wid, dotted in MIRRORS.items():
            self._w(wid).set_class(dotted in errors, "-invalid")
        self._w("sweep-note").update(self.note(errors))

    def note(self, errors: dict[str, str]) -> str:
        t = self.table
        if any(d in errors for d in SWEEP_FIELDS):
            return "[dim]fix the sweep's fields: f4 sweeps what they say[/]"
        if not t.get("values"):
            return "[dim]no values: f4 has nothing to sweep[/]"
        line = f"[dim]{t['param']}: {shown(t['values'])}"
        if t.get("param2"):
            line += f"\n x {t['param2']}: {shown(t['values2'])}"
        return line + "[/]"

    def fill(self, cfg: Config) -> None:
        self.texts = texts_of(cfg)
        if self.is_mounted and self.children:
            for dotted in SWEEP_FIELDS:
                self._w(sweep_id(dotted)).value = self.texts[dotted]

    def show_mirror(self, dotted: str, value: Any) -> None:
        """Show a run setting's value in its field here (the form keeps the two in step)."""
        self.mirrored[dotted] = value
        if self.is_mounted and self.children:
            wid = next(w for w, d in MIRRORS.items() if d == dotted)
            w = self._w(wid)
            w.value = str(value) if wid == "sw-seeds" else bool(value)
