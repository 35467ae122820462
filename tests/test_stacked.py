"""Models trained together: GroupedMLP (stacked weights in width buckets), stacked seeds
(`run.seeds`) against their solo runs, and checkpoint / resume of a stacked run."""

import math

import numpy as np
import pytest
import torch

from conftest import small_cfg
from gengap_tui.core.factory import make_trainer
from gengap_tui.core.models import MLP
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.stacked import GroupedMLP, mlp_cost, plan_buckets
from gengap_tui.core.trainer import Trainer


def members(widths, depth=2, act="relu", seed=0):
    out = []
    for i, w in enumerate(widths):
        torch.manual_seed(seed + i)
        out.append(MLP(40, 10, depth, w, act))
    return out


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_grouped_forward_equals_each_member(act, depth):
    widths = [2, 3, 5, 9, 17, 33, 64, 64]
    ms = members(widths, depth, act)
    g = GroupedMLP(ms, act, max_waste=0.5)
    x = torch.randn(7, 40)
    out = g(x)
    assert out.shape == (len(widths), 7, 10)
    for i, m in enumerate(ms):
        torch.testing.assert_close(out[i], m(x), rtol=1e-5, atol=1e-5)
    # per-member inputs [G, B, D]
    xs = torch.randn(len(widths), 5, 40)
    out = g(xs)
    for i, m in enumerate(ms):
        torch.testing.assert_close(out[i], m(xs[i]), rtol=1e-5, atol=1e-5)


