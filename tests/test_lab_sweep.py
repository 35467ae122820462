"""The lab's sweep view: a sweep directory opened, followed while it is written, and a sweep
started (and stopped) from the lab in a spawned child."""

import json
import math
import subprocess
import time
from pathlib import Path

import pytest

from conftest import wire, PYTHON, ROOT, plotted, run_from_palette, wait_for, stop_reason_ok
from gengap_tui.sources import SweepDirSource as SweepSource, is_sweep_dir
from gengap_tui.runs import read_json, read_jsonl
from gengap_tui.sources import LiveSweepSource
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.screenshot import screenshot_sweep, settle_curves
from gengap_tui.tui.series import SweepSeries, value_ticks

SMALL = ["data.n_train=300", "data.n_val=200", "device=cpu", "noise.label_noise=0.1", "optim.lr=0.01"]
VALUES = [2.0, 4.0, 8.0, 16.0]


def line(calls, label):
    return next((a[0], a[1]) for name, a, kw in calls if name == "plot" and kw.get("label") == label)


def synth_sweep(d: Path, values=(2, 4, 8, 16, 32, 64), train=(0.6, 0.3, 0.05, 0.0, 0.0, 0.0),
                test=(0.5, 0.4, 0.45, 0.6, 0.42, 0.35), finished=True, epochs=3) -> Path:
    """A sweep directory as core.sweep writes it, with numbers chosen so that the threshold (16)
    and the peak (16, dip at 4) are known."""
    d.mkdir(parents=True, exist_ok=True)
    values = [float(v) for v in values]
    (d / "sweep.json").write_text(json.dumps({"param": "model.width", "values": values, "preset": "synth",
                                              "epochs": epochs, "seeds": 1, "together": True, "device": "cpu"}))
    with open(d / "progress.jsonl", "w") as f:
        for e in range(1, epochs + 1):
            f.write(json.dumps({"epoch": e, "values": values, "train_err": list(train), "val_err": list(test),
                                "test_err": list(test)}) + "\n")
    if finished:
        with open(d / "sweep.jsonl", "w") as f:
            for v, tr, te in zip(values, train, test):
                f.write(json.dumps({"param": "model.width", "value": v, "width": int(v), "train_err": tr,
                                    "val_err": te, "test_err": te, "epochs_run": epochs,
                                    "status": "completed"}) + "\n")
        (d / "summary.json").write_text(json.dumps({
            "status": "completed", "wall_seconds": 3.0, "interpolation_threshold": 16.0, "peak_value": 16.0,
            "peak_test_err": 0.6, "dip_value": 4.0, "dip_test_err": 0.4, "last_test_err": 0.35,
            "peak_prominence": 0.2}))
    return d


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """A real (tiny) sweep written by core.sweep: 4 widths trained together for 3 epochs."""
    from gengap_tui.config import build
    from gengap_tui.core.sweep import Sweep

    cfg = build({"name": "tiny"}, SMALL + ["optim.epochs=3"])
    d = tmp_path_factory.mktemp("sweeps") / "sweep-tiny"
    Sweep(cfg, "model.width", VALUES).run(d)
    return d


# ------------------------------------------------------------------------------------ pure parts
def test_value_ticks_label_the_real_values_and_thin_out_when_crowded():
    pos, labels = value_ticks([2, 4, 8, 16], log=True, max_ticks=10)
    assert labels == ["2", "4", "8", "16"] and pos == pytest.approx([math.log10(v) for v in (2, 4, 8, 16)])
    many = [2, 3, 4, 5, 6, 8, 10, 13, 17, 22, 29, 38, 49, 64, 84, 110, 144, 188, 246, 300]
    pos, labels = value_ticks(many, log=True, max_ticks=6)
    assert labels[0] == "2" and labels[-1] == "300" and len(labels) <= 6
    assert value_ticks([0.0, 0.5, 1.0], log=False, max_ticks=5) == ([0.0, 0.5, 1.0], ["0", "0.5", "1"])


