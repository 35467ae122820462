"""The settings form: validated panels of the config's fields, by section.

The form turns its fields into `--set` overrides of a base config and validates them with the
config's own rules (`config.build`); a bad field is marked, with the message under it. What a
change means for a run (a live tweak, a restart) is the app's business, not the form's.

The fields (~70 widgets) are mounted after the lab's first frame (`populate`), which they would
otherwise delay by ~0.25 s; until then the form answers from the values it would show (`values`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select, Static

from ...config import SECTIONS, Config, ConfigError, build
from .fields import Field, Tick
from .sweep_panel import MIRRORS, SWEEP_FIELDS, SweepPanel, sweep_id

# the fields shown in the panels, by section (the rest keep the base config's values)
PANELS: dict[str, list[str]] = {
    "run": ["seeds"],
    "data": ["dataset", "path", "n_train", "binary"],
    "noise": ["label_noise", "kind"],
    "model": ["kind", "depth", "width", "activation"],
    "regularization": ["weight_decay", "decoupled", "l1", "dropout", "input_noise", "augment", "crop_pad"],
    "optim": ["optimizer", "lr", "batch_size", "epochs", "schedule"],
    "early_stopping": ["enabled", "monitor", "patience", "min_delta", "min_delta_mode",
                       "start_from_epoch", "restore_best", "observe"],
    "baselines": ["knn", "knn_k", "knn_metric", "ntk"],
    "ratt": ["enabled", "n_random", "delta"],
}
TITLES = {"run": "Run", "data": "Data", "noise": "Label noise", "model": "Model", "regularization": "Regularization",
          "optim": "Optimizer", "early_stopping": "Early stopping", "baselines": "Baselines",
          "ratt": "RATT certificate"}
FIELDS = [f"{s}.{n}" for s, names in PANELS.items() for n in names]


def field_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--").replace("_", "-")


def dotted_of(widget_id: str | None) -> str | None:
    """The setting a field shows: the panels', the sweep panel's (its [sweep] keys, and the run
    settings it shows too)."""
    if widget_id in MIRRORS:
        return MIRRORS[widget_id]
    return next((d for d in (*FIELDS, *SWEEP_FIELDS) if field_id(d) == widget_id or sweep_id(d) == widget_id), None)


def value_of(cfg: Config, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(cfg, section), name)


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _kind(dotted: str) -> str:
    section, name = dotted.split(".")
    ann = SECTIONS[section].model_fields[name].annotation
    return "select" if get_origin(ann) is Literal else "tick" if ann is bool else "input"


def _override(dotted: str, kind: str, value: Any) -> str:
    """The `--set` override a field's shown value makes."""
    if kind == "input":
        return f"{dotted}={str(value).strip()}"
    if kind == "tick":
        return f"{dotted}={'true' if value else 'false'}"
    return f'{dotted}="{value}"'


