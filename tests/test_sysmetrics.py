"""System metrics and the GPU of your choice (issue 24), on a CPU machine: the CPU fields in every
row, a fake NVML module (monkeypatched in as `pynvml`) for the GPU fields, the system line and the
shared-GPU warning, `cuda:N` refused with exit 2, `auto` choosing among faked GPUs, the system view.
The real GPU's fields are checked by bench/gpu.sh."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from conftest import ROOT, small_cfg
from gengap_tui import gpus
from gengap_tui.cli import main
from gengap_tui.config import ConfigError, build
from gengap_tui.core import devices
from gengap_tui.core.sysmetrics import Sampler
from gengap_tui.protocol import Epoch, Event, SYS_KEYS
from gengap_tui.tui.state import RunState
from gengap_tui.tui.system import system_line, system_plot

MB = 1024 * 1024
GPU_KEYS = {k for k in SYS_KEYS if k.startswith("gpu_")}


class FakeNVML(types.ModuleType):
    """What core/sysmetrics.py and gpus.py call of nvidia-ml-py, for GPUs described by dicts:
    name, total / used MiB, a utilization sequence (cycled per reading), power mW, temperature,
    processes [(pid, MiB)]."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, gpus_: list[dict], fail_init: bool = False):
        super().__init__("pynvml")
        self.gpus, self.fail_init, self.calls = gpus_, fail_init, 0

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.gpus[i]

    def nvmlDeviceGetIndex(self, h):
        return self.gpus.index(h)

    def nvmlDeviceGetName(self, h):
        return h["name"]

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{self.gpus.index(h):08d}-0000-0000-0000-000000000000"

    def nvmlSystemGetDriverVersion(self):
        return "570.86.15"

    def nvmlDeviceGetMemoryInfo(self, h):
        total, used = h["total_mb"] * MB, h["used_mb"] * MB
        return types.SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, h):
        self.calls += 1
        seq = h.get("util", [0])
        h["_i"] = h.get("_i", -1) + 1
        return types.SimpleNamespace(gpu=seq[h["_i"] % len(seq)], memory=0)

    def nvmlDeviceGetPowerUsage(self, h):
        return h.get("power_mw", 412_000)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return h.get("temp", 64)

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [types.SimpleNamespace(pid=p, usedGpuMemory=mb * MB) for p, mb in h.get("procs", [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return []


@pytest.fixture
def fake_nvml(monkeypatch):
    """Install a fake `pynvml` for the GPUs given; gpus.nvml() finds it afresh."""
    def install(gpus_: list[dict], fail_init: bool = False) -> FakeNVML:
        mod = FakeNVML(gpus_, fail_init)
        monkeypatch.setitem(sys.modules, "pynvml", mod)
        gpus.reset()
        return mod

    yield install
    gpus.reset()


def h100(**kw) -> dict:
    return {"name": "NVIDIA H100 80GB HBM3", "total_mb": 81559, "used_mb": 12595, **kw}


# ---------------------------------------------------------------------------------------------
# the rows


def test_cpu_fields_in_every_row_and_no_gpu_fields_without_a_gpu(tmp_path):
    """A CPU run (no NVML here): cpu_percent and rss_mb in every metrics.jsonl row, as the
    training process measured them; no GPU field, no error, no `gpu` in config.json or the summary."""
    from gengap_tui.session import run_session

    cfg = small_cfg("optim.epochs=4")
    out = run_session(cfg, tmp_path)
    rows = [json.loads(line) for line in (out.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert 0 <= r["cpu_percent"] < 100 * (os.cpu_count() or 1) + 50
        assert 50 < r["rss_mb"] < 64_000  # this process: torch alone is ~200 MB
        assert not GPU_KEYS & set(r)
    assert any(r["cpu_percent"] > 0 for r in rows)  # it trained: the process used the CPU
    assert "gpu" not in json.loads((out.run_dir / "config.json").read_text())
    assert "gpu" not in out.summary and "gpu_mem_peak_mb" not in out.summary


def test_no_nvml_is_never_an_error(fake_nvml, monkeypatch):
    """nvidia-ml-py missing, or present without a driver: nvml() is None, a sampler on a GPU-less
    device gives the CPU fields, the device check works from the driver's /proc entries."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    gpus.reset()
    assert gpus.nvml() is None
    fake_nvml([h100()], fail_init=True)  # the package, but no driver
    assert gpus.nvml() is None
    s = Sampler(torch.device("cpu"))
    assert s.begin() == {}
    x = sum(i * i for i in range(200_000))  # some CPU work  # noqa: F841
    row = s.epoch()
    assert set(row) == {"cpu_percent", "rss_mb"} and s.end() == {}


def test_fake_nvml_gives_the_gpu_fields_sampled_over_the_epoch(fake_nvml):
    """The sampler thread reads the GPU while the epoch runs: gpu_util is the mean of its samples
    (the fake cycles 20, 60, 100 %), the memory and temperature their highest, power the mean;
    this process's GPU memory is its entry in NVML's process list."""
    me = os.getpid()
    nv = fake_nvml([h100(util=[20, 60, 100], procs=[(me, 9318)])])
    s = Sampler(torch.device("cpu"), handle=nv.gpus[0], interval=0.01)
    warnings: list[str] = []
    start = s.begin(warnings)
    assert start["gpu"] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "driver": "570.86.15", "memory_mb": 81559,
                            "uuid": "GPU-00000000-0000-0000-0000-000000000000"}
    assert warnings == []  # the only process on it is this one
    deadline = time.monotonic() + 5
    while len(s.samples) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    row = s.epoch()
    assert 20 < row["gpu_util"] < 100  # a mean of several readings, not one at the end
    assert row["gpu_mem_used_mb"] == pytest.approx(12595) and row["gpu_mem_run_mb"] == pytest.approx(9318)
    assert row["gpu_power_w"] == pytest.approx(412) and row["gpu_temp_c"] == 64
    assert {"cpu_percent", "rss_mb"} <= set(row)
    s.end()
    assert not s.thread.is_alive()
    calls = nv.calls
    time.sleep(0.05)
    assert nv.calls == calls  # the thread stopped with the run


def test_a_short_epoch_takes_the_latest_sample(fake_nvml):
    """An epoch shorter than the sampling interval has no sample of its own: the latest one."""
    nv = fake_nvml([h100(util=[55])])
    s = Sampler(torch.device("cpu"), handle=nv.gpus[0], interval=10.0)
    s.begin()
    assert s.epoch()["gpu_util"] == 55 and s.epoch()["gpu_util"] == 55
    s.end()


def test_warning_when_another_process_holds_a_share_of_the_gpu(fake_nvml):
    me = os.getpid()
    nv = fake_nvml([h100(used_mb=30_000, util=[85], procs=[(me, 500), (4242, 24_000)])])
    s = Sampler(torch.device("cpu"), handle=nv.gpus[0], interval=10.0)
    warnings: list[str] = []
    s.begin(warnings)
    s.end()
    assert len(warnings) == 1
    text = warnings[0]
    assert text.startswith("GPU 0 (NVIDIA H100 80GB HBM3) is shared: 1 other process holds 23.4 of 80 GB (29%)")
    assert "85% busy" in text
    # below the share and idle: nothing said
    nv = fake_nvml([h100(util=[3], procs=[(me, 500), (4242, 2_000)])])
    s = Sampler(torch.device("cpu"), handle=nv.gpus[0], interval=10.0)
    s.begin(warnings := [])
    s.end()
    assert warnings == []
    assert gpus.shared_warning("GPU 0", 1, 2_000, 81559, util=40) is not None  # busy with others on it


def test_the_system_line_from_what_the_training_process_sent(fake_nvml):
    """nvitop's line: the GPU from the `started` event, the numbers from the last row."""
    me = os.getpid()
    nv = fake_nvml([h100(util=[87], procs=[(me, 9318), (4242, 20_000)])])
    s = Sampler(torch.device("cpu"), handle=nv.gpus[0], interval=10.0)
    start = s.begin(warnings := [])
    row = {"epoch": 1, **s.epoch()}
    s.end()
    run = RunState(small_cfg())
    assert system_line(run) == ""  # nothing measured: no line
    run.events.append({"event": "started", "epoch": 0, "device": "NVIDIA H100 80GB HBM3 (cuda:0)", **start})
    for w in warnings:
        run.events.append({"event": "warning", "epoch": 0, "message": w, "about": "shared_gpu"})
    run.series.add(row)
    line = system_line(run)
    assert line.startswith("[b]GPU0 H100 80GB HBM3[/] 87% [b yellow](shared)[/] · 12.3 / 80 GB (this run 9.1) · "
                           "412 W · 64°C · CPU ")
    assert " · RSS " in line and line.endswith(" GB")
    # a CPU run: the CPU fields only
    cpu = RunState(small_cfg())
    cpu.series.add({"epoch": 1, "cpu_percent": 180.4, "rss_mb": 1228.8})
    assert system_line(cpu) == "CPU 180% · RSS 1.2 GB"


def test_the_lab_state_says_the_warning():
    from gengap_tui.tui.state import LabState

    st = LabState(small_cfg())
    st.apply(Event({"event": "started", "epoch": 0, "gpu": {"index": 2, "name": "H100", "chosen": "auto: cuda:2 …"}}))
    assert st.status == "auto: cuda:2 …"
    st.apply(Event({"event": "warning", "epoch": 0, "message": "GPU 0 (H100) is shared: …", "about": "shared_gpu"}))
    st.apply(Epoch({"epoch": 1, "cpu_percent": 100.0}))
    assert "is shared" in st.status


# ---------------------------------------------------------------------------------------------
# the GPU of your choice


def test_device_names_in_the_config():
    assert build({}, ["device=cuda:1"]).device == "cuda:1"
    for bad in ("gpu", "cuda:x", "cuda:", "CUDA:0", "cuda:123"):
        with pytest.raises(ConfigError) as e:
            build({}, [f"device={bad}"])
        assert e.value.problems == [f"device: {bad!r} is not a device (allowed: 'auto', 'cpu', 'cuda' or 'cuda:N' "
                                    "(N: a GPU's index, as PyTorch counts them))"]


@pytest.mark.skipif(torch.cuda.is_available() or not Path("/proc/driver").is_dir(),
                    reason="checks the message of a Linux machine without CUDA")
@pytest.mark.parametrize("argv", [["run", "two-moons"], ["sweep", "two-moons", "--values", "2,4"], [], ["serve"]],
                         ids=["run", "sweep", "lab", "serve"])
def test_cuda3_on_a_cpu_machine_exits_2(argv, tmp_path, capsys):
    """`--device cuda:3` where there is no CUDA: exit 2 before anything starts (no run directory,
    no screen), saying there is no CUDA GPU here."""
    code = main([*argv, "--device", "cuda:3", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "device = 'cuda:3', but this machine has no CUDA GPU" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_the_training_process_refuses_cuda3_without_cuda(tmp_path):
    """What torch says where the CLI's check could not tell (no NVML, no /proc): the session's
    Error, exit 2 for `run`."""
    from gengap_tui.session import run_session

    with pytest.raises(ValueError, match=r"device = 'cuda:3', but PyTorch sees no CUDA device here \(a CPU-only "
                                         r"build of PyTorch"):
        devices.resolve("cuda:3")
    out = run_session(small_cfg("device=cuda:3"), tmp_path)
    assert out.error.startswith("device = 'cuda:3', but PyTorch sees no CUDA device") and out.run_dir is None


@pytest.fixture
def two_h100s_and_an_a100(monkeypatch, fake_nvml):
    """torch sees three GPUs (faked: nothing touches CUDA), NVML their free memory."""
    nv = fake_nvml([h100(used_mb=60_000), {"name": "NVIDIA A100-SXM4-40GB", "total_mb": 40960, "used_mb": 2000},
                    h100(used_mb=1_000)])
    names = [g["name"] for g in nv.gpus]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: names[i if isinstance(i, int) else i.index])
    monkeypatch.setattr(devices, "nvml_handle", lambda dev: nv.gpus[dev.index])
    monkeypatch.setattr(devices, "_auto", None)
    monkeypatch.setattr(devices, "_notes", {})
    return nv


def test_auto_picks_the_gpu_with_the_most_free_memory(two_h100s_and_an_a100):
    dev = devices.resolve("auto")
    assert dev == torch.device("cuda", 2)
    assert devices.note(dev) == ("auto: cuda:2 (NVIDIA H100 80GB HBM3) has the most free memory of 3 GPUs: "
                                 "78.7 of 80 GB free (next: cuda:1, 38.0 GB)")
    two_h100s_and_an_a100.gpus[2]["used_mb"] = 80_000  # its own memory there: the process stays on it
    assert devices.resolve("auto") == dev


def test_pick_most_free_from_a_list():
    gpus_ = [{"index": 0, "name": "A", "free_mb": 1000, "total_mb": 8000},
             {"index": 1, "name": "B", "free_mb": 7000, "total_mb": 8000},
             {"index": 2, "name": "C", "free_mb": 7000, "total_mb": 8000}]
    assert gpus.pick_most_free(gpus_)[0] == 1  # a tie goes to the lower index
    i, why = gpus.pick_most_free([{**g, "free_mb": None} for g in gpus_])
    assert i == 0 and "not known without NVML (pip install 'gengap-tui[gpu]')" in why


def test_a_gpu_that_is_not_there_names_the_gpus_there_are(two_h100s_and_an_a100, monkeypatch):
    with pytest.raises(ValueError) as e:
        devices.resolve("cuda:3")
    assert str(e.value) == ("device = 'cuda:3', but there is no GPU 3 here: PyTorch sees 3 GPUs: cuda:0 (NVIDIA "
                            "H100 80GB HBM3), cuda:1 (NVIDIA A100-SXM4-40GB), cuda:2 (NVIDIA H100 80GB HBM3) "
                            "(allowed: 'auto', 'cpu', 'cuda', 'cuda:0'..'cuda:2')")
    assert devices.resolve("cuda:1") == torch.device("cuda", 1)
    # the CLI's own check, without torch (NVML's names; CUDA_VISIBLE_DEVICES honoured)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert gpus.check_device("cuda:1") is None
    assert gpus.check_device("cuda:2") == ("device = 'cuda:2', but there is no such GPU here: the GPUs are cuda:0 "
                                           "(NVIDIA H100 80GB HBM3), cuda:1 (NVIDIA H100 80GB HBM3)")


# ---------------------------------------------------------------------------------------------
# the lab


def _with_system_metrics(tmp_path: Path) -> Path:
    """A recorded run, as if trained on a GPU that NVML read: `gpu` in its started event and the
    system fields in each row."""
    run = tmp_path / "gpu-run"
    shutil.copytree(ROOT / "tests/fixtures/runs/label-noise-es", run)
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    events[0]["gpu"] = {"index": 1, "name": "NVIDIA H100 80GB HBM3", "driver": "570.86.15", "memory_mb": 81559}
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        e = r["epoch"]
        r.update(gpu_util=40 + e % 50, gpu_mem_used_mb=20_000 + 10 * e, gpu_mem_run_mb=9_000 + 10 * e,
                 gpu_mem_peak_mb=8_000, gpu_power_w=300, gpu_temp_c=60, cpu_percent=99.5, rss_mb=1500)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_system_view_plots_the_rows(tmp_path):
    from gengap_tui.runs import load_run

    rec = load_run(_with_system_metrics(tmp_path))
    run = RunState(small_cfg(), events=rec.events)
    for r in rec.metrics:
        run.series.add(r)
    plot = system_plot(run, 100)
    assert [label for _, _, label, _ in plot.lines] == ["GPU util %", "GPU memory % (device)",
                                                        "GPU memory % (this run)", "CPU % (100 = 1 core)"]
    xs, ys, _, _ = plot.lines[0]
    assert xs == [float(r["epoch"]) for r in rec.metrics] and ys[0] == 40 + rec.metrics[0]["epoch"] % 50
    assert plot.lines[2][1][0] == pytest.approx(100 * (9_000 + 10) / 81559)
    assert plot.title.startswith("system | GPU1 H100 80GB HBM3, 80 GB | torch peak 7.8 GB")
    empty = system_plot(RunState(small_cfg()), 100)
    assert not empty.lines and "nothing measured" in empty.title


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_lab_shows_the_system_line_and_view(tmp_path):
    """The lab on a run with system metrics: the line under the status bar, ctrl+g hides it, f9
    reaches the `system` view; a run without them (older recordings) shows no line."""
    from gengap_tui.tui.app import GengapApp
    from gengap_tui.tui.widgets.lines import SystemLine

    app = GengapApp(replay=str(_with_system_metrics(tmp_path)), speed=0, runs_dir=str(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 20
        while app.state.run.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        line = app.query_one(SystemLine)
        assert line.display and line._shown.startswith("[b]GPU1 H100 80GB HBM3[/] ")
        last = app.state.run.series.rows[-1]
        assert f"(this run {last['gpu_mem_run_mb'] / 1024:.1f})" in line._shown and "300 W" in line._shown
        await pilot.press("ctrl+g")
        assert not line.display
        await pilot.press("ctrl+g")
        assert line.display
        for _ in range(4):  # error -> loss -> memorization -> examples -> system
            await pilot.press("f9")
        assert app.view == "system"
        await pilot.pause(0.3)
        await pilot.press("f9")
        assert app.view == "error"
    old = GengapApp(replay=str(ROOT / "tests/fixtures/runs/label-noise-es"), speed=0, runs_dir=str(tmp_path))
    async with old.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 20
        while old.state.run.summary is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert not old.query_one(SystemLine).display


def test_the_fake_speaks_the_real_nvidia_ml_py(monkeypatch):
    """Every NVML call the fake answers exists in the real package (nvidia-ml-py, the `gpu` extra),
    and the real package on a machine without a driver leaves nvml() None. Skipped without the
    extra, except in CI (.ci/run installs it), where it fails."""
    try:
        import pynvml
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("nvidia-ml-py is not installed, but CI runs this test: .ci/run installs gengap-tui[gpu]")
        pytest.skip("nvidia-ml-py is not installed (pip install 'gengap-tui[gpu]')")
    calls = [n for n in vars(FakeNVML) if n.startswith(("nvml", "NVML"))] + ["nvmlDeviceGetHandleByUUID"]
    assert [n for n in calls if not hasattr(pynvml, n)] == []
    assert issubclass(pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError)
    if not Path("/proc/driver/nvidia").exists():
        gpus.reset()
        monkeypatch.setitem(sys.modules, "pynvml", pynvml)
        assert gpus.nvml() is None and gpus.visible_gpus() == []
        gpus.reset()


def test_serve_gives_every_tab_the_device(tmp_path):
    from gengap_tui.serve import tab_command

    assert tab_command("default", tmp_path, True, "cuda:1").endswith(f"--runs-dir {tmp_path} --device cuda:1")
    assert "--device" not in tab_command("default", tmp_path)


def test_a_local_sweep_has_a_system_line_and_a_ray_sweep_none():
    from gengap_tui.protocol import Progress, SweepMeta
    from gengap_tui.tui.state import LabState
    from gengap_tui.tui.system import sweep_system_line

    st = LabState(small_cfg())
    st.apply(SweepMeta({"param": "model.width", "values": [2, 4], "gpu": {"index": 3, "name": "NVIDIA A100",
                                                                          "memory_mb": 40960}}), "sweep")
    assert sweep_system_line(st.sweep) == ""  # no epoch yet
    st.apply(Progress({"epoch": 1, "values": [2, 4], "train_err": [0.5, 0.4], "gpu_util": 71.2,
                       "gpu_mem_used_mb": 5120, "cpu_percent": 99.0, "rss_mb": 900}), "sweep")
    assert sweep_system_line(st.sweep) == "[b]GPU3 A100[/] 71% · 5.0 / 40 GB · CPU 99% · RSS 0.9 GB"
    st.sweep.meta["executor"] = "ray"
    assert sweep_system_line(st.sweep) == ""
