"""The garbage collector's pauses in the lab while a run trains and the palette opens and closes
(startup.py): the collector as Python sets it, against held while the lab starts and let go once
its fields are up (what start-up made frozen, `LAB_THRESHOLDS`), as `gengap-tui` runs it.

    python bench/gc_pauses.py [--opens 10] [--modes default held held:700,10,10 …]

Each mode in a fresh process: the lab headless (120x36, default preset on the CPU, early stopping
off), ctrl+r, then `--opens` times ctrl+p, 0.4 s, escape, 0.6 s. Every collection is timed
(gc.callbacks); printed per mode: the full (generation 2) collections while training and their
pauses, and the longest pause of any generation. A full collection stops the event loop for as
long as it walks every tracked object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, gc, json, sys, time
held = sys.argv[1] != "default"
if held:
    from gengap_tui import startup
    startup.hold()  # as gengap_tui/__main__.py does, before the lab's imports
    if sys.argv[1] != "held":  # held:A,B,C: other thresholds for the lab
        startup.LAB_THRESHOLDS = tuple(int(x) for x in sys.argv[1].split(":")[1].split(","))
from gengap_tui.tui.app import GengapApp

pauses, started = [], {}
def timed(phase, info):
    if phase == "start":
        started["t"] = time.perf_counter()
    elif "t" in started:
        pauses.append((info["generation"], (time.perf_counter() - started.pop("t")) * 1000))
gc.callbacks.append(timed)

async def main(opens):
    app = GengapApp("default", ["device=cpu", "early_stopping.enabled=false", "optim.epochs=100000"],
                    runs_dir=sys.argv[3])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+r")
        await pilot.pause(2.0)
        pauses.clear()
        for _ in range(opens):
            await pilot.press("ctrl+p")
            await pilot.pause(0.4)
            await pilot.press("escape")
            await pilot.pause(0.6)
        seen = list(pauses)
        await pilot.press("f7")
        await pilot.pause(0.5)
    print(json.dumps({"pauses": seen, "thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}))

asyncio.run(main(int(sys.argv[2])))
"""


def measure(mode: str, opens: int, runs_dir: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(opens), runs_dir], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"{mode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opens", type=int, default=10)
    ap.add_argument("--modes", nargs="+", default=["default", "held"],
                    help="default, held, held:A,B,C (held, with other thresholds for the lab)")
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gengap-bench-gc-") as tmp:
        for mode in args.modes:
            r = measure(mode, args.opens, tmp)
            full = [ms for gen, ms in r["pauses"] if gen == 2]
            longest = [max((ms for g, ms in r["pauses"] if g == gen), default=0.0) for gen in (0, 1, 2)]
            print(f"{mode:8} thresholds {tuple(r['thresholds'])}, {r['frozen']} objects frozen: "
                  f"{len(r['pauses'])} collections in {args.opens} palette openings while training, "
                  f"{len(full)} full ({', '.join(f'{ms:.0f}' for ms in full) or '-'} ms), "
                  f"longest pause by generation {' / '.join(f'{ms:.1f}' for ms in longest)} ms")


if __name__ == "__main__":
    main()
