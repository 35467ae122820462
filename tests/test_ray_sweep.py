"""Sweeps on Ray (core/raysweep.py) on a local Ray instance that these tests start and stop: the
same numbers and the same directory as a local sweep, a killed worker's unit retried (or failed
for good, the other values completed), a Ctrl+C that keeps the finished values and leaves no Ray
process behind, an unreachable address refused, and the lab's f4 on Ray.

Ray starts in seconds: the in-process tests share one instance (this process is its driver);
the Ctrl+C test starts a private one of its own through the CLI (`--ray local`). Without Ray the
module is skipped, but in CI (env CI set) it fails: CI installs the [ray] extra."""

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, alive, small_cfg, wait_for, wait_until

if importlib.util.find_spec("ray") is None:
    if os.environ.get("CI"):
        pytest.fail("ray is not installed, but CI runs the Ray tests: .ci/run installs gengap-tui[ray]",
                    pytrace=False)
    pytest.skip("ray is not installed (pip install 'gengap-tui[ray]')", allow_module_level=True)

import ray  # noqa: E402

from gengap_tui import runs  # noqa: E402
from gengap_tui.control import RunControl  # noqa: E402
from gengap_tui.ray_options import RayOptions  # noqa: E402
from gengap_tui.session import sweep_session  # noqa: E402

pytestmark = pytest.mark.slow
WIDTHS = [4.0, 8.0, 16.0, 32.0]


