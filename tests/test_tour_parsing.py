"""A tour file checked whole before anything runs (gengap_tui/tui/tour.py: `load`, `parse`,
`available`, `condition`): what a valid file becomes, each default, and the message of each kind of
mistake, naming the file, the step and what is allowed. Pure and fast: no lab, no training."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from gengap_tui.config import build
from gengap_tui.protocol import Epoch
from gengap_tui.tui import tour as tours
from gengap_tui.tui.state import LabState

WHERE = Path("/lectures/demo.toml")
ALLOWED_KEYS = ("ctrl+q, ctrl+r, enter, escape, f2, f3, f4, f5, f6, f7, f8, f9, tab")


def parse(raw: dict) -> tours.Tour:
    return tours.parse(raw, WHERE)


def refused(raw: dict) -> str:
    with pytest.raises(tours.TourError) as info:
        parse(raw)
    return str(info.value)


STEP = {"wait": "pause 1"}


# ------------------------------------------------------------------------------ what a tour becomes
def test_a_full_tour_is_read_as_written():
    tour = parse({"name": "demo", "description": "the gap opens", "preset": "label-noise",
                  "set": ["optim.epochs=20", "device=cpu"], "read_base_s": 2, "read_per_char_s": 0.1,
                  "step": [{"caption": "train it", "keys": ["ctrl+r", "f2"], "wait": "epoch 5", "timeout": 30},
                           {"wait": "run_done", "timeout": 600}]})
    assert (tour.name, tour.description, tour.path, tour.preset) == ("demo", "the gap opens", WHERE, "label-noise")
    assert tour.overrides == ["optim.epochs=20", "device=cpu"] and tour.replay is None and tour.speed == 0.0
    assert (tour.read_base_s, tour.read_per_char_s) == (2.0, 0.1)
    assert tour.steps == [tours.Step(1, "train it", ["ctrl+r", "f2"], "epoch 5", 30.0),
                          tours.Step(2, "", [], "run_done", 600.0)]
    assert isinstance(tour.steps[0].timeout, float) and isinstance(tour.read_base_s, float)


def test_what_a_tour_leaves_out_has_its_default():
    tour = parse({"step": [{}]})
    assert (tour.name, tour.description, tour.preset, tour.overrides, tour.replay, tour.speed) == (
        "demo", "", "default", [], None, 0.0)  # the name: the file's
    assert (tour.read_base_s, tour.read_per_char_s) == (tours.READ_BASE_S, tours.READ_PER_CHAR_S) == (1.0, 0.05)
    assert tour.steps == [tours.Step(1, "", [], "pause 1", 120.0)]


def test_a_tours_name_and_description_are_texts():
    tour = parse({"name": 2026, "description": 1.5, "step": [STEP]})
    assert (tour.name, tour.description) == ("2026", "1.5")


def test_a_steps_keys_are_a_copy_of_the_files():
    keys = ["f4"]
    tour = parse({"step": [{"keys": keys}]})
    keys.append("f5")
    assert tour.steps[0].keys == ["f4"]


@pytest.mark.parametrize("wait", ["epoch 1", "epoch 12", "early_stop", "would_stop", "run_done", "sweep_done",
                                  "pause 0", "pause 3", "pause 2.5"])
def test_each_wait_a_tour_can_give(wait):
    assert parse({"step": [{"wait": wait}]}).steps[0].wait == wait


@pytest.mark.parametrize("timeout", [0.001, 1, 600, 600.0])
def test_a_timeout_is_seconds_up_to_ten_minutes(timeout):
    assert parse({"step": [{"timeout": timeout}]}).steps[0].timeout == float(timeout)


@pytest.mark.parametrize("key,value", [("read_base_s", 0), ("read_base_s", 60), ("read_per_char_s", 0.0),
                                       ("read_per_char_s", 60.0)])
def test_reading_times_are_seconds_from_0_to_60(key, value):
    assert getattr(parse({key: value, "step": [STEP]}), key) == float(value)


def test_a_replayed_tour_reads_its_recording_from_the_tours_own_folder(tmp_path):
    (tmp_path / "rec").mkdir()
    tour = tours.parse({"replay": "rec", "speed": 4, "step": [STEP]}, tmp_path / "t.toml")
    assert tour.replay == tmp_path / "rec" and tour.speed == 4.0 and isinstance(tour.speed, float)
    tour = tours.parse({"replay": str(tmp_path / "rec"), "step": [STEP]}, Path("/elsewhere/t.toml"))
    assert tour.replay == tmp_path / "rec" and tour.speed == 0.0


def test_a_replay_that_is_not_a_directory_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    for replay in ("missing", "file"):
        with pytest.raises(tours.TourError) as info:
            tours.parse({"replay": replay, "step": [STEP]}, tmp_path / "t.toml")
        assert str(info.value) == (f"{tmp_path / 't.toml'}: replay = '{tmp_path / replay}' is not a run or "
                                   "sweep directory")


# ------------------------------------------------------------------------------ what it refuses, and how it says so
def test_unknown_top_level_keys_are_named_with_the_allowed_ones():
    assert refused({"colour": 1, "author": "x", "name": "n", "step": [STEP]}) == (
        "/lectures/demo.toml: unknown key(s) author, colour (allowed: description, name, preset, read_base_s, "
        "read_per_char_s, replay, set, speed, step)")


def test_preset_and_replay_together_are_refused():
    assert refused({"preset": "default", "replay": "rec", "step": [STEP]}) == (
        "/lectures/demo.toml: give preset or replay, not both")


@pytest.mark.parametrize("steps", [None, [], {"wait": "pause 1"}, "pause 1"])
def test_a_tour_without_steps_is_refused(steps):
    raw = {"name": "x"} if steps is None else {"step": steps}
    assert refused(raw) == "/lectures/demo.toml: a tour needs at least one [[step]]"


def test_a_step_that_is_not_a_table_is_refused_naming_its_number():
    assert refused({"step": [STEP, "pause 1"]}) == "/lectures/demo.toml, step 2: a step is a table"


def test_unknown_step_keys_are_named_with_the_allowed_ones():
    assert refused({"step": [STEP, STEP, {"wait": "pause 1", "say": "x", "key": "f4"}]}) == (
        "/lectures/demo.toml, step 3: unknown key(s) key, say (allowed: caption, keys, timeout, wait)")


@pytest.mark.parametrize("keys", [["ctrl+x"], ["f4", "F4"], "f4", ["f1"], [4]])
def test_keys_the_lab_does_not_bind_are_refused_with_the_ones_it_does(keys):
    assert refused({"step": [{"keys": keys}]}) == (
        f"/lectures/demo.toml, step 1: keys = {keys!r}: each one of {ALLOWED_KEYS}")


@pytest.mark.parametrize("wait", ["lunch", "epoch 0", "epoch", "epoch -1", "epoch 2 ", " run_done", "run_done!",
                                  "pause", "pause -1", "pause 1.", "pause x", "early_stop run_done", 5, None])
def test_a_wait_that_is_none_of_the_conditions_is_refused(wait):
    assert refused({"step": [{"wait": wait}]}) == (
        f"/lectures/demo.toml, step 1: wait = {wait!r}: one of 'epoch N', 'early_stop', 'would_stop', 'run_done', "
        "'sweep_done', 'pause S'")


@pytest.mark.parametrize("timeout", [0, -1, 600.5, 601, True, "60", None])
def test_a_timeout_outside_0_to_600_seconds_is_refused(timeout):
    assert refused({"step": [{"wait": "run_done", "timeout": timeout}]}) == (
        f"/lectures/demo.toml, step 1: timeout = {timeout!r}: seconds, 0 < timeout <= 600")


@pytest.mark.parametrize("caption", [3, ["a"], None])
def test_a_caption_is_a_text(caption):
    assert refused({"step": [{"caption": caption}]}) == f"/lectures/demo.toml, step 1: caption = {caption!r}: a text"


@pytest.mark.parametrize("sets", ["optim.epochs=5", ["optim.epochs=5", 5], {"optim.epochs": 5}])
def test_the_overrides_are_a_list_of_texts(sets):
    assert refused({"set": sets, "step": [STEP]}) == (
        f"/lectures/demo.toml: set = {sets!r}: a list of 'key=value' texts")


@pytest.mark.parametrize("key", ["read_base_s", "read_per_char_s"])
@pytest.mark.parametrize("value", [-0.01, 60.5, True, "1", None])
def test_a_reading_time_outside_0_to_60_seconds_is_refused(key, value):
    assert refused({key: value, "step": [STEP]}) == f"/lectures/demo.toml: {key} = {value!r}: seconds, 0..60"


def test_the_first_mistake_in_the_file_is_the_one_named():
    assert "step 1: wait" in refused({"step": [{"wait": "x", "timeout": 0}, {"keys": ["x"]}], "set": 5})
    assert "step 2: keys" in refused({"step": [STEP, {"keys": ["x"], "wait": "x"}]})
    assert ": set = 5" in refused({"step": [STEP], "set": 5, "read_base_s": -1})


# ------------------------------------------------------------------------------ load and available
def test_the_packaged_tours_are_available_by_name():
    found = tours.available()
    assert list(found) == sorted(found) and {"early-stopping", "memorization", "double-descent"} <= set(found)
    for name, path in found.items():
        assert path == tours.packaged_dir() / f"{name}.toml" and path.is_file()


def test_a_packaged_tour_loads_by_name():
    tour = tours.load("early-stopping")
    assert tour.name == "early-stopping" and tour.path == tours.packaged_dir() / "early-stopping.toml"
    assert tour.preset == "default" and tour.steps[0].keys == ["ctrl+r"]


def test_a_tour_file_loads_by_its_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "é"\n[[step]]\ncaption = "ça marche"\nwait = "epoch 3"\n', encoding="utf-8")
    tour = tours.load(str(path))
    assert (tour.name, tour.description, tour.path) == ("mine", "é", path)
    assert tour.steps == [tours.Step(1, "ça marche", [], "epoch 3", 120.0)]


def test_neither_a_packaged_tour_nor_a_file_is_refused_with_the_packaged_names(tmp_path):
    names = ", ".join(tours.available())
    for ref in ("nosuch", str(tmp_path)):  # (a folder is not a tour file)
        with pytest.raises(tours.TourError) as info:
            tours.load(ref)
        assert str(info.value) == f"tour {ref!r}: no such packaged tour ({names}) or file"


@pytest.mark.parametrize("content", [b'name = "x\n', b"[[step]]\nwait = 'pause 1'\nwait = 'pause 2'\n",
                                     b'name = "\xff"\n[[step]]\n'])
def test_a_file_that_is_not_toml_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "t.toml"
    path.write_bytes(content)
    with pytest.raises(tours.TourError) as info:
        tours.load(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and len(message) > len(f"{path}: ")
    assert info.value.__cause__ is None and info.value.__suppress_context__  # its own message, not a traceback's


def test_a_loaded_file_is_checked_like_a_parsed_one(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[[step]]\nwait = "lunch"\n')
    with pytest.raises(tours.TourError, match=r"t\.toml, step 1: wait = 'lunch'"):
        tours.load(str(path))


# ------------------------------------------------------------------------------ condition
@pytest.mark.parametrize("rows,wait,met", [
    ([], "epoch 1", False), ([{"epoch": 2}], "epoch 3", False), ([{"epoch": 3}], "epoch 3", True),
    ([{"epoch": 4}], "epoch 3", True), ([{"epoch": 9}, {"train_err": 0.1}], "epoch 1", False),
    ([{"epoch": None}], "epoch 1", False), ([{"epoch": 12}], "epoch 12", True), ([{"epoch": 11}], "epoch 12", False),
])
def test_an_epoch_wait_is_met_once_the_last_row_reaches_it(rows, wait, met):
    state = LabState(build({}, []))
    for r in rows:
        state.apply(Epoch(r))
    assert tours.condition(SimpleNamespace(state=state), wait) is met


@pytest.mark.parametrize("wait", ["pause 0", "pause 2.5"])
def test_a_pause_is_always_met(wait):
    assert tours.condition(SimpleNamespace(state=LabState(build({}, []))), wait) is True
