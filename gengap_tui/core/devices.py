"""The device a config names, as torch sees it (docs/ARCHITECTURE.md, "System metrics and GPUs").

    dev = devices.resolve("cuda:1")   # torch.device('cuda:1'), or ValueError naming the GPUs there are
    devices.note(dev)                 # why `auto` chose it, on a box with several GPUs (or None)
    devices.nvml_handle(dev)          # its NVML handle (nvidia-ml-py), or None

`auto` is decided once per process (a warm process and the runs it takes stay on one GPU: its own
memory there would otherwise send the next run elsewhere). On several GPUs it takes the one with
the most free memory (NVML); without NVML the first, and says so.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .. import gpus

_notes: dict[str, str] = {}
_auto: torch.device | None = None


def cuda_names() -> list[str]:
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def no_cuda_message(name: str) -> str:
    build = ("a CPU-only build of PyTorch" if torch.version.cuda is None
             else "no NVIDIA GPU or driver that PyTorch can use")
    return (f"device = {name!r}, but PyTorch sees no CUDA device here ({build}; allowed: 'auto', 'cpu')")


def resolve(name: str) -> torch.device:
    """The torch device for a config's `device`; ValueError (the session's Error, exit 2) for a
    GPU that is not there, naming the GPUs there are, or a CUDA device without CUDA."""
    global _auto
    kind, index = gpus.parse_device(name)
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if kind == "auto":
            return torch.device("cpu")
        raise ValueError(no_cuda_message(name))
    count = torch.cuda.device_count()
    if kind == "cuda":
        index = torch.cuda.current_device() if index is None else index
        if index >= count:
            there = ", ".join(f"cuda:{i} ({n})" for i, n in enumerate(cuda_names()))
            raise ValueError(f"device = {name!r}, but there is no GPU {index} here: PyTorch sees {count} "
                             f"GPU{'s' if count > 1 else ''}: {there} (allowed: 'auto', 'cpu', 'cuda', "
                             f"'cuda:0'..'cuda:{count - 1}')")
        return torch.device("cuda", index)
    if _auto is None:
        if count == 1:
            _auto = torch.device("cuda", 0)
        else:
            index, why = gpus.pick_most_free(candidates())
            _auto = torch.device("cuda", index)
            _notes[str(_auto)] = why
    return _auto


def note(device: torch.device) -> str | None:
    """Why `auto` chose `device` (several GPUs), or None."""
    return _notes.get(str(device))


def candidates() -> list[dict]:
    """The GPUs torch sees, with their free memory from NVML where it can be read."""
    out = []
    for i in range(torch.cuda.device_count()):
        g: dict[str, Any] = {"index": i, "name": torch.cuda.get_device_name(i), "free_mb": None, "total_mb": None}
        h = nvml_handle(torch.device("cuda", i))
        if h is not None:
            try:
                mem = gpus.nvml().nvmlDeviceGetMemoryInfo(h)
                g.update(free_mb=mem.free / gpus.MB, total_mb=mem.total / gpus.MB)
            except Exception:  # noqa: BLE001
                pass
        out.append(g)
    return out


def nvml_handle(device: torch.device) -> Any:
    """The NVML handle of a CUDA device (matched by UUID: NVML numbers every GPU of the machine,
    CUDA only the visible ones, in its own order), or None: no NVML, or not a GPU."""
    if device.type != "cuda" or (n := gpus.nvml()) is None:  # (a CPU run never loads NVML)
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    try:
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:
            want = str(uuid).lower().removeprefix("gpu-")
            for i in range(n.nvmlDeviceGetCount()):
                h = n.nvmlDeviceGetHandleByIndex(i)
                if gpus.text(n.nvmlDeviceGetUUID(h)).lower().removeprefix("gpu-") == want:
                    return h
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return n.nvmlDeviceGetHandleByIndex(index)
        items = [v.strip() for v in visible.split(",")]
        if index < len(items) and items[index].isdigit():
            return n.nvmlDeviceGetHandleByIndex(int(items[index]))
        if index < len(items):
            return n.nvmlDeviceGetHandleByUUID(items[index])
    except Exception:  # noqa: BLE001 - no handle: the run goes on without the GPU fields
        return None
    return None
