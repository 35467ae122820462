"""The mailbox between a Ray sweep's units and its driver (`raysweep.py`), run as a Ray actor.

Its own module, importing nothing: the actor's worker process starts in a moment, where
`raysweep.py` (torch) would take seconds, and the units' first records would wait for it.
"""

from __future__ import annotations

from typing import Any


class Relay:
    """The driver's mailbox (a Ray actor on the cluster): units put batches of records, the
    driver takes them; every put answers with the driver's command (pause, stop)."""

    def __init__(self) -> None:
        self.records: list = []
        self.command: dict = {"paused": False, "stop": None}

    def put(self, tag: tuple, batch: list) -> dict:
        if batch:
            self.records.append((tag, batch))
        return self.command

    def take(self) -> list:
        out, self.records = self.records, []
        return out

    def steer(self, **command: Any) -> None:
        self.command = {**self.command, **command}
