"""The lab on a run of K stacked seeds (`run.seeds`): the mean curve with a min-max band."""

from pathlib import Path

import pytest

from conftest import ROOT, plotted, wait_for
from gengap_tui.runs import list_runs, load_run
from gengap_tui.tui.app import GengapApp
from gengap_tui.tui.plots import BAND_COLORS
from gengap_tui.tui.screenshot import settle_curves

SEEDS = ["data.n_train=300", "data.n_val=200", "model.width=32", "optim.epochs=4", "run.seeds=3", "device=cpu",
         "noise.label_noise=0.2", "optim.lr=0.01"]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"


def bands(calls):
    """The band lines: plotted without a label."""
    return [(a[0], a[1], kw.get("color")) for name, a, kw in calls if name == "plot" and not kw.get("label")]


def column(rows, key):
    return [r[key] for r in rows]


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory) -> Path:
    """A real 3-seed run, written as the worker writes one."""
    from gengap_tui import runs
    from gengap_tui.config import build
    from gengap_tui.core.factory import make_trainer
    from gengap_tui.core.trainer import device_name

    cfg = build({"name": "seeds"}, SEEDS)
    tr = make_trainer(cfg)
    d = runs.new_run_dir(tmp_path_factory.mktemp("runs"), cfg.name)
    w = runs.RunWriter(d, cfg.dump(), {"torch_version": "test", "device_name": device_name(tr.device)})
    w.finish(tr.run(on_epoch=w.metrics, on_event=w.event))
    return d


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_a_seeds_run_draws_the_mean_and_a_min_max_band(seeds_run, tmp_path):
    rec = load_run(seeds_run)
    assert rec.metrics[-1]["members"] == 3
    app = GengapApp(replay=seeds_run, speed=0, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        await settle_curves(app, pilot)
        epochs = column(rec.metrics, "epoch")
        views = {"error": ("train_err", "val_err"), "loss": ("train_loss", "val_loss"),
                 "memorization": ("train_clean_err", "noisy_memorized")}
        for view, keys in views.items():
            app.view = view
            await settle_curves(app, pilot)
            calls = plotted(app)
            got = bands(calls)
            for i, key in enumerate(keys):
                assert (epochs, column(rec.metrics, f"{key}_min"), BAND_COLORS[i]) in got, (view, key)
                assert (epochs, column(rec.metrics, f"{key}_max"), BAND_COLORS[i]) in got, (view, key)
            # the bands go first, so the mean lines are drawn over them
            first_mean = next(i for i, c in enumerate(calls) if c[0] == "plot" and c[2].get("label"))
            assert all(not c[2].get("label") for c in calls[:first_mean])
            means = {kw["label"]: a[1] for name, a, kw in calls if name == "plot" and kw.get("label")}
            assert column(rec.metrics, keys[0]) in means.values()
            [(_, (title,), _)] = [c for c in calls if c[0] == "title"]
            assert "3 seeds: mean, band = min–max" in title
        assert "3 seeds (mean, band = min–max)" in str(app.query_one("#status").render())
        s = rec.summary
        summary = str(app.query_one("#summary").render())
        assert f"test err {s['test_err']:.4f} ± {s['test_err_std']:.4f} (mean ± std of 3 seeds" in summary


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_a_one_seed_run_draws_no_band(tmp_path):
    app = GengapApp(replay=FIXTURES / "label-noise-es", speed=0, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        for view in ("error", "loss", "memorization"):
            app.view = view
            await settle_curves(app, pilot)
            calls = plotted(app)
            assert bands(calls) == [] and any(c[0] == "plot" for c in calls)
        assert "seeds" not in str(app.query_one("#status").render())
        assert "±" not in str(app.query_one("#summary").render())


@pytest.mark.slow
async def test_the_lab_trains_seeds_from_its_overrides(tmp_path):
    """run.seeds is not in the panels: the --set override must survive the panels' validation."""
    app = GengapApp("default", SEEDS, runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 90)
        assert app.state.run.summary["status"] == "completed" and app.state.run.summary["members"] == 3
        await settle_curves(app, pilot)
        assert len(bands(plotted(app))) == 4  # train and val, min and max
    [d] = list_runs(tmp_path)
    cfg = load_run(d).config
    assert cfg["run"]["seeds"] == 3 and cfg["data"]["n_val"] == 200 and cfg["device"] == "cpu"
