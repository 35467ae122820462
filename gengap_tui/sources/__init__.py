"""The lab's run sources: one interface (`base.Source`), one implementation per way a run or a
sweep reaches the screen, and `open_source` to pick the one the lab starts with
(docs/ARCHITECTURE.md, "Sources")."""

from __future__ import annotations

from pathlib import Path

from .base import Source
from .files import AttachSource, ReplaySource, SweepDirSource, is_sweep_dir
from .live import LiveRunSource, LiveSweepSource

__all__ = ["Source", "open_source", "ReplaySource", "AttachSource", "SweepDirSource", "is_sweep_dir",
           "LiveRunSource", "LiveSweepSource"]


def open_source(replay: str | Path | None = None, speed: float = 1.0, attach: bool = False,
                sweep: str | Path | None = None) -> Source | None:
    """The source the lab starts with: a recorded run (replayed, or attached to and steered), a
    sweep directory, or none (the lab waits for ctrl+r or f4, which start live sources)."""
    if replay is not None and sweep is not None:
        raise ValueError("give replay= or sweep=, not both")
    if sweep is not None:
        return SweepDirSource(sweep)
    if replay is not None:
        return AttachSource(replay) if attach else ReplaySource(replay, speed)
    return None
