"""The garbage collector around the command's start (docs/ARCHITECTURE.md, "Start-up").

Starting the lab makes a few hundred thousand objects that live as long as the process: modules,
classes, pydantic's schemas, the screen's widgets. Python's collector ran ~130 times over them
before the lab's first frame (~45 ms of ~550 on the 2-core box), and in the running lab a full
collection walked them all again: 70-130 ms with the event loop stopped, set off within a second
of opening the command palette (bench/RESULTS.md).

So the `gengap-tui` command (`gengap_tui/__main__.py`) holds the collector off while it starts
(`hold`), and lets it go (`release`) once it has started: a command other than the lab at once
(cli.main), the lab once its settings fields are mounted. What start-up made is frozen first
(`gc.freeze`): later collections never walk it again. The lab collects its young objects less
often (`LAB_THRESHOLDS`), so the palette's and the curves' short-lived objects are collected in
fewer, shorter passes.

A process that did not `hold` (tests calling `cli.main`, `python -m gengap_tui.cli`) keeps the
collector as it was: `release` does nothing there.
"""

from __future__ import annotations

import gc

# gc.set_threshold for the running lab: a young collection every 20,000 allocations, not 700
LAB_THRESHOLDS = (20_000, 20, 20)

_held = False


def hold() -> None:
    """No collections until `release` (the command's start)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def held() -> bool:
    return _held


def release(thresholds: tuple[int, int, int] | None = None) -> None:
    """Collect again, if `hold` stopped it: what start-up made is frozen out of later collections,
    and `thresholds` (if given) are the collector's from now on. Otherwise nothing."""
    global _held
    if not _held:
        return
    _held = False
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    gc.enable()
