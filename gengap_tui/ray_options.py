"""Where a sweep's units run when Ray runs them: `--ray [ADDRESS|auto|local]`, `--gpus-per-task F`,
`--cpus-per-task N` (docs/ARCHITECTURE.md, "Sweeps on Ray"). Parsed and checked here, before
anything slow, without Ray or torch; the driver that uses them is `core/raysweep.py`, imported only
when a sweep is given these options.

    opts = from_args(args)          # None without --ray; ValueError naming the flag if bad
    sweep_session(cfg, param, values, ray=opts)
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import asdict, dataclass

INSTALL_HINT = ("--ray needs Ray, which is not installed here: pip install 'gengap-tui[ray]' "
                "(the same on every machine of the cluster)")
MAX_GPUS_PER_TASK = 16
MAX_CPUS_PER_TASK = 1024


@dataclass(frozen=True)
class RayOptions:
    """`address`: `local` (a private Ray instance on this machine, started for the sweep and
    stopped after it), `auto` (the cluster this machine has joined: `ray start`, or $RAY_ADDRESS)
    or a head node's `HOST:PORT`. `gpus_per_task`: None = 1 where the cluster has GPUs and the
    config's device allows them, else 0; fractions below 1 share a GPU between units.
    `cpus_per_task`: the CPUs Ray reserves for a unit, and the torch threads it trains with
    unless the config's `run.threads` says otherwise. `retries`: how often Ray trains a unit
    again whose worker died (Ray's `max_retries`; no flag, for library callers and tests)."""
    address: str = "local"
    gpus_per_task: float | None = None
    cpus_per_task: int = 1
    retries: int = 3

    def to_wire(self) -> dict:
        return asdict(self)

    @classmethod
    def from_wire(cls, d: "dict | RayOptions | None") -> "RayOptions | None":
        if d is None or isinstance(d, RayOptions):
            return d
        return check(d.get("address", "local"), d.get("gpus_per_task"), d.get("cpus_per_task", 1), d.get("retries", 3))


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def check_address(address: str) -> str:
    """`local`, `auto` or HOST:PORT; raises ValueError naming --ray and what is allowed."""
    text = address.strip()
    if text in ("local", "auto"):
        return text
    if text.startswith("ray://"):
        raise ValueError(f"--ray {address!r}: Ray Client addresses (ray://) are not supported; give the head "
                         "node's HOST:PORT (the port `ray start --head` printed, 6379 by default), auto or local")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--ray {address!r}: expected local, auto or HOST:PORT with a port 1..65535 "
                         "(e.g. --ray 10.0.0.5:6379)")
    return f"{host}:{int(port)}"


def check(address: str, gpus_per_task: float | None, cpus_per_task: int, retries: int = 3) -> RayOptions:
    """Validated options; raises ValueError naming the flag and the allowed range."""
    address = check_address(address)
    if gpus_per_task is not None:
        g = float(gpus_per_task)
        if not 0 <= g <= MAX_GPUS_PER_TASK:
            raise ValueError(f"--gpus-per-task {gpus_per_task}: must be 0..{MAX_GPUS_PER_TASK}")
        if g > 1 and g != int(g):
            raise ValueError(f"--gpus-per-task {gpus_per_task}: above 1 it must be a whole number "
                             "(a fraction below 1 shares a GPU between units)")
        gpus_per_task = g
    if isinstance(cpus_per_task, float) and cpus_per_task != int(cpus_per_task) or not (
            1 <= int(cpus_per_task) <= MAX_CPUS_PER_TASK):
        raise ValueError(f"--cpus-per-task {cpus_per_task}: must be a whole number 1..{MAX_CPUS_PER_TASK}")
    if not 0 <= int(retries) <= 100:
        raise ValueError(f"retries {retries}: must be 0..100")
    return RayOptions(address, gpus_per_task, int(cpus_per_task), int(retries))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the sweep's units as Ray tasks: local (a private Ray instance, the default), "
                             "auto (the cluster this machine joined) or a head node's HOST:PORT")
    parser.add_argument("--gpus-per-task", type=float, default=None, metavar="F",
                        help="GPUs per Ray task (default: 1 if the cluster has GPUs, else 0; below 1 shares one)")
    parser.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                        help="CPUs per Ray task, also its torch threads unless run.threads is set (default 1)")


def from_args(args: argparse.Namespace) -> RayOptions | None:
    """The options of a parsed command line (None without --ray); raises ValueError for bad
    input and when Ray is not installed."""
    address = getattr(args, "ray", None)
    gpus, cpus = getattr(args, "gpus_per_task", None), getattr(args, "cpus_per_task", None)
    if address is None:
        if gpus is not None or cpus is not None:
            raise ValueError(f"--{'gpus' if gpus is not None else 'cpus'}-per-task applies to a sweep on Ray: "
                             "give --ray too (e.g. --ray local)")
        return None
    opts = check(address, gpus, 1 if cpus is None else cpus)
    if not ray_installed():
        raise ValueError(INSTALL_HINT)
    return opts
