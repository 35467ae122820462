"""What the lab shows is read from one `Source` at a time (docs/ARCHITECTURE.md, "Sources").

A source yields `protocol` messages from `poll()` (never blocking) and says what it can do. The
lab holds one source and never asks which kind it is beyond `kind` ("run" or "sweep": which part
of the state its messages fill) and the `can_*` flags (which keys do something).

    live run        LiveRunSource     a training process this lab started (`worker.RunHandle`)
    live sweep      LiveSweepSource   a sweep process this lab started, read through its directory
    replay          ReplaySource      a recorded run directory, at its recorded pace x speed
    attach          AttachSource      a run another process writes, steered through control.jsonl
    sweep directory SweepDirSource    a sweep directory, followed while it is written

No torch, no Textual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..protocol import USER_STOP


class Source:
    kind: ClassVar[str] = "run"          # "run" | "sweep": the part of the lab's state it feeds
    can_pause: ClassVar[bool] = True
    can_stop: ClassVar[bool] = True
    can_tweak: ClassVar[bool] = False
    trains_here: ClassVar[bool] = False  # a training process of this lab (one at a time)
    verb: ClassVar[str] = ""             # the status line's word for it ("replaying", ...)
    no_tweak: ClassVar[str] = "this source cannot be tweaked"
    config: dict | None = None           # the run's (or sweep's) raw config, for the panels

    @property
    def path(self) -> Path | None:
        """The run or sweep directory, once known."""
        return None

    @property
    def finished(self) -> bool:
        """Nothing more will come (a summary or an error has been polled)."""
        raise NotImplementedError

    def poll(self) -> list:
        raise NotImplementedError

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def stop(self, reason: str = USER_STOP) -> None:  # noqa: ARG002
        pass

    def tweak(self, **changes: Any) -> None:  # noqa: ARG002
        raise ValueError(self.no_tweak)

    def close(self, timeout: float = 5.0, reason: str = USER_STOP) -> None:  # noqa: ARG002
        """Leave the source: a live one is stopped (with `reason`) and waited for."""

