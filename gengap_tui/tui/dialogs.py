"""The lab's dialogs: load a preset, save one, pick runs to compare (or one to attach to)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, SelectionList

from .. import presets, runs
from .texts import short_path

MAX_COMPARE = 4
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


class PickRuns(ModalScreen[list[str] | None]):
    AUTO_FOCUS = "*"  # the app focuses nothing before its first frame; dialogs focus their input
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("enter", "done", "Compare", priority=True),
                Binding("a", "attach", "Attach", priority=True)]

    def __init__(self, runs_dir: Path, selected: list[str]):
        super().__init__()
        self.runs_dir, self.selected = runs_dir, selected

    def compose(self) -> ComposeResult:
        items = []
        for d in runs.list_runs(self.runs_dir)[:200]:
            s = runs.read_json(d / "summary.json") or {}
            te = s.get("test_err")
            info = f"{s.get('status', 'running?')}" + (f", test err {te:.3f}" if isinstance(te, float) else "")
            items.append((f"{d.name}  [dim]{info}[/]", str(d), str(d) in self.selected))
        with Vertical(id="dialog"):
            yield Label(f"Compare up to {MAX_COMPARE} runs from {short_path(self.runs_dir)}\n"  # (cut at 120 columns)
                        "[dim]space selects · enter overlays · a attaches to the highlighted run · escape cancels[/]")
            yield SelectionList(*items, id="run-list")
            yield Label("", id="pick-note")

    def action_attach(self) -> None:
        sel = self.query_one(SelectionList)
        if sel.highlighted is not None:
            self.dismiss([ATTACH, sel.get_option_at_index(sel.highlighted).value])

    def action_done(self) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        if len(chosen) > MAX_COMPARE:
            self.query_one("#pick-note", Label).update(f"[b red]at most {MAX_COMPARE} runs[/]")
            return
        self.dismiss(chosen)
