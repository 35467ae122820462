"""Issue 18: sweeps that observe early stopping (what stopping would have kept, and the epochs it
saves), the norm-based measures (against a direct SVD of a saved model.pt), and the two presets
that answer D2L 5.5's questions."""

import math

import pytest
import torch

from gengap_tui import presets
from gengap_tui.config import build
from gengap_tui.core import norms
from gengap_tui.core.models import CNN1D, MLP
from gengap_tui.core.sweep import Sweep
from gengap_tui.runs import read_json, read_jsonl
from gengap_tui.session import run_session

SMALL = ["data.n_train=300", "data.n_val=200", "device=cpu", "optim.lr=0.01", "early_stopping.patience=3",
         "early_stopping.observe=true", "early_stopping.restore_best=true", "run.threads=1"]
OBSERVED = ("best_epoch", "would_stop_epoch", "test_err_kept", "test_err_final", "epochs_saved")


def _check_against_own_metrics(row: dict, d, patience: int) -> list[dict]:
    """The row's observe fields against the value's own metrics.jsonl (es_wait, es_best_epoch)."""
    metrics = read_jsonl(d / row["run_dir"] / "metrics.jsonl")
    assert row["epochs_run"] == len(metrics)
    fired = [m["epoch"] for m in metrics if m["es_wait"] is not None and m["es_wait"] >= patience]
    assert row["would_stop_epoch"] == (fired[0] if fired else None)
    if fired:
        assert row["best_epoch"] == metrics[fired[0] - 1]["es_best_epoch"] < row["would_stop_epoch"]
        assert row["epochs_saved"] == row["epochs_run"] - row["would_stop_epoch"] > 0
    assert row["test_err"] == row["test_err_final"]
    # the final values of the norms are the last epoch's
    assert row["weight_norm"] == pytest.approx(metrics[-1]["weight_norm"])
    assert row["spectral_norm_product"] == pytest.approx(metrics[-1]["spectral_norm_product"])
    return metrics


def _stopped_for_real(cfg_sets: list[str], tmp_path) -> dict:
    """The same value trained with early stopping that really stops (restore-best)."""
    cfg = build({}, cfg_sets + ["early_stopping.observe=false"])
    out = run_session(cfg, tmp_path / "real")
    return out.summary


def test_one_at_a_time_observe_sweep_keeps_what_real_early_stopping_keeps(tmp_path):
    """A noise sweep (values one after another): each value trains to the end; `test_err_kept` is
    the test error of the weights a run that really stops keeps, and it stops where the sweep says."""
    sets = SMALL + ["optim.epochs=30", "model.width=64"]
    cfg = build({}, sets)
    sw = Sweep(cfg, "noise.label_noise", [0.0, 0.4])
    assert sw.observe and not sw.together
    summary = sw.run(tmp_path / "sweep")
    assert summary["status"] == "completed" and summary["observe"]
    rows = read_jsonl(tmp_path / "sweep" / "sweep.jsonl")
    for row in rows:
        assert all(k in row for k in OBSERVED), row
        assert row["epochs_run"] == 30  # observing: every value trains to the end
        _check_against_own_metrics(row, tmp_path / "sweep", 3)
        value_summary = read_json(tmp_path / "sweep" / row["run_dir"] / "summary.json")
        assert row["test_err_final"] == value_summary["final_test_err"]
        real = _stopped_for_real(sets + [f"noise.label_noise={row['value']}"], tmp_path / str(row["value"]))
        if row["would_stop_epoch"] is not None:
            assert real["status"] == "early_stopped" and real["stop_epoch"] == row["would_stop_epoch"]
        assert real["best_epoch"] == row["best_epoch"]
        assert real["test_err"] == pytest.approx(row["test_err_kept"], abs=1e-9)
    noisy = rows[1]
    assert noisy["would_stop_epoch"] is not None and noisy["epochs_saved"] > 0
    # the lab's sweep view plots the kept test error beside the final one, and says the difference
    from gengap_tui.protocol import fmt_value
    from gengap_tui.tui.plots import sweep_plot
    from gengap_tui.tui.state import SweepState
    from gengap_tui.tui.texts import sweep_outcome

    st = SweepState.expecting("noise.label_noise", [0.0, 0.4])
    st.series.add_final(rows)
    st.summary = summary
    lines = {label: (xs, ys) for xs, ys, label, _ in sweep_plot(st, 100).lines}
    assert lines["test err, early-stopped"] == ([0.0, 0.4], [r["test_err_kept"] for r in rows])
    assert lines["test err"] == ([0.0, 0.4], [r["test_err_final"] for r in rows])
    text = sweep_outcome(st)
    for r in rows:
        assert f"{fmt_value(r['value'])} {r['test_err_kept'] - r['test_err_final']:+.3f}" in text


