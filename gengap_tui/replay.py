"""Play a recorded run directory back as the worker's message stream (same message types as
`gengap_tui.worker.RunHandle.poll`), so the lab shows a recorded run through the same screen.

A run that is still being written is followed: new epochs appear as they are flushed.
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
