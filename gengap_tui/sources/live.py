"""Sources of this lab's own training processes (`worker.py`): a run, and a sweep read through
the directory it writes. Starting one spawns the process; the lab's UI never imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..protocol import USER_STOP, Error, RunDir, Warning
from .base import Source
from .files import SweepDirSource


class _Process(Source):
    """A training process of this lab (`worker.RunHandle` or `SweepHandle`): steered at once."""

    trains_here = True

    def __init__(self, handle):
        self.handle = handle
        self.config = handle.config

    @property
    def path(self) -> Path | None:
        return self.handle.run_dir

    @property
    def warm(self) -> bool:
        """It trains in the lab's warm process (started before ctrl+r)."""
        return getattr(self.handle, "_warm", None) is not None

    def pause(self) -> None:
        self.handle.pause()

    def resume(self) -> None:
        self.handle.resume()

    def stop(self, reason: str = USER_STOP) -> None:
        self.handle.stop(reason)

    def close(self, timeout: float = 5.0, reason: str = USER_STOP) -> None:
        self.handle.close(timeout, reason)


class LiveRunSource(_Process):
    """A run in a training process of this lab: pause, stop and tweak go to it at once."""

    can_tweak = True
    verb = "training"

    @classmethod
    def start(cls, config: dict, runs_dir: str | Path, warm=None) -> "LiveRunSource":
        """`warm`: the lab's `warm.Prewarmer`, whose warm process trains it if it is free."""
        from ..worker import RunHandle

        return cls(RunHandle.start(config, runs_dir, warm=warm))

    @property
    def finished(self) -> bool:
        return self.handle.done

    def poll(self) -> list:
        return self.handle.poll()

    def tweak(self, **changes: Any) -> None:
        self.handle.tweak(**changes)


class LiveSweepSource(_Process):
    """A sweep in a process of this lab. What the view shows comes from the sweep directory (the
    same files any sweep writes: `SweepDirSource`); the process adds where the directory is, and
    errors that happen before it exists."""

    kind = "sweep"
    verb = "sweeping"
    no_tweak = SweepDirSource.no_tweak

    def __init__(self, handle):
        super().__init__(handle)
        self.files: SweepDirSource | None = None

    @classmethod
    def start(cls, config: dict, runs_dir: str | Path, param: str, values: list,
              ray: dict | None = None, warm=None, param2: str | None = None,
              values2: list | None = None) -> "LiveSweepSource":
        from ..worker import SweepHandle

        return cls(SweepHandle.start(config, runs_dir, param, values, ray=ray, warm=warm, param2=param2,
                                     values2=values2))

    @property
    def values(self) -> list[float]:
        return self.handle.values

    @property
    def finished(self) -> bool:
        return self.handle.error is not None or (self.files is not None and self.files.finished) or (
            self.handle.done and self.files is None)

    def poll(self) -> list:
        out: list = []
        for msg in self.handle.poll():
            if isinstance(msg, RunDir) and self.files is None:
                self.files = SweepDirSource(msg.path)
                out.append(msg)
            elif isinstance(msg, (Error, Warning)):
                out.append(msg)
            # progress and the summary are read from the directory, as for any sweep
        if self.files is not None:
            out += self.files.poll()
        return out
