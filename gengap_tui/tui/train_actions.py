"""The lab's training actions: start a run (ctrl+r), a sweep of what the sweep panel says (f4),
pause (f6) and stop (f7) — with the warm training process when there is one, and one training
process at a time. A part of `GengapApp` (it uses the app's form, source, state and warm process)."""

from __future__ import annotations

import time

from ..sources import LiveRunSource, LiveSweepSource
from .plots import SWEEP_VIEW, SWEEP_VIEWS
from .state import SweepState

LAB_STOP = "stopped by the user from the lab"
QUIT_STOP = "stopped by the user: the lab was closed"
WARM_WAIT_S = 3.0   # a restart waits this long for the warm process to end the stopped run


class TrainActions:
    def action_start(self) -> None:
        cfg = self.validate_form()
        if cfg is None:
            self.say(f"[b red]cannot start: {len(self.errors)} invalid field(s)[/]", bell=True)
            return
        note = self._leave_source("run")
        warm = self.warm.state if self.warm is not None else "off"
        config = cfg.dump()
        now = self._launch(lambda w: LiveRunSource.start(config, self.runs_dir, warm=w))
        self.state.new_run(cfg, ("starting (the training process is ending the last run)" if not now else
                                 "starting" if self.source.warm and warm == "ready" else
                                 "starting (the training process loads torch and the data)") + note)
        if self.view in SWEEP_VIEWS:
            self.view = "error"
        self.show_state()
        self._draw(force=True)
        self._last_draw = 0.0  # the first epoch is drawn the moment it comes
        self._poll_fast()

    def action_sweep(self) -> None:
        """Sweep what the sweep panel says (its [sweep]: a parameter over its values, a grid with
        a second one) with the panels' config, in the training process; the sweep view follows the
        sweep directory it writes."""
        cfg = self.validate_form()
        bad = self.form.sweep_errors
        if cfg is None or bad:
            first = next(iter(bad.values()), "")
            self.say(f"[b red]cannot sweep: {first or f'{len(self.errors)} invalid field(s)'}[/]", bell=True)
            return
        if not cfg.sweep.values:
            self.say("[b red]nothing to sweep: sweep.values is empty[/] - type values in the sweep panel "
                     "(2..300 x20 log) or ctrl+o a preset", bell=True)
            return
        note = self._leave_source("sweep")
        config, s = cfg.dump(), cfg.sweep  # (a grid when [sweep] has param2: one line per value of it)
        param, values, param2, values2 = s.param, list(s.values), s.param2 or None, list(s.values2)
        now = self._launch(lambda w: LiveSweepSource.start(config, self.runs_dir, param, values, ray=self.ray, warm=w,
                                                           param2=param2, values2=values2))
        self.state.new_sweep(SweepState.expecting(param, values, param2, values2),
                             f"starting a sweep of {param} over {len(values)} values"
                             + (f" x {param2} over {len(values2)}" if param2 else "")
                             + ("" if not now or self.source.warm else " (the worker loads torch and the data)") + note)
        self.view = SWEEP_VIEW
        self.show_state()

    def _launch(self, start) -> bool:
        """Start the source that `start(warm)` makes: now, or, while the warm process is still
        ending the run just stopped (~0.3 s), as soon as it is free again (at most WARM_WAIT_S,
        then a process is spawned): a restart need not wait for torch. True if started now."""
        if self.warm is not None and self.warm.state in ("busy", "finishing"):
            self.source, self._pending = None, (time.monotonic() + WARM_WAIT_S, start)
            return False
        self._pending = None
        self.source = start(self.warm)
        return True

    def action_pause(self) -> None:
        src = self.source
        if src is None or src.finished or not src.can_pause:
            return
        part = self.state.sweep if src.kind == "sweep" else self.state.run
        if part is None:
            return
        if part.paused:
            src.resume()
        else:
            src.pause()
        part.paused = not part.paused
        if src.kind == "sweep":
            self.say("sweep paused (at the end of this epoch)" if part.paused else "sweeping")
        else:
            self.say("paused" if part.paused else "running")

    def action_stop(self) -> None:
        if self._pending is not None:  # a start still waiting for the warm process: it never happens
            self._pending = None
            self.say("stopped before it started")
            return
        src = self.source
        if src is not None and not src.finished and src.can_stop:
            src.stop(LAB_STOP)  # a run or sweep still writes its summary, as cancelled
            self.say("stopping the sweep" if src.kind == "sweep" else "stopping")

    def _leave_source(self, what: str) -> str:
        """One training process at a time (two would share the cores): stop this lab's live run
        or sweep, which still writes its directory; keep draining it. Returns a status note."""
        src = self.source
        if src is None or not src.trains_here or src.finished:
            return ""
        src.stop(f"stopped by the user: the lab started a {what}")
        self._retired.append(src)
        return f" (stopped the {'sweep' if src.kind == 'sweep' else 'run'}: one training process at a time)"

    # ------------------------------------------------------------------ closing
    def close_for_signal(self, reason: str, timeout: float) -> None:
        """`run_guarded`'s close_run: stop the training processes this lab started (its source,
        replaced ones still ending) with `reason` and wait up to `timeout` s for their summaries.
        Runs in a watchdog thread, maybe while the event loop is blocked: sources only, no widget.
        An attached run is not this lab's to stop: it outlives the lab."""
        own = [s for s in (*self._retired, self.source) if s is not None and s.trains_here and not s.finished]
        for src in own:
            src.stop(reason)
        deadline = time.monotonic() + timeout
        for src in own:
            src.close(max(0.1, deadline - time.monotonic()), reason)
            src.poll()  # the summary is noted (nothing more to show): shutdown_run skips it
        self._close_warm()

    def _close_warm(self) -> None:
        """The warm training process goes too (after the runs: one in it has ended by now)."""
        if self.warm is not None:
            self.warm.close()

    def crash_reason(self) -> str | None:
        """What ended the lab, if it crashed (an exception Textual caught: it exits with code 1)."""
        exc = getattr(self, "_exception", None)  # Textual keeps the first one
        if exc is None and self.return_code != 1:
            return None
        what = f"{type(exc).__name__}: {exc}" if exc is not None else "see the traceback"
        return f"the lab crashed ({what})"

    def shutdown_run(self, timeout: float = 5.0, reason: str | None = None) -> None:
        """Stop a live run or sweep of this lab so that its directory is closed with its summary
        (cancelled, with `reason`; by default the lab's crash, if it crashed, else QUIT_STOP), and
        wait for it."""
        reason = reason or self.crash_reason() or QUIT_STOP
        for old in self._retired:
            old.close(timeout, reason)
        self._retired = []
        src = self.source
        if src is not None and not src.finished:
            src.close(timeout, reason)  # stop, wait for the summary, terminate or kill as a last resort
            if src.trains_here:
                for msg in src.poll():
                    self.state.apply(msg, src.kind)
        self._close_warm()
