"""The settings form: validated panels of the config's fields, by section.

The form turns its fields into `--set` overrides of a base config and validates them with the
config's own rules (`config.build`); a bad field is marked, with the message under it. What a
change means for a run (a live tweak, a restart) is the app's business, not the form's.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select, Static

from ...config import SECTIONS, Config, ConfigError, build

# the fields shown in the panels, by section (the rest keep the base config's values)
PANELS: dict[str, list[str]] = {
    "run": ["seeds"],
    "data": ["dataset", "n_train", "binary"],
    "noise": ["label_noise", "kind"],
    "model": ["kind", "depth", "width", "activation"],
    "regularization": ["weight_decay", "decoupled", "l1", "dropout", "input_noise"],
    "optim": ["optimizer", "lr", "batch_size", "epochs"],
    "early_stopping": ["enabled", "monitor", "patience", "min_delta", "min_delta_mode",
                       "start_from_epoch", "restore_best", "observe"],
    "baselines": ["knn", "knn_k", "knn_metric", "ntk"],
    "ratt": ["enabled", "n_random", "delta"],
}
TITLES = {"run": "Run", "data": "Data", "noise": "Label noise", "model": "Model", "regularization": "Regularization",
          "optim": "Optimizer", "early_stopping": "Early stopping", "baselines": "Baselines",
          "ratt": "RATT certificate"}
FIELDS = [f"{s}.{n}" for s, names in PANELS.items() for n in names]


class Tick(Checkbox):
    """A checkbox whose state reads without colour (NO_COLOR, a monochrome terminal): X when on,
    blank when off (Textual's shows X in both states, told apart by colour only)."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - the name Textual's ToggleButton reads
        return "X" if self.value else " "


def field_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--").replace("_", "-")


def dotted_of(widget_id: str | None) -> str | None:
    return next((d for d in FIELDS if field_id(d) == widget_id), None)


def value_of(cfg: Config, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(cfg, section), name)


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class SettingsForm(VerticalScroll):
    """The panels. `validate(base)` -> the Config, or None with `errors` by field."""

    def __init__(self, cfg: Config, **kw) -> None:
        super().__init__(**kw)
        self.initial = cfg
        self.errors: dict[str, str] = {}
        self._controls: dict[str, Any] = {}
        self._error_labels: dict[str, Label] = {}

    def compose(self) -> ComposeResult:
        for section, names in PANELS.items():
            yield Label(TITLES[section], classes="section")
            model = SECTIONS[section]
            values = getattr(self.initial, section)
            for name in names:
                yield from self._field(f"{section}.{name}", model.model_fields[name], getattr(values, name))
        yield Static("", id="form-errors")

    def _field(self, dotted: str, info, value) -> ComposeResult:
        ann = info.annotation
        fid = field_id(dotted)
        with Horizontal(classes="field"):
            yield Label(dotted.split(".")[1], classes="name")
            if get_origin(ann) is Literal:
                yield Select([(str(a), a) for a in get_args(ann)], value=value, allow_blank=False, id=fid,
                             compact=True)
            elif ann is bool:
                yield Tick("", value=value, id=fid, compact=True)
            else:
                yield Input(_text(value), id=fid, compact=True)
        # the field's error label is mounted the first time it has a message (`_error_label`):
        # ~35 fewer widgets to style before the first frame

    def control(self, dotted: str):
        """A field's input widget, looked up once (validation runs on every keystroke, and a
        DOM query per field per validation made the start-up validations cost ~0.1 s each)."""
        w = self._controls.get(dotted)
        if w is None:
            w = self._controls[dotted] = self.query_one("#" + field_id(dotted))
        return w

    def overrides(self) -> list[str]:
        out = []
        for dotted in FIELDS:
            w = self.control(dotted)
            if isinstance(w, Input):
                out.append(f"{dotted}={w.value.strip()}")
            elif isinstance(w, Checkbox):
                out.append(f"{dotted}={'true' if w.value else 'false'}")
            elif isinstance(w, Select):
                out.append(f'{dotted}="{w.value}"')
        return out

    def _error_label(self, dotted: str, control, create: bool) -> Label | None:
        """The label under a field for its message; mounted the first time there is one."""
        label = self._error_labels.get(dotted)
        if label is None and create:
            label = self._error_labels[dotted] = Label("", id=field_id(dotted) + "-err", classes="err")
            control.parent.parent.mount(label, after=control.parent)
        return label

    def validate(self, base: dict) -> Config | None:
        """Validate every field over `base`; mark the bad ones with their message."""
        self.errors = {}
        cfg = None
        try:
            cfg = build(base, self.overrides())
        except ConfigError as exc:
            for problem in exc.problems:
                key = problem.split(" ", 1)[0].rstrip(":").removeprefix("--set").strip()
                dotted = next((d for d in FIELDS if problem.startswith(f"{d} ") or problem.startswith(f"{d}:")
                               or f"'{d}=" in problem), key)
                self.errors[dotted] = problem
        for dotted in FIELDS:
            w = self.control(dotted)
            msg = self.errors.get(dotted, "")
            w.set_class(bool(msg), "-invalid")
            err = self._error_label(dotted, w, create=bool(msg))
            if err is not None:
                err.update(msg)
                err.set_class(bool(msg), "-shown")
        other = [m for k, m in self.errors.items() if k not in FIELDS]
        self.query_one("#form-errors", Static).update("\n".join(other))
        return cfg

    def fill(self, cfg: Config) -> None:
        """Show `cfg`'s values (without the change events a user's edit sends)."""
        for dotted in FIELDS:
            self.show_value(dotted, value_of(cfg, dotted))

    def show_value(self, dotted: str, value: Any) -> None:
        """Show `value` in field `dotted` (without the change event a user's edit sends)."""
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            w = self.control(dotted)
            w.value = _text(value) if isinstance(w, Input) else value
