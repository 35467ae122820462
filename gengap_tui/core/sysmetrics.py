"""System metrics of a run, per epoch (docs/ARCHITECTURE.md, "System metrics and GPUs"): the GPU
through NVML (nvidia-ml-py), the training process through psutil.

    s = Sampler(device)
    start = s.begin(warnings)  # {"gpu": facts} for `started` and the summary; a warning if the GPU is shared
    row.update(s.epoch())   # every metrics.jsonl row: the fields below, since the last call
    summary.update(s.end()) # gpu_mem_peak_mb; the sampler thread stops

Row fields (`SYS_KEYS`): `cpu_percent` (the training process over the epoch, as top counts it:
100 = one core) and `rss_mb` everywhere; on a GPU that NVML reads, `gpu_util` (%) and
`gpu_power_w`, means of the samples a light thread takes every `INTERVAL` s while the epoch
runs (an epoch shorter than that takes the latest sample: NVML's own reading is already an
average over its last sampling period), `gpu_mem_used_mb` (the device, all processes),
`gpu_mem_run_mb` (this process, as NVML lists it; torch's reserved memory where NVML does not
list it, e.g. in a container's PID namespace) and `gpu_temp_c`, the highest sample of the
epoch; and on any CUDA device `gpu_mem_peak_mb`, torch's peak allocation since the run began.
No NVML (no driver, no package): the CPU fields only, never an error.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import torch

from .. import gpus
from ..protocol import SYS_KEYS  # noqa: F401 - the row fields, named here too
from . import devices

INTERVAL = 0.25  # seconds between the thread's GPU samples

try:  # a core dependency; without it (a bare environment) the CPU fields come from os.times and /proc
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


class _Cpu:
    """cpu_percent and rss_mb of this process, each call since the previous."""

    def __init__(self) -> None:
        self.proc = psutil.Process() if psutil is not None else None
        self.reset()

    def reset(self) -> None:
        if self.proc is not None:
            self.proc.cpu_percent(None)
        t = os.times()
        self.last = (t.user + t.system, time.perf_counter())

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.proc is not None:
            out["cpu_percent"] = round(self.proc.cpu_percent(None), 1)
            out["rss_mb"] = round(self.proc.memory_info().rss / gpus.MB, 1)
            return out
        t, now = os.times(), time.perf_counter()
        cpu = t.user + t.system
        if now > self.last[1]:
            out["cpu_percent"] = round(100 * (cpu - self.last[0]) / (now - self.last[1]), 1)
        self.last = (cpu, now)
        try:
            pages = int(open("/proc/self/statm").read().split()[1])
            out["rss_mb"] = round(pages * os.sysconf("SC_PAGE_SIZE") / gpus.MB, 1)
        except (OSError, ValueError, IndexError):
            pass
        return out


class Sampler:
    """The system fields of a run's epochs (module doc). `handle`: the GPU's NVML handle (found
    from `device` unless given: tests give a fake module's)."""

    def __init__(self, device: torch.device, handle: Any = None, interval: float = INTERVAL) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.handle = handle if handle is not None else devices.nvml_handle(device)
        self.interval = interval
        self.cpu = _Cpu()
        self.samples: list[dict] = []
        self.latest: dict | None = None
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.facts: dict | None = None
        self.sample_seconds = 0.0  # the thread's own time spent sampling (bench/sysmetrics.py)

    # ---------------------------------------------------------------------------------------
    def begin(self, warnings: list[str] | None = None) -> dict:
        """At the start of a run: the GPU's facts (`{"gpu": {...}}`, {} without one), a warning
        appended to `warnings` when other processes hold a share of it, the thread started."""
        self.cpu.reset()
        out: dict[str, Any] = {}
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self.facts = gpu_facts(self.device, self.handle)
        elif self.handle is not None:  # (a fake NVML in tests)
            self.facts = gpus.gpu_facts(self.handle)
        if self.handle is not None:
            if warnings is not None and (text := self.shared_warning()):
                warnings.append(text)
            self.latest = self._sample()
            self.thread = threading.Thread(target=self._loop, name="gengap-sysmetrics", daemon=True)
            self.thread.start()
        if self.facts is not None:
            out["gpu"] = self.facts
        return out

    def shared_warning(self) -> str | None:
        n = gpus.nvml()
        try:
            total = n.nvmlDeviceGetMemoryInfo(self.handle).total / gpus.MB
            util = float(n.nvmlDeviceGetUtilizationRates(self.handle).gpu)
        except Exception:  # noqa: BLE001
            return None
        own = torch.cuda.memory_reserved(self.device) / gpus.MB if self.cuda else 0.0
        count, held = gpus.others_on(self.handle, own_mb=own)
        facts = self.facts or {}
        name = f"GPU {facts.get('index', '?')} ({facts.get('name') or 'GPU'})"
        return gpus.shared_warning(name, count, held, total, util)

    def epoch(self) -> dict[str, float]:
        """The fields of the epoch since the last call (or `begin`)."""
        row: dict[str, Any] = self.cpu.read()
        if self.cuda:
            row["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated(self.device) / gpus.MB, 1)
        if self.thread is not None:
            with self.lock:
                got, self.samples = self.samples, []
                latest = self.latest
            got = got or ([latest] if latest else [])
            for key, how in (("gpu_util", "mean"), ("gpu_power_w", "mean"), ("gpu_mem_used_mb", "max"),
                             ("gpu_mem_run_mb", "max"), ("gpu_temp_c", "max")):
                vals = [s[key] for s in got if s.get(key) is not None]
                if vals:
                    row[key] = round(sum(vals) / len(vals) if how == "mean" else max(vals), 1)
        return row

    def end(self) -> dict:
        """The run's end: the thread stopped; the summary's `gpu_mem_peak_mb`."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=2)
        if self.cuda:
            return {"gpu_mem_peak_mb": round(torch.cuda.max_memory_allocated(self.device) / gpus.MB, 1)}
        return {}

    # ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            t0 = time.thread_time()
            s = self._sample()
            with self.lock:
                self.samples.append(s)
                self.latest = s
            self.sample_seconds += time.thread_time() - t0

    def _sample(self) -> dict:
        n, h = gpus.nvml(), self.handle
        s: dict[str, float | None] = {}
        for key, call in (("gpu_util", lambda: float(n.nvmlDeviceGetUtilizationRates(h).gpu)),
                          ("gpu_mem_used_mb", lambda: n.nvmlDeviceGetMemoryInfo(h).used / gpus.MB),
                          ("gpu_power_w", lambda: n.nvmlDeviceGetPowerUsage(h) / 1000),
                          ("gpu_temp_c", lambda: float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))),
                          ("gpu_mem_run_mb", self._run_mb)):
            try:
                s[key] = call()
            except Exception:  # noqa: BLE001 - a field this GPU does not give (power on some boards)
                s[key] = None
        return s

    def _run_mb(self) -> float | None:
        pid = os.getpid()
        for p, mb in gpus.processes(self.handle):
            if p == pid and mb is not None:
                return mb
        return torch.cuda.memory_reserved(self.device) / gpus.MB if self.cuda else None


def gpu_facts(device: torch.device, handle: Any = None) -> dict | None:
    """The GPU's name, index, driver and memory (config.json, the summary, the lab), with why
    `auto` chose it; None on a CPU."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    facts = {"index": index, "name": torch.cuda.get_device_name(index),
             "memory_mb": round(torch.cuda.get_device_properties(index).total_memory / gpus.MB)}
    h = handle if handle is not None else devices.nvml_handle(device)
    if h is not None:
        facts = {**gpus.gpu_facts(h), **facts}
    if why := devices.note(device):
        facts["chosen"] = why
    return facts
