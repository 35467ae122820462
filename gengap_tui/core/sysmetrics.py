"""System metrics of a run, per epoch (docs/ARCHITECTURE.md, "System metrics and GPUs"): the GPU
through NVML (nvidia-ml-py), the training process's memory through psutil.

    s = Sampler(device)
    start = s.begin(warnings)  # {"gpu": facts} for `started` and the summary; a warning if the GPU is shared
    row.update(s.epoch())      # every metrics.jsonl row: the fields below, for the epoch since the last call
    summary.update(s.end())    # gpu_mem_peak_mb; the sampling thread stops

A light thread samples every `INTERVAL` s while the run trains (the process's RSS; the GPU where
NVML reads it), so that a row's numbers are the epoch's, not one reading at its end, and the
epoch itself pays only for `epoch()`: a few microseconds (os.times, a lock, the samples averaged;
psutil's cpu_percent and memory_info read /proc, ~0.1-0.4 ms each here, which would be 10% of a
5 ms GPU epoch). Row fields (`SYS_KEYS`): `cpu_percent` (the training process over the epoch, all
its threads, as top counts it: 100 = one core; from os.times, the counters psutil reads) and
`rss_mb` (the epoch's highest sample) everywhere; on a GPU that NVML reads, `gpu_util` (%) and
`gpu_power_w`, means of the epoch's samples (an epoch shorter than `INTERVAL` takes the latest
sample: NVML's reading is already an average over its last sampling period), `gpu_mem_used_mb`
(the device, all processes), `gpu_mem_run_mb` (this process as NVML lists it; torch's reserved
memory where NVML does not list it, e.g. in a container's PID namespace) and `gpu_temp_c`, the
epoch's highest; and on any CUDA device `gpu_mem_peak_mb`, torch's peak allocation since the run
began. No NVML (no driver, no package): the CPU fields only, never an error.
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

INTERVAL = 0.25  # seconds between the thread's samples
MEANS, HIGHEST = ("gpu_util", "gpu_power_w"), ("rss_mb", "gpu_mem_used_mb", "gpu_mem_run_mb", "gpu_temp_c")

try:  # a core dependency; without it (a bare environment) RSS comes from /proc
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Sampler:
    """The system fields of a run's epochs (module doc). `handle`: the GPU's NVML handle (found
    from `device` unless given: tests give a fake module's)."""

    def __init__(self, device: torch.device, handle: Any = None, interval: float = INTERVAL) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.handle = handle if handle is not None else devices.nvml_handle(device)
        self.interval = interval
        self.proc = psutil.Process() if psutil is not None else None
        self.samples: list[dict] = []
        self.latest: dict | None = None
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.facts: dict | None = None
        self.cpu_mark = (_cpu_seconds(), time.perf_counter())
        self.sample_seconds = 0.0  # the thread's own CPU time spent sampling (bench/sysmetrics.py)

    # ---------------------------------------------------------------------------------------
    def begin(self, warnings: list[str] | None = None) -> dict:
        """At the start of a run: the GPU's facts (`{"gpu": {...}}`, {} without one), a warning
        appended to `warnings` when other processes hold a share of it, the thread started."""
        out: dict[str, Any] = {}
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self.facts = gpu_facts(self.device, self.handle)
        elif self.handle is not None:  # (a fake NVML in tests)
            self.facts = gpus.gpu_facts(self.handle)
        if self.handle is not None and warnings is not None and (text := self.shared_warning()):
            warnings.append(text)
        if self.facts is not None:
            out["gpu"] = self.facts
        self.latest = self._sample()
        self.cpu_mark = (_cpu_seconds(), time.perf_counter())
        self.thread = threading.Thread(target=self._loop, name="gengap-sysmetrics", daemon=True)
        self.thread.start()
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
        cpu, now = _cpu_seconds(), time.perf_counter()
        row: dict[str, Any] = {}
        if now > self.cpu_mark[1]:
            row["cpu_percent"] = round(100 * (cpu - self.cpu_mark[0]) / (now - self.cpu_mark[1]), 1)
        self.cpu_mark = (cpu, now)
        with self.lock:
            got, self.samples = self.samples, []
            latest = self.latest
        got = got or ([latest] if latest else [])
        for key in MEANS + HIGHEST:
            vals = [v for s in got if (v := s.get(key)) is not None]
            if vals:
                row[key] = round(sum(vals) / len(vals) if key in MEANS else max(vals), 1)
        if self.cuda:
            row["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated(self.device) / gpus.MB, 1)
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
        s: dict[str, float | None] = {"rss_mb": self._rss_mb()}
        if self.handle is None:
            return s
        n, h = gpus.nvml(), self.handle
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

    def _rss_mb(self) -> float | None:
        try:
            if self.proc is not None:
                return self.proc.memory_info().rss / gpus.MB
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / gpus.MB
        except (OSError, ValueError, IndexError):
            return None
        except Exception:  # noqa: BLE001 - psutil's own errors: no RSS, never a failed run
            return None

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
