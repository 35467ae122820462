"""The `gengap-tui` command: the lab, headless runs and sweeps, replay, attach, screenshots
(docs/ARCHITECTURE.md, "Commands"). Training goes through `session.py`, the lab through `tui/`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import startup
from .config import ConfigError
from .ray_options import add_arguments as add_ray_arguments
from .report import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, fail as _fail, load_config as _load_config
from .report import summary_line  # noqa: F401 - part of the CLI API
from .serve import DEFAULT_PORT, cmd_serve



# ---------------------------------------------------------------------------------------------
# commands

# headless.py (`run`, `sweep`; ~8 ms of imports) is imported by the commands that use it, not
# before the lab's first frame; its names that are part of the CLI API come through __getattr__
def cmd_run(args: argparse.Namespace) -> int:
    from .headless import cmd_run

    return cmd_run(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .headless import cmd_sweep

    return cmd_sweep(args)


def __getattr__(name: str):
    if name in ("sweep_shape_line", "train_headless"):  # part of the CLI API
        from . import headless

        return getattr(headless, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cmd_presets(args: argparse.Namespace) -> int:
    from . import presets

    names = presets.available()
    width = max((len(n) for n in names), default=0)
    for name, path in names.items():
        print(f"{name:<{width}}  {presets.describe(path)}")
    return EXIT_OK


def cmd_lab(args: argparse.Namespace) -> int:
    from . import presets

    sets = args.set + ([f"device={args.device}"] if args.device else [])
    try:  # validate before the screen opens, so a bad preset (or a GPU not there) is a plain message
        _load_config(args.preset, sets, None)
    except ConfigError as exc:
        return _fail(str(exc))
    from .ray_options import from_args as ray_options
    from .tui.app import run_lab

    try:  # --ray: the lab's sweeps (f4) run their units on Ray
        ray = ray_options(args)
    except ValueError as exc:
        return _fail(str(exc))
    return run_lab(args.preset, sets, args.autostart, runs_dir=args.runs_dir, compare=args.compare,
                   record=args.record, ray=ray.to_wire() if ray else None, prewarm=not args.no_prewarm)


def cmd_figure(args: argparse.Namespace) -> int:
    """A publication-style figure of a run or sweep (matplotlib: the `figures` extra)."""
    from .figures import FigureError, check, figure, missing

    try:
        check(args.source, args.view, args.out)
    except FigureError as exc:
        return _fail(str(exc))
    if (problem := missing()) is not None:
        return _fail(problem)
    print(f"figure: {figure(args.source, args.view, args.out)}")
    return EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    """A sweep's rows as text, CSV or Markdown (the seeds' mean ± std)."""
    from .tables import TableError, table

    try:
        text = table(args.sweep_dir, "csv" if args.csv else "markdown" if args.markdown else "text")
    except TableError as exc:
        return _fail(str(exc))
    sys.stdout.write(text)
    return EXIT_OK


def _run_dir_arg(path: str) -> Path | None:
    p = Path(path)
    return p if (p / "config.json").is_file() else None


def cmd_replay(args: argparse.Namespace) -> int:
    from .sources import is_sweep_dir

    if is_sweep_dir(args.run_dir):  # a sweep is shown as far as it is written, followed while it runs
        from .tui.app import run_lab

        return run_lab("default", [], False, sweep=Path(args.run_dir), runs_dir=args.runs_dir, record=args.record)
    run_dir = _run_dir_arg(args.run_dir)
    if run_dir is None:
        return _fail(f"{args.run_dir!r} is not a run directory (no config.json)")
    if args.speed < 0:
        return _fail(f"--speed = {args.speed}: must be >= 0 (0 shows the whole run at once)")
    from .config import validate
    from .protocol import run_config
    from .runs import read_json
    from .tui.app import run_lab

    try:
        validate(run_config(read_json(run_dir / "config.json")), str(run_dir / "config.json"))
    except ConfigError as exc:
        return _fail(str(exc))
    return run_lab("default", [], False, replay=run_dir, speed=args.speed, runs_dir=args.runs_dir, record=args.record,
                   compare=args.compare)


def cmd_attach(args: argparse.Namespace) -> int:
    run_dir = _run_dir_arg(args.run_dir)
    if run_dir is None:
        return _fail(f"{args.run_dir!r} is not a run directory (no config.json)")
    from .config import validate
    from .protocol import run_config
    from .runs import read_json
    from .tui.app import run_lab

    try:
        validate(run_config(read_json(run_dir / "config.json")), str(run_dir / "config.json"))
    except ConfigError as exc:
        return _fail(str(exc))
    return run_lab("default", [], False, replay=run_dir, speed=0.0, attach=True, runs_dir=args.runs_dir,
                   record=args.record)


def cmd_tour(args: argparse.Namespace) -> int:
    """A scripted demo in the lab: packaged tours by name (`--list`), or a tour file."""
    from .tui import tour as tours

    if args.list:
        for name, path in tours.available().items():
            try:
                print(f"{name}  {tours.load(str(path)).description}")
            except tours.TourError as exc:
                print(f"{name}  (broken: {exc})")
        return EXIT_OK
    if not args.tour:
        return _fail("tour needs a NAME (see `gengap-tui tour --list`) or a FILE.toml")
    size = _parse_size(args.size)
    if size is None:
        return _fail(f"--size = {args.size!r}: expected COLSxROWS, 40..400 x 12..200 (e.g. 120x36)")
    if not args.speed > 0:
        return _fail(f"--speed = {args.speed}: must be > 0 (it scales the tour's pauses)")
    try:
        tour = tours.load(args.tour)
    except tours.TourError as exc:
        return _fail(str(exc))
    if args.record is not None and not sys.stderr.isatty():  # no terminal: record in a private one
        argv = [sys.executable, "-m", "gengap_tui.cli", "tour", args.tour, "--record", args.record,
                "--speed", str(args.speed)] + (["--runs-dir", args.runs_dir] if args.runs_dir else [])
        return tours.record_in_pty(argv, size)
    if args.step and (args.record is not None or not sys.stderr.isatty()):
        return _fail("--step waits for your keys at each step: it needs a terminal, and is not for --record")
    return tours.run_tour(tour, args.record, args.speed, size, args.runs_dir, headless=not sys.stderr.isatty(),
                          step=args.step)


def _parse_size(text: str) -> tuple[int, int] | None:
    cols, sep, rows = text.lower().partition("x")
    if not sep or not cols.isdigit() or not rows.isdigit():
        return None
    c, r = int(cols), int(rows)
    return (c, r) if 40 <= c <= 400 and 12 <= r <= 200 else None


def cmd_screenshot(args: argparse.Namespace) -> int:
    size = _parse_size(args.size)
    if size is None:
        return _fail(f"--size = {args.size!r}: expected COLSxROWS, 40..400 x 12..200 (e.g. 120x36)")
    if not args.out.endswith(".svg"):
        return _fail(f"--out = {args.out!r}: the screenshot is an SVG file (name it *.svg)")
    if (problem := _unwritable(args.out)) is not None:  # before anything is trained or rendered
        return _fail(f"--out = {args.out!r}: {problem}")
    from .sources import is_sweep_dir

    if is_sweep_dir(args.source):
        if args.set:
            return _fail("--set applies to a preset; a recorded sweep is shown as it was")
        from .tui.screenshot import screenshot_sweep

        view = args.view if args.view.startswith("sweep") else "sweep"
        try:
            out = screenshot_sweep(args.out, size, args.source, view=view, point=args.point, open_point=args.open)
        except ValueError as exc:
            return _fail(str(exc))
        print(f"screenshot: {out}")
        return EXIT_OK
    if args.point is not None or args.open:
        return _fail("--point / --open: a sweep directory's points (give one as the source)")
    run_dir = _run_dir_arg(args.source)
    if run_dir is None:
        try:
            cfg = _load_config(args.source, args.set, args.device)
        except ConfigError as exc:
            return _fail(str(exc))
        from .headless import train_headless

        code, run_dir, _ = train_headless(cfg, args.runs_dir, args.quiet)
        if run_dir is None:
            return code
    elif args.set:
        return _fail("--set applies to a preset; a recorded run is shown as it was")
    from .tui.screenshot import screenshot

    out = screenshot(args.out, size, run_dir, view=args.view, log_loss=args.log, compare=args.compare,
                     runs_dir=args.runs_dir)
    print(f"screenshot: {out}")
    return EXIT_OK


def _unwritable(path: str) -> str | None:
    """Why a new file cannot be written at `path` (its folder is made if missing), or None. Tried
    for real (a temporary file in the folder): permission bits say nothing to root or to a
    read-only filesystem."""
    import tempfile

    p = Path(path)
    if p.is_dir():
        return "is a folder, not a file"
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        return f"{str(parent)!r} is not a writable folder ({exc.strerror or type(exc).__name__})"
    return None


# ---------------------------------------------------------------------------------------------


DEVICE_HELP = "auto, cpu, cuda or cuda:N (the GPU of that index)"
RECORD_HELP = "record the session as an asciicast v2 file (asciinema play FILE.cast)"


def _record_ok(args: argparse.Namespace) -> str | None:
    """The problem with --record's path, if any (checked before the screen opens)."""
    if getattr(args, "record", None) is None:
        return None
    from .tui.recording import RecordError, check_path

    try:
        check_path(args.record)
    except RecordError as exc:
        return str(exc)
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gengap-tui",
        description="A terminal lab for the generalization gap (D2L 5.5): overfitting, early "
                    "stopping, label noise and memorization, regularizers.")
    p.add_argument("--preset", default="default", help="preset name or path to a .toml (default: default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set optim.lr=0.01 (repeatable)")
    p.add_argument("--autostart", action="store_true", help="start training at once")
    p.add_argument("--runs-dir", default=None, help="where runs are written (default: $GENGAP_RUNS_DIR or ./runs)")
    p.add_argument("--compare", action="append", default=[], metavar="RUN_DIR", help="overlay a recorded run (up to 4)")
    p.add_argument("--record", default=None, metavar="FILE.cast", help=RECORD_HELP)
    add_ray_arguments(p)
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="auto, cpu, cuda or cuda:N: where the lab trains (as --set device=...)")
    p.add_argument("--no-prewarm", action="store_true",
                   help="no warm training process (by default the lab keeps one ready so that ctrl+r trains at once)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="train headless with a progress display")
    r.add_argument("preset", nargs="?", help="preset name (see `gengap-tui presets`) or path to a .toml")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set noise.label_noise=0.2 (repeatable)")
    r.add_argument("--device", default=None, metavar="DEVICE", help=DEVICE_HELP)
    r.add_argument("--runs-dir", default=None, help="where runs are written (default: $GENGAP_RUNS_DIR or ./runs)")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.add_argument("--detach", action="store_true",
                   help="run in the background, outliving this terminal (follow with `gengap-tui attach`)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue a cancelled or crashed run from its checkpoint")
    r.add_argument("--into", help=argparse.SUPPRESS)  # the detached child writes into its parent's run dir
    r.add_argument("--detached", action="store_true", help=argparse.SUPPRESS)  # a detached resume's child
    r.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", help="train one model per value of a setting (widths together) -> sweep.jsonl")
    sw.add_argument("preset", help="preset name or path to a .toml (its [sweep] says what to sweep by default)")
    sw.add_argument("--param", action="append", default=None,
                    help="dotted setting to sweep: a number, switch or choice, e.g. optim.lr, model.kind (default: the "
                         "preset's sweep.param); give --param P --values V twice for the grid of two settings")
    sw.add_argument("--values", action="append", default=None,
                    help="comma-separated values of the --param before it, e.g. 2,4,8,16 or mlp,cnn1d")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--device", default=None, metavar="DEVICE", help=DEVICE_HELP)
    sw.add_argument("--runs-dir", default=None)
    sw.add_argument("--quiet", action="store_true")
    sw.add_argument("--one-at-a-time", action="store_true",
                    help="train the values one after another (the reference the grouped sweep is measured against)")
    add_ray_arguments(sw)
    sw.set_defaults(func=cmd_sweep)

    at = sub.add_parser("attach", help="follow and steer a live run written by another process")
    at.add_argument("run_dir")
    at.add_argument("--runs-dir", default=None)
    at.add_argument("--record", default=None, metavar="FILE.cast", help=RECORD_HELP)
    at.set_defaults(func=cmd_attach)

    tr = sub.add_parser("tour", help="a scripted demo in the lab (the same every time), recordable")
    tr.add_argument("tour", nargs="?", help="a packaged tour's name (--list) or a tour FILE.toml")
    tr.add_argument("--list", action="store_true", help="list the packaged tours")
    tr.add_argument("--record", default=None, metavar="FILE.cast", help=RECORD_HELP)
    tr.add_argument("--speed", type=float, default=1.0,
                    help="times the tour's pace (its fixed pauses and the captions' reading times)")
    tr.add_argument("--step", action="store_true",
                    help="a live lecture: each step waits for a key (space / right / PageDown on, left / PageUp back)")
    tr.add_argument("--size", default="120x36", help="COLSxROWS when there is no terminal (default 120x36)")
    tr.add_argument("--runs-dir", default=None)
    tr.set_defaults(func=cmd_tour)

    sv = sub.add_parser("serve", help="the lab in a browser: every tab a lab on one runs directory (gengap-tui[serve])")
    sv.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; any other: a warning, "
                    "as anyone who reaches the port can train on this machine)")
    sv.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"1..65535 (default {DEFAULT_PORT})")
    sv.add_argument("--public-url", default=None, metavar="URL", help="the URL browsers open, if not http://HOST:PORT "
                    "(ssh -L with another local port; https behind a proxy: the page then uses wss)")
    sv.add_argument("--runs-dir", default=None, help="where every tab's runs go (default: $GENGAP_RUNS_DIR or ./runs)")
    sv.add_argument("--preset", default="default", help="the preset every tab opens on (name or .toml)")
    sv.add_argument("--device", default=None, metavar="DEVICE",
                    help="auto, cpu, cuda or cuda:N: where every tab trains")
    sv.add_argument("--no-prewarm", action="store_true", help="no warm training process per tab (each keeps one, "
                    "~320 MB, so that ctrl+r trains at once)")
    sv.set_defaults(func=cmd_serve)

    ps = sub.add_parser("presets", help="list the packaged presets")
    ps.set_defaults(func=cmd_presets)

    rp = sub.add_parser("replay", help="replay a recorded run, or show a sweep directory, in the lab (no GPU needed)")
    rp.add_argument("run_dir")
    rp.add_argument("--speed", type=float, default=1.0, help="times the recorded pace; 0 = all at once")
    rp.add_argument("--compare", action="append", default=[], metavar="RUN_DIR", help="overlay a run (up to 4)")
    rp.add_argument("--runs-dir", default=None)
    rp.add_argument("--record", default=None, metavar="FILE.cast", help=RECORD_HELP)
    rp.set_defaults(func=cmd_replay)

    sh = sub.add_parser("screenshot", help="write an SVG of the lab on a preset (trained headless), a run or a sweep")
    sh.add_argument("source", help="preset name, preset .toml, or a run directory")
    sh.add_argument("--out", required=True, help="FILE.svg")
    sh.add_argument("--size", default="120x36", help="COLSxROWS (default 120x36)")
    sh.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sh.add_argument("--device", default=None, metavar="DEVICE", help=DEVICE_HELP)
    sh.add_argument("--view", choices=["error", "loss", "memorization", "examples", "system", "sweep", "sweep-params",
                                       "sweep-norms"],
                    default="error", help="a run's views; a sweep directory's: sweep (default), sweep-params, sweep-norms")
    sh.add_argument("--log", action="store_true", help="log10 loss axis (with --view loss)")
    sh.add_argument("--compare", action="append", default=[], metavar="RUN_DIR", help="overlay a run (up to 4)")
    sh.add_argument("--runs-dir", default=None)
    sh.add_argument("--quiet", action="store_true")
    sh.add_argument("--point", default=None, metavar="V[,V2]",
                    help="a sweep directory: the cursor on this value (a grid: and this line), the sweep panel shown")
    sh.add_argument("--open", action="store_true", help="with --point: that point's curves (the run view of its run directory)")
    sh.set_defaults(func=cmd_screenshot)

    fg = sub.add_parser("figure", help="a publication-style figure of a run or sweep (PNG, PDF, SVG; gengap-tui[figures])")
    fg.add_argument("source", help="a run directory or a sweep directory")
    fg.add_argument("--view", choices=["error", "loss", "memorization", "examples", "sweep"], default=None,
                    help="a run's: error (default), loss, memorization, examples; a sweep's: sweep")
    fg.add_argument("--out", required=True, help="FILE.png, FILE.pdf or FILE.svg")
    fg.set_defaults(func=cmd_figure)

    tb = sub.add_parser("table", help="a sweep's rows (the seeds' mean ± std) as text, CSV or Markdown")
    tb.add_argument("sweep_dir")
    how = tb.add_mutually_exclusive_group()
    how.add_argument("--csv", action="store_true", help="comma-separated, one column per number (std apart)")
    how.add_argument("--markdown", action="store_true", help="a Markdown pipe table")
    tb.set_defaults(func=cmd_table)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = getattr(args, "func", cmd_lab)
    if func not in (cmd_lab, cmd_replay, cmd_attach):  # (the lab lets it go once its fields are up)
        startup.release()
    if (problem := _record_ok(args)) is not None:
        return _fail(problem)
    try:
        return func(args)
    except KeyboardInterrupt:
        return _fail("cancelled", EXIT_SIGINT)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
