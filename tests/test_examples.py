"""Which training examples are learned when (core/examples.py, examples.npz): the trainer's
device-side counters equal a reference computed here from every epoch's predictions, made in plain
torch by the test after each epoch (not through the trainer's evaluation)."""

import numpy as np
import pytest
import torch

from conftest import small_cfg
from gengap_tui.core.multi import MultiTrainer
from gengap_tui.core.trainer import Trainer

FIELDS = ("first_learned", "last_learned", "last_forgotten", "forgetting_events", "correct")


def reference(correct_by_epoch: np.ndarray) -> dict[str, np.ndarray]:
    """Toneva et al.'s statistics from the per-epoch correctness `[E, ...]`, one example at a time."""
    E, shape = correct_by_epoch.shape[0], correct_by_epoch.shape[1:]
    out = {k: np.zeros(shape, np.int64) for k in FIELDS}
    for idx in np.ndindex(shape):
        prev = False
        for e in range(1, E + 1):
            c = bool(correct_by_epoch[e - 1][idx])
            if c and not out["first_learned"][idx]:
                out["first_learned"][idx] = e
            if c and not prev:
                out["last_learned"][idx] = e
            if prev and not c:
                out["last_forgotten"][idx] = e
                out["forgetting_events"][idx] += 1
            prev = c
        out["correct"][idx] = prev
    return out


def train_recording(tr):
    """Run `tr`, recording after every epoch whether each training example's prediction equals
    its training label (one member: [N]; a stack: [G, N])."""
    seen = []

    def on_epoch(_row):
        tr.model.eval()
        with torch.no_grad():
            out = tr.model(tr.x_train).float()
        seen.append((out.argmax(-1) == tr.y_train).numpy().reshape(tr.G, -1))

    summary = tr.run(on_epoch=on_epoch)
    return summary, np.stack(seen)


def check(tr, seen):
    got = tr.examples.arrays(tr.changed)
    ref = reference(seen)
    for k in FIELDS:
        np.testing.assert_array_equal(got[k].astype(np.int64), ref[k].astype(np.int64), err_msg=k)
    assert int(got["epochs"]) == seen.shape[0]
    np.testing.assert_array_equal(got["noisy"], np.broadcast_to(tr.changed.numpy(), got["noisy"].shape))
    return got


def test_counters_equal_reference_from_saved_predictions():
    # label noise at a high learning rate: examples are learned, forgotten and learned again
    tr = Trainer(small_cfg("noise.label_noise=0.3", "optim.lr=0.05", "optim.epochs=25", "data.n_train=300",
                         "early_stopping.enabled=false"))
    summary, seen = train_recording(tr)
    assert summary["status"] == "completed"
    got = check(tr, seen)
    # the run is one where the statistics are not trivial: some examples were forgotten, some
    # learned late, the noisy ones among them
    assert got["forgetting_events"].sum() > 10
    assert got["first_learned"].max() > 3
    assert got["noisy"].sum() > 50


def test_stacked_seeds_count_every_member():
    tr = MultiTrainer(small_cfg("run.seeds=3", "noise.label_noise=0.2", "optim.lr=0.05", "optim.epochs=12",
                                "early_stopping.enabled=false", "data.n_train=300"))
    _, seen = train_recording(tr)
    got = check(tr, seen)
    assert got["first_learned"].shape == (3, 300)
    # each seed has its own noise draw, so its own noisy examples
    assert not np.array_equal(got["noisy"][0], got["noisy"][1])


def test_resumed_run_counts_like_an_uninterrupted_one():
    cfg = small_cfg("noise.label_noise=0.3", "optim.lr=0.05", "optim.epochs=12", "data.n_train=300",
                    "early_stopping.enabled=false")
    whole = Trainer(cfg)
    whole.run()
    states = []
    first = Trainer(cfg)
    first.run(on_epoch=lambda r: r["epoch"] == 5 and first.request_stop(),
              on_checkpoint=states.append, checkpoint_every_s=0.0)
    resumed = Trainer(cfg)
    resumed.load_checkpoint(states[-1])
    assert resumed.start_epoch == 5
    resumed.run()
    a, b = whole.examples.arrays(whole.changed), resumed.examples.arrays(resumed.changed)
    for k in FIELDS + ("epochs",):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("how", ["completed", "early_stopped", "cancelled"])
