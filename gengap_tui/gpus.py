"""The machine's NVIDIA GPUs, read with NVML (nvidia-ml-py, the `gpu` extra; what nvitop and
gpustat use), without torch (docs/ARCHITECTURE.md, "System metrics and GPUs").

    gpus.check_device("cuda:3")   # None, or why the device cannot be used here (the CLI: exit 2)
    gpus.pick_most_free([...])    # (index, why): `device = "auto"` on a box with several GPUs
    gpus.shared_warning(...)      # the words when another process holds a share of the GPU

Shared ground: the CLI checks a device before the lab opens (the lab never imports torch), and
the training process (`core/devices.py`, `core/sysmetrics.py`) reads its GPU through `nvml()`.
A machine without NVML (no NVIDIA driver, or nvidia-ml-py missing) is never an error here:
`nvml()` is None and the callers do without.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .config import parse_device  # noqa: F401 - the device names, checked where the config is

NVML_HINT = "pip install 'gengap-tui[gpu]'"
# another process holding more than this share of the chosen GPU's memory (or, with others on
# it, the GPU busier than this) at the start of a run: the lab says so
SHARED_SHARE = 0.10
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
MB = 1024 * 1024

_lock = threading.Lock()
_nvml: Any = None
_tried = False


def nvml() -> Any:
    """The initialised `pynvml` module (nvidia-ml-py), or None where there is no NVML: the
    package is missing, or there is no NVIDIA driver. Initialised once per process."""
    global _nvml, _tried
    with _lock:
        if not _tried:
            _tried = True
            try:
                import pynvml  # nvidia-ml-py

                pynvml.nvmlInit()
                _nvml = pynvml
            except Exception:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound / DriverNotLoaded, ...
                _nvml = None
        return _nvml


def reset() -> None:
    """Forget what `nvml()` found (tests swap in a fake module)."""
    global _nvml, _tried
    with _lock:
        _nvml, _tried = None, False


def text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# ---------------------------------------------------------------------------------------------
# what NVML says about one GPU


def gpu_facts(handle: Any, index: int | None = None) -> dict:
    """Name, index, driver, memory and UUID of one GPU (`config.json`, the summary, the lab)."""
    n = nvml()
    facts: dict[str, Any] = {"index": index}
    if index is None:
        try:
            facts["index"] = int(n.nvmlDeviceGetIndex(handle))  # NVML's numbering (CUDA's may differ)
        except Exception:  # noqa: BLE001
            pass
    for key, call in (("name", lambda: text(n.nvmlDeviceGetName(handle))),
                      ("driver", lambda: text(n.nvmlSystemGetDriverVersion())),
                      ("memory_mb", lambda: round(n.nvmlDeviceGetMemoryInfo(handle).total / MB)),
                      ("uuid", lambda: text(n.nvmlDeviceGetUUID(handle)))):
        try:
            facts[key] = call()
        except Exception:  # noqa: BLE001 - a field NVML does not give on this GPU is left out
            pass
    return facts


def processes(handle: Any) -> list[tuple[int, float | None]]:
    """(pid, MiB or None) of the compute processes on a GPU (none where NVML does not say)."""
    n = nvml()
    out: dict[int, float | None] = {}
    for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            procs = getattr(n, call)(handle)
        except Exception:  # noqa: BLE001
            continue
        for p in procs:
            used = getattr(p, "usedGpuMemory", None)
            mb = used / MB if isinstance(used, int) and used >= 0 and used < 2**62 else None
            out[int(p.pid)] = max(out.get(int(p.pid)) or 0, mb or 0) if mb is not None else out.get(int(p.pid))
    return list(out.items())


def others_on(handle: Any, own_mb: float = 0.0, pid: int | None = None) -> tuple[int, float]:
    """(how many other processes, MiB they hold) on a GPU. Where NVML does not list this process
    (a container's PID namespace), `own_mb` (what torch holds here) is taken off the total."""
    pid = os.getpid() if pid is None else pid
    procs = processes(handle)
    others = [mb for p, mb in procs if p != pid]
    held = sum(mb or 0 for mb in others)
    if len(others) == len(procs) and own_mb > 0 and others:  # this process is among them, under another pid
        return len(others) - 1, max(0.0, held - own_mb)
    return len(others), held


def shared_warning(name: str, n_others: int, others_mb: float, total_mb: float, util: float | None,
                   share: float = SHARED_SHARE) -> str | None:
    """The lab's warning when other processes hold more than `share` of a GPU's memory, or the
    GPU is busier than `share` while others are on it; None on a GPU this run has to itself."""
    if n_others <= 0 or total_mb <= 0:
        return None
    mem_share = others_mb / total_mb
    busy = util is not None and util / 100 > share
    if mem_share <= share and not busy:
        return None
    procs = f"{n_others} other process{'es' if n_others > 1 else ''}"
    parts = [f"{procs} hold{'s' if n_others == 1 else ''} {others_mb / 1024:.1f} of {total_mb / 1024:.0f} GB "
             f"({mem_share:.0%})"]
    if busy:
        parts.append(f"it is {util:.0f}% busy before this run starts")
    return (f"{name} is shared: " + " and ".join(parts) + f" (more than {share:.0%}): this run's speed "
            "and free memory depend on them")


# ---------------------------------------------------------------------------------------------
# choosing a GPU


def pick_most_free(gpus: list[dict]) -> tuple[int, str]:
    """`device = "auto"` on several GPUs: (index, why) of the one with the most free memory.
    `gpus`: dicts with `index`, `name`, `free_mb`, `total_mb` (a GPU whose free memory is not
    known comes last; ties go to the lower index)."""
    if not gpus:
        raise ValueError("no GPUs to pick from")
    known = [g for g in gpus if isinstance(g.get("free_mb"), (int, float))]
    if not known:
        g = min(gpus, key=lambda g: g["index"])
        return g["index"], (f"auto: cuda:{g['index']} ({g.get('name') or 'GPU'}), the first of {len(gpus)} GPUs: "
                            f"their free memory is not known without NVML ({NVML_HINT})")
    ranked = sorted(known, key=lambda g: (-g["free_mb"], g["index"]))
    best = ranked[0]
    why = (f"auto: cuda:{best['index']} ({best.get('name') or 'GPU'}) has the most free memory of {len(gpus)} GPUs: "
           f"{best['free_mb'] / 1024:.1f} of {best['total_mb'] / 1024:.0f} GB free")
    if len(ranked) > 1:
        nxt = ranked[1]
        why += f" (next: cuda:{nxt['index']}, {nxt['free_mb'] / 1024:.1f} GB)"
    return best["index"], why


# ---------------------------------------------------------------------------------------------
# a device checked before anything starts, without torch (the lab, serve)


def visible_gpus() -> list[str] | None:
    """The names of the GPUs CUDA would number 0, 1, ... here, read without torch: NVML, else
    the driver's /proc entries; `CUDA_VISIBLE_DEVICES` honoured. [] where there is no NVIDIA
    driver; None where it cannot be told (not Linux, no NVML, no /proc entries)."""
    n = nvml()
    names: list[str] | None = None
    if n is not None:
        try:
            names = [text(n.nvmlDeviceGetName(n.nvmlDeviceGetHandleByIndex(i))) for i in range(n.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001
            names = None
    if names is None:
        if PROC_GPUS.is_dir():
            names = []
            for d in sorted(PROC_GPUS.iterdir()):  # PCI order: CUDA's own where the GPUs are alike
                info = (d / "information").read_text(errors="replace") if (d / "information").is_file() else ""
                model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Model:")),
                             "GPU")
                names.append(model)
        elif Path("/proc/driver").is_dir() and not Path("/proc/driver/nvidia").exists():
            names = []  # Linux without the NVIDIA driver
        else:
            return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    out = []
    for item in visible.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) >= len(names):
            break  # CUDA stops at the first entry it cannot use (UUIDs: counted, unnamed)
        out.append(names[int(item)])
    if visible.strip() and not out and not visible.strip().lstrip("-").isdigit():
        return None  # UUIDs or MIG names: only torch can tell
    return out


def no_gpu_message(device: str, names: list[str]) -> str:
    if not names:
        return (f"device = {device!r}, but this machine has no CUDA GPU (no NVIDIA driver or GPU, or "
                f"CUDA_VISIBLE_DEVICES hides them all): use device = 'cpu' or 'auto'")
    there = ", ".join(f"cuda:{i} ({n})" for i, n in enumerate(names))
    return f"device = {device!r}, but there is no such GPU here: the GPUs are {there}"


def check_device(device: str) -> str | None:
    """Why `device` cannot train here, said before anything starts (exit 2), or None: a GPU
    index past the GPUs there are, or a CUDA device on a machine without CUDA. Where this cannot
    be told without torch, None: the training process says it (`core/devices.py`)."""
    try:
        kind, index = parse_device(device)
    except ValueError as exc:
        return str(exc)
    if kind != "cuda":
        return None
    names = visible_gpus()
    if names is None:
        return None
    if not names or (index is not None and index >= len(names)):
        return no_gpu_message(device, names)
    return None