def test_padded_units_never_move_and_members_unstack():
    widths = [4, 6, 8]
    ms = members(widths)
    g = GroupedMLP(ms, "sigmoid", max_waste=10.0)  # one bucket, padded to 8 (sigmoid(0) != 0)
    assert len(g.buckets) == 1 and g.buckets[0].padded
    opt = torch.optim.Adam(g.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        loss = g(torch.randn(3, 16, 40)).square().mean() + sum(p.abs().sum() for p in g.decay_parameters())
        opt.zero_grad()
        loss.backward()
        opt.step()
    W1, W2 = g.weights[0], g.weights[1]
    assert torch.all(W1[0, :, 4:] == 0) and torch.all(W1[1, :, 6:] == 0)
    assert torch.all(W2[0, 4:, :] == 0) and torch.all(W2[0, :, 4:] == 0)
    assert torch.all(g.biases[0][0, 0, 4:] == 0)
    x = torch.randn(5, 40)
    out = g(x)
    for i in range(3):
        m = g.member(i)
        assert [l.out_features for l in m.net if isinstance(l, torch.nn.Linear)][0] == widths[i]
        torch.testing.assert_close(m(x), out[i], rtol=1e-5, atol=1e-5)
    assert g.member_params() == [sum(p.numel() for p in m.parameters()) for m in ms]


def test_buckets_bound_the_padding_of_a_geometric_sweep():
    widths = [2, 3, 4, 5, 6, 8, 10, 13, 17, 22, 29, 38, 49, 64, 84, 110, 144, 188, 246, 300]
    plan = plan_buckets(widths, 40, 2, 10, max_waste=0.25)
    assert plan[0][0] == 0 and plan[-1][1] == len(widths)
    assert all(a < b for a, b in plan) and all(plan[i][1] == plan[i + 1][0] for i in range(len(plan) - 1))
    g = GroupedMLP(members(widths), max_waste=0.25)
    assert g.padded_fraction() <= 1.25
    real = sum(mlp_cost(40, w, 2, 10) for w in widths)
    all_widest = len(widths) * mlp_cost(40, 300, 2, 10)
    assert all_widest / real > 5  # what padding everything to the widest would waste
    assert len(g.buckets) < len(widths)  # and it does group


def _solo_rows(cfg):
    rows = []
    s = Trainer(cfg).run(on_epoch=rows.append)
    return rows, s


@pytest.mark.parametrize("extra", [
    ["optim.optimizer=adam", "noise.label_noise=0.2"],
    ["optim.optimizer=sgd", "optim.lr=0.05", "regularization.weight_decay=0.01", "regularization.l1=1e-5"],
    ["optim.optimizer=adamw", "regularization.weight_decay=0.05", "ratt.enabled=true", "ratt.n_random=100",
     "optim.schedule=cosine"],
])
def test_each_stacked_seed_equals_its_solo_run(extra):
    sets = ["optim.epochs=4", "early_stopping.enabled=false", "model.width=48"] + extra
    cfg = small_cfg(*sets, "run.seeds=3", "seed=5")
    tr = make_trainer(cfg)
    assert isinstance(tr, MultiTrainer) and tr.G == 3
    rows = []
    summary = tr.run(on_epoch=rows.append)
    assert summary["status"] == "completed" and summary["members"] == 3
    assert summary["member_seeds"] == [5, 6, 7]
    per_epoch_members = []
    for k in range(3):
        solo_rows, solo = _solo_rows(small_cfg(*sets, f"seed={5 + k}"))
        for key in ("train_loss", "val_loss"):
            assert math.isclose(tr.last_members[key][k], solo_rows[-1][key], rel_tol=1e-4), (k, key)
        for key in ("train_err", "val_err"):
            assert abs(tr.last_members[key][k] - solo_rows[-1][key]) <= 2.5e-3, (k, key)
        assert abs(summary["test_err_members"][k] - solo["test_err"]) <= 2e-3
        per_epoch_members.append(solo_rows)
    # the row is the mean over seeds, with the spread beside it
    last = rows[-1]
    vals = [r[-1]["val_err"] for r in per_epoch_members]
    assert last["val_err"] == pytest.approx(np.mean(vals), abs=2e-3)
    assert last["val_err_min"] == pytest.approx(min(vals), abs=2.5e-3)
    assert last["val_err_max"] == pytest.approx(max(vals), abs=2.5e-3)
    assert last["val_err_min"] <= last["val_err"] <= last["val_err_max"]
    assert last["members"] == 3 and last["val_err_std"] >= 0


def test_seeds_differ_in_noise_draw_and_early_stopping_follows_the_mean():
    cfg = small_cfg("run.seeds=4", "noise.label_noise=0.3", "early_stopping.patience=3", "optim.epochs=40")
    tr = MultiTrainer(cfg)
    assert len({tuple(row) for row in tr.changed.int().tolist()}) == 4  # each seed its own noise draw
    rows = []
    s = tr.run(on_epoch=rows.append)
    assert s["status"] == "early_stopped"
    means = [r["val_err"] for r in rows]
    assert s["best_epoch"] == int(np.argmin(means)) + 1
    assert s["best_value"] == pytest.approx(min(means))
    assert s["restored_best"] and len(s["test_err_members"]) == 4
    assert s["test_err"] == pytest.approx(np.mean(s["test_err_members"]))
    assert "train_clean_err_min" in rows[-1] and "noisy_memorized_max" in rows[-1]
    assert rows[-1]["samples_per_s"] == pytest.approx(4 * 500 / rows[-1]["epoch_seconds"])


def test_stacked_seeds_resume_bit_for_bit():
    cfg = small_cfg("run.seeds=2", "optim.epochs=6", "early_stopping.enabled=false", "noise.label_noise=0.1")
    full = []
    MultiTrainer(cfg).run(on_epoch=full.append)
    states = []
    tr = MultiTrainer(cfg)
    part = []

    def on_epoch(row):
        part.append(row)
        if row["epoch"] == 3:
            tr.request_stop()

    s = tr.run(on_epoch=on_epoch, on_checkpoint=states.append, checkpoint_every_s=0)
    assert s["status"] == "cancelled"
    state = states[-1]
    assert state["epoch"] == 3
    tr2 = MultiTrainer(cfg)
    tr2.load_checkpoint(state)
    rest = []
    tr2.run(on_epoch=rest.append)
    assert [r["epoch"] for r in rest] == [4, 5, 6]
    for a, b in zip(full[3:], rest):
        assert a["train_loss"] == b["train_loss"] and a["val_err"] == b["val_err"]


def test_seeds_config_is_validated():
    from gengap_tui.config import ConfigError

    with pytest.raises(ConfigError, match=r"run\.seeds"):
        small_cfg("run.seeds=65")
    with pytest.raises(ConfigError, match=r"run\.seeds"):
        small_cfg("run.seeds=0")


def test_bfloat16_autocast_trains_and_warns_on_cpu():
    events = []
    rows = []
    cfg = small_cfg("optim.epochs=3", "run.precision=bfloat16", "run.seeds=2")
    s = make_trainer(cfg).run(on_epoch=rows.append, on_event=events.append)
    assert s["status"] == "completed" and all(math.isfinite(r["train_loss"]) for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert any(e["event"] == "warning" and "bfloat16" in e["message"] for e in events)
    ref = []
    make_trainer(small_cfg("optim.epochs=3", "run.seeds=2")).run(on_epoch=ref.append)
    assert rows[0]["train_loss"] != ref[0]["train_loss"]  # it really ran in lower precision
    assert abs(rows[0]["train_loss"] - ref[0]["train_loss"]) < 0.1


def test_stacked_cnn_forward_equals_each_member():
    from gengap_tui.core.models import CNN1D
    from gengap_tui.core.stacked import StackedCNN1D

    ms = []
    for i in range(3):
        torch.manual_seed(i)
        ms.append(CNN1D(40, 10, channels=8, conv_layers=3, kernel_size=5))
    st = StackedCNN1D(ms)
    x = torch.randn(6, 40)
    out = st(x)
    xs = torch.randn(3, 4, 40)
    outs = st(xs)
    for i, m in enumerate(ms):
        torch.testing.assert_close(out[i], m(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(outs[i], m(xs[i]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(st.member(i)(x), m(x), rtol=1e-6, atol=1e-6)
    assert st.member_params() == [sum(p.numel() for p in ms[0].parameters())] * 3


def test_each_stacked_cnn_seed_equals_its_solo_run():
    sets = ["model.kind=cnn1d", "model.channels=16", "optim.epochs=3", "early_stopping.enabled=false",
            "noise.label_noise=0.2", "optim.lr=0.003"]
    tr = make_trainer(small_cfg(*sets, "run.seeds=2", "seed=3"))
    assert isinstance(tr, MultiTrainer)
    summary = tr.run()
    for k in range(2):
        solo_rows, solo = _solo_rows(small_cfg(*sets, f"seed={3 + k}"))
        assert math.isclose(tr.last_members["train_loss"][k], solo_rows[-1]["train_loss"], rel_tol=1e-4)
        assert abs(tr.last_members["val_err"][k] - solo_rows[-1]["val_err"]) <= 2.5e-3
        assert abs(summary["test_err_members"][k] - solo["test_err"]) <= 2e-3
