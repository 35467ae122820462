"""UI responsiveness of the lab (docs/ARCHITECTURE.md, "The lab": the UI must never block).

    python bench/ui.py [--seconds 10] [--repeats 20] [--labs 5] [--terminal-only]

Measures, in one run:
  0. the lab as a user meets it, in a real pty (bench/lab_terminal.py): per fresh `gengap-tui`
     process the first frame, the whole screen, the warm training process, ctrl+r to "epoch 1" on
     the screen, the command palette while training, and that quitting leaves no process; medians
     of `--labs` fresh labs with the warm process, and of fewer with --no-prewarm (the cold path).
  1. timer lateness: an app timer at 10 ms, run headless at 120x40, for `--seconds` with no run
     (baseline) and then while the default preset trains on the CPU at full speed in the lab's warm
     training process (early stopping off, 100000 epochs); lateness = gap between ticks - 10 ms.
     The app's own 10 Hz poll and <= 4 Hz curve redraw run meanwhile, so their cost shows here.
  2. one curves redraw at 120x40 on N synthetic epochs, per view: `app._draw(force=True)` (series,
     thinning; on the event loop), the build (plotext canvas, ANSI parse, screen lines; in the app
     a worker thread does it) and composing the lines (event loop).
  3. first frame: a fresh `python -c` builds GengapApp and runs it headless until the first
     refresh after mount (status, curves, patience: the settings fields come right after); also
     whether torch got imported into the UI process (it must not).

Prints a result block with the targets next to the numbers. Not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

import lab_terminal  # noqa: E402 - bench/, next to this file
from gengap_tui.tui.app import GengapApp  # noqa: E402
from gengap_tui.tui.plots import VIEWS  # noqa: E402
from gengap_tui.tui.series import RunSeries  # noqa: E402

OVERRIDES = ["device=cpu", "early_stopping.enabled=false", "optim.epochs=100000"]
SIZE = (120, 40)
TICK = 0.010
TARGET_P99_MS = 20.0
TARGET_REDRAW_MS = 30.0
TARGET_FIRST_FRAME_S = 0.4
TARGET_FIRST_EPOCH_S = 0.3
TARGET_PALETTE_MS = 100.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


# ------------------------------------------------------------------------------ 1. lateness
def _cpu_busy() -> float | None:
    """Seconds of CPU busy time on the whole machine so far (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None


def _proc_cpu(pid: int | None) -> float:
    """utime + stime of one process in seconds (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError, TypeError):
        return 0.0


async def measure_lateness(app: GengapApp, seconds: float) -> dict:
    """Run a 10 ms app timer for `seconds`; return lateness stats (ms) and epochs seen meanwhile."""
    late: list[float] = []
    last = [None]

    def tick() -> None:
        now = time.perf_counter()
        if last[0] is not None:
            late.append(max(0.0, now - last[0] - TICK))
        last[0] = now

    e0 = app.state.run.series.last["epoch"] if app.state.run.series.last else 0
    child = app.source.handle.pid if app.source is not None else None
    busy0, ui0, ch0 = _cpu_busy(), time.process_time(), _proc_cpu(child)
    t0 = time.perf_counter()
    timer = app.set_interval(TICK, tick)
    await asyncio.sleep(seconds)
    timer.stop()
    dt = time.perf_counter() - t0
    busy1, ui1, ch1 = _cpu_busy(), time.process_time(), _proc_cpu(child)
    cores = {"ui": (ui1 - ui0) / dt, "worker": (ch1 - ch0) / dt}
    cores["other"] = ((busy1 - busy0) / dt - cores["ui"] - cores["worker"]) if busy0 is not None else float("nan")
    e1 = app.state.run.series.last["epoch"] if app.state.run.series.last else 0
    ms = [x * 1000 for x in late]
    return {"n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms) if ms else float("nan"),
            "epochs": e1 - e0, "eps": (e1 - e0) / dt, "seconds": dt, "cores": cores}


async def measure_palette(app: GengapApp, pilot, repeats: int = 5) -> list[float]:
    """ms from a ctrl+p key event (while training) until the command palette is the screen and
    has been painted once."""
    from textual.command import CommandPalette

    out = []
    for _ in range(repeats):
        painted = asyncio.Event()
        t0 = time.perf_counter()
        # the key as a terminal delivers it (pilot.press would add its own waits for idle)
        app.post_message(events.Key("ctrl+p", None))
        while not isinstance(app.screen, CommandPalette):
            await asyncio.sleep(0.001)
        app.call_after_refresh(painted.set)
        await painted.wait()
        out.append((time.perf_counter() - t0) * 1000)
        await pilot.press("escape")
        await asyncio.sleep(0.3)
    return out


async def bench_lateness(seconds: float, runs_dir: str) -> dict:
    app = GengapApp("default", OVERRIDES, runs_dir=runs_dir, prewarm=True)
    out: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        out["baseline"] = await measure_lateness(app, seconds)  # (the warm process starts meanwhile)
        deadline = time.perf_counter() + 90
        while app.warm.state != "ready":
            if time.perf_counter() > deadline:
                raise SystemExit("no warm training process within 90 s")
            await asyncio.sleep(0.05)
        plot = app.query_one("#plot")
        t0 = time.perf_counter()
        app.post_message(events.Key("ctrl+r", None))  # as a terminal delivers it
        deadline = time.perf_counter() + 90
        while not app.state.run.series.rows:
            if app.source is not None and app.source.finished:
                raise SystemExit(f"the run ended before its first epoch: {app.state.status}")
            if time.perf_counter() > deadline:
                raise SystemExit("no epoch within 90 s of starting the run")
            await asyncio.sleep(0.002)
        out["first_epoch_s"] = time.perf_counter() - t0
        builds = plot.builds
        while plot.builds == builds and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        out["first_epoch_drawn_s"] = time.perf_counter() - t0
        out["warm"] = app.source.warm
        await asyncio.sleep(0.5)  # let the first redraws and the worker settle
        out["training"] = await measure_lateness(app, seconds)
        out["rows_in_ui"] = len(app.state.run.series.rows)
        out["palette_ms"] = await measure_palette(app, pilot)
        out["torch_in_ui"] = "torch" in sys.modules
        t0 = time.perf_counter()
        app.shutdown_run()
        out["shutdown_s"] = time.perf_counter() - t0
        out["status"] = (app.state.run.summary or {}).get("status")
        await pilot.pause()
    return out


# ------------------------------------------------------------------------------ 2. redraw
def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for e in range(1, n + 1):
        tl = 2.3 * math.exp(-e / 40) + 0.01 + 0.02 * rng.random()
        vl = 2.3 * math.exp(-e / 60) + 0.4 + 0.0015 * e ** 0.8 + 0.05 * rng.random()
        te = 0.9 * math.exp(-e / 30) + 0.01 * rng.random()
        ve = 0.9 * math.exp(-e / 40) + 0.25 + 0.03 * rng.random()
        rows.append({
            "epoch": e, "train_loss": tl, "train_err": te, "val_loss": vl, "val_err": ve,
            "gap_loss": vl - tl, "gap_err": ve - te, "lr": 1e-3, "epoch_seconds": 0.03,
            "samples_per_s": 130000.0, "es_wait": e % 10, "es_best": 0.25, "es_best_epoch": max(1, e - e % 10),
            "train_clean_err": te * 0.5, "noisy_memorized": 1 - math.exp(-e / 80), "noisy_true_acc": 0.1,
        })
    return rows


async def bench_redraw(ns: list[int], repeats: int, runs_dir: str) -> dict:
    app = GengapApp("default", OVERRIDES, runs_dir=runs_dir)
    res: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        widget = app.query_one("#plot")
        res["plot_size"] = f"{widget.size.width}x{widget.size.height}"
        for n in ns:
            series = RunSeries()
            for row in synthetic_rows(n):
                series.add(row)
            app.state.run.series = series
            for view in VIEWS:
                app.view = view
                draw, render, content = [], [], []
                for _ in range(repeats + 2):  # two warm-ups
                    t0 = time.perf_counter()
                    app._draw(force=True)  # on the event loop: series, thinning, queue the build
                    t1 = time.perf_counter()
                    # in the app this runs in the Curves widget's worker thread, off the event loop
                    widget._strips = widget.build_strips(widget._fill, widget.size.width, widget.size.height,
                                                         widget.plot_theme())
                    t2 = time.perf_counter()
                    # on the event loop again: what the compositor asks of the dirty widget
                    widget.render_lines(widget.region.reset_offset)
                    t3 = time.perf_counter()
                    await app.workers.wait_for_complete()
                    draw.append((t1 - t0) * 1000)
                    render.append((t2 - t1) * 1000)
                    content.append((t3 - t2) * 1000)
                draw, render, content = draw[2:], render[2:], content[2:]
                tot = [a + b + c for a, b, c in zip(draw, render, content)]
                loop = [a + c for a, c in zip(draw, content)]
                res[(n, view)] = {"draw": statistics.median(draw), "render": statistics.median(render),
                                  "strips": statistics.median(content),
                                  "total": statistics.median(tot), "loop": statistics.median(loop)}
            await pilot.pause()
    return res


# ------------------------------------------------------------------------------ 3. first frame
FIRST_FRAME = textwrap.dedent("""
    import time; T0 = time.perf_counter()
    import sys, json
    sys.path.insert(0, {root!r})
    import gengap_tui.tui.app as lab
    from gengap_tui.tui.app import GengapApp
    T_IMPORT = time.perf_counter()
    out = {{}}
    class App(GengapApp):
        _BASE_PATH = lab.__file__  # CSS_PATH is relative to the module; a -c subclass has no file
        def on_mount(self):
            self.call_after_refresh(self._first)  # first in the queue: the paint, not later callbacks
            super().on_mount()
        def _first(self):
            out['frame'] = time.perf_counter() - T0
            out['torch'] = 'torch' in sys.modules
            self.exit()
    app = App('default', {overrides!r}, runs_dir={runs_dir!r})
    app.run(headless=True, size=(120, 40))
    out['import'] = T_IMPORT - T0
    print('RESULT ' + json.dumps(out))
""")


def bench_first_frame(runs_dir: str, repeats: int = 3) -> dict:
    code = FIRST_FRAME.format(root=str(ROOT), overrides=OVERRIDES, runs_dir=runs_dir)
    best: dict | None = None
    frames, walls = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
        wall = time.perf_counter() - t0
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"first-frame child failed (rc {p.returncode}):\n{p.stdout}\n{p.stderr}")
        import json

        r = json.loads(line[7:])
        frames.append(r["frame"])
        walls.append(wall)
        best = r
    assert best is not None
    return {"frame": statistics.median(frames), "frame_min": min(frames), "wall": statistics.median(walls),
            "import": best["import"], "torch": best["torch"], "n": repeats}


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each lateness window")
    ap.add_argument("--repeats", type=int, default=20, help="redraw repeats (median)")
    ap.add_argument("--sizes", default="200,2000", help="synthetic series lengths for the redraw cost")
    ap.add_argument("--labs", type=int, default=5, help="fresh labs in the pty measurement (and half as many cold)")
    ap.add_argument("--terminal-only", action="store_true", help="only the pty measurement (section 0)")
    args = ap.parse_args()
    t_all = time.perf_counter()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ns = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gengap-bench-ui-") as runs_dir:
        term = lab_terminal.bench(args.labs, True, runs_dir)
        cold = lab_terminal.bench(max(1, args.labs // 2), False, runs_dir)
        if not args.terminal_only:
            ff = bench_first_frame(runs_dir, repeats=5)
            lat = asyncio.run(bench_lateness(args.seconds, runs_dir))
            red = asyncio.run(bench_redraw(ns, args.repeats, runs_dir))

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    import textual
    from importlib.metadata import version

    cmd = "python bench/ui.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))
    print(f"gengap-tui UI benchmark  {datetime.date.today().isoformat()}")
    print(f"device   CPU, {cores} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"textual {textual.__version__}, textual-plotext {version('textual-plotext')}, plotext {version('plotext')}; "
          "gengap_tui byte-compiled first, as an installed package is (lab_terminal.compile_package)")
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load     1-min load average {load0:.2f} before, {load1:.2f} after (the worker adds ~1; more "
          f"means other processes shared the CPU and the numbers are pessimistic)")
    print(f"command  {cmd}   (headless, {SIZE[0]}x{SIZE[1]}, preset default, {' '.join(OVERRIDES)})")
    print()
    print(f"0. the lab in a real terminal (pty {lab_terminal.COLS}x{lab_terminal.ROWS}, pyte), fresh processes, from "
          f"process start / the key to the screen showing it")
    print("\n".join(lab_terminal.report(term)))
    print("\n".join(lab_terminal.report(cold)))
    print(f"   targets: first frame <= {TARGET_FIRST_FRAME_S} s {ok(term['first_frame'] <= TARGET_FIRST_FRAME_S)}, "
          f"ctrl+r -> epoch 1 <= {TARGET_FIRST_EPOCH_S} s {ok(term['first_epoch'] <= TARGET_FIRST_EPOCH_S)}, "
          f"palette <= {TARGET_PALETTE_MS:.0f} ms {ok(term['palette'] * 1000 <= TARGET_PALETTE_MS)}, "
          f"nothing left behind {ok(term['left_behind'] == 0 and cold['left_behind'] == 0)}")
    if args.terminal_only:
        return
    print()
    b, t = lat["baseline"], lat["training"]
    worst_redraw = max(v["total"] for k, v in red.items() if isinstance(k, tuple))
    print(f"1. timer lateness, 10 ms app timer, {args.seconds:.0f} s windows          target p99 <= {TARGET_P99_MS:.0f} ms")
    print(f"   idle      p50 {b['p50']:6.2f}  p99 {b['p99']:6.2f}  max {b['max']:7.2f} ms  ({b['n']} ticks)   "
          f"{ok(b['p99'] <= TARGET_P99_MS)}")
    print(f"   training  p50 {t['p50']:6.2f}  p99 {t['p99']:6.2f}  max {t['max']:7.2f} ms  ({t['n']} ticks)   "
          f"{ok(t['p99'] <= TARGET_P99_MS)}")
    for name, r in (("idle", b), ("training", t)):
        c = r["cores"]
        print(f"   CPU used ({name}, in cores): UI {c['ui']:.2f}, worker {c['worker']:.2f}, "
              f"other processes {max(0.0, c['other']):.2f}")
    print(f"   worker: {t['epochs']} epochs in {t['seconds']:.1f} s = {t['eps']:.1f} epochs/s; first epoch "
          f"{lat['first_epoch_s'] * 1000:.0f} ms after ctrl+r in the state, drawn in the curves after "
          f"{lat['first_epoch_drawn_s'] * 1000:.0f} ms (warm process: {lat['warm']}); {lat['rows_in_ui']} rows in "
          f"the UI; shutdown_run {lat['shutdown_s']:.2f} s -> {lat['status']}")
    pal = lat["palette_ms"]
    print(f"   command palette while training: ctrl+p to painted {statistics.median(pal):.0f} ms median, "
          f"{max(pal):.0f} ms max of {len(pal)}   target <= {TARGET_PALETTE_MS:.0f} ms (median)   "
          f"{ok(statistics.median(pal) <= TARGET_PALETTE_MS)}")
    print()
    print(f"2. one curves redraw (draw + build + compose; the build runs in a thread), plot {red['plot_size']} cells, "
          f"median of {args.repeats}   target <= {TARGET_REDRAW_MS:.0f} ms")
    for n in ns:
        parts = []
        for view in VIEWS:
            v = red[(n, view)]
            parts.append(f"{view} {v['total']:5.1f} ({v['draw']:3.1f}+{v['render']:4.1f}+{v['strips']:4.1f}; "
                         f"loop {v['loop']:4.1f})")
        worst = max(red[(n, view)]["total"] for view in VIEWS)
        print(f"   N={n:<5} " + "  ".join(parts) + f" ms   {ok(worst <= TARGET_REDRAW_MS)}")
    print("   (= draw: series, thinning, queue the build [event loop] + build: plotext canvas, rich from_ansi,"
          " lines [worker thread] + compose lines [event loop]; loop = the event loop's share)")
    print()
    print(f"3. first frame (fresh process, headless, median of {ff['n']})            target <= {TARGET_FIRST_FRAME_S} s")
    print(f"   {ff['frame']:.2f} s from the first line of the script (min {ff['frame_min']:.2f}; imports "
          f"{ff['import']:.2f} s); {ff['wall']:.2f} s wall incl. interpreter start and exit   "
          f"{ok(ff['frame'] <= TARGET_FIRST_FRAME_S)}")
    print(f"   torch in the UI process: after first frame {ff['torch']}, after a whole training run "
          f"{lat['torch_in_ui']}   {ok(not ff['torch'] and not lat['torch_in_ui'])}")
    print()
    print(f"summary  terminal: first frame {term['first_frame'] * 1000:.0f} ms, ctrl+r -> epoch 1 "
          f"{term['first_epoch'] * 1000:.0f} ms (cold {cold['first_epoch'] * 1000:.0f} ms), palette "
          f"{term['palette'] * 1000:.0f} ms; p99 lateness {t['p99']:.1f} ms training / {b['p99']:.1f} ms idle; "
          f"{t['eps']:.1f} epochs/s; worst redraw {worst_redraw:.1f} ms; headless first frame {ff['frame']:.2f} s; "
          f"total {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