def test_grouped_observe_sweep_reads_the_kept_epoch_from_its_own_test_errors(tmp_path):
    """A width sweep trained together: early stopping is followed per value (on the mean over its
    seeds), and the kept test error is that value's test error at the kept epoch."""
    cfg = build({}, SMALL + ["optim.epochs=25", "noise.label_noise=0.3", "run.seeds=2"])
    sw = Sweep(cfg, "model.width", [8, 64])
    assert sw.together and sw.observe
    summary = sw.run(tmp_path / "sweep")
    assert summary["status"] == "completed"
    rows = read_jsonl(tmp_path / "sweep" / "sweep.jsonl")
    assert any(r["would_stop_epoch"] is not None for r in rows)
    progress = read_jsonl(tmp_path / "sweep" / "progress.jsonl")
    for p in progress:
        for lo, mean, hi in zip(p["test_err_min"], p["test_err"], p["test_err_max"]):
            assert lo <= mean <= hi and mean == pytest.approx((lo + hi) / 2)
    # the lab's sweep view draws the spread as bands under the means
    from gengap_tui.tui.plots import sweep_plot
    from gengap_tui.tui.state import SweepState

    st = SweepState.expecting("model.width", [8, 64])
    st.meta = read_json(tmp_path / "sweep" / "sweep.json")
    st.series.add_final(rows)
    st.summary = summary
    plot = sweep_plot(st, 100)
    band_ys = sorted(tuple(ys) for _, ys, _ in plot.bands)
    assert tuple(r["test_err_max"] for r in rows) in band_ys
    assert tuple(r["test_err_min"] for r in rows) in band_ys
    assert "2 seeds: mean, band = min–max" in plot.title
    for row in rows:
        metrics = _check_against_own_metrics(row, tmp_path / "sweep", 3)
        assert row["test_err_kept"] == pytest.approx(metrics[row["best_epoch"] - 1]["test_err"])
        assert row["test_err_final"] == pytest.approx(metrics[-1]["test_err"])
        assert (tmp_path / "sweep" / row["run_dir"] / "model.pt").is_file()
        # two seeds: the row's mean lies halfway between their min and max, at every epoch too
        for k in ("train_err", "val_err", "test_err"):
            assert row[k + "_min"] <= row[k] <= row[k + "_max"]
            assert row[k] == pytest.approx((row[k + "_min"] + row[k + "_max"]) / 2)
        if row["would_stop_epoch"] is not None:  # the value's events say so too
            events = read_jsonl(tmp_path / "sweep" / row["run_dir"] / "events.jsonl")
            assert [e["epoch"] for e in events if e["event"] == "would_stop"] == [row["would_stop_epoch"]]


def test_a_sweep_without_observe_trains_with_early_stopping_off(tmp_path):
    cfg = build({}, SMALL[:4] + ["optim.epochs=4"])  # early stopping on, not observing
    sw = Sweep(cfg, "noise.label_noise", [0.1])
    assert not sw.observe and not sw.configs[0].early_stopping.enabled
    sw.run(tmp_path / "s")
    [row] = read_jsonl(tmp_path / "s" / "sweep.jsonl")
    assert row["epochs_run"] == 4 and not any(k in row for k in OBSERVED)