def test_sweep_series_keeps_each_values_latest_numbers():
    sw = SweepSeries([2, 4, 8])
    sw.add_progress({"epoch": 1, "values": [2, 4, 8], "train_err": [0.5, 0.2, 0.0], "test_err": [0.6, 0.5, 0.4]})
    sw.add_progress({"epoch": 2, "values": [4], "train_err": [0.005], "test_err": ["nan"]})  # one at a time
    assert sw.get("train_err") == ([2.0, 4.0, 8.0], [0.5, 0.005, 0.0])
    assert sw.get("test_err") == ([2.0, 8.0], [0.6, 0.4])  # a diverged (nan) value is left out
    assert sw.threshold() == 4.0 and sw.epoch == 2 and sw.known == 3


def test_sweep_source_waits_for_a_half_written_line(tmp_path):
    d = synth_sweep(tmp_path / "s", finished=False, epochs=1)
    with open(d / "progress.jsonl", "a") as f:
        f.write('{"epoch": 2, "values": [2.0], "train_')
    src = SweepSource(d)
    msgs = wire(src.poll())
    assert [m["type"] for m in msgs] == ["sweep_meta", "progress"]
    assert wire(src.poll()) == [] and not src.finished
    with open(d / "progress.jsonl", "a") as f:
        f.write('err": [0.1]}\n')
    assert [m["row"]["epoch"] for m in wire(src.poll())] == [2]
    assert is_sweep_dir(d) and not is_sweep_dir(tmp_path)


# ------------------------------------------------------------------------------------ the view
@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_sweep_view_plots_error_against_log_width(real_sweep, tmp_path):
    rows = read_jsonl(real_sweep / "sweep.jsonl")
    app = GengapApp(sweep=real_sweep, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 10)
        assert app.view == "sweep"
        await settle_curves(app, pilot)
        calls = plotted(app)
        logs = [math.log10(v) for v in VALUES]
        for key, label in (("test_err", "test err"), ("train_err", "train err"), ("val_err", "val err")):
            xs, ys = line(calls, label)
            assert xs == pytest.approx(logs)
            assert ys == pytest.approx([r[key] for r in rows])
        [(_, (pos, labels), _)] = [c for c in calls if c[0] == "xticks"]
        assert labels == ["2", "4", "8", "16"] and pos == pytest.approx(logs)
        status = str(app.query_one("#status").render())
        assert "sweep model.width" in status and "4/4 values" in status and "epoch 3/3" in status
        assert "sweep completed" in str(app.query_one("#summary").render())
        assert app.query_one("#" + "f-data--n-train").value == "300"  # the panels show the sweep's config
        await pilot.press("f9")  # test error against parameter count (log x): its own ticks
        assert app.view == "sweep-params"
        await settle_curves(app, pilot)
        calls = plotted(app)
        xs, ys = line(calls, "test err")
        assert xs == pytest.approx([math.log10(r["n_params"]) for r in rows])
        assert ys == pytest.approx([r["test_err"] for r in rows])
        await pilot.press("f9")  # the norm-based measures against the width, log10
        assert app.view == "sweep-norms"
        await settle_curves(app, pilot)
        calls = plotted(app)
        for key, label in (("weight_norm", "weight norm"), ("spectral_norm_product", "spectral norm product")):
            xs, ys = line(calls, label)
            assert xs == pytest.approx(logs)
            assert ys == pytest.approx([math.log10(r[key]) for r in rows])
        await pilot.press("f9")  # a sweep directory keeps the run views in its cycle (only a sweep this
        assert app.view == "error"  # lab trains cycles its own views alone: tests/test_new_user.py)
        await pilot.press("f9", "f9", "f9", "f9")  # loss, memorization, examples (issue 25), system (issue 24)
        assert app.view == "system"
        await pilot.press("f9")
        assert app.view == "sweep"


