"""What the system metrics (`core/sysmetrics.py`) cost a run: at most 1% of a default epoch.

Measured three ways, in one process:
1. A/B inside one run, as bench/norms_cost.py does: epochs alternate between the real sampler and
   one that measures nothing, and the medians of the two kinds of epoch are compared (the ratio).
2. The sampler's own per-epoch work, `Sampler.epoch()` (psutil's cpu_percent and RSS; on CUDA
   torch's peak memory; the thread's samples averaged), timed alone over many calls, as a share
   of the median default epoch.
3. The sampling thread's own CPU time (`time.thread_time` inside it) per second of the run, as a
   share of the run's wall time. With NVML (a GPU and nvidia-ml-py) the real module; without
   (this CPU box) a stand-in with NVML's calls answering at once, which measures the thread's
   wake-ups and bookkeeping only — bench/gpu.sh runs this on a real GPU.

    python bench/sysmetrics.py [--preset default] [--epochs 40] [--device cpu|cuda|auto] [--set k=v]...

Prints the numbers and `OK` or `OVER` against the 1% target (the A/B ratio is reported; on a busy
shared box its noise is larger than 1%, so the target is checked on 2 and 3, which do not drift).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cost_common  # noqa: E402

from gengap_tui import gpus, presets  # noqa: E402
from gengap_tui.core import sysmetrics  # noqa: E402
from gengap_tui.core.factory import make_trainer  # noqa: E402

TARGET = 0.01


class _Null:
    """A sampler that measures nothing (the B of the A/B)."""

    def begin(self, warnings=None) -> dict:
        return {}

    def epoch(self) -> dict:
        return {}

    def end(self) -> dict:
        return {}


def _standin_nvml() -> types.ModuleType:
    """NVML's calls answering at once (no GPU here): the thread's own cost, not the driver's."""
    m = types.ModuleType("pynvml")
    ns = types.SimpleNamespace
    m.NVML_TEMPERATURE_GPU = 0
    m.nvmlInit = lambda: None
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: object()
    m.nvmlDeviceGetIndex = lambda h: 0
    m.nvmlDeviceGetName = lambda h: "stand-in"
    m.nvmlDeviceGetUUID = lambda h: "GPU-0"
    m.nvmlSystemGetDriverVersion = lambda: "0"
    m.nvmlDeviceGetMemoryInfo = lambda h: ns(total=80 << 30, used=10 << 30, free=70 << 30)
    m.nvmlDeviceGetUtilizationRates = lambda h: ns(gpu=50, memory=10)
    m.nvmlDeviceGetPowerUsage = lambda h: 300_000
    m.nvmlDeviceGetTemperature = lambda h, s: 60
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [ns(pid=os.getpid(), usedGpuMemory=1 << 30)]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    return m


def main() -> None:
    args = cost_common.parse(__doc__, "default", 40)
    cfg = cost_common.config(args)
    import torch

    real_nvml = gpus.nvml() is not None
    if not real_nvml:  # the thread runs on a stand-in (no GPU / no NVML here)
        sys.modules["pynvml"] = _standin_nvml()
        gpus.reset()
    tr = make_trainer(cfg)
    handle = sysmetrics.devices.nvml_handle(tr.device) if real_nvml else gpus.nvml().nvmlDeviceGetHandleByIndex(0)
    real = sysmetrics.Sampler(tr.device, handle=handle)
    null = _Null()

    # 1. A/B within one run: odd epochs measured by the real sampler, even ones by the null one
    with_sys: list[float] = []
    without: list[float] = []
    t_run = time.perf_counter()

    def on_epoch(row: dict) -> None:
        e = row["epoch"]
        if e > 2:
            (with_sys if e % 2 else without).append(row["epoch_seconds"])
        tr._sys = real if (e + 1) % 2 else null  # the next epoch's sampler

    orig_start = tr._start

    def start(emit):
        summary = orig_start(emit)
        tr._sys.end()  # the run's own sampler: replaced by the two below
        real.begin()  # the thread runs for the whole run, as in a real one
        tr._sys = real
        return summary

    tr._start = start
    tr.run(on_epoch=on_epoch)
    wall = time.perf_counter() - t_run
    real.end()
    a, b = statistics.median(with_sys), statistics.median(without)

    # 2. Sampler.epoch() alone
    s = sysmetrics.Sampler(tr.device, handle=handle, interval=3600)
    s.begin()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        s.epoch()
    per_call = (time.perf_counter() - t0) / n
    s.end()

    # 3. the thread's own CPU time per second of the run
    thread_share = real.sample_seconds / wall

    print(f"{cfg.name} on {tr.device}, {torch.get_num_threads()} thread(s), {len(with_sys)}+{len(without)} epochs, "
          f"NVML: {'nvidia-ml-py' if real_nvml else 'a stand-in answering at once (no GPU here)'}")
    print(f"epoch with the sampler:    {a * 1e3:8.2f} ms (median)")
    print(f"epoch without:             {b * 1e3:8.2f} ms (median)")
    print(f"A/B ratio with / without:  {a / b:8.4f}  (noise on a shared box: see bench/README.md)")
    print(f"Sampler.epoch():           {per_call * 1e6:8.1f} us per epoch = {100 * per_call / b:.3f} % of an epoch")
    print(f"sampling thread:           {real.sample_seconds * 1e3:8.2f} ms CPU in {wall:.1f} s "
          f"(a sample every {real.interval} s) = {100 * thread_share:.3f} %")
    cost = per_call / b + thread_share
    print(f"sampling cost:             {100 * cost:8.3f} % of a default epoch (target <= {100 * TARGET:.0f} %): "
          f"{'OK' if cost <= TARGET else 'OVER'}")


if __name__ == "__main__":
    main()