# ------------------------------------------------------------------------------------ norms
@pytest.mark.parametrize("kind", ["mlp", "cnn1d"])
def test_norms_in_metrics_match_an_svd_of_the_saved_model(tmp_path, kind):
    cfg = build({}, SMALL[:4] + ["optim.epochs=12", "early_stopping.enabled=false", f"model.kind={kind}",
                                 "model.width=128", "model.channels=16"])
    out = run_session(cfg, tmp_path)
    last = read_jsonl(out.run_dir / "metrics.jsonl")[-1]
    model = (MLP(40, 10, 2, 128) if kind == "mlp" else CNN1D(40, 10, channels=16))
    model.load_state_dict(torch.load(out.run_dir / "model.pt", weights_only=True))
    # directly: every weight matrix / unfolded kernel, no biases
    mats = [m.weight.detach().double().reshape(m.weight.shape[0], -1) for m in model.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))]
    assert len(mats) == (3 if kind == "mlp" else 4)
    weight_norm = math.sqrt(sum(float((W ** 2).sum()) for W in mats))
    spectral = math.prod(float(torch.linalg.svdvals(W)[0]) for W in mats)
    assert last["weight_norm"] == pytest.approx(weight_norm, rel=1e-5)
    assert last["spectral_norm_product"] == pytest.approx(spectral, rel=1e-3)
    assert norms.exact(model)["spectral_norm_product"][0] == pytest.approx(spectral, rel=1e-9)
    # they grow as the network fits: the first epoch's are smaller than the last's
    first = read_jsonl(out.run_dir / "metrics.jsonl")[0]
    assert first["weight_norm"] < last["weight_norm"]


def test_stacked_members_norms_are_each_members_own(tmp_path):
    """With stacked seeds the row is the mean of the members' norms (each its own model)."""
    from gengap_tui.core.multi import MultiTrainer

    cfg = build({}, SMALL[:4] + ["optim.epochs=6", "early_stopping.enabled=false", "run.seeds=3",
                                 "model.width=32"])
    tr = MultiTrainer(cfg)
    rows = []
    tr.run(on_epoch=rows.append)
    per = [norms.exact(tr.model.member(g)) for g in range(3)]
    mean_wn = sum(p["weight_norm"][0] for p in per) / 3
    mean_sp = sum(p["spectral_norm_product"][0] for p in per) / 3
    assert rows[-1]["weight_norm"] == pytest.approx(mean_wn, rel=1e-5)
    assert rows[-1]["spectral_norm_product"] == pytest.approx(mean_sp, rel=1e-3)
    assert rows[-1]["weight_norm_min"] < rows[-1]["weight_norm_max"]


def test_a_diverged_run_has_nan_norms_not_a_crash(tmp_path):
    cfg = build({}, SMALL[:3] + ["optim.lr=1e6", "optim.optimizer=sgd", "optim.epochs=5",
                                 "early_stopping.enabled=false"])
    out = run_session(cfg, tmp_path)
    assert out.summary["status"] == "diverged"
    # the norms of weights that are no longer finite are NaN (a gap in the plot), never a number
    model = MLP(4, 3, depth=2, width=8)
    with torch.no_grad():
        next(model.parameters())[0, 0] = math.inf
    got = norms.NormTracker(model).measure()
    assert set(got) == {"weight_norm", "spectral_norm_product"} and len(got["weight_norm"]) == 1
    assert all(math.isnan(x) for x in got["weight_norm"] + got["spectral_norm_product"]), got
    for row in read_jsonl(out.run_dir / "metrics.jsonl"):  # the run's own rows: finite, or NaN, never 0
        for k in ("weight_norm", "spectral_norm_product"):
            assert k not in row or row[k] is None or math.isnan(row[k]) or row[k] > 0, row


# ------------------------------------------------------------------------------------ presets
def test_the_section_presets_are_what_the_issue_asks_for():
    es = presets.load("early-stopping-vs-noise")
    assert es.sweep.param == "noise.label_noise" and list(es.sweep.values) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert es.model.kind == "cnn1d" and es.early_stopping.enabled and es.early_stopping.observe
    wd = presets.load("weight-decay-interpolation")
    assert wd.sweep.param == "regularization.weight_decay" and not wd.early_stopping.enabled
    assert wd.regularization.decoupled and wd.noise.label_noise > 0
    vals = list(wd.sweep.values)
    assert vals[0] == 0 and any(0.01 <= v <= 0.1 for v in vals) and vals[-1] >= 1
