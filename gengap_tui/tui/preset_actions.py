"""The lab's preset actions: fill the panels from a preset (ctrl+o), save them as one (ctrl+s; the
sweep panel is its [sweep]).
A part of `GengapApp` (it uses the app's form, base config and status line)."""

from __future__ import annotations

from pathlib import Path

from .. import presets
from ..config import ConfigError, build


class PresetActions:
    # (the dialogs, ~20 ms of imports, are imported when first opened: not before the first frame)
    def action_load_preset(self) -> None:
        from .dialogs import PickPreset

        self.push_screen(PickPreset(), lambda name: name and self.load_preset(name))

    def load_preset(self, name: str) -> None:
        """Fill the panels from a preset (the run in progress is not touched)."""
        try:
            raw = presets.load_raw(name)
            cfg = build(raw)
        except ConfigError as exc:
            self.say(f"[b red]{exc}[/]")
            return
        self.base_raw, self.cfg = raw, cfg
        self.form.fill(cfg)
        self.validate_form()
        self.say(f"loaded preset {name}: ctrl+r trains it")

    def action_save_preset(self) -> None:
        from .dialogs import SaveAs

        cfg = self.validate_form()
        if cfg is None or self.form.sweep_errors:  # (the sweep panel's [sweep] is saved too)
            self.say("[b red]cannot save: fix the invalid fields first[/]"
                     + (f" ({next(iter(self.form.sweep_errors))})" if self.form.sweep_errors else ""))
            return
        suggestion = cfg.name if cfg.name not in presets.packaged_names() else f"{cfg.name}-mine"
        self.push_screen(SaveAs(suggestion), lambda name: name and self.save_preset(name))

    def save_preset(self, name: str) -> Path | None:
        """Save the panels' settings as preset `name` in the user preset folder."""
        cfg = self.validate_form()
        if cfg is None or self.form.sweep_errors:
            return None
        try:
            path = presets.save(cfg.model_copy(update={"name": name}), name)
        except (ConfigError, OSError) as exc:
            self.say(f"[b red]cannot save: {exc}[/]")
            return None
        self.say(f"saved preset {name}: {path}")
        return path
