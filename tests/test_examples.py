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


def by_epoch_reference(a):
    """learned_by / kept_by as stated: one comparison of every example per epoch."""
    E, noisy = int(a["epochs"]), a["noisy"].astype(bool)
    out = {}
    for name, mask in (("clean", ~noisy), ("noisy", noisy)):
        f, la, c = a["first_learned"][mask], a["last_learned"][mask], a["correct"][mask].astype(bool)
        n = int(mask.sum())
        if not n:
            continue
        out[name] = ([(f[f > 0] <= e).sum() / n for e in range(1, E + 1)],
                     [(c & (la <= e)).sum() / n for e in range(1, E + 1)])
    return out


@pytest.mark.parametrize("seeds,epochs", [(1, 12), (3, 12), (2, 1), (1, 30)])
def test_learned_by_and_kept_by_equal_the_per_epoch_reference(seeds, epochs):
    """forgetting.stats counts epochs with one bincount (the examples view of a CIFAR-10 run): the
    same numbers as comparing every example at every epoch, on random learning histories with an
    example never learned, one learned at the last epoch only, one learned then forgotten for good,
    one learned, forgotten and learned again, one right throughout."""
    from gengap_tui.forgetting import stats

    rng = np.random.default_rng(seeds * 100 + epochs)
    n = 200
    p = rng.uniform(0.05, 0.95, size=(1, seeds, n))  # each example's chance of being right
    seen = rng.random((epochs, seeds, n)) < p
    seen[:, :, 0] = False                      # never learned
    seen[:, :, 1] = False
    seen[-1, :, 1] = True                      # learned at the last epoch
    seen[:, :, 2] = np.arange(epochs)[:, None] < max(1, epochs - 1)  # learned, then forgotten at the end
    seen[:, :, 3] = np.arange(epochs)[:, None] % 2 == 0              # learned, forgotten, learned ...
    seen[:, :, 4] = True                       # right throughout
    a = {k: v.astype(np.int32) for k, v in reference(seen).items()}
    a["correct"] = a["correct"].astype(bool)
    a["noisy"] = np.broadcast_to(rng.random(n) < 0.3, (seeds, n)).copy()
    a["epochs"] = np.asarray(epochs, np.int32)
    assert (a["first_learned"][:, 0] == 0).all() and (a["first_learned"][:, 1] == epochs).all()
    if epochs > 1:
        assert (a["forgetting_events"][:, 2] == 1).all() and not a["correct"][:, 2].any()
    got, want = stats(a), by_epoch_reference(a)
    for name in ("clean", "noisy"):
        assert got[name]["learned_by"] == want[name][0], name
        assert got[name]["kept_by"] == want[name][1], name
        assert len(got[name]["learned_by"]) == epochs
        assert got[name]["learned_by"][-1] == pytest.approx(1 - got[name]["never"])


def test_learned_by_counts_epochs_outside_the_run_as_the_comparison_does():
    """A file whose epochs lie outside 1..epochs (one written by hand, or cut short) counts as the
    comparison would: an epoch 0 'last learned' of a correct example from the first epoch on, an
    epoch past the end never."""
    from gengap_tui.forgetting import stats

    a = {"first_learned": np.array([[0, 1, 3, 9]], np.int32), "last_learned": np.array([[0, 0, 3, 9]], np.int32),
         "forgetting_events": np.zeros((1, 4), np.int32), "correct": np.array([[True, True, True, True]]),
         "noisy": np.zeros((1, 4), bool), "epochs": np.asarray(3, np.int32)}
    got, want = stats(a), by_epoch_reference(a)
    assert got["clean"]["learned_by"] == want["clean"][0] == [0.25, 0.25, 0.5]
    assert got["clean"]["kept_by"] == want["clean"][1] == [0.5, 0.5, 0.75]


def test_view_reads_a_file_of_another_shape_as_a_message(tmp_path):
    from gengap_tui.forgetting import read_for_view, view_key

    assert view_key(None)[0] is None and "start a run" in view_key(None)[1]
    assert view_key(tmp_path)[0] is None and "no examples.npz yet" in view_key(tmp_path)[1]
    np.savez_compressed(tmp_path / "examples.npz", epochs=np.asarray(3))  # no arrays
    key, _ = view_key(tmp_path)
    assert key[0] == tmp_path / "examples.npz"
    stats, message = read_for_view(key[0])
    assert stats is None and "could not be read" in message and "KeyError" in message


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_examples_view_reads_off_the_event_loop(tmp_path, monkeypatch):
    """examples.npz is read and counted in a thread: while the reading is held, the lab goes on
    (its plot shows that it is reading, keys work); once read, the view shows it, and
    `app.workers.wait_for_complete()` + settle_curves wait for it (what screenshots do)."""
    import threading

    from conftest import wait_for
    from gengap_tui import forgetting
    from gengap_tui.session import run_session
    from gengap_tui.tui.app import GengapApp
    from gengap_tui.tui.screenshot import settle_curves

    out = run_session(small_cfg("noise.label_noise=0.2", "optim.epochs=6", "data.n_train=300",
                                "early_stopping.enabled=false"), tmp_path / "runs")
    gate, reads, real = threading.Event(), [], forgetting.read_for_view

    def held(path):
        reads.append(threading.current_thread() is threading.main_thread())
        assert gate.wait(20)
        return real(path)

    monkeypatch.setattr(forgetting, "read_for_view", held)
    app = GengapApp(replay=out.run_dir, speed=0, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.state.run.summary is not None, 10)
        plot = app.query_one("#plot")
        text = lambda: "\n".join(strip.text for strip in plot._strips)  # noqa: E731
        await pilot.press("f9", "f9", "f9")  # loss, memorization, examples
        assert app.view == "examples"
        assert await wait_for(pilot, lambda: "reading examples.npz" in text(), 10)
        await pilot.press("f8")  # the lab answers while the file is being read: the loss view
        assert app.view == "loss" and app.log_loss
        await pilot.press("f9", "f9")  # memorization, examples
        assert app.view == "examples" and reads == [False]  # one reader, not on the event loop
        gate.set()
        await settle_curves(app, pilot)
        assert "learned by epoch" in text() and "forgetting events" in text()
        assert "clean (" in text() and "noisy (" in text() and "never" in text()


@pytest.mark.slow  # over ~1.5 s (the marker's rule: README, Set up)
async def test_the_examples_view_draws_a_runs_examples_npz(tmp_path):
    from conftest import wait_for
    from gengap_tui.session import run_session
    from gengap_tui.tui.app import GengapApp
    from gengap_tui.tui.screenshot import settle_curves

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
        await settle_curves(app, pilot)  # the file is read in a thread: wait for it, then the drawing
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
