"""The lab's settings form as the user edits it: every keystroke validated (the panels and the
sweep panel, with the config's own rules), a committed edit of a tweakable field sent to the
live run, a structural change said to need a restart. A part of `GengapApp` (it uses the app's
form, base config, source and state)."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select

from ..config import Config
from ..protocol import TWEAK_FIELDS
from .widgets.settings import dotted_of


class FormActions:
    # Textual registers @on handlers of its own classes only (a mixin is not a message pump): the
    # handlers here are named by Textual's convention instead
    def on_input_changed(self, event: Input.Changed) -> None:
        """A keystroke: validate, and only say what Enter (or leaving the field) would do."""
        self._field_changed(event.input, commit=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._field_changed(event.input, commit=True)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._field_changed(event.input, commit=True)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._field_changed(event.control, commit=True)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._field_changed(event.control, commit=True)

    def _field_changed(self, control, commit: bool) -> None:
        """Validate the form; while a run goes, a committed edit of a tweakable field is sent to
        it (a half-typed value never is), and a structural change says it needs a restart."""
        if not self.form.is_attached:  # a field's late event while the app shuts down
            return
        cfg = self.validate_form()
        src = self.source
        if src is None or src.finished or src.kind != "run":
            return
        dotted = dotted_of(getattr(control, "id", None))
        if not src.can_tweak:
            if cfg is not None:
                self.say("replay: start (ctrl+r) to train with these settings")
            return
        run = self.state.run
        if cfg is None:
            if commit and dotted in TWEAK_FIELDS and dotted in self.errors:  # the run keeps its value
                self.say(f"[b red]{dotted} not applied[/]: the run goes on with {run.applied[dotted]!r}")
                self.form.show_value(dotted, run.applied[dotted])
                self.validate_form()
            return
        change = run.change(cfg, dotted)
        if change == "restart":
            self.say("this change needs a restart (ctrl+r)")
        elif change is not None and not commit:
            self.say(f"{dotted}: enter applies {change[1]!r} to the run (it uses {run.applied[dotted]!r})")
        elif change is not None:
            try:
                src.tweak(**{TWEAK_FIELDS[change[0]]: change[1]})
            except ValueError as exc:
                self.say(f"[b red]{exc}[/]")
                return
            run.applied[change[0]] = change[1]
            self.form.show_value(dotted, change[1])  # the field shows what was sent, as the run reads it
            self.say(f"tweak {change[0]} = {change[1]!r} queued for the next epoch (the run uses it from then on)")

    def validate_form(self) -> Config | None:
        """Validate every field; mark the bad ones. Returns the config or None."""
        cfg = self.form.validate(self.base_raw)
        if cfg is not None:
            self.cfg = cfg
        return cfg

    @property
    def errors(self) -> dict[str, str]:
        return self.form.errors
