"""The lab's actions on recorded runs: compare (f3: overlay up to 4, labelled by what differs)
and attach (f3, then a: follow and steer a run another process writes). A part of `GengapApp`."""

from __future__ import annotations

from pathlib import Path

from .. import runs
from ..config import ConfigError, validate
from ..protocol import run_config
from ..sources import open_source
from .plots import SWEEP_VIEWS
from .state import load_compared
from .texts import short_path


class RunsActions:
    def attach_to(self, run_dir: str | Path) -> None:
        """Follow (and steer) a run written by another process, e.g. `gengap-tui run --detach`."""
        if self.source is not None and self.source.trains_here and not self.source.finished:
            self.say("[b red]stop this lab's run first (f7), then attach[/]")
            return
        try:
            src = open_source(replay=run_dir, attach=True)
            cfg = validate(run_config(src.config), str(run_dir))
        except (OSError, ConfigError) as exc:
            self.say(f"[b red]cannot attach: {exc}[/]")
            return
        self.base_raw, self.cfg, self.source = run_config(src.config), cfg, src
        self.form.fill(cfg)
        self.validate_form()
        self.state.new_run(cfg, f"{src.verb} {short_path(src.path)}")
        if self.view in SWEEP_VIEWS:
            self.view = "error"
        self._poll()
        if src.finished:  # nothing to follow or steer: say so
            self.state.status = (f"{short_path(src.path)} has already ended "
                                 f"({(src.summary or {}).get('status', 'finished')}): nothing to steer")
        self.show_state()
        self._draw(force=True)

    def action_compare(self) -> None:
        from .dialogs import ATTACH, PickRuns  # (~20 ms of imports: when first opened, not at start)

        def chosen(dirs: list[str] | None) -> None:
            if dirs and dirs[0] == ATTACH:
                self.attach_to(dirs[1])
            elif dirs is not None:
                self.compare_dirs = dirs
                self._load_compared()
                self._draw(force=True)

        where = Path(self.runs_dir)
        if where.exists() and not where.is_dir():  # (the dialog listed nothing: f3 seemed dead)
            self.say(f"[b red]f3: the runs directory {short_path(where)} is a file, not a folder[/] "
                     "(--runs-dir or GENGAP_RUNS_DIR)", bell=True)
            return
        if not runs.list_runs(where) and not self.compare_dirs:
            self.say(f"f3: no runs in {short_path(where)} yet to compare or attach (ctrl+r trains one)")
            return
        self.push_screen(PickRuns(self.runs_dir, self.compare_dirs), chosen)

    def _load_compared(self) -> None:
        self.compared, self.compare_self_label = load_compared(self.compare_dirs, self.cfg)
