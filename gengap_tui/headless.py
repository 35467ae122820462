"""Training without the lab: `gengap-tui run` (in the foreground, `--detach`ed, `--resume`d) and
`gengap-tui sweep`, with a progress display on stderr and a summary on stdout (docs/ARCHITECTURE.md,
"Commands"). Both go through `session.py`; `cli.py` parses the arguments and calls in here."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from .config import ConfigError
from .report import (EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, EXIT_OK, EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGTERM,
                     Progress, fail as _fail, fmt_or_dash as _fmt, load_config as _load_config, summary_line)


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume:
        return cmd_resume(args)
    if not args.preset:
        return _fail("run needs a PRESET (name or .toml path), or --resume RUN_DIR")
    try:
        cfg = _load_config(args.preset, args.set, args.device)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.detach:
        return detach(args, cfg)
    into = Path(args.into) if args.into else None
    code, _, _ = train_headless(cfg, args.runs_dir, args.quiet, into=into, detached=into is not None)
    return code


def detach(args: argparse.Namespace, cfg) -> int:
    """Start the run in its own session (it outlives this terminal) and return at once."""
    from . import runs

    runs_dir = runs.default_runs_dir(args.runs_dir)
    try:
        run_dir = runs.new_run_dir(runs_dir, cfg.name)
    except OSError as exc:
        return _fail(str(exc))
    runs.write_json_atomic(run_dir / "config.json", cfg.dump())  # visible to attach at once
    cmd = [sys.executable, "-m", "gengap_tui.cli", "run", args.preset, "--into", str(run_dir), "--quiet"]
    for item in args.set:
        cmd += ["--set", item]
    if args.device:
        cmd += ["--device", args.device]
    return _spawn_detached(cmd, run_dir)


def _spawn_detached(cmd: list[str], run_dir: Path) -> int:
    """Run `cmd` (a `gengap-tui run` child that ignores SIGHUP) in its own session, its output in
    run_dir/run.log and its pid in run_dir/pid, and return at once."""
    import subprocess

    with open(run_dir / "run.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                cwd=os.getcwd())
    (run_dir / "pid").write_text(f"{proc.pid}\n")
    print(f"run directory: {run_dir}")
    print(f"detached as pid {proc.pid}; follow and steer it with: gengap-tui attach {run_dir}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from . import runs
    from .config import validate
    from .protocol import run_config

    run_dir = Path(args.resume)
    if args.preset or args.set:
        return _fail("--resume continues a recorded run as it was: give no PRESET or --set")
    raw = runs.read_json(run_dir / "config.json")
    if raw is None:
        return _fail(f"{str(run_dir)!r} is not a run directory (no readable config.json)")
    try:
        cfg = validate(run_config(raw), str(run_dir / "config.json"))
        if args.device:
            cfg = validate({**cfg.dump(), "device": args.device})
    except ConfigError as exc:
        return _fail(str(exc))
    from .gpus import check_device

    if problem := check_device(cfg.device):  # a GPU that is not there: exit 2 before the child starts
        return _fail(problem)
    old = runs.read_json(run_dir / "summary.json")
    if old is not None and old.get("status") not in ("cancelled", "failed"):
        return _fail(f"{run_dir} ended as {old.get('status')!r}: only a cancelled or failed run can be resumed")
    if not (run_dir / "checkpoint.pt").is_file():
        return _fail(f"{run_dir} has no checkpoint.pt to resume from")
    if args.detach:  # the same, in a child of its own session that ignores SIGHUP (`--detached`)
        cmd = [sys.executable, "-m", "gengap_tui.cli", "run", "--resume", str(run_dir), "--quiet", "--detached"]
        if args.device:
            cmd += ["--device", args.device]
        return _spawn_detached(cmd, run_dir)
    code, _, _ = train_headless(cfg, None, args.quiet, into=run_dir, resume=True, detached=args.detached)
    return code


class StopSignals:
    """While training in the foreground: SIGINT, SIGTERM and SIGHUP stop the session through its
    control (the summary's reason names the signal); a second Ctrl+C stops at once. A detached
    run ignores SIGHUP: it outlives the terminal it was started from."""

    CODES = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM, signal.SIGHUP: EXIT_SIGHUP}

    def __init__(self, control, detached: bool = False):
        self.control, self.detached = control, detached
        self.code: int | None = None  # the exit code of the first signal
        self._old: dict = {}

    def _on(self, signum, frame) -> None:  # noqa: ARG002 - flags only: the session does the rest
        if self.code is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl+C: stop now, mid-batch
        self.code = self.CODES.get(signum, EXIT_SIGHUP)
        self.control.on_signal(signum)

    def __enter__(self) -> "StopSignals":
        for s in self.CODES:
            self._old[s] = signal.signal(s, signal.SIG_IGN if (s == signal.SIGHUP and self.detached) else self._on)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def train_headless(cfg, runs_dir_arg, quiet: bool, into: Path | None = None, resume: bool = False,
                   detached: bool = False) -> tuple[int, Path | None, dict | None]:
    """Train `cfg` in this process with the progress display; returns (exit code, run dir, summary).
    `into` writes into an existing run directory (a detached run's, or one being resumed)."""
    from .control import RunControl
    from .protocol import Epoch, Event, RunDir, Warning
    from .session import run_session

    progress = Progress(cfg.optim.epochs, cfg.early_stopping.patience if cfg.early_stopping.enabled else None,
                        not quiet)
    progress.note(f"preparing {cfg.name}: {cfg.data.dataset}, {cfg.model.kind}, "
                  f"label noise {cfg.noise.label_noise:g} ({cfg.noise.kind}) ...")

    def ready(trainer, run_dir: Path) -> None:
        progress.note(f"resuming {run_dir} after epoch {trainer.start_epoch}" if resume
                      else f"run directory: {run_dir}")

    def emit(msg) -> None:
        if isinstance(msg, Epoch):
            progress.epoch(msg.row)
        elif isinstance(msg, Warning):
            progress.note(f"warning: {msg.message}")
        elif isinstance(msg, Event):
            ev = msg.event
            if msg.kind == "warning":
                progress.note(f"warning: {ev['message']}")
            elif msg.kind == "started" and (ev.get("gpu") or {}).get("chosen"):
                progress.note(ev["gpu"]["chosen"])  # which GPU `auto` took, and why
            elif msg.kind == "checkpoint_failed":
                progress.note(f"warning: checkpoint not saved after epoch {ev['epoch']} ({ev['error']}); "
                              "the run goes on")
            if msg.kind in ("early_stop", "would_stop", "diverged", "tweaked"):
                label = {"early_stop": "EARLY STOP", "would_stop": "would stop"}.get(msg.kind, msg.kind)
                progress.note(f"{label} @ epoch {ev['epoch']}" +
                              (f" (best epoch {ev['best_epoch']})" if "best_epoch" in ev else ""))
        elif isinstance(msg, RunDir):
            pass  # said by `ready`

    control = RunControl()
    with StopSignals(control, detached) as signals:
        outcome = run_session(cfg, runs_dir_arg, into=into, resume=resume, control=control, emit=emit,
                              on_ready=ready)
    if outcome.error is not None:
        return _fail(outcome.error, (signals.code or EXIT_SIGINT) if outcome.cancelled else EXIT_BAD_INPUT), None, None
    summary, run_dir = outcome.summary, outcome.run_dir
    progress.flush()
    print(f"run directory: {run_dir}")
    print(summary_line(summary))
    status = summary["status"]
    if status in ("completed", "early_stopped"):
        code = EXIT_OK
    elif status == "diverged":
        code = EXIT_DIVERGED
    elif status == "cancelled":
        code = signals.code or EXIT_SIGINT
    else:
        code = EXIT_FAILED
    return code, run_dir, summary


def parse_sweep_values(param: str, text: str, key: str = "--values") -> list:
    """`--values` for setting `param`: comma-separated numbers, `true,false` or choices
    (`mlp,cnn1d`), or a range (`2..300 x20 log`), each checked by the setting's own rules;
    returned as stored (`sweep_values.parse_values`, which the lab's sweep panel uses too)."""
    from .sweep_values import parse_values

    return parse_values(param, text, key)


NO_PEAK = "no test-error peak (no value stands above both the dip before it and the last value)"
NO_PEAK_FEW = "no test-error peak (that takes 3 values or more with a test error)"


def shape_parts(summary: dict, param: str) -> list[str]:
    """What a sweep's (or one grid line's) shape says: the interpolation threshold, the test-error
    peak and the dip before it (`core.sweep.shape_of`; a peak stands above both the dip and the
    last value, or there is none and the parts say so), the last value's test error."""
    from .protocol import exact_value

    shape = []
    if summary.get("interpolation_threshold") is not None:
        shape.append(f"interpolation threshold {param} = {exact_value(summary['interpolation_threshold'])}")
    if summary.get("interpolation_lost_at") is not None:
        shape.append(f"stops interpolating at {param} = {exact_value(summary['interpolation_lost_at'])}")
    prominence = summary.get("peak_prominence")
    if summary.get("peak_value") is not None and prominence is not None and prominence > 0:
        shape.append(f"test-error peak {_fmt(summary['peak_test_err'])} at {exact_value(summary['peak_value'])}")
        shape.append(f"dip before it {_fmt(summary['dip_test_err'])} at {exact_value(summary['dip_value'])}")
    elif prominence is not None:
        shape.append(NO_PEAK)
    elif summary.get("last_test_err") is not None:
        shape.append(NO_PEAK_FEW)
    if summary.get("last_test_err") is not None:
        shape.append(f"last {_fmt(summary['last_test_err'])}")
    return shape


def sweep_shape_line(summary: dict, param: str) -> str:
    """The last line of `gengap-tui sweep`: status and time, then the shape (`shape_parts`)."""
    return " | ".join([f"{summary['status']} in {summary.get('wall_seconds') or 0:.1f}s",
                       *shape_parts(summary, param)])


def sweep_line_shapes(summary: dict) -> list[str]:
    """A grid sweep's shape, one line per line of the grid (`summary["lines"]`: a value of
    `param2` each), e.g. `label_noise = 0.1: interpolation threshold model.width = 16 | ...`."""
    from .protocol import exact_value

    leaf2 = str(summary.get("param2") or "").split(".")[-1]
    return [f"{leaf2} = {exact_value(line.get('value2'))}: "
            + (" | ".join(shape_parts(line, summary.get("param") or "value")) or "nothing trained")
            for line in summary.get("lines") or []]


def sweep_plan(args: argparse.Namespace, cfg) -> tuple[str, list, str | None, list | None]:
    """(param, values, param2, values2) of `gengap-tui sweep`: the preset's [sweep] (a grid when
    it has `param2`), or `--param P --values V` once or twice (twice: the grid of the two, one
    line of the first per value of the second). Without --param, --values replace the preset's
    values in order. ValueError saying what is wrong."""
    from .config import sweep_field

    params, given = list(args.param or []), list(args.values or [])
    s = cfg.sweep
    preset = [(s.param, list(s.values))] + ([(s.param2, list(s.values2))] if s.param2 else [])
    if len(params) > 2 or len(given) > 2:
        raise ValueError("--param / --values: at most two settings (a grid of the two)")
    if not params:
        if len(given) > len(preset):
            raise ValueError(f"--values given {len(given)} times, but the preset's [sweep] has {len(preset)} "
                             f"setting(s) ({', '.join(p for p, _ in preset)}): name them with --param")
        plan = [(p, parse_sweep_values(p, given[i]) if i < len(given) else vs) for i, (p, vs) in enumerate(preset)]
    else:
        for p in params:
            sweep_field(p, "--param")
        if len(set(params)) != len(params):
            raise ValueError(f"--param {params[0]} given twice: a grid needs two different settings")
        preset_values = dict(preset)
        if given and len(given) != len(params):
            raise ValueError(f"{len(params)} --param but {len(given)} --values: give one --values after each "
                             "--param (e.g. --param model.width --values 2,4,8 --param noise.label_noise "
                             "--values 0,0.2)")
        plan = []
        for i, p in enumerate(params):
            if given:
                plan.append((p, parse_sweep_values(p, given[i])))
            elif p in preset_values:
                plan.append((p, preset_values[p]))
            else:
                raise ValueError(f"--param {p} needs --values (the preset's [sweep] is over "
                                 f"{' x '.join(p for p, _ in preset)}); e.g. --values 2,4,8,16")
    for p, vs in plan:
        if not vs:
            raise ValueError(f"sweep.values: nothing to sweep over for {p} (give --values or the preset's [sweep])")
    (param, values), second = plan[0], (plan[1] if len(plan) > 1 else (None, None))
    return param, values, second[0], second[1]


def cmd_sweep(args: argparse.Namespace) -> int:
    """Train one model per value of a setting, or per point of a grid of two settings (together
    where the shapes allow) -> sweep.jsonl."""
    from . import runs
    from .control import RunControl
    from .protocol import Progress, Warning, exact_value
    from .session import sweep_session

    from .ray_options import from_args as ray_options

    try:
        cfg = _load_config(args.preset, args.set, args.device)
        ray = ray_options(args)  # --ray: where the units run (None: here)
        param, values, param2, values2 = sweep_plan(args, cfg)
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc))
    t0 = time.perf_counter()
    every = max(1, cfg.optim.epochs // 20)
    seen: dict = {}
    leaf2 = (param2 or "").split(".")[-1]

    def ready(sw, out_dir: Path) -> None:
        mode = ("together" if sw.together else "one at a time" if not any(sw.line_together)
                else f"together in {sum(sw.line_together)} of {len(sw.lines)} lines")
        mode += f", units on Ray ({ray.address})" if ray else ""
        what = (f"{param} over {len(values)} values x {param2} over {len(values2)} values ({len(sw.points)} points"
                if param2 else f"{param} over {len(values)} values (")
        print(f"sweep {what}, {mode}), {cfg.optim.epochs} epochs each: {out_dir}", flush=True)

    def emit(msg) -> None:
        if isinstance(msg, Warning):  # a Ray unit retried after its worker died
            print(f"  warning: {msg.message}", flush=True)
        if not isinstance(msg, Progress):
            return
        row = msg.row
        points = list(zip(row["values"], row.get("values2") or [None] * len(row["values"])))
        for i, p in enumerate(points):
            seen[p] = {k: row[k][i] for k in ("train_err", "test_err") if k in row}
        if args.quiet or row["epoch"] % every:
            return
        tail = "  ".join(f"{exact_value(v)}{'' if v2 is None else f'/{exact_value(v2)}'}:"
                         f"{_fmt(seen[(v, v2)].get('test_err'), '.2f')}" for v, v2 in points[:12])
        print(f"  epoch {row['epoch']:>5}  {time.perf_counter() - t0:6.1f}s  test err  {tail}", flush=True)

    control = RunControl()
    with StopSignals(control) as signals:
        outcome = sweep_session(cfg, param, values, args.runs_dir, together=False if args.one_at_a_time else None,
                                control=control, emit=emit, on_ready=ready, ray=ray, param2=param2, values2=values2)
    if outcome.error is not None:
        return _fail(outcome.error, (signals.code or EXIT_SIGINT) if outcome.cancelled else EXIT_BAD_INPUT)
    summary, out_dir = outcome.summary, outcome.run_dir
    rows = runs.read_jsonl(out_dir / "sweep.jsonl")
    observe = any("test_err_kept" in r for r in rows)  # early stopping observed: what it would have kept
    extra = f" {'kept':>6} {'best':>5} {'would':>5} {'saved':>5}" if observe else ""
    col2 = f" {leaf2[:10]:>10}" if param2 else ""
    print(f"{'value':>8}{col2} {'params':>8} {'train err':>9} {'val err':>8} {'test err':>8}{extra}  status")
    for r in rows:
        more = (f" {_fmt(r.get('test_err_kept')):>6} {r.get('best_epoch') or '-':>5} "
                f"{r.get('would_stop_epoch') or '-':>5} {r.get('epochs_saved', '-'):>5}") if observe else ""
        v2 = f" {exact_value(r.get('value2')):>10}" if param2 else ""
        print(f"{exact_value(r['value']):>8}{v2} {r['n_params'] or '':>8} {_fmt(r['train_err']):>9} "
              f"{_fmt(r['val_err']):>8} {_fmt(r['test_err']):>8}{more}  {r['status']}")
    print(f"sweep directory: {out_dir}")
    if param2:
        for line in sweep_line_shapes(summary):
            print(line)
        print(f"{summary['status']} in {summary.get('wall_seconds') or 0:.1f}s")
    else:
        print(sweep_shape_line(summary, param))
    if summary["status"] == "completed":
        return EXIT_OK
    if summary["status"] == "cancelled":
        return signals.code or EXIT_SIGINT
    if summary.get("reason"):
        print(f"reason: {summary['reason']}", file=sys.stderr)
    return EXIT_FAILED
