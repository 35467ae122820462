"""Sweeps on a Ray cluster: the sweep's units as Ray tasks, the directory written here.

    rs = RaySweep(sweep, RayOptions("local"))     # a core.sweep.Sweep planned on this machine
    rs.connect()                                  # ClusterError: bad input (the CLI exits 2)
    try:
        summary = rs.run(out_dir, on_progress)    # the files a local sweep writes
    finally:
        rs.close()                                # stops a private (`local`) instance

The units are the buckets a CPU would make of a grouped width sweep (seeds stay stacked inside
a unit), or one value each otherwise. Each is a task (`_unit_task`) asking for `--cpus-per-task`
CPUs and `--gpus-per-task` GPUs; it trains a `units.Unit` whose sink (`RelaySink`) sends its
records (progress rows, metrics rows, events, weights, summaries) in batches to a `Relay` actor.
This process (the driver) drains the relay and writes the records through a `units.FileSink`,
so the directory, and everything that follows one (the lab, replay, attach, screenshot), is the
same as a local sweep's; no filesystem is shared with the workers (their data is loaded here and
sent through Ray's object store). Faults: a task whose worker dies is retried from its start by
Ray (`max_retries` = `RayOptions.retries`), and the new attempt's first record makes the driver
empty the unit's metrics and write a `retried` event; a unit that fails for good is `failed` (with its reason)
while the others go on; a stop cancels the tasks not started (`ray.cancel`), tells the running
ones through the relay, cancels them too if they have not ended 2 s later, and keeps what
finished. Nothing on the default path imports this module (it imports Ray).
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import ray
import torch

from .. import runs
from ..protocol import USER_STOP
from ..ray_options import RayOptions
from .data import load
from .models import plan_buckets, width_cost
from .sweep import Sweep, max_waste_for
from .trainer import cancel_reason, device_name, pick_device
from .relay import Relay
from .units import DATA_SECTIONS, ROW_KEYS, FileSink, Sink, Unit, data_key, point_label

FLUSH_S = 0.2            # a unit sends its records at most this often (and at its end)
PROBE_S = 5.0            # how long reaching the cluster's address may take
CONNECT_S = 25.0         # how long ray.init may take once the address answers
STOP_S = 2.0             # after a stop: how long running units may take to stop before ray.cancel
GRACE_S = 10.0           # after a stop: how long cancelled units may take to report
POLL_S = 0.1             # the driver's loop


class ClusterError(Exception):
    """No cluster there, or it cannot run this sweep: bad input, said before anything is written."""


# =============================================================================================
# the workers' side


class RelaySink(Sink):
    """A unit's sink in a Ray task: records sent to the relay in batches at most every FLUSH_S
    (at the end of an epoch), the driver's answer obeyed (a pause holds the unit at the epoch's
    end, a stop ends it as cancelled). The task never blocks on Ray while it trains (a task
    blocked in `ray.get` lends its CPU to another task): the last records are its return value,
    with how many batches came before them, so that the driver writes them last."""

    def __init__(self, relay, index: int, attempt: str, paused: bool = False):
        self.relay, self.tag, self.attempt = relay, (index, attempt), attempt
        self.unit: Unit | None = None
        self.wait_once = paused  # the sweep was paused when the unit was sent: ask after its first epoch
        self.sent = 0
        self._buf: list = []
        self._at = 0.0
        self._reply = None

    def _add(self, kind: str, value: float | None, payload: Any) -> None:
        self._buf.append((kind, value, payload))

    def hello(self, facts: dict) -> None:
        self._add("hello", None, facts)
        self.flush()

    def info(self, info: dict) -> None:
        self._add("info", None, info)

    def progress(self, row: dict) -> None:
        self._add("progress", None, row)
        if time.monotonic() - self._at >= FLUSH_S or self.wait_once:
            self.flush()
        if self.wait_once:  # (the first answer can take a second: the worker looks the relay up)
            self.wait_once = False
            ray.wait([self._reply])
        self._obey()

    def metrics(self, value: float, row: dict) -> None:
        self._add("metrics", value, row)

    def event(self, value: float, ev: dict) -> None:
        self._add("event", value, ev)

    def model(self, value: float, state: dict) -> None:  # model.pt's bytes: the relay never imports torch
        buf = io.BytesIO()
        torch.save({k: t.detach().cpu() for k, t in state.items()}, buf)
        self._add("model", value, buf.getvalue())

    def finish(self, value: float, summary: dict) -> None:
        self._add("finish", value, summary)

    def flush(self) -> None:
        self._reply = self.relay.put.remote(self.tag, self._buf)  # (Ray keeps one caller's calls in order)
        self.sent += bool(self._buf)
        self._buf, self._at = [], time.monotonic()

    def tail(self, finals: dict, status: str, reason: str | None) -> dict:
        self._add("done", None, {"finals": finals, "status": status, "reason": reason})
        return {"attempt": self.attempt, "sent": self.sent, "records": self._buf}

    def _obey(self) -> None:
        if self._reply is None or not ray.wait([self._reply], timeout=0)[0]:
            return
        command, self._reply = ray.get(self._reply), None
        while command["paused"] and not command["stop"]:  # (a paused unit may lend its CPU)
            time.sleep(0.2)
            command = ray.get(self.relay.put.remote(self.tag, []))
        if command["stop"] and self.unit is not None:
            self.unit.request_stop(command["stop"])


def _unit_task(spec: dict, relay, *datasets) -> dict:
    """One unit, in a Ray worker: train it, relay its records, return the last ones. `datasets`
    are the driver's (`spec["data_keys"]` says for which config each is): no shared filesystem."""
    sink = RelaySink(relay, spec["index"], uuid.uuid4().hex[:12], spec["paused"])
    torch.set_num_threads(spec["threads"])
    gpu = bool(ray.get_gpu_ids()) and spec["device"] != "cpu" and torch.cuda.is_available()
    device = pick_device("cuda" if gpu else "cpu")
    sink.hello({"pid": os.getpid(), "host": socket.gethostname(), "device": device_name(device),
                "torch_version": torch.__version__, "torch_threads": torch.get_num_threads()})
    given = dict(zip(spec["data_keys"], datasets))

    def load_fn(cfg):
        key = data_key(cfg)
        return given[key] if key in given else load(cfg)

    unit = sink.unit = Unit(spec["cfg"], spec["param"], spec["values"], spec["configs"], device, spec["together"],
                            max_waste_for(spec["cfg"].model.kind, device.type), spec["observe"])
    # (the unit's first config's data: a grid line's second setting may be about the data)
    finals, status, reason = unit.run(load_fn(spec["configs"][0]), sink, label=spec["label"], load_fn=load_fn)
    return sink.tail(finals, status, reason)


