"""The lab's actions in the command palette (ctrl+p)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class LabCommands(Provider):
    """The lab's actions in the command palette."""

    COMMANDS = [
        ("Start / restart training", "start", "train the settings in the panels (ctrl+r, f5)"),
        ("Pause / resume", "pause", "hold the run between epochs (f6)"),
        ("Stop the run", "stop", "end it as cancelled; every finished epoch is kept (f7)"),
        ("Toggle log scale of the loss", "toggle_log", "plot log10(loss) (f8)"),
        ("Next plot: error / loss / memorization / system", "next_view", "cycle the curves (f9)"),
        ("Show or hide the system line", "toggle_system",
         "GPU, CPU and memory of the run, under the status bar (ctrl+g)"),
        ("Sweep {param} over the sweep panel's values", "sweep",
         "one model per value in a child process; error against the value, live (f4; f7 stops it)"),
        ("Show or hide the settings panels", "toggle_panels", "the drawer (f2)"),
        ("Compare past runs", "compare", "overlay up to 4 recorded runs (f3)"),
        ("Load a preset", "load_preset", "fill the panels from a preset (ctrl+o)"),
        ("Save the settings as a preset", "save_preset", "into the user preset folder (ctrl+s)"),
    ]

    def commands(self):
        """COMMANDS with what the lab sweeps filled in: the preset's `[sweep] param` (a grid: both)."""
        sweep = getattr(getattr(self.app, "cfg", None), "sweep", None)
        param = getattr(sweep, "param", None) or "the preset's parameter"
        if getattr(sweep, "param2", None):
            param = f"{param} x {sweep.param2} (a grid)"
        for title, action, help_text in self.COMMANDS:
            yield title.replace("{param}", param), action, help_text

    async def discover(self) -> Hits:
        for title, action, help_text in self.commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)
