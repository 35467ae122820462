"""The settings' input widgets: a text field whose editing keys act in the order they were typed,
and a checkbox readable without colour (the settings form and the sweep panel use both)."""

from __future__ import annotations

from textual.widgets import Checkbox, Input


class Tick(Checkbox):
    """A checkbox whose state reads without colour (NO_COLOR, a monochrome terminal): X when on,
    blank when off (Textual's shows X in both states, told apart by colour only)."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - the name Textual's ToggleButton reads
        return "X" if self.value else " "


class Field(Input):
    """A text field whose editing keys act in the order they were typed. Textual's Input edits on
    backspace, delete, the cursor keys and enter through bindings, which run only once the key
    has bubbled up to the app: with keys arriving in one read (a burst from tmux send-keys, key
    repeat, a laggy SSH link) the characters after them were inserted first (`200`, then
    backspace x3, `8`: the field said `2`). Here each of the field's own keys is done the moment
    it arrives, before the next one (tests/test_new_user.py sends such bursts through a pty)."""

    async def _on_key(self, event) -> None:
        bindings = None if event.is_printable else self._bindings.key_to_bindings.get(event.key)
        if bindings:
            event.stop()
            event.prevent_default()
            self._restart_blink()
            await self.run_action(bindings[0].action)
            return
        await super()._on_key(event)