# =============================================================================================
# the driver's side


def plan_units(sweep: Sweep, in_dim: int, num_classes: int,
               image_shape: tuple[int, int, int] | None = None) -> tuple[list[list], float]:
    """The units (lists of the sweep's points) and the padded fraction of their arithmetic: a
    grouped line's buckets as `sweep.max_waste` cuts them (the CPU's 0.25 for a sweep planned
    here), each value with all its seeds; one point per unit otherwise. A grid's lines are cut
    apart (each line's buckets, or its points one by one)."""
    K, plan, real, done = sweep.cfg.run.seeds, [], 0.0, 0.0
    for (_, points, configs), together in zip(sweep.lines, sweep.line_together):
        if not together:
            plan += [[p] for p in points]
            continue
        depth = configs[0].model.depth
        cost = width_cost(configs[0].model.kind, in_dim, depth, num_classes, image_shape)
        widths = [c.model.width for c in configs for _ in range(K)]
        buckets = plan_buckets(widths, in_dim, depth, num_classes, sweep.max_waste, cost=cost)
        units: dict[int, list] = {}
        for i, p in enumerate(points):  # a value goes with its first seed's bucket
            units.setdefault(next(b for b, (a, z) in enumerate(buckets) if a <= i * K < z), []).append(p)
        plan += list(units.values())
        real += sum(cost(w) for w in widths)
        done += sum((z - a) * cost(max(widths[a:z])) for a, z in buckets)
    return plan, (done / max(real, 1) if real else 1.0)


