"""Sources that read run and sweep directories: a recorded run played back as the live stream
(the same `protocol` messages a training process sends), a run another process writes (followed
and steered through its control.jsonl), and a sweep directory. A directory still being written is
followed: new lines appear as they are flushed. No torch, no Textual.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

from .. import runs
from ..protocol import (USER_STOP, Epoch, Event, Pause, Progress, Resume, RunDir, Stop, Summary, SweepMeta,
                        SweepRows, SweepSummary, Tweak)
from .base import Source


class ReplaySource(Source):
    """A recorded run at its recorded pace times `speed` (0: all at once). Pause holds the
    clock; stop skips to the end of what has been recorded."""

    verb = "replaying"
    no_tweak = "a replayed run cannot be tweaked (restart it to train with new settings)"

    def __init__(self, run_dir: str | Path, speed: float = 1.0):
        self.run_dir = Path(run_dir)
        self.config = runs.read_json(self.run_dir / "config.json")
        if self.config is None:
            raise FileNotFoundError(f"{str(self.run_dir)!r} is not a run directory (no readable config.json)")
        self.speed = speed
        self._metrics = runs.JsonlFollower(self.run_dir / "metrics.jsonl")
        self._events = runs.JsonlFollower(self.run_dir / "events.jsonl")
        self._rows: collections.deque[dict] = collections.deque()
        self._evs: collections.deque[dict] = collections.deque()
        self._sent_run_dir = False
        self._last_epoch = 0
        self._due = 0.0  # recorded seconds of the rows emitted so far
        self._clock = 0.0  # replay seconds elapsed (paused time excluded)
        self._tick = time.monotonic()
        self._paused = False
        self.summary: dict | None = None

    @property
    def path(self) -> Path:
        return self.run_dir

    @property
    def finished(self) -> bool:
        return self.summary is not None

    def pause(self) -> None:
        self._advance()
        self._paused = True

    def resume(self) -> None:
        self._tick = time.monotonic()
        self._paused = False

    def stop(self, reason: str = USER_STOP) -> None:  # noqa: ARG002
        """Skip to the end of what has been recorded."""
        self.speed = 0.0
        self._paused = False

    def _advance(self) -> None:
        now = time.monotonic()
        if not self._paused:
            self._clock += now - self._tick
        self._tick = now

    def poll(self, max_items: int = 1000) -> list:
        out: list = []
        if not self._sent_run_dir:
            out.append(RunDir(str(self.run_dir)))
            self._sent_run_dir = True
        self._rows.extend(self._metrics.poll())
        self._evs.extend(self._events.poll())
        self._advance()
        while len(out) < max_items:
            # events up to the last shown epoch (a tweak belongs to the start of its epoch)
            if self._evs and (self._evs[0].get("epoch") or 0) <= self._last_epoch + (
                    1 if self._evs[0].get("event") == "tweaked" else 0):
                out.append(Event(self._evs.popleft()))
                continue
            if not self._rows or self._paused:
                break
            row = self._rows[0]
            step = float(row.get("epoch_seconds") or 0.0) if isinstance(row.get("epoch_seconds"), (int, float)) else 0.0
            if self.speed > 0 and self._due + step > self._clock * self.speed:
                break
            self._due += step
            self._last_epoch = row.get("epoch", self._last_epoch)
            out.append(Epoch(self._rows.popleft()))
        if not self._rows and not self._paused and self.summary is None and len(out) < max_items:
            summary = runs.read_json(self.run_dir / "summary.json")
            if summary is not None:
                # the summary is written after the last line: read what was flushed before it
                self._rows.extend(self._metrics.poll())
                self._evs.extend(self._events.poll())
                if not self._rows:
                    while self._evs:
                        out.append(Event(self._evs.popleft()))
                    self.summary = summary
                    out.append(Summary(summary))
        return out


class AttachSource(ReplaySource):
    """Follows a live run written by another process (`gengap-tui run`, detached or not, or
    another lab's training process) and steers it through the control file in its run directory
    (`control.FileFeed` obeys it there)."""

    verb = "attached to"
    can_tweak = True

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir, speed=0.0)

    def pause(self) -> None:
        runs.send_control(self.run_dir, **Pause().to_wire())

    def resume(self) -> None:
        runs.send_control(self.run_dir, **Resume().to_wire())

    def stop(self, reason: str = USER_STOP) -> None:
        runs.send_control(self.run_dir, **Stop(reason).to_wire())

    def tweak(self, **changes) -> None:
        runs.send_control(self.run_dir, **Tweak(changes).to_wire())  # Tweak checks the limits


SWEEP_FILES = ("sweep.json", "progress.jsonl", "sweep.jsonl")


def is_sweep_dir(path: str | Path) -> bool:
    """A directory written by `core.sweep.Sweep` (or the start of one: any of its files)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in SWEEP_FILES)


class SweepDirSource(Source):
    """Follows a sweep directory (`core.sweep.Sweep`'s files) while it is written, or reads a
    finished one at once. `poll()` returns, oldest first: SweepMeta (sweep.json), Progress (each
    complete progress.jsonl line), then SweepRows (sweep.jsonl) and SweepSummary (summary.json)
    once the sweep has ended. The sweep writes sweep.jsonl before summary.json, so the summary's
    arrival means the final rows are complete. Whoever writes it, it cannot be paused from here;
    a stop asks the writer through the directory's control.jsonl."""

    kind = "sweep"
    verb = "following the sweep in"
    can_pause = False
    no_tweak = "a sweep cannot be tweaked live (every value trains with the same settings)"

    def __init__(self, sweep_dir: str | Path):
        self.sweep_dir = Path(sweep_dir)
        if not self.sweep_dir.is_dir():
            raise FileNotFoundError(f"{str(self.sweep_dir)!r} is not a sweep directory")
        self.meta: dict | None = None
        self.rows: list[dict] | None = None
        self.summary: dict | None = None
        self._progress = runs.JsonlFollower(self.sweep_dir / "progress.jsonl")

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def path(self) -> Path:
        return self.sweep_dir

    def stop(self, reason: str = USER_STOP) -> None:
        if self.summary is None:
            runs.send_control(self.sweep_dir, **Stop(reason).to_wire())

    def poll(self) -> list:
        out: list = []
        if self.summary is not None:
            return out
        if self.meta is None:
            self.meta = runs.read_json(self.sweep_dir / "sweep.json")
            if self.meta is not None:
                out.append(SweepMeta(self.meta))
        out += [Progress(r) for r in self._progress.poll()]
        summary = runs.read_json(self.sweep_dir / "summary.json")
        if summary is not None:
            # everything else was flushed before the summary: read it now
            out += [Progress(r) for r in self._progress.poll()]
            if self.meta is None and (meta := runs.read_json(self.sweep_dir / "sweep.json")) is not None:
                self.meta = meta
                out.insert(0, SweepMeta(meta))
            self.rows = runs.read_jsonl(self.sweep_dir / "sweep.jsonl")
            self.summary = summary
            out += [SweepRows(self.rows), SweepSummary(summary)]
        return out