async def test_threshold_and_peak_are_marked(tmp_path):
    d = synth_sweep(tmp_path / "synth")
    app = GengapApp(sweep=d, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 10)
        await settle_curves(app, pilot)
        calls = plotted(app)
        assert ("vline", (math.log10(16), "magenta"), {}) in calls
        assert any(name == "text" and a[0] == "interpolation threshold" and a[1] == pytest.approx(math.log10(16))
                   for name, a, kw in calls)
        [(_, (title,), _)] = [c for c in calls if c[0] == "title"]
        assert "interpolation threshold 16" in title
        summary = str(app.query_one("#summary").render())
        assert "interpolation threshold width 16" in summary
        assert "test err peak 0.6000 @ width 16 (dip 0.4000 @ 4)" in summary


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_a_sweep_being_written_is_followed_with_a_half_written_line(tmp_path):
    d = synth_sweep(tmp_path / "live", values=(2, 4, 8), train=(0.5, 0.2, 0.1), test=(0.6, 0.5, 0.55),
                    finished=False, epochs=1)
    with open(d / "progress.jsonl", "w") as f:  # one value at a time: only width 2 so far
        f.write(json.dumps({"epoch": 1, "values": [2.0], "train_err": [0.5], "test_err": [0.6]}) + "\n")
        f.write('{"epoch": 2, "values": [2.0], "train_err": [0.0')
    app = GengapApp(sweep=d, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.series.epoch == 1, 30)
        await settle_curves(app, pilot)
        assert line(plotted(app), "test err") == ([math.log10(2)], [0.6])
        assert "1/3 values" in str(app.query_one("#status").render())
        with open(d / "progress.jsonl", "a") as f:
            f.write("]}\n")
            f.write(json.dumps({"epoch": 1, "values": [4.0], "train_err": [0.004], "test_err": [0.5]}) + "\n")
        assert await wait_for(pilot, lambda: app.state.sweep.series.known == 2, 30)
        assert app.state.sweep.series.threshold() == 2.0  # width 2 reached train err 0 at epoch 2
        await settle_curves(app, pilot)
        calls = plotted(app)
        assert ("vline", (math.log10(2), "magenta"), {}) in calls
        assert line(calls, "test err")[0] == pytest.approx([math.log10(2), math.log10(4)])
        (d / "sweep.jsonl").write_text(json.dumps({"value": 2.0, "train_err": 0.0, "test_err": 0.61,
                                                   "status": "completed"}) + "\n")
        (d / "summary.json").write_text(json.dumps({"status": "cancelled", "reason": "stopped by the user",
                                                    "interpolation_threshold": 2.0}))
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 30)
        assert app.state.sweep.series.latest[2.0]["test_err"] == 0.61
        assert "sweep cancelled" in app.state.status