class _UnitState:
    def __init__(self, index: int, values: list[float]):
        self.index, self.values = index, values
        self.attempt: str | None = None
        self.attempts = 0
        self.lost: set[str] = set()
        self.facts: dict = {}
        self.epoch = 0
        self.last: dict[float, dict] = {}
        self.n_params: dict[float, Any] = {}
        self.finished: dict[float, dict] = {}
        self.result: dict | None = None
        self.error: str | None = None
        self.received: dict[str, int] = {}  # batches written, by attempt
        self.tail: dict | None = None       # the task's return value: its last records
        self.tail_at = 0.0
        self.ended = False


class RaySweep:
    """A `Sweep` run as Ray tasks (see the module's docstring)."""

    def __init__(self, sweep: Sweep, options: RayOptions, on_warning: Callable[[str], Any] | None = None):
        self.sweep, self.options, self.on_warning = sweep, options, on_warning
        self.address = options.address
        self.owned = False            # this process started (`local`) or joined the cluster: close() leaves it
        self.gpus = 0.0
        self.connect_seconds = 0.0
        self.stop_reason: str | None = None
        self.lost: str | None = None  # why the driver lost the relay or the cluster mid-sweep

    # ------------------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Join the cluster (or start the private instance); raises ClusterError with the
        address in the message within PROBE_S + CONNECT_S seconds."""
        t0 = time.perf_counter()
        if not ray.is_initialized():  # (a process that is a Ray driver already uses its cluster)
            address = self._resolve()
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
            if address == "local":
                kw["object_store_memory"] = 512 * 1024 * 1024  # records and weights: small
            box: dict[str, Any] = {}

            def init() -> None:  # in a thread: ray.init can wait minutes on an address that answers oddly
                try:
                    ray.init(address=address, **kw)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    box["error"] = exc

            if address == "local":  # in this thread: Ray's processes die with the thread that started them
                main = threading.current_thread() is threading.main_thread()
                saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
                init()
                for sig, handler in saved.items():  # ray.init sets its own SIGTERM handler: keep the caller's
                    signal.signal(sig, handler)
            else:
                thread = threading.Thread(target=init, name="gengap-ray-connect", daemon=True)
                thread.start()
                thread.join(CONNECT_S)
            if "error" not in box and not ray.is_initialized():
                raise ClusterError(f"no Ray cluster answered at {self.address} within {CONNECT_S:.0f} s "
                                   "(is it a Ray head node's GCS port, 6379 by default?)")
            if "error" in box:
                exc = box["error"]
                raise ClusterError(f"cannot connect to the Ray cluster at {self.address}: "
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            self.owned = True
        self.connect_seconds = time.perf_counter() - t0
        self._check_resources()

    def _resolve(self) -> str:
        """`local`, or the HOST:PORT to join, checked to answer (a TCP connection) first."""
        if self.address == "local":
            return "local"
        address = self.address
        if address == "auto":
            address = os.environ.get("RAY_ADDRESS") or ""
            if not address:
                try:  # the cluster `ray start` left a note of on this machine (Ray's own lookup)
                    from ray._private.services import canonicalize_bootstrap_address

                    address = canonicalize_bootstrap_address("auto") or ""
                except Exception as exc:  # noqa: BLE001 - none running, or Ray moved its helper
                    raise ClusterError(f"--ray auto: no running Ray cluster found on this machine ({exc}); "
                                       "start one (`ray start --head`), set RAY_ADDRESS, or give --ray local") from None
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=PROBE_S).close()
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Ray cluster at {address}"
                               f"{'' if address == self.address else f' (--ray {self.address})'}: {exc}; start it "
                               "with `ray start --head` there, or give --ray local") from None
        return address

    def _check_resources(self) -> None:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        most_cpus = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
        most_gpus = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
        device = self.sweep.cfg.device
        gpus = self.options.gpus_per_task
        if gpus is None:
            gpus = 1.0 if device != "cpu" and most_gpus >= 1 else 0.0
        where = ("the private Ray instance (--ray local)" if self.address == "local"
                 else f"the Ray cluster at {self.address}")
        if device.startswith("cuda:"):
            raise ClusterError(f"device = {device!r} names one GPU, but the units of a sweep on Ray get theirs from "
                               "Ray (one unit per GPU, or --gpus-per-task F): give --device auto or cuda "
                               "(CUDA_VISIBLE_DEVICES=N before the command limits a local Ray to GPU N)")
        if device == "cuda" and gpus == 0:
            raise ClusterError(f"device = 'cuda', but {where} has no GPU for the units (it has {most_gpus:g} on its "
                               "largest node; --gpus-per-task must be above 0)")
        if device == "cpu" and gpus > 0:
            raise ClusterError(f"--gpus-per-task {gpus:g} with device = 'cpu': the units would hold GPUs they "
                               "do not use (give --device auto or cuda, or --gpus-per-task 0)")
        if gpus > most_gpus:
            raise ClusterError(f"--gpus-per-task {gpus:g}: no node of {where} has that many GPUs "
                               f"(the most on one node: {most_gpus:g})")
        if self.options.cpus_per_task > most_cpus:
            raise ClusterError(f"--cpus-per-task {self.options.cpus_per_task}: no node of {where} has that many "
                               f"CPUs (the most on one node: {most_cpus:g})")
        self.gpus = gpus

    def close(self) -> None:
        """Leave the cluster; a private `local` instance is stopped with its processes."""
        if self.owned and ray.is_initialized():
            ray.shutdown()
        self.owned = False

    def request_stop(self, reason: str | None = None) -> None:
        """Cancel the sweep (flags only: safe from a signal handler; the driver's loop acts)."""
        if self.stop_reason is None:
            self.stop_reason = reason or USER_STOP

    # ------------------------------------------------------------------------------ the sweep
    def run(self, out_dir: Path, on_progress: Callable[[dict], Any] | None = None, extra: dict | None = None,
            paused: Callable[[], bool] | None = None) -> dict[str, Any]:
        sweep, opts = self.sweep, self.options
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        relay = ray.remote(num_cpus=0)(Relay).remote()  # its worker starts while the data loads
        data = load(sweep.cfg)
        plan, padded = plan_units(sweep, data.input_dim, data.num_classes, data.image_shape)
        threads = sweep.cfg.run.threads or opts.cpus_per_task
        extra = {**(extra or {}), "torch_threads": threads}
        per_unit = f"{self.gpus:g} GPU" if self.gpus else f"CPU, {threads} thread{'s' * (threads > 1)}"
        device = f"Ray ({self.address}): {per_unit} per unit"
        meta = {**sweep.meta(extra), "device": device, "executor": "ray",
                "ray": {"address": self.address, "gpus_per_task": self.gpus, "cpus_per_task": opts.cpus_per_task},
                "units": plan}
        if sweep.together:
            meta.update(buckets=len(plan), padded_fraction=padded, members=len(sweep.points) * sweep.cfg.run.seeds)
        sink = FileSink(out_dir, sweep.param, sweep.points, sweep.configs, meta, extra, on_progress, sweep.param2)
        sink.write_meta()
        self._sink, self._extra = sink, extra
        self._configs = dict(zip(sweep.points, sweep.configs))
        self.units = [_UnitState(i, vs) for i, vs in enumerate(plan)]
        try:
            ray.get(relay.steer.remote(paused=bool(paused and paused())))  # the relay is up before any unit sends
            refs = self._submit(relay, data, plan, threads, str(out_dir), bool(paused and paused()))
            try:
                self._drive(relay, refs, paused)
            except ray.exceptions.RayError as exc:  # the relay (or the cluster) is gone: keep what came
                self.lost = f"the sweep lost its Ray cluster: {type(exc).__name__}: {str(exc).strip()[:300]}"
                for ref in refs:
                    ray.cancel(ref, force=True)
                for u in self.units:
                    u.error = u.error or (self.lost if u.result is None else None)
            finals = self._finals()
        finally:
            sink.close()
            try:
                ray.kill(relay)
            except Exception:  # noqa: BLE001 - the cluster may be gone already
                pass
        return self._conclude(out_dir, finals, time.perf_counter() - t0, device)

    def _submit(self, relay, data, plan: list[list], threads: int, label: str, paused: bool) -> dict:
        """One task per unit, with the datasets it needs (loaded here, each put in Ray's object
        store once: the workers need no filesystem of ours)."""
        sweep, K = self.sweep, self.sweep.cfg.run.seeds
        refs_by_key = {data_key(sweep.cfg): ray.put(data)}
        per_value = any(p.split(".")[0] in DATA_SECTIONS for p in (sweep.param, sweep.param2 or ""))
        needs: dict[int, list[str]] = {}
        for i, values in enumerate(plan):
            keys = [data_key(sweep.cfg)]
            for v in values if per_value else values[:1]:  # every seed's data (the unit's first config's
                c = self._configs[v]                       # when the swept setting is not about data)
                for k in range(K):
                    ck = c.model_copy(update={"seed": c.seed + k})
                    key = data_key(ck)
                    if key not in refs_by_key:
                        refs_by_key[key] = ray.put(load(ck))
                    keys.append(key)
            needs[i] = list(dict.fromkeys(keys))
        # (with GPUs, Ray gives each task a fresh worker, max_calls=1: a reused one would keep the
        # CUDA device it initialised first, whatever GPU the next task is given)
        task = ray.remote(num_cpus=self.options.cpus_per_task, num_gpus=self.gpus, max_retries=self.options.retries,
                          name="gengap-sweep-unit")(_unit_task)
        refs = {}
        for i, values in enumerate(plan):
            spec = {"index": i, "cfg": sweep.cfg, "param": sweep.param, "values": values,
                    "configs": [self._configs[v] for v in values], "together": sweep.together_of(values[0]),
                    "observe": sweep.observe, "threads": threads, "device": sweep.cfg.device, "label": label,
                    "data_keys": needs[i], "paused": paused}
            refs[task.remote(spec, relay, *(refs_by_key[k] for k in needs[i]))] = i
        return refs

    def _drive(self, relay, refs: dict, paused: Callable[[], bool] | None) -> None:
        """Drain the relay and collect the tasks until every unit has ended. After a stop: the
        units not started are cancelled (`ray.cancel`) at once, the running ones are told through
        the relay (they end within an epoch), cancelled after STOP_S, and given up after GRACE_S."""
        was_paused, stopped_at, interrupted = bool(paused and paused()), None, False
        try:
            while refs or any(u.tail for u in self.units):
                now = time.monotonic()
                if self.stop_reason is not None and stopped_at is None:
                    stopped_at = now
                    ray.get(relay.steer.remote(stop=self.stop_reason))
                    for ref, i in refs.items():
                        if self.units[i].attempt is None:
                            ray.cancel(ref)
                if stopped_at is not None and not interrupted and now - stopped_at > STOP_S:
                    interrupted = True
                    for ref in refs:
                        ray.cancel(ref)
                if stopped_at is not None and now - stopped_at > GRACE_S:
                    break
                now_paused = bool(paused and paused())
                if now_paused != was_paused:
                    relay.steer.remote(paused=now_paused)
                    was_paused = now_paused
                ready = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_S)[0] if refs else []
                if not refs:
                    time.sleep(POLL_S / 4)
                for ref in ready:
                    self._collect(self.units[refs.pop(ref)], ref)
                self._dispatch(ray.get(relay.take.remote()))
                self._settle()
        except KeyboardInterrupt:  # a second Ctrl+C: no more waiting
            self.request_stop(f"{USER_STOP} (Ctrl+C)")
        for ref in refs:  # still running after the grace period, or interrupted
            ray.cancel(ref, force=True)
        try:
            self._dispatch(ray.get(relay.take.remote(), timeout=GRACE_S))
        except Exception:  # noqa: BLE001 - what came is written; the rest is synthesized
            pass
        self._settle(force=True)

    def _collect(self, u: _UnitState, ref) -> None:
        try:
            u.tail = ray.get(ref)
            u.tail_at = time.monotonic()
        except ray.exceptions.TaskCancelledError:
            u.ended = True
        except ray.exceptions.RayError as exc:  # its worker died too often, or the task raised
            u.ended = True
            text = str(exc).strip().splitlines()
            cause = next((ln for ln in reversed(text) if ln.strip()), type(exc).__name__)
            if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
                cause = f"its Ray worker died {self.options.retries + 1} time(s) ({type(exc).__name__})"
            u.error = f"unit {u.index + 1} of {len(self.units)} failed on Ray: {cause}"

    def _settle(self, force: bool = False) -> None:
        """A finished unit's last records, once every batch it sent before them is written (or
        GRACE_S after it returned)."""
        for u in self.units:
            t = u.tail
            if t and (force or u.received.get(t["attempt"], 0) >= t["sent"] or time.monotonic() - u.tail_at > GRACE_S):
                self._dispatch([((u.index, t["attempt"]), t["records"])], counted=False)
                u.tail, u.ended = None, True

    # ------------------------------------------------------------------------------ records
    def _dispatch(self, records: list, counted: bool = True) -> None:
        for (index, attempt), batch in records:
            u = self.units[index]
            if attempt in u.lost or (u.ended and attempt != u.attempt):
                continue
            if attempt != u.attempt:
                if u.attempt is not None:
                    self._retried(u)
                    u.lost.add(u.attempt)
                u.attempt, u.attempts = attempt, u.attempts + 1
            u.received[attempt] = u.received.get(attempt, 0) + counted
            for kind, value, payload in batch:
                self._apply(u, kind, value, payload)

    def _apply(self, u: _UnitState, kind: str, value: float | None, payload: Any) -> None:
        sink = self._sink
        if kind == "hello":
            u.facts = payload
            for v in u.values:
                facts = {"torch_version": payload["torch_version"], "torch_threads": payload["torch_threads"],
                         "device_name": payload["device"], "ray_host": payload["host"]}
                runs.write_json_atomic(sink.value_dir(v) / "config.json",
                                       {**self._configs[v].dump(), **self._extra, **facts})
                sink.event(v, {"event": "ray_task", "time": time.time(), "epoch": 0, "unit": u.index,
                               "attempt": u.attempts, "pid": payload["pid"], "host": payload["host"],
                               "device": payload["device"]})
        elif kind == "progress":
            u.epoch = max(u.epoch, int(payload.get("epoch") or 0))
            values, values2 = payload.get("values") or [], payload.get("values2")
            points = list(zip(values, values2)) if values2 else values  # a grid's points: (value, value2)
            u.n_params.update(zip(points, payload.get("n_params") or []))
            sink.progress(payload)
        elif kind == "metrics":
            u.last[value] = payload
            sink.metrics(value, payload)
        elif kind == "event":
            sink.event(value, payload)
        elif kind == "model":
            runs.replace_atomic(sink.value_dir(value) / "model.pt", lambda tmp: Path(tmp).write_bytes(payload))
        elif kind == "finish":
            payload = self._reasoned(payload)
            u.finished[value] = payload
            sink.finish(value, payload)
        elif kind == "done":
            u.result = payload

    def _reasoned(self, summary: dict) -> dict:
        """A cancelled value's reason names who stopped the sweep. A unit told through the relay
        already says so (`stop_reason during epoch N`: left as it is); one that only saw Ray's
        cancel says `USER_STOP ...`, whose prefix becomes the stop's reason."""
        reason = summary.get("reason") or ""
        stop = self.stop_reason
        if (summary.get("status") == "cancelled" and stop and not reason.startswith(stop)
                and reason.startswith(USER_STOP)):
            summary = {**summary, "reason": stop + reason[len(USER_STOP):]}
        return summary

    def _retried(self, u: _UnitState) -> None:
        """A new attempt of a unit that had one: its worker died; Ray trains it again from the start."""
        f = u.facts
        reason = (f"the Ray worker training this unit died (pid {f.get('pid')} on {f.get('host')}) after epoch "
                  f"{u.epoch}; Ray retried the unit from its start "
                  f"(attempt {u.attempts + 1} of {self.options.retries + 1})")
        for v in u.values:
            self._sink.restart(v)
            self._sink.event(v, {"event": "retried", "time": time.time(), "epoch": 0, "unit": u.index,
                                 "attempt": u.attempts + 1, "lost_epoch": u.epoch, "reason": reason})
        u.epoch, u.last, u.finished, u.facts, u.result = 0, {}, {}, {}, None
        if self.on_warning is not None:
            self.on_warning(f"unit {u.index + 1} ({self.sweep.param} {', '.join(map(point_label, u.values))}): "
                            f"{reason}")

    # ------------------------------------------------------------------------------ the end
    def _finals(self) -> dict[float, dict]:
        """Each value's final numbers: its unit's, or for a unit that ended without them (failed
        for good, or cancelled before it could send them) its summary.json is written here from
        the epochs that came, with the closing event. A value that never started has none."""
        finals: dict[float, dict] = {}
        for u in self.units:
            if u.result is not None:
                finals.update({v: self._reasoned(s) for v, s in u.result["finals"].items()})
                continue
            for v in u.values:
                if v in u.finished:
                    finals[v] = u.finished[v]
                elif u.error or u.attempt is not None:
                    finals[v] = self._close_value(u, v)
        return finals

    def _close_value(self, u: _UnitState, v: float) -> dict:
        status = "failed" if u.error and self.stop_reason is None else "cancelled"
        r = u.last.get(v) or {}
        reason = u.error if status == "failed" else cancel_reason(self.stop_reason, r.get("epoch", 0))
        s = {"status": status, "epochs_run": r.get("epoch", 0), "n_params": u.n_params.get(v), "reason": reason,
             "device": u.facts.get("device"), "stop_epoch": None, "best_epoch": None, "restored_best": False,
             **{k: r[k] for k in ROW_KEYS if k in r}}
        if r:
            s.update(final_train_err=r.get("train_err"), final_val_err=r.get("val_err"))
        self._sink.event(v, {"event": status, "time": time.time(), "epoch": s["epochs_run"], "error": reason})
        self._sink.finish(v, s)
        return s

    def _conclude(self, out_dir: Path, finals: dict[float, dict], wall: float, device: str) -> dict[str, Any]:
        failed = [u for u in self.units if u.error or (u.result and u.result["status"] == "failed")]
        retries = sum(max(0, u.attempts - 1) for u in self.units)
        if self.stop_reason is not None:
            done = sum(1 for u in self.units if u.result and u.result["status"] == "completed")
            status, reason = "cancelled", f"{self.stop_reason}: {done} of {len(self.units)} units had finished"
        elif self.lost:
            status, reason = "failed", self.lost
        elif failed:
            u = failed[0]
            status, reason = "failed", u.error or f"unit {u.index + 1} of {len(self.units)}: {u.result['reason']}"
        else:
            status, reason = "completed", None
        return self.sweep.conclude(out_dir, finals, status, reason, wall, device=device, executor="ray",
                                   ray_address=self.address, units=len(self.units), retries=retries,
                                   ray_connect_seconds=self.connect_seconds)
