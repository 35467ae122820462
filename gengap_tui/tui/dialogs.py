"""The lab's dialogs: load a preset, save one, pick runs to compare (or one to attach to)."""

from __future__ import annotations

from pathlib import Path

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from rich.markup import escape
from textual.widgets import Input, Label, OptionList, SelectionList
from textual.widgets.selection_list import Selection

from .. import presets
from ..compare import MAX_COMPARE
from ..run_index import filtered, index
from .texts import short_path

ATTACH = "\0attach"  # PickRuns' answer when the user attaches instead of comparing


class PickPreset(ModalScreen[str | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Load a preset (enter loads, escape cancels)")
            yield OptionList(*[f"{n}  [dim]{presets.describe(p)}[/]" for n, p in presets.available().items()],
                             id="preset-list")

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(list(presets.available())[event.option_index])


class SaveAs(ModalScreen[str | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, suggestion: str):
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Save the panels' settings as a preset in {presets.user_dir()} "
                        "(enter saves, escape cancels)")
            yield Input(self.suggestion, id="save-name")
            yield Label("", id="save-note")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not presets.NAME_RE.match(name):
            self.query_one("#save-note", Label).update(
                f"[b red]{name!r}: a preset name is letters, digits, '-' and '_' (up to 64)[/]")
            return
        self.dismiss(name)


class FilterInput(Input):
    """The run picker's filter. An `a` typed into it while it is empty asks to attach (f3, then a,
    attaches to the newest run, as before the filter existed); decided here, where the keys
    arrive in order, so a fast-typed `la…` is a filter, never an attach."""

    class Attach(Message):
        pass

    async def _on_key(self, event: events.Key) -> None:
        if event.character == "a" and not self.value:
            event.stop()
            event.prevent_default()
            self.post_message(self.Attach())
            return
        await super()._on_key(event)


class PickRuns(ModalScreen[list[str] | None]):
    """f3: the runs directory (`run_index`): each run's preset, what differs from the other runs of
    its preset, status, test error and date; a sweep's runs grouped under it. Typing filters (the
    filter has the focus; ↓ or tab goes to the list, any letter back to the filter); space
    selects up to 4 runs, enter overlays them; a attaches to the highlighted run (from the list, or
    at once from an empty filter, as before the filter existed)."""
    AUTO_FOCUS = "#run-filter"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("enter", "done", "Compare", priority=True),
                Binding("a", "attach", "Attach")]

    def __init__(self, runs_dir: Path, selected: list[str]):
        super().__init__()
        self.runs_dir, self.chosen = runs_dir, list(selected)
        self.entries = index(runs_dir)
        self.shown: list = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Compare up to {MAX_COMPARE} runs from {short_path(self.runs_dir)}: type to filter, "
                        "↓ goes to the list\n"  # (two lines: cut at 120 columns otherwise)
                        "[dim]space selects · enter overlays · a attaches to the highlighted run · escape cancels[/]")
            yield FilterInput(placeholder="filter: preset, setting, status, date … (all words must match)",
                              id="run-filter", select_on_focus=False)
            yield SelectionList(*self._options(""), id="run-list")
            yield Label("", id="pick-note")

    def _options(self, query: str) -> list[Selection]:
        self.shown = filtered(self.entries, query)
        out = []
        for e in self.shown:
            text = escape(e.line())
            if e.kind == "sweep":
                out.append(Selection(f"[b]{text}[/]", str(e.path), False, disabled=True))
            else:
                out.append(Selection(text, str(e.path), str(e.path) in self.chosen))
        return out

    def on_mount(self) -> None:
        self._highlight_first()

    def _highlight_first(self) -> None:
        sel = self.query_one(SelectionList)
        sel.highlighted = next((i for i, e in enumerate(self.shown) if e.selectable), None)

    @on(Input.Changed, "#run-filter")
    def _filter(self, event: Input.Changed) -> None:
        sel = self.query_one(SelectionList)
        with sel.prevent(SelectionList.SelectedChanged):
            sel.clear_options()
            sel.add_options(self._options(event.value))
        n = sum(1 for e in self.shown if e.selectable)
        self.query_one("#pick-note", Label).update(f"{n} run{'s' * (n != 1)} match" if event.value.strip() else "")
        self._highlight_first()

    @on(SelectionList.SelectedChanged)
    def _selected(self, event: SelectionList.SelectedChanged) -> None:
        shown = {str(e.path) for e in self.shown}
        now = set(event.selection_list.selected)
        self.chosen = [c for c in self.chosen if c not in shown or c in now] + \
                      [c for c in event.selection_list.selected if c not in self.chosen]

    def on_key(self, event) -> None:
        """↓ / tab from the filter to the list; a letter typed in the list goes back to the filter."""
        filt, sel = self.query_one("#run-filter", Input), self.query_one(SelectionList)
        if self.focused is filt and event.key in ("down", "tab"):
            sel.focus()
            event.stop()
        elif self.focused is sel and event.is_printable and event.character not in (" ", "a"):
            filt.focus()
            filt.insert_text_at_cursor(event.character)
            event.stop()

    @on(FilterInput.Attach)
    def _attach_from_filter(self) -> None:
        self.action_attach()

    def action_attach(self) -> None:
        sel = self.query_one(SelectionList)
        if sel.highlighted is not None and self.shown[sel.highlighted].selectable:
            self.dismiss([ATTACH, sel.get_option_at_index(sel.highlighted).value])

    def action_done(self) -> None:
        listed = {str(e.path) for e in self.entries} | {str(v.path) for e in self.entries for v in e.values}
        chosen = [c for c in self.chosen if c in listed]
        if len(chosen) > MAX_COMPARE:
            self.query_one("#pick-note", Label).update(f"[b red]at most {MAX_COMPARE} runs[/]")
            return
        self.dismiss(chosen)