@pytest.fixture(scope="module")
def cluster(data_cache):
    """A local Ray instance with 2 CPUs, this process its driver: `RaySweep` uses the connection
    it finds (and leaves it open); the address is for processes that join it."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=256 * 1024 * 1024)
    for s, h in saved.items():  # ray.init sets a SIGTERM handler of its own
        signal.signal(s, h)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def layout(d: Path) -> set[str]:
    """The files of a sweep directory, less each value's examples.npz: a local sweep writes it, a
    sweep on Ray does not (docs/ARCHITECTURE.md, run directory: the counters stay in the task)."""
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != "examples.npz"}


def sweep(cfg, tmp_path, name, ray_opts=None, values=WIDTHS, on_dir=None, control=None):
    outcome = sweep_session(cfg, "model.width", values, tmp_path / name, ray=ray_opts, control=control,
                            on_ready=(lambda _sw, d: on_dir(d)) if on_dir else None)
    assert outcome.error is None, outcome.error
    return outcome.run_dir, outcome.summary


def kill_mid_unit(box: dict, control: RunControl, unit: int = 0) -> threading.Thread:
    """The sweep starts paused (each unit holds after its first epoch: it cannot finish before
    the kill): SIGKILL the Ray worker training `unit` once its `ray_task` event names it, then
    resume. The pid killed goes to box["killed"]."""
    control.paused = True

    def run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            d = box.get("dir")
            events = [e for p in (d.glob("width-*/events.jsonl") if d else []) for e in runs.read_jsonl(p)]
            pid = next((e["pid"] for e in events if e.get("event") == "ray_task" and e.get("unit") == unit), None)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                box["killed"] = pid
                break
            time.sleep(0.02)
        control.paused = False

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_ray_sweep_equals_the_local_sweep(cluster, tmp_path):
    cfg = small_cfg("optim.epochs=4", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05",
                    "noise.label_noise=0.15", "run.seeds=2")
    local, s1 = sweep(cfg, tmp_path, "local")
    on_ray, s2 = sweep(cfg, tmp_path, "ray", RayOptions(cluster))
    assert s1["status"] == s2["status"] == "completed" and s2["executor"] == "ray" and s2["retries"] == 0
    assert layout(local) == layout(on_ray)  # the same files: the lab, replay and screenshot follow it unchanged
    meta = runs.read_json(on_ray / "sweep.json")
    assert meta["units"] == [[v] for v in WIDTHS] and meta["buckets"] == 4 and meta["members"] == 8
    a, b = runs.read_jsonl(local / "sweep.jsonl"), runs.read_jsonl(on_ray / "sweep.jsonl")
    assert [r["value"] for r in a] == [r["value"] for r in b] == WIDTHS
    for ra, rb in zip(a, b):
        assert ra["n_params"] == rb["n_params"] and ra["epochs_run"] == rb["epochs_run"] == 4
        assert rb["status"] == "completed"
        for k in ("train_err", "val_err", "test_err"):
            assert ra[k] == pytest.approx(rb[k], abs=2.5e-3), (ra["value"], k)
        for k in ("test_loss", "weight_norm", "spectral_norm_product"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-4), (ra["value"], k)
        ma = runs.read_jsonl(local / ra["run_dir"] / "metrics.jsonl")
        mb = runs.read_jsonl(on_ray / rb["run_dir"] / "metrics.jsonl")
        assert [m["epoch"] for m in ma] == [m["epoch"] for m in mb] == [1, 2, 3, 4]
        assert [m["val_loss"] for m in mb] == pytest.approx([m["val_loss"] for m in ma], rel=1e-4)
    # each value's config.json says where and how its unit trained
    c = runs.read_json(on_ray / "width-8" / "config.json")
    assert c["torch_threads"] == 1 and c["device_name"].startswith("CPU") and c["ray_host"]
    import torch

    sa = torch.load(local / "width-8" / "model.pt", weights_only=True)
    sb = torch.load(on_ray / "width-8" / "model.pt", weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=1e-4) for k in sa)


def test_a_killed_worker_is_retried_and_every_value_completes(cluster, tmp_path):
    cfg = small_cfg("optim.epochs=30", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05")
    box: dict = {}
    control = RunControl()
    killer = kill_mid_unit(box, control, unit=0)
    d, s = sweep(cfg, tmp_path, "kill", RayOptions(cluster), values=[8.0, 64.0, 256.0],
                 on_dir=lambda p: box.update(dir=p), control=control)
    killer.join(1)
    assert s["status"] == "completed" and s["retries"] == 1
    rows = runs.read_jsonl(d / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["completed"] * 3 and all(r["epochs_run"] == 30 for r in rows)
    events = runs.read_jsonl(d / "width-8" / "events.jsonl")
    [retried] = [e for e in events if e["event"] == "retried"]
    assert retried["attempt"] == 2 and f"pid {box['killed']}" in retried["reason"] and "died" in retried["reason"]
    assert [e["attempt"] for e in events if e["event"] == "ray_task"] == [1, 2]
    # the retry trained the unit from its start: one row per epoch, the first attempt's gone
    assert [m["epoch"] for m in runs.read_jsonl(d / "width-8" / "metrics.jsonl")] == list(range(1, 31))
    assert runs.read_json(d / "width-8" / "summary.json")["status"] == "completed"


def test_a_unit_that_fails_for_good_is_failed_while_the_others_complete(cluster, tmp_path):
    cfg = small_cfg("optim.epochs=30", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05")
    box: dict = {}
    control = RunControl()
    killer = kill_mid_unit(box, control, unit=0)
    d, s = sweep(cfg, tmp_path, "fail", RayOptions(cluster, retries=0), values=[8.0, 64.0, 256.0],
                 on_dir=lambda p: box.update(dir=p), control=control)
    killer.join(1)
    assert s["status"] == "failed" and "unit 1 of 3 failed on Ray" in s["reason"]
    rows = runs.read_jsonl(d / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["failed", "completed", "completed"]
    assert "died" in rows[0]["reason"] and rows[1]["epochs_run"] == rows[2]["epochs_run"] == 30
    failed = runs.read_json(d / "width-8" / "summary.json")
    assert failed["status"] == "failed" and failed["reason"] == rows[0]["reason"]
    assert runs.read_jsonl(d / "width-8" / "events.jsonl")[-1]["event"] == "failed"


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def test_ctrl_c_cancels_outstanding_units_keeps_finished_ones_and_leaves_no_ray_process(tmp_path):
    """Its own private instance (`--ray local`): two units at a time on this 2-core machine, the
    narrow one done in a moment, the wide ones still training (or waiting) when Ctrl+C comes."""
    argv = [PYTHON, "-m", "gengap_tui.cli", "sweep", "double-descent", "--values", "2,512,1024",
            "--set", "optim.epochs=200", "--set", "data.n_train=500", "--set", "data.n_val=500",
            "--set", "run.threads=1", "--device", "cpu", "--ray", "local", "--runs-dir", str(tmp_path), "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ray_procs: set[int] = set()
    try:
        def first_value_done():
            ray_procs.update(descendants(proc.pid))
            return any(runs.read_json(p) for p in tmp_path.glob("*/width-2/summary.json"))

        assert wait_until(first_value_done, 300), proc.poll()  # (a bound, not a pace: a loaded box is slow)
        ray_procs.update(descendants(proc.pid))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    [d] = list(tmp_path.iterdir())
    summary = runs.read_json(d / "summary.json")
    assert summary["status"] == "cancelled" and "Ctrl+C" in summary["reason"]
    rows = runs.read_jsonl(d / "sweep.jsonl")
    assert rows[0]["status"] == "completed" and rows[0]["epochs_run"] == 200  # the finished value is kept
    assert {r["status"] for r in rows[1:]} <= {"cancelled", "not_run"} and rows[1]["status"] == "cancelled"
    done = sum(r["status"] == "completed" for r in rows)
    assert summary["reason"] == f"stopped by the user (Ctrl+C): {done} of 3 units had finished"
    s512 = runs.read_json(d / "width-512" / "summary.json")  # said once (the relay's stop is not suffixed again)
    # (the epoch the stop cut short, as a solo run numbers it: the one after the last finished)
    assert s512["reason"] == f"stopped by the user (Ctrl+C) during epoch {s512['epochs_run'] + 1}", s512["reason"]
    assert rows[1]["reason"] == s512["reason"]
    assert len(ray_procs) >= 3  # gcs_server, raylet, workers...
    assert wait_until(lambda: not any(alive(p) for p in ray_procs), 30), \
        [p for p in ray_procs if alive(p)]  # none left behind


def test_an_unreachable_address_is_bad_input_within_30_s(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    out = subprocess.run([PYTHON, "-m", "gengap_tui.cli", "sweep", "double-descent", "--ray", f"127.0.0.1:{port}",
                          "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and time.monotonic() - t0 < 30
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no sweep directory


async def test_the_lab_sweeps_on_ray_with_f4(cluster, tmp_path):
    from gengap_tui.tui.app import GengapApp

    app = GengapApp("default", ["data.n_train=300", "data.n_val=200", "device=cpu", "optim.epochs=3",
                                "sweep.values=[2,4,8]"], runs_dir=tmp_path, ray=RayOptions(cluster).to_wire())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 90), app.state.status
        assert app.state.sweep.summary["status"] == "completed", app.state.sweep.summary
        assert app.state.sweep.series.known == 3
    [d] = [p for p in tmp_path.iterdir() if "-sweep-default-" in p.name]
    assert runs.read_json(d / "sweep.json")["executor"] == "ray"
    assert [r["status"] for r in runs.read_jsonl(d / "sweep.jsonl")] == ["completed"] * 3


def test_a_stop_reason_is_said_once():
    """`RaySweep._reasoned`: a unit told through the relay already names who stopped it (left as
    it is); one that only saw Ray's cancel says USER_STOP, which becomes the stop's reason."""
    from gengap_tui.core.raysweep import RaySweep

    rs = object.__new__(RaySweep)  # (no cluster: only the reason's wording is checked here)
    for stop in ("stopped by the user (Ctrl+C)", "stopped by the user from the lab", "stopped by SIGTERM"):
        rs.stop_reason = stop
        told = {"status": "cancelled", "reason": f"{stop} during epoch 60"}
        assert rs._reasoned(told) == told
        bare = {"status": "cancelled", "reason": "stopped by the user during epoch 7"}
        assert rs._reasoned(bare)["reason"] == f"{stop} during epoch 7"
        done = {"status": "completed", "reason": None}
        assert rs._reasoned(done) == done
    rs.stop_reason = None
    bare = {"status": "cancelled", "reason": "stopped by the user during epoch 7"}
    assert rs._reasoned(bare) == bare


def test_a_stop_cancels_the_units_not_started(cluster, tmp_path, monkeypatch):
    """The lab's f7 (its reason) as the sweep directory is made, before the driver's first look:
    every task is cancelled (`ray.cancel`) at once. At most two can have started on the 2-CPU
    instance (those end `cancelled` before their first epoch); the others never run (`not_run`),
    nothing is trained, and the sweep says 0 of 3 units had finished, each reason said once.
    The driver's later cancel of everything (STOP_S after a stop) is put off past the test, so
    only the cancel of the units not started can keep the third unit from starting once a
    running one has stopped (without it, the third starts, reads the stop and ends `cancelled`)."""
    from gengap_tui.core import raysweep

    monkeypatch.setattr(raysweep, "STOP_S", 600.0)
    lab_stop = "stopped by the user from the lab"  # tui/train_actions.py's LAB_STOP
    cfg = small_cfg("optim.epochs=100", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05")
    control = RunControl()
    d, s = sweep(cfg, tmp_path, "stop", RayOptions(cluster), values=[2.0, 4.0, 8.0],
                 on_dir=lambda _d: control.request_stop(lab_stop), control=control)
    assert s["status"] == "cancelled" and s["reason"] == f"{lab_stop}: 0 of 3 units had finished", s["reason"]
    rows = runs.read_jsonl(d / "sweep.jsonl")
    statuses = [r["status"] for r in rows]
    assert set(statuses) <= {"not_run", "cancelled"} and "not_run" in statuses, rows
    for r in rows:  # nothing trained: no epoch anywhere
        assert r["epochs_run"] == 0 and runs.read_jsonl(d / r["run_dir"] / "metrics.jsonl") == [], r
        if r["status"] == "cancelled":
            assert r["reason"] == f"{lab_stop} during epoch 1", r  # cut short in its first epoch


def test_a_grid_on_ray_is_cut_into_each_lines_units_and_equals_the_local_grid(cluster, tmp_path):
    cfg = small_cfg("optim.epochs=3", "model.depth=2", "optim.optimizer=sgd", "optim.lr=0.05")
    grid = {"param2": "noise.label_noise", "values2": [0.0, 0.2]}
    local = sweep_session(cfg, "model.width", [4.0, 16.0], tmp_path / "local", **grid)
    on_ray = sweep_session(cfg, "model.width", [4.0, 16.0], tmp_path / "ray", ray=RayOptions(cluster), **grid)
    assert local.error is None and on_ray.error is None, (local.error, on_ray.error)
    assert local.summary["status"] == on_ray.summary["status"] == "completed"
    assert layout(local.run_dir) == layout(on_ray.run_dir)
    units = runs.read_json(on_ray.run_dir / "sweep.json")["units"]
    assert all(len({v2 for _, v2 in unit}) == 1 for unit in units)  # a unit never spans two lines
    assert sorted(tuple(p) for unit in units for p in unit) == [(4.0, 0.0), (4.0, 0.2), (16.0, 0.0), (16.0, 0.2)]
    a, b = runs.read_jsonl(local.run_dir / "sweep.jsonl"), runs.read_jsonl(on_ray.run_dir / "sweep.jsonl")
    assert [(r["value"], r["value2"]) for r in a] == [(r["value"], r["value2"]) for r in b]
    for ra, rb in zip(a, b):
        for k in ("train_err", "test_err", "noisy_memorized"):
            assert ra[k] == pytest.approx(rb[k], abs=2.5e-3), (ra["value"], ra["value2"], k)
    assert [ln["value2"] for ln in on_ray.summary["lines"]] == [0.0, 0.2]