# ------------------------------------------------------------------------------------ from the lab
async def test_empty_sweep_values_say_what_to_do(tmp_path):
    app = GengapApp("default", SMALL, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        assert app.source is None and "nothing to sweep" in app.state.status
        assert "sweep.values" in app.state.status and app.view == "error"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
async def test_starting_a_sweep_from_the_lab_writes_a_sweep_dir(tmp_path):
    app = GengapApp("default", SMALL + ["optim.epochs=3", "sweep.values=[2,4,8]"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        assert app.view == "sweep" and isinstance(app.source, LiveSweepSource)
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 90)
        assert app.state.sweep.summary["status"] == "completed"
        await settle_curves(app, pilot)
        assert line(plotted(app), "test err")[0] == pytest.approx([math.log10(v) for v in (2, 4, 8)])
    [d] = [p for p in tmp_path.iterdir() if "-sweep-default-" in p.name]
    rows = read_jsonl(d / "sweep.jsonl")
    assert [r["value"] for r in rows] == [2.0, 4.0, 8.0] and all(r["status"] == "completed" for r in rows)
    assert read_json(d / "sweep.json")["config"]["data"]["n_val"] == 200  # the overrides were used
    assert (d / "worker.log").is_file()


@pytest.mark.slow
async def test_a_sweep_started_from_the_palette_stops_with_f7(tmp_path):
    app = GengapApp("default", SMALL + ["optim.epochs=500", "sweep.values=[2,4]"], runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_from_palette(pilot, "sweep model.width", "Sweep model.width")
        assert await wait_for(pilot, lambda: app.state.sweep.series.epoch >= 1, 90)
        await pilot.press("f7")
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 30)
        assert app.state.sweep.summary["status"] == "cancelled"
        d = app.state.sweep.sweep_dir
    rows = read_jsonl(d / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"] and rows[0]["epochs_run"] < 500
    # the lab's reason, said once (issue 26: a Ray sweep said it twice)
    summary = read_json(d / "summary.json")
    assert stop_reason_ok(summary, "stopped by the user from the lab"), summary["reason"]
    assert all(stop_reason_ok(r, "stopped by the user from the lab") for r in rows), rows


@pytest.mark.slow
def test_sweep_child_ends_cancelled_on_sigterm(tmp_path):
    from gengap_tui.config import build
    from gengap_tui.worker import SweepHandle

    cfg = build({"name": "term"}, SMALL + ["optim.epochs=500"])
    h = SweepHandle.start(cfg.dump(), tmp_path, "model.width", [2, 4])
    try:
        msgs = []
        deadline = time.monotonic() + 90
        while not any(m["type"] == "progress" for m in msgs) and time.monotonic() < deadline:
            msgs += wire(h.poll())
            time.sleep(0.05)
        assert h.run_dir is not None and any(m["type"] == "progress" for m in msgs)
        h.terminate()
        deadline = time.monotonic() + 30
        while not h.finished and time.monotonic() < deadline:
            wire(h.poll())
            time.sleep(0.05)
        assert h.summary["status"] == "cancelled" and stop_reason_ok(h.summary, "stopped by SIGTERM"), h.summary
        assert read_json(h.run_dir / "summary.json")["reason"] == h.summary["reason"]
        assert (h.run_dir / "sweep.jsonl").is_file()
        with pytest.raises(ValueError, match="cannot be tweaked"):
            h.tweak(lr=0.1)
    finally:
        h.close(5)


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
def test_sweep_child_reports_a_bad_value_without_a_directory(tmp_path):
    from gengap_tui.config import build
    from gengap_tui.worker import SweepHandle

    h = SweepHandle.start(build({"name": "bad"}, SMALL).dump(), tmp_path, "model.width", [])
    h.join(60)
    msgs = wire(h.poll())
    assert h.error and "nothing to sweep" in h.error and h.run_dir is None, msgs
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ screenshots
def test_screenshot_sweep_writes_an_svg_without_importing_torch(tmp_path):
    d = synth_sweep(tmp_path / "shot")
    out = tmp_path / "sweep.svg"
    code = (f"import sys; from gengap_tui.tui.screenshot import screenshot_sweep; "
            f"screenshot_sweep({str(out)!r}, (100, 30), {str(d)!r}); print('torch' in sys.modules)")
    res = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False"
    svg = out.read_text()
    assert svg.startswith("<svg") and "interpolation" in svg


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_plot_is_redrawn_when_the_summary_or_the_width_changes(tmp_path):
    """Without any forced redraw: the title takes the threshold and peak once summary.json is
    read, and is fit again to the plot's width when the panels open or close."""
    d = synth_sweep(tmp_path / "synth")
    app = GengapApp(sweep=d, runs_dir=tmp_path)

    def title() -> str:
        return " ".join(args[0] for name, args, _ in plotted(app) if name == "title")

    async with app.run_test(size=(140, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.sweep.summary is not None, 10)
        assert await wait_for(pilot, lambda: "interpolation threshold 16" in title(), 10), title()
        wide = app.query_one("#plot").size.width
        await pilot.press("f2")  # the panels close: the plot widens, and is drawn for its new width
        assert await wait_for(pilot, lambda: app.query_one("#plot").size.width > wide, 10)
        assert await wait_for(pilot, lambda: app._drawn_version[-1] == app.query_one("#plot").size.width, 10)
        assert "test peak" in title()  # room for the peak and dip now
