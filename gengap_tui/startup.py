"""The garbage collector around the command's start (docs/ARCHITECTURE.md, "Start-up").

Starting the lab makes a few hundred thousand objects that live as long as the process: modules,
classes, pydantic's schemas, the screen's widgets. Python's collector ran ~130 times over them
before the lab's first frame (~45 ms of ~550 on the 2-core box), and in the running lab a full
collection walked them all again: 70-130 ms with the event loop stopped, set off within a second
of opening the command palette (bench/RESULTS.md).

So the `gengap-tui` command (`gengap_tui/__main__.py`) holds the collector off while it starts
(`hold`), and lets it go (`release`) once it has started: a command other than the lab at once
(cli.main), the lab once its settings fields are mounted. What start-up made is frozen first
(`gc.freeze`): later collections never walk it again. The lab makes full collections 10x rarer
(`LAB_THRESHOLDS`); the young ones stay as frequent and short as Python's (under 10 ms).
`python bench/gc_pauses.py` measures the pauses while the palette opens and closes.

A process that did not `hold` (tests calling `cli.main`, `python -m gengap_tui.cli`) keeps the
collector as it was: `release` does nothing there.
"""

from __future__ import annotations

import gc

# gc.set_threshold for the running lab: a full collection after 100 middle ones, not 10. Larger
# young thresholds made fewer but longer pauses (20,000 / 20: a 150 ms one in bench/gc_pauses.py)
LAB_THRESHOLDS = (700, 10, 100)

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