class SettingsForm(VerticalScroll):
    """The panels. `validate(base)` -> the Config, or None with `errors` by field. With
    `deferred`, the fields are mounted by `populate()` (the lab calls it after its first frame).
    The form itself never takes focus (its fields do, and scroll it into view): focusing or
    blurring the scroll container restyles all ~200 of its widgets, ~75 ms on the 2-core box."""

    can_focus = False

    def __init__(self, cfg: Config, deferred: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.initial = cfg
        self.errors: dict[str, str] = {}
        self._controls: dict[str, Any] = {}
        self._error_labels: dict[str, Label] = {}
        # what the fields show (or will show, before they are mounted), by dotted name
        self.values: dict[str, Any] = {d: value_of(cfg, d) for d in FIELDS}
        self.populated = not deferred
        self.sweep_panel = SweepPanel(cfg, id="sweep-panel")

    def compose(self) -> ComposeResult:
        if self.populated:
            yield from self._widgets()

    async def populate(self) -> None:
        """Mount the fields (once), showing `values`."""
        if self.populated or not self.is_attached:
            return
        # made under `prevent`: the fields do not post a change event for their first value
        # (26 validations of the whole form, ~40 ms, before the panels showed)
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            widgets = self._widgets()
        await self.mount_all(widgets)
        self.populated = True

    def _widgets(self) -> list:
        out: list = []
        for section, names in PANELS.items():
            out.append(Label(TITLES[section], classes="section"))
            out.extend(self._field(f"{section}.{name}", self.values[f"{section}.{name}"]) for name in names)
        out.append(self.sweep_panel)
        out.append(Static("", id="form-errors"))
        return out

    def _field(self, dotted: str, value) -> Horizontal:
        section, name = dotted.split(".")
        ann = SECTIONS[section].model_fields[name].annotation
        fid = field_id(dotted)
        kind = _kind(dotted)
        if kind == "select":
            control = Select([(str(a), a) for a in get_args(ann)], value=value, allow_blank=False, id=fid,
                             compact=True)
        elif kind == "tick":
            control = Tick("", value=value, id=fid, compact=True)
        else:
            control = Field(_text(value), id=fid, compact=True)
        # the field's error label is mounted the first time it has a message (`_error_label`):
        # ~35 fewer widgets to style before the first frame
        return Horizontal(Label(name, classes="name"), control, classes="field")

    def control(self, dotted: str):
        """A field's input widget, looked up once (validation runs on every keystroke, and a
        DOM query per field per validation made the start-up validations cost ~0.1 s each)."""
        w = self._controls.get(dotted)
        if w is None:
            w = self._controls[dotted] = self.query_one("#" + field_id(dotted))
        return w

    def overrides(self) -> list[str]:
        if not self.populated:
            return [_override(d, _kind(d), _text(v) if _kind(d) == "input" else v) for d, v in self.values.items()]
        out = []
        for dotted in FIELDS:
            w = self.control(dotted)
            if isinstance(w, Input):
                out.append(_override(dotted, "input", w.value))
            elif isinstance(w, Checkbox):
                out.append(_override(dotted, "tick", w.value))
            elif isinstance(w, Select):
                out.append(_override(dotted, "select", w.value))
        return out

    def _error_label(self, dotted: str, control, create: bool) -> Label | None:
        """The label under a field for its message; mounted the first time there is one."""
        label = self._error_labels.get(dotted)
        if label is None and create:
            label = self._error_labels[dotted] = Label("", id=field_id(dotted) + "-err", classes="err")
            control.parent.parent.mount(label, after=control.parent)
        return label

    @property
    def sweep_errors(self) -> dict[str, str]:
        """The sweep panel's problems: they stop f4 and ctrl+s, not a run (ctrl+r)."""
        return {d: m for d, m in self.errors.items() if d in SWEEP_FIELDS}

    def _build(self, base: dict, sweep: dict | None) -> Config | None:
        """Build over `base` (with the sweep panel's [sweep] table, if given); problems by field."""
        try:
            return build(base if sweep is None else {**base, "sweep": sweep}, self.overrides())
        except ConfigError as exc:
            for problem in exc.problems:
                key = problem.split(" ", 1)[0].rstrip(":").removeprefix("--set").strip()
                dotted = next((d for d in (*FIELDS, *SWEEP_FIELDS) if problem.startswith(f"{d} ")
                               or problem.startswith(f"{d}:") or f"'{d}=" in problem), key)
                self.errors.setdefault(dotted, problem)
            return None

    def validate(self, base: dict) -> Config | None:
        """Validate every field over `base`, the sweep panel's [sweep] table with them; mark the
        bad ones with their message. A problem of the sweep panel alone leaves the config of a run
        valid (the base's [sweep]): it is in `errors` and `sweep_errors`."""
        self.sweep_panel.read()
        self.errors = dict(self.sweep_panel.problems)
        cfg = self._build(base, self.sweep_panel.table)
        if cfg is None and self.errors and all(d in SWEEP_FIELDS for d in self.errors):
            cfg = self._build(base, None)
        if not self.populated:  # nothing to mark yet (and the shown values are the initial ones)
            return cfg
        for dotted in FIELDS:
            w = self.control(dotted)
            msg = self.errors.get(dotted, "")
            w.set_class(bool(msg), "-invalid")
            err = self._error_label(dotted, w, create=bool(msg))
            if err is not None:
                err.update(msg)
                err.set_class(bool(msg), "-shown")
        self.sweep_panel.mark(self.errors)
        other = [m for k, m in self.errors.items() if k not in FIELDS and k not in SWEEP_FIELDS]
        self.query_one("#form-errors", Static).update("\n".join(other))
        return cfg

    def fill(self, cfg: Config) -> None:
        """Show `cfg`'s values (without the change events a user's edit sends)."""
        for dotted in FIELDS:
            self.show_value(dotted, value_of(cfg, dotted))
        with self.prevent(Input.Changed):
            self.sweep_panel.fill(cfg)

    def show_value(self, dotted: str, value: Any) -> None:
        """Show `value` in field `dotted` (without the change event a user's edit sends)."""
        self.values[dotted] = value
        if dotted in MIRRORS.values():
            with self.prevent(Input.Changed, Checkbox.Changed):
                self.sweep_panel.show_mirror(dotted, _text(value) if isinstance(value, float) else value)
        if not self.populated:
            return
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            w = self.control(dotted)
            w.value = _text(value) if isinstance(w, Input) else value

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _keep_mirrors(self, event) -> None:
        """The run settings the sweep panel shows too: an edit in either field shows in the other
        (before the app validates: this form is an ancestor of both)."""
        control = event.control
        wid = getattr(control, "id", None)
        if wid in MIRRORS:
            dotted = MIRRORS[wid]
            self.values[dotted] = control.value
            if self.populated:
                with self.prevent(Input.Changed, Checkbox.Changed):
                    self.control(dotted).value = control.value
        elif self.populated and (dotted := dotted_of(wid)) in MIRRORS.values():
            with self.prevent(Input.Changed, Checkbox.Changed):
                self.sweep_panel.show_mirror(dotted, control.value)
