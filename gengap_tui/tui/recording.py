"""Asciicast v2 recordings of the lab (`--record FILE.cast`): exactly what the terminal was sent,
with real timing and a resize event for each resize, written as it goes (every event is one flushed
line, so a crash or a killed process leaves a file that plays up to that moment). Play it with
`asciinema play FILE.cast` or the asciinema web player; `agg FILE.cast out.gif` makes a GIF.

    {"version": 2, "width": 120, "height": 36, "timestamp": ..., "idle_time_limit": 2.0, "env": {...}}
    [0.012, "o", "\\u001b[?1049h..."]
    [3.5, "r", "100x30"]

The writes come from Textual's writer thread (`tui/terminal.py` tees the driver's output here)
and resizes from the event loop: a lock keeps lines whole and timestamps in order. No torch.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

IDLE_TIME_LIMIT = 2.0  # a player shortens longer pauses to this (a run's start-up, waits)


class RecordError(ValueError):
    """A recording file that cannot be written (the message names --record and the path)."""


def check_path(path: str | os.PathLike) -> Path:
    """The path of a new recording, or RecordError saying why it cannot be one."""
    p = Path(path)
    if p.suffix != ".cast":
        raise RecordError(f"--record = {str(p)!r}: an asciicast recording is a .cast file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise RecordError(f"--record = {str(p)!r}: {str(parent)!r} is not a writable folder")
    return p


class CastWriter:
    def __init__(self, path: str | os.PathLike, width: int, height: int, title: str = "gengap-tui"):
        self.path = check_path(path)
        self.size = (width, height)
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._last = 0.0
        self._file = open(self.path, "w", encoding="utf-8")
        header = {"version": 2, "width": width, "height": height, "timestamp": int(time.time()),
                  "idle_time_limit": IDLE_TIME_LIMIT, "title": title,
                  "env": {"TERM": os.environ.get("TERM", "xterm-256color"), "SHELL": os.environ.get("SHELL", "")}}
        self._line(json.dumps(header))

    def _line(self, text: str) -> None:
        if self._file.closed:
            return
        self._file.write(text + "\n")
        self._file.flush()

    def _event(self, kind: str, data: str) -> None:
        with self._lock:
            t = max(self._last, time.monotonic() - self._t0)  # never backwards
            self._last = t
            self._line(json.dumps([round(t, 6), kind, data]))

    def output(self, text: str) -> None:
        """What the terminal was sent."""
        if text:
            self._event("o", text)

    def resize(self, width: int, height: int) -> None:
        """The terminal's new size (nothing when it did not change)."""
        if (width, height) != self.size:
            self.size = (width, height)
            self._event("r", f"{width}x{height}")

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def terminal_size(default: tuple[int, int] = (120, 36)) -> tuple[int, int]:
    """The size of the terminal the lab draws on (stderr's, as Textual's driver uses)."""
    for fd in (2, 1, 0):
        try:
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
        except OSError:
            continue
    return default


def read_cast(path: str | os.PathLike) -> tuple[dict, list[list]]:
    """The header and the complete events of a recording (a half-written last line is left out)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    header = json.loads(lines[0])
    events = []
    for line in lines[1:]:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return header, events
