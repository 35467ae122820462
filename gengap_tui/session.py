"""The one run lifecycle and the one sweep lifecycle (docs/ARCHITECTURE.md, "Sessions").

Every way of training goes through here: `gengap-tui run` (in the foreground, `--detach`ed or
`--resume`d), the lab's training process (`worker.py`) and sweeps from the CLI or the lab.

    outcome = run_session(cfg, "runs", control=RunControl(), emit=print)

The caller says how to be told (`emit` gets `protocol` messages: RunDir, Epoch, Event, Summary,
Error, Warning) and how it is steered (a `control.RunControl`: the session adds the run directory's
control.jsonl as a feed, so any process can pause, stop or tweak it, and the caller may add its
own feeds and signal handlers). The session writes the run directory (`runs.RunWriter`) itself:
nothing depends on anyone reading the messages.

torch is imported inside the functions, so importing this module stays cheap for the UI.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import runs
from .config import ConfigError, cpu_threads
from .control import FileFeed, RunControl
from .protocol import Epoch, Error, Event, Progress, RunDir, Summary, Warning

Emit = Callable[[Any], Any]


@dataclass
class Outcome:
    """How a session ended: a summary (it trained, whatever the status), or an error (it never
    made a run directory: bad input, or stopped before training started)."""
    run_dir: Path | None = None
    summary: dict | None = None
    error: str | None = None
    cancelled: bool = False  # the error is a stop before training started

    @property
    def status(self) -> str | None:
        return None if self.summary is None else self.summary.get("status")


def _no_emit(_msg: Any) -> None:
    pass


def _failed(exc: BaseException) -> dict:
    return {"status": "failed", "epochs_run": None, "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()}


def truncate_metrics(run_dir: Path, epoch: int) -> None:
    """Keep the metrics of epochs <= `epoch` (those after a checkpoint are trained again)."""
    rows = [r for r in runs.read_jsonl(run_dir / "metrics.jsonl") if int(r.get("epoch", 0)) <= epoch]
    tmp = run_dir / ".metrics.jsonl.tmp"
    tmp.write_text("".join(runs.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, run_dir / "metrics.jsonl")


def run_session(cfg, runs_dir: str | os.PathLike | None = None, *, into: Path | None = None,
                resume: bool = False, control: RunControl | None = None, emit: Emit | None = None,
                on_ready: Callable[[Any, Path], Any] | None = None) -> Outcome:
    """Train `cfg` (a validated Config) and write its run directory.

    `into` writes into an existing run directory (a detached run's, made by its parent); with
    `resume` it continues that directory's checkpoint.pt. `on_ready(trainer, run_dir)` runs once
    the directory exists, before the first message about it (the lab's process sends its output
    to worker.log there). torch trains with `run.threads` CPU threads (`config.cpu_threads`),
    whoever calls: the same preset gives the same numbers in the lab and headless."""
    emit = emit or _no_emit
    control = control or RunControl()
    runs_path = runs.default_runs_dir(runs_dir)
    # 1. refuse an unwritable runs directory before anything slow
    problem = _prepare(None if into is not None else runs_path, cfg)
    if problem:
        return _error(emit, problem)

    # 2. the trainer: data on the device, the model, the optimizer (and a checkpoint to continue)
    import torch

    from .core.data import load as load_data
    from .core.datafiles import DataFileError
    from .core.factory import make_trainer
    from .core.trainer import device_name

    try:
        trainer = make_trainer(cfg, device=None, data=load_data(cfg))
        if resume:
            trainer.load_checkpoint(torch.load(into / "checkpoint.pt", weights_only=True,
                                               map_location=trainer.device))
    except (ValueError, DataFileError, OSError, RuntimeError, KeyError) as exc:
        return _error(emit, f"cannot resume {into}: {exc}" if resume else str(exc))
    control.attach(trainer)
    if control.stop_requested:  # no run directory for a run that never trained
        return _error(emit, "cancelled before training started", cancelled=True)

    # 3. the run directory: new, made by a detaching parent, or continued
    previous: dict = {}
    if resume:
        previous = runs.read_json(into / "summary.json") or {}
        truncate_metrics(into, trainer.start_epoch)
        (into / "summary.json").unlink(missing_ok=True)  # followers see a live run again
        run_dir, writer = into, runs.RunWriter(into, None)
    else:
        run_dir = into if into is not None else runs.new_run_dir(runs_path, cfg.name)
        from .core.sysmetrics import gpu_facts

        gpu = gpu_facts(trainer.device)  # the GPU's name, index, driver, memory (None on a CPU)
        writer = runs.RunWriter(run_dir, cfg.dump(), {"torch_version": torch.__version__,
                                                      "device_name": device_name(trainer.device),
                                                      "torch_threads": torch.get_num_threads(),
                                                      **({"gpu": gpu} if gpu else {})})
    if on_ready is not None:
        on_ready(trainer, run_dir)
    emit(RunDir(str(run_dir)))

    def save(name: str, obj: Any) -> None:  # checkpoint.pt (resumable state), model.pt (kept weights)
        runs.replace_atomic(run_dir / name, lambda tmp: torch.save(obj, tmp))

    def save_examples() -> None:  # examples.npz: which examples were learned when (core/examples.py)
        counters = getattr(trainer, "examples", None)
        if counters is not None and counters.epochs:
            runs.replace_atomic(run_dir / "examples.npz", lambda tmp: counters.save(tmp, trainer.changed))

    def checkpoint(state: dict) -> None:  # with each checkpoint, the counters so far (the lab's view)
        save("checkpoint.pt", state)
        save_examples()

    def event(ev: dict) -> None:
        writer.event(ev)
        emit(Event(ev))

    def on_epoch(row: dict) -> None:
        writer.metrics(row)
        emit(Epoch(row))
        control.between_epochs(row["epoch"])

    control.on_event = event
    control.on_warning = control.on_warning or (lambda text: emit(Warning(text)))
    feed = FileFeed(control, run_dir).start()

    # 4. train (run() never raises for a training failure; this is a last resort)
    try:
        summary = trainer.run(on_epoch=on_epoch, on_event=event, on_checkpoint=checkpoint)
    except BaseException as exc:  # noqa: BLE001
        summary = _failed(exc)
    finally:
        feed.close()

    # 5. close the directory: the kept weights, the summary
    if previous.get("wall_seconds") and summary.get("wall_seconds") is not None:
        summary["wall_seconds"] += previous["wall_seconds"]
    if summary.get("epochs_run") and (summary.get("status") != "diverged" or summary.get("restored_best")):
        try:
            save("model.pt", trainer.model.state_dict())
        except OSError as exc:
            summary["model_error"] = f"model.pt not written: {exc}"
    try:
        save_examples()
    except OSError as exc:
        summary["examples_error"] = f"examples.npz not written: {exc}"
    writer.finish(summary)
    emit(Summary(summary))
    return Outcome(run_dir, summary)


def sweep_session(cfg, param: str, values: list[float], runs_dir: str | os.PathLike | None = None, *,
                  together: bool | None = None, control: RunControl | None = None, emit: Emit | None = None,
                  on_ready: Callable[[Any, Path], Any] | None = None, ray: Any = None,
                  param2: str | None = None, values2: list | None = None) -> Outcome:
    """Sweep `param` over `values` (`core.sweep.Sweep`; with `param2` / `values2` the grid of the
    two, one line of `param` per value of `param2`) into a new `sweep-<preset>` directory.
    `emit` gets RunDir, Progress (each progress.jsonl line), Error and Summary; a pause holds the
    sweep at the end of an epoch; a stop ends it as cancelled with its partial results written.
    torch trains with `run.threads` CPU threads, as in `run_session`. `ray` (`ray_options.RayOptions`
    or its wire dict) runs the sweep's units as Ray tasks (`core.raysweep`, imported only then):
    the same files; a cluster that cannot be reached or used is an Error before any directory."""
    emit = emit or _no_emit
    control = control or RunControl()
    runs_path = runs.default_runs_dir(runs_dir)
    # 1. refuse bad input before anything slow
    problem = _prepare(runs_path, cfg)
    if problem:
        return _error(emit, problem)
    import torch

    from .core.sweep import Sweep

    try:  # a Ray sweep's units pick their device where they run: plan it for a CPU here
        sweep = Sweep(cfg, param, values, together=together, device=None if ray is None else "cpu",
                      param2=param2, values2=values2)
    except (ValueError, ConfigError) as exc:  # no values, a value out of range, no such device
        return _error(emit, str(exc))
    control.attach(sweep)
    runner = None
    if ray is not None:
        from .core.raysweep import ClusterError, RaySweep
        from .ray_options import RayOptions

        runner = RaySweep(sweep, RayOptions.from_wire(ray), on_warning=lambda text: emit(Warning(text)))
        try:
            runner.connect()
        except ClusterError as exc:
            runner.close()
            return _error(emit, str(exc))
        control.attach(runner)
    if control.stop_requested:
        if runner is not None:
            runner.close()
        return _error(emit, "cancelled before the sweep started", cancelled=True)

    # 2. the sweep directory
    out_dir = runs.new_run_dir(runs_path, f"sweep-{cfg.name}")
    if on_ready is not None:
        on_ready(sweep, out_dir)
    emit(RunDir(str(out_dir)))

    def on_progress(row: dict) -> None:
        emit(Progress(row))
        if runner is None:  # (a Ray sweep's units hold themselves: the runner reads control.paused)
            control.between_epochs(row["epoch"])

    control.on_warning = control.on_warning or (lambda text: emit(Warning(text)))
    feed = FileFeed(control, out_dir).start()
    # 3. train every value (Sweep.run keeps training failures; this is data loading etc.)
    extra = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads()}
    if runner is None and sweep.device.type == "cuda":
        from .core.sysmetrics import gpu_facts

        extra["gpu"] = gpu_facts(sweep.device)  # sweep.json and each value's config.json
    try:
        if runner is None:
            summary = sweep.run(out_dir, on_progress=on_progress, extra=extra)
        else:
            summary = runner.run(out_dir, on_progress=on_progress, extra=extra, paused=lambda: control.paused)
    except BaseException as exc:  # noqa: BLE001
        summary = {**_failed(exc), "param": param, "values": values,
                   **({"param2": param2, "values2": values2} if param2 else {})}
        runs.write_json_atomic(out_dir / "summary.json", summary)
    finally:
        feed.close()
        if runner is not None:
            runner.close()
    emit(Summary(summary))
    return Outcome(out_dir, summary)


PREWARM_BUDGET_S = 1.0  # the throwaway run that warms a training process stops after this long


def prewarm(config: dict) -> dict:
    """Make this process ready to train `config` (a `Config.dump()` dict) at once: torch and what
    the first trainer imports (torch.optim pulls in torch._dynamo, ~0.6 s), the config's CPU
    threads, the device (on CUDA the context, cuBLAS, the graph machinery), the config's data
    (generated or read from the disk cache, then kept in the process: `core.data._cached`).

    It trains the config for a moment with nothing written (1 epoch on a CPU, 3 on CUDA, where
    the second records a CUDA graph; baselines off; at most PREWARM_BUDGET_S): the one-off costs
    of a first epoch are paid here, not by the user's run. Nothing of it reaches a later session,
    which seeds torch itself and builds its own trainer on fresh copies of the data (a test checks
    that a run in a prewarmed process gives the numbers of a cold one). Returns what it did, for
    the lab: {device, seconds}; raises what the config cannot do (the session says it properly)."""
    import time

    t0 = time.perf_counter()
    import torch

    from .config import validate
    from .core.data import load as load_data
    from .core.factory import make_trainer
    from .core.trainer import device_name

    cfg = validate(config)
    torch.set_num_threads(cpu_threads(cfg.run.threads))
    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    short = cfg.model_copy(update={
        "optim": cfg.optim.model_copy(update={"epochs": 3 if cuda else 1}),
        "baselines": cfg.baselines.model_copy(update={"knn": False, "ntk": False}),
        "early_stopping": cfg.early_stopping.model_copy(update={"enabled": False}),
    })
    trainer = make_trainer(short, device=None, data=load_data(cfg))
    import threading

    timer = threading.Timer(PREWARM_BUDGET_S, trainer.request_stop, args=("prewarm budget",))
    timer.start()
    try:
        trainer.run()
    finally:
        timer.cancel()
    info = {"device": device_name(trainer.device), "seconds": round(time.perf_counter() - t0, 3)}
    del trainer
    return info


def _prepare(runs_path: Path | None, cfg) -> str | None:
    """Check the runs directory (unless the run directory exists already), then import torch
    and give it the config's CPU threads (`run.threads`). Returns what is wrong, or None."""
    if runs_path is not None:
        try:
            runs.check_writable(runs_path)
        except OSError as exc:
            return str(exc)
    import torch

    torch.set_num_threads(cpu_threads(cfg.run.threads))
    return None


def _error(emit: Emit, message: str, cancelled: bool = False) -> Outcome:
    emit(Error(message, cancelled))
    return Outcome(error=message, cancelled=cancelled)


def fail_directory(run_dir: Path | None, message: str) -> dict:
    """A last resort after a crash outside the lifecycle: close `run_dir` as failed unless it
    already has its summary. Returns the summary."""
    summary = {"status": "failed", "reason": message, "traceback": traceback.format_exc()}
    if run_dir is not None and runs.read_json(run_dir / "summary.json") is None:
        try:
            runs.write_json_atomic(run_dir / "summary.json", summary)
        except OSError:
            pass
    return summary