def test_run_directory_has_examples_npz(tmp_path, how):
    from gengap_tui.control import RunControl
    from gengap_tui.session import run_session

    sets = ["noise.label_noise=0.2", "optim.epochs=8", "data.n_train=300", "early_stopping.enabled=false"]
    if how == "early_stopped":
        sets += ["early_stopping.enabled=true", "early_stopping.patience=1", "optim.lr=0.2"]
    control = RunControl()
    stop_at = {"cancelled": 3}.get(how)

    def emit(msg):
        if stop_at and getattr(msg, "row", None) and msg.row.get("epoch") == stop_at:
            control.request_stop("stopped by the test")

    out = run_session(small_cfg(*sets), tmp_path, control=control, emit=emit)
    assert out.summary["status"] == how, out.summary
    with np.load(out.run_dir / "examples.npz") as z:
        assert int(z["epochs"]) == out.summary["epochs_run"]
        assert z["first_learned"].shape == (1, 300)
        assert 0 < z["noisy"].sum() <= out.summary["n_corrupted"]
        assert z["first_learned"].max() <= out.summary["epochs_run"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("seeds", [1, 3])
def test_counters_through_cuda_graphs_equal_reference(seeds):
    """With CUDA graphs the evaluation is replayed: the counters read the tensor its recording
    made (refilled by each replay), and still equal the reference."""
    cls = MultiTrainer if seeds > 1 else Trainer
    tr = cls(small_cfg("noise.label_noise=0.3", "optim.lr=0.05", "optim.epochs=10", "data.n_train=300",
                       "early_stopping.enabled=false", "device=cuda", f"run.seeds={seeds}"))
    recorded = []

    def on_epoch(_row):
        tr.model.eval()
        with torch.no_grad():
            out = tr.model(tr.x_train).float()
        recorded.append((out.argmax(-1) == tr.y_train).cpu().numpy().reshape(tr.G, -1))

    tr.run(on_epoch=on_epoch)
    assert tr._graphs is not None and tr._graphs.replays >= 8
    got = tr.examples.arrays(tr.changed)
    ref = reference(np.stack(recorded))
    for k in FIELDS:
        np.testing.assert_array_equal(got[k].astype(np.int64), ref[k].astype(np.int64), err_msg=k)


@pytest.mark.slow  # over ~2 s (the marker's rule: README, Set up)
async def test_the_examples_view_draws_a_runs_examples_npz(tmp_path):
    from conftest import wait_for
    from gengap_tui.session import run_session
    from gengap_tui.tui.app import GengapApp

    out = run_session(small_cfg("noise.label_noise=0.2", "optim.epochs=6", "data.n_train=300",
                                "early_stopping.enabled=false"), tmp_path / "runs")
    app = GengapApp(replay=out.run_dir, speed=0, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        plot = app.query_one("#plot")
        builds = plot.builds
        await pilot.press("f9", "f9", "f9")  # loss, memorization, examples
        assert app.view == "examples"
        assert await wait_for(pilot, lambda: plot.builds > builds, 10)
        await pilot.pause(0.3)
        text = "\n".join(strip.text for strip in plot._strips)
        assert "learned by epoch" in text and "forgetting events" in text
        assert "clean (" in text and "noisy (" in text and "never" in text


def test_a_captured_state_does_not_alias_the_live_counters():
    """A checkpoint's pending state holds clones of the counters (on the device until it is saved):
    the next epoch's update, in place, leaves the captured state as it was (on a CPU `.cpu()` is no
    copy, so the state once aliased the live counters)."""
    tr = Trainer(small_cfg("optim.epochs=2", "data.n_train=300", "early_stopping.enabled=false"))
    tr.run()
    captured = tr._capture(2, {})["examples"]
    before = {k: captured[k].clone() for k in FIELDS}
    assert all(captured[k].device == tr.examples.correct.device for k in FIELDS)  # no copy to the host yet
    tr.examples.update(3, ~tr.examples.correct)  # every prediction flips: every counter moves
    assert not torch.equal(tr.examples.correct, before["correct"])
    for k in FIELDS:
        assert torch.equal(captured[k], before[k]), k
    assert captured["epochs"] == 2 and tr.examples.epochs == 3
