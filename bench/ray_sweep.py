"""A sweep trained here (the embedded default) against the same sweep on a private Ray instance
(`--ray local`), in one process, one after the other: what Ray costs and gains on this machine.

    python bench/ray_sweep.py [--preset double-descent] [--epochs 100] [--cpus-per-task 1]
                              [--gpus-per-task F] [--address local] [--set k=v ...]

Both go through `session.sweep_session` (the path `gengap-tui sweep` takes): the same preset,
values, seeds and threads (`run.threads`, default 1 so that a unit's threads and the local run's
agree: each Ray unit gets `--cpus-per-task` CPUs). Printed: the local sweep's wall time; the Ray
sweep's start-up (`ray.init`: starting the instance, or joining `--address`), its sweep (tasks,
workers importing torch, training, the records relayed and written), its shutdown, and the
ratios; and the largest difference between the two sweeps' per-value test errors (the units
train the same members as the local grouped model's buckets: equal up to float summation order).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gengap_tui import presets, runs  # noqa: E402
from gengap_tui.config import build  # noqa: E402
from gengap_tui.ray_options import RayOptions  # noqa: E402
from gengap_tui.session import sweep_session  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="double-descent")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--address", default="local", help="local (default), auto or HOST:PORT")
    ap.add_argument("--cpus-per-task", type=int, default=1)
    ap.add_argument("--gpus-per-task", type=float, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="K=V")
    args = ap.parse_args()
    overrides = [f"optim.epochs={args.epochs}", "run.threads=1", *args.set]
    cfg = build(presets.load_raw(args.preset), overrides)
    param, values = cfg.sweep.param, list(cfg.sweep.values)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))

    t0 = time.perf_counter()
    local = sweep_session(cfg, param, values, tmp / "local")
    local_wall = time.perf_counter() - t0
    assert local.error is None, local.error

    opts = RayOptions(args.address, args.gpus_per_task, args.cpus_per_task)
    t0 = time.perf_counter()
    on_ray = sweep_session(cfg, param, values, tmp / "ray", ray=opts)
    ray_total = time.perf_counter() - t0
    assert on_ray.error is None, on_ray.error
    s = on_ray.summary
    rows_l = {r["value"]: r for r in runs.read_jsonl(local.run_dir / "sweep.jsonl")}
    rows_r = {r["value"]: r for r in runs.read_jsonl(on_ray.run_dir / "sweep.jsonl")}
    diff = max(abs(rows_l[v]["test_err"] - rows_r[v]["test_err"]) for v in rows_l)
    out = {
        "preset": cfg.name, "values": len(values), "seeds": cfg.run.seeds, "epochs": cfg.optim.epochs,
        "cores": len(os.sched_getaffinity(0)), "units": s.get("units"), "ray_address": args.address,
        "local_wall_s": round(local_wall, 2), "local_sweep_s": round(local.summary["wall_seconds"], 2),
        "ray_connect_s": round(s.get("ray_connect_seconds", 0.0), 2), "ray_sweep_s": round(s["wall_seconds"], 2),
        "ray_total_s": round(ray_total, 2),
        "ray_shutdown_s": round(ray_total - s["wall_seconds"] - s.get("ray_connect_seconds", 0.0), 2),
        "ratio_sweep": round(s["wall_seconds"] / local.summary["wall_seconds"], 2),
        "ratio_total": round(ray_total / local_wall, 2),
        "status": [local.summary["status"], s["status"]], "max_test_err_diff": diff,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
