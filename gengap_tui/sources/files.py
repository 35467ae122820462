"""Play a recorded run directory back as the worker's message stream (same message types as
`gengap_tui.worker.RunHandle.poll`), so the lab shows a recorded run through the same screen.

A run that is still being written is followed: new epochs appear as they are flushed.
`SweepSource` does the same for a sweep directory (`core.sweep`), for the lab's sweep view.
No torch, no Textual.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

from . import runs


class ReplaySource:
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

    # the RunHandle surface the lab uses
    @property
    def alive(self) -> bool:
        return self.summary is None

    @property
    def finished(self) -> bool:
        return self.summary is not None

    def pause(self) -> None:
        self._advance()
        self._paused = True

    def resume(self) -> None:
        self._tick = time.monotonic()
        self._paused = False

    def stop(self) -> None:
        """Skip to the end of what has been recorded."""
        self.speed = 0.0
        self._paused = False

    def tweak(self, **changes) -> None:  # noqa: ARG002 - a recording cannot be steered
        raise ValueError("a replayed run cannot be tweaked (restart it to train with new settings)")

    def close(self, timeout: float = 0.0) -> None:  # noqa: ARG002
        pass

    def kill(self) -> None:
        pass

    def _advance(self) -> None:
        now = time.monotonic()
        if not self._paused:
            self._clock += now - self._tick
        self._tick = now

    def poll(self, max_items: int = 1000) -> list[dict]:
        out: list[dict] = []
        if not self._sent_run_dir:
            out.append({"type": "run_dir", "path": str(self.run_dir)})
            self._sent_run_dir = True
        self._rows.extend(self._metrics.poll())
        self._evs.extend(self._events.poll())
        self._advance()
        while len(out) < max_items:
            # events up to the last shown epoch (a tweak belongs to the start of its epoch)
            if self._evs and (self._evs[0].get("epoch") or 0) <= self._last_epoch + (
                    1 if self._evs[0].get("event") == "tweaked" else 0):
                out.append({"type": "event", "event": self._evs.popleft()})
                continue
            if not self._rows or self._paused:
                break
            row = self._rows[0]
            step = float(row.get("epoch_seconds") or 0.0) if isinstance(row.get("epoch_seconds"), (int, float)) else 0.0
            if self.speed > 0 and self._due + step > self._clock * self.speed:
                break
            self._due += step
            self._last_epoch = row.get("epoch", self._last_epoch)
            out.append({"type": "epoch", "row": self._rows.popleft()})
        if not self._rows and not self._paused and self.summary is None and len(out) < max_items:
            summary = runs.read_json(self.run_dir / "summary.json")
            if summary is not None:
                # the summary is written after the last line: read what was flushed before it
                self._rows.extend(self._metrics.poll())
                self._evs.extend(self._events.poll())
                if not self._rows:
                    while self._evs:
                        out.append({"type": "event", "event": self._evs.popleft()})
                    self.summary = summary
                    out.append({"type": "summary", "summary": summary})
        return out


class AttachSource(ReplaySource):
    """Follows a live run written by another process (`gengap-tui run`, detached or not) and
    steers it through the control file in its run directory."""

    steerable = True

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir, speed=0.0)

    def pause(self) -> None:
        runs.send_control(self.run_dir, "pause")

    def resume(self) -> None:
        runs.send_control(self.run_dir, "resume")

    def stop(self) -> None:
        runs.send_control(self.run_dir, "stop")

    def tweak(self, **changes) -> None:
        from .worker import check_tweaks

        runs.send_control(self.run_dir, "tweak", changes=check_tweaks(changes))


SWEEP_FILES = ("sweep.json", "progress.jsonl", "sweep.jsonl")


def is_sweep_dir(path: str | Path) -> bool:
    """A directory written by `core.sweep.Sweep` (or the start of one: any of its files)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in SWEEP_FILES)


class SweepSource:
    """Follows a sweep directory (`core.sweep.Sweep`'s files) while it is written, or reads a
    finished one at once. `poll()` returns, oldest first:

        {"type": "sweep_meta", "meta": {...}}        sweep.json (param, values, epochs, config, ...)
        {"type": "progress", "row": {...}}           one progress.jsonl line (a half-written last
                                                     line waits until it is complete)
        {"type": "sweep_rows", "rows": [...]}        sweep.jsonl, once the sweep has ended
        {"type": "sweep_summary", "summary": {...}}  summary.json; last

    The sweep writes sweep.jsonl before summary.json, so the summary's arrival means the final
    rows are complete. No torch, no Textual."""

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
    def run_dir(self) -> Path:
        return self.sweep_dir

    def poll(self) -> list[dict]:
        out: list[dict] = []
        if self.summary is not None:
            return out
        if self.meta is None:
            self.meta = runs.read_json(self.sweep_dir / "sweep.json")
            if self.meta is not None:
                out.append({"type": "sweep_meta", "meta": self.meta})
        out += [{"type": "progress", "row": r} for r in self._progress.poll()]
        summary = runs.read_json(self.sweep_dir / "summary.json")
        if summary is not None:
            # everything else was flushed before the summary: read it now
            out += [{"type": "progress", "row": r} for r in self._progress.poll()]
            if self.meta is None and (meta := runs.read_json(self.sweep_dir / "sweep.json")) is not None:
                self.meta = meta
                out.insert(0, {"type": "sweep_meta", "meta": meta})
            self.rows = runs.read_jsonl(self.sweep_dir / "sweep.jsonl")
            self.summary = summary
            out += [{"type": "sweep_rows", "rows": self.rows}, {"type": "sweep_summary", "summary": summary}]
        return out
