"""The lab's system line and `system` view, as pure functions of the run on screen: what the
training process measured (its `started` event's `gpu`, each row's `SYS_KEYS`), never NVML read
here (docs/ARCHITECTURE.md, "System metrics and GPUs"). No Textual.

    GPU0 H100 80GB HBM3 87% · 12.3 / 80 GB (this run 9.1) · 412 W · 64°C · CPU 100% · RSS 1.2 GB
"""

from __future__ import annotations

from ..protocol import SYS_KEYS
from .plots import Plot, fit_title
from .series import thin
from .state import RunState, SweepState

SYSTEM_VIEW = "system"
SYSTEM_LINES = (("gpu_util", "GPU util %", "green+"), ("gpu_mem_used_pct", "GPU memory % (device)", "blue+"),
                ("gpu_mem_run_pct", "GPU memory % (this run)", "cyan"), ("cpu_percent", "CPU % (100 = 1 core)", "yellow"))


def gpu_of(run: RunState) -> dict | None:
    """The run's GPU (name, index, driver, memory_mb, chosen) from its `started` event."""
    gpu = next((e.get("gpu") for e in run.events if e.get("event") == "started"), None)
    return gpu if isinstance(gpu, dict) else None


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f}"


def short_name(name: str) -> str:
    return name.removeprefix("NVIDIA ").strip() or name


def system_line(run: RunState) -> str:
    """nvitop's line for the run on screen (`GPU0 H100 87% · 12.3 / 80 GB (this run 9.1) · 412 W ·
    64°C · CPU 100% · RSS 1.2 GB`); "" when the run measured nothing (an old recording, no run)."""
    row = next((r for r in reversed(run.series.rows) if any(k in r for k in SYS_KEYS)), None)
    shared = any(e.get("event") == "warning" and e.get("about") == "shared_gpu" for e in run.events)
    return line_of(gpu_of(run), row, shared)


def sweep_system_line(sweep: SweepState) -> str:
    """The same for a local sweep on screen (its last progress line; the GPU from sweep.json); ""
    for a sweep on Ray, whose units run on many GPUs and machines."""
    meta = sweep.meta or {}
    if meta.get("executor") == "ray" or not sweep.system:
        return ""
    gpu = meta.get("gpu") if isinstance(meta.get("gpu"), dict) else None
    return line_of(gpu, sweep.system, False)


def line_of(gpu: dict | None, row: dict | None, shared: bool) -> str:
    if gpu is None and row is None:
        return ""
    row = row or {}
    parts = []
    if gpu is not None:
        head = f"GPU{gpu.get('index', '?')} {short_name(str(gpu.get('name') or ''))}".rstrip()
        util = _num(row.get("gpu_util"))
        parts.append(f"[b]{head}[/]" + (f" {util:.0f}%" if util is not None else "")
                     + (" [b yellow](shared)[/]" if shared else ""))
        used, total = _num(row.get("gpu_mem_used_mb")), _num(gpu.get("memory_mb"))
        run_mb, peak = _num(row.get("gpu_mem_run_mb")), _num(row.get("gpu_mem_peak_mb"))
        if used is not None:
            mem = f"{_gb(used)} / {total / 1024:.0f} GB" if total else f"{_gb(used)} GB"
            parts.append(mem + (f" (this run {_gb(run_mb)})" if run_mb is not None else ""))
        elif peak is not None:  # no NVML in the training process: torch's own count only
            parts.append(f"torch peak {_gb(peak)} GB" + (f" of {total / 1024:.0f}" if total else ""))
        if (w := _num(row.get("gpu_power_w"))) is not None:
            parts.append(f"{w:.0f} W")
        if (t := _num(row.get("gpu_temp_c"))) is not None:
            parts.append(f"{t:.0f}°C")
        if row and used is None and util is None:
            parts.append("[dim]no NVML: pip install 'gengap-tui\\[gpu]'[/]")
    if (c := _num(row.get("cpu_percent"))) is not None:
        parts.append(f"CPU {c:.0f}%")
    if (rss := _num(row.get("rss_mb"))) is not None:
        parts.append(f"RSS {_gb(rss)} GB")
    if not row:
        parts.append("[dim]measured at the end of each epoch[/]")
    return " · ".join(parts)


def system_plot(run: RunState, width: int) -> Plot:
    """The `system` view: GPU utilization, the GPU's memory (the device's and this run's, as % of
    the GPU) and the training process's CPU, per epoch."""
    series, gpu = run.series, gpu_of(run)
    total = _num((gpu or {}).get("memory_mb"))
    max_points = max(16, 2 * max(width, 40))
    plot = Plot("system", "epoch", ylabel="%")
    for key, label, color in SYSTEM_LINES:
        if key.endswith("_pct"):
            xs, ys = series.get(key.replace("_pct", "_mb"))
            ys = [100 * y / total for y in ys] if total else []
            xs = xs if ys else []
        else:
            xs, ys = series.get(key)
        if xs:
            xs, ys = thin(xs, ys, max_points)
            plot.lines.append((xs, ys, label, color))
    title = ["system"]
    if gpu is not None:
        title.append(f"GPU{gpu.get('index', '?')} {short_name(str(gpu.get('name') or ''))}"
                     + (f", {total / 1024:.0f} GB" if total else ""))
    last = series.last or {}
    if (peak := _num(last.get("gpu_mem_peak_mb"))) is not None:
        title.append(f"torch peak {_gb(peak)} GB")
    if (rss := _num(last.get("rss_mb"))) is not None:
        title.append(f"RSS {_gb(rss)} GB")
    if not plot.lines:
        title.append("nothing measured (a run recorded before system metrics, or no epoch yet)")
    plot.title = fit_title(title, width)
    epochs = [r["epoch"] for r in series.rows if isinstance(r.get("epoch"), int)]
    x_max = max(2, max(epochs)) if epochs else max(2, run.cfg.optim.epochs)
    plot.xlim = (1, x_max)
    plot.xticks = (sorted({1 + round(i * (x_max - 1) / 4) for i in range(5)}),)
    plot.ylim = (0, max([100.0] + [y for _, ys, _, _ in plot.lines for y in ys]))
    return plot
