"""The config's rules and their messages, exactly (docs/ARCHITECTURE.md, "Config"; issue 26's
mutation round): every range bound accepted at the bound and refused just past it with one line
that names the dotted field, the value and the allowed range; `--set` parsing; the messages of
every kind of bad input; presets written and read back; sweep settings; thread counts."""

import math
import os
import sys

import pytest

from gengap_tui import config as C
from gengap_tui.config import (
    Config, ConfigError, EarlyStoppingSection, allowed, apply_overrides, build, check_sweep, cpu_threads,
    explain, parse_device, parse_value, read_toml, stored_sweep_value, sweep_field, sweep_value, to_toml,
    validate,
)

TOP_KEYS = ("name, description, seed, device, run, data, noise, model, regularization, optim, "
            "early_stopping, baselines, sweep, ratt")
SWEEPABLE = "data, noise, model, regularization, optim, early_stopping, baselines, ratt"


def nested(dotted: str, value) -> dict:
    *sections, key = dotted.split(".")
    raw = {key: value}
    for s in reversed(sections):
        raw = {s: raw}
    return raw


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def problems_of(raw=None, overrides=None, source=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build({} if raw is None else raw, overrides, source)
    return info.value


# ---------------------------------------------------------------------------------------------
# every bound of every number: (dotted, lowest, highest, just below, just above, allowed)
# `lowest` / `highest` are the extreme accepted values, the `just` ones the nearest refused

I = "an integer, "
F = "a number, "
BOUNDS = [
    ("seed", 0, 2**31 - 1, -1, 2**31, I + "0 <= seed <= 2147483647"),
    ("run.seeds", 1, 64, 0, 65, I + "1 <= seeds <= 64"),
    ("run.threads", 0, 1024, -1, 1025, I + "0 <= threads <= 1024"),
    ("data.n_train", 10, 1_000_000, 9, 1_000_001, I + "10 <= n_train <= 1000000"),
    ("data.n_val", 10, 1_000_000, 9, 1_000_001, I + "10 <= n_val <= 1000000"),
    ("data.n_test", 10, 1_000_000, 9, 1_000_001, I + "10 <= n_test <= 1000000"),
    ("data.synthetic_noise", 0.0, 10.0, -1e-9, 10.000001, F + "0.0 <= synthetic_noise <= 10"),
    ("noise.label_noise", 0.0, 1.0, -1e-9, 1.0000001, F + "0.0 <= label_noise <= 1"),
    ("model.depth", 0, 32, -1, 33, I + "0 <= depth <= 32"),
    ("model.width", 1, 65536, 0, 65537, I + "1 <= width <= 65536"),
    ("model.channels", 1, 4096, 0, 4097, I + "1 <= channels <= 4096"),
    ("model.conv_layers", 1, 8, 0, 9, I + "1 <= conv_layers <= 8"),
    ("model.kernel_size", 1, 63, 0, 64, I + "1 <= kernel_size <= 63"),
    ("regularization.weight_decay", 0.0, 10.0, -1e-9, 10.000001, F + "0.0 <= weight_decay <= 10"),
    ("regularization.l1", 0.0, 10.0, -1e-9, 10.000001, F + "0.0 <= l1 <= 10"),
    ("regularization.dropout", 0.0, 0.9999999, -1e-9, 1.0, F + "0.0 <= dropout < 1.0"),
    ("regularization.input_noise", 0.0, 100.0, -1e-9, 100.00001, F + "0.0 <= input_noise <= 100"),
    ("regularization.crop_pad", 1, 32, 0, 33, I + "1 <= crop_pad <= 32"),
    ("optim.lr", 5e-324, 1e6, 0.0, 1000000.1, F + "0.0 < lr <= 1e+06"),
    ("optim.momentum", 0.0, 0.9999999, -1e-9, 1.0, F + "0.0 <= momentum < 1.0"),
    ("optim.batch_size", 1, 1_000_000, 0, 1_000_001, I + "1 <= batch_size <= 1000000"),
    ("optim.epochs", 1, 100_000, 0, 100_001, I + "1 <= epochs <= 100000"),
    ("optim.step_every", 1, 100_000, 0, 100_001, I + "1 <= step_every <= 100000"),
    ("optim.step_factor", 5e-324, 1.0, 0.0, 1.0000001, F + "0.0 < step_factor <= 1"),
    ("optim.exp_factor", 5e-324, 1.0, 0.0, 1.0000001, F + "0.0 < exp_factor <= 1"),
    ("early_stopping.patience", 1, 100_000, 0, 100_001, I + "1 <= patience <= 100000"),
    ("early_stopping.min_delta", 0.0, 1e6, -1e-9, 1000000.1, F + "0.0 <= min_delta <= 1e+06"),
    ("early_stopping.start_from_epoch", 0, 100_000, -1, 100_001, I + "0 <= start_from_epoch <= 100000"),
    ("baselines.knn_k", 1, 1000, 0, 1001, I + "1 <= knn_k <= 1000"),
    ("ratt.n_random", 1, 1_000_000, 0, 1_000_001, I + "1 <= n_random <= 1000000"),
    ("ratt.delta", 5e-324, 0.9999999, 0.0, 1.0, F + "0.0 < delta < 1.0"),
]
# MNIST-1D keeps its canonical test split: n_test's range is checked on another data set
BASE = {"data.n_test": {"data": {"dataset": "moons"}}}


def value_at(dotted: str, value):
    return merge(BASE.get(dotted, {}), nested(dotted, value))


def read_back(cfg: Config, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("dotted, lo, hi, below, above, rule", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_each_bound_is_accepted_at_the_bound_and_refused_just_past_it_naming_field_value_and_range(
        dotted, lo, hi, below, above, rule):
    for ok in (lo, hi):
        assert read_back(build(value_at(dotted, ok)), dotted) == ok
    for bad in (below, above):
        err = problems_of(value_at(dotted, bad))
        assert len(err.problems) == 1
        line = err.problems[0]
        assert line.startswith(f"{dotted} = {bad!r}: "), line
        assert line.endswith(f" (allowed: {rule})"), line
        assert allowed(tuple(dotted.split("."))) == rule


def test_bounds_cover_every_number_of_the_schema():
    numbers = {f"{s}.{f}" for s, m in C.SECTIONS.items() for f, i in m.model_fields.items()
               if i.annotation in (int, float)} | {"seed"}
    assert numbers - {b[0] for b in BOUNDS} == {"optim.warmup_epochs"}  # its own test below


def test_warmup_epochs_leave_at_least_one_epoch_after_the_warm_up():
    assert build({"optim": {"epochs": 100_000, "warmup_epochs": 99_999}}).optim.warmup_epochs == 99_999
    assert build({"optim": {"epochs": 5, "warmup_epochs": 0}}).optim.warmup_epochs == 0
    assert problems_of({"optim": {"epochs": 5, "warmup_epochs": 5}}).problems == [
        "optim.warmup_epochs: 5 leaves no epoch after the warm-up (allowed: 0 to epochs - 1 = 4)"]
    assert problems_of({"optim": {"warmup_epochs": -1}}).problems[0].endswith(
        " (allowed: an integer, 0 <= warmup_epochs <= 100000)")


def test_a_float_setting_takes_an_integer_but_an_integer_setting_refuses_a_float():
    assert build({"optim": {"lr": 1}}).optim.lr == 1.0
    line = problems_of({"model": {"width": 2.0}}).problems[0]
    assert line.startswith("model.width = 2.0: ") and line.endswith(" (allowed: an integer, 1 <= width <= 65536)")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_named_as_such(value):
    assert problems_of({"optim": {"lr": value}}).problems == [
        f"optim.lr = {value!r}: must be a finite number (allowed: a number, 0.0 < lr <= 1e+06)"]


# ---------------------------------------------------------------------------------------------
# what each kind of field accepts, as the messages say it


@pytest.mark.parametrize("loc, text", [
    (("model", "kind"), "one of 'mlp', 'cnn1d', 'cnn2d', 'resnet18'"),
    (("early_stopping", "monitor"), "one of 'val_err', 'val_loss'"),
    (("early_stopping", "observe"), "true or false"),
    (("data", "path"), "a string"),
    (("device",), "a string"),
    (("sweep", "values"), "a list of numbers, true / false or choice names"),
    (("optim",), ""),              # a section: its keys are listed by the other messages
    (("optim", "nope"), ""),       # not a field
    (("optim", "lr", "x"), ""),    # below a number
    ((), ""),
])
def test_allowed_describes_each_kind_of_field(loc, text):
    assert allowed(loc) == text


def test_a_bad_choice_lists_the_choices():
    assert problems_of({"model": {"kind": "transformer"}}).problems == [
        "model.kind = 'transformer': not a known choice (allowed: one of 'mlp', 'cnn1d', 'cnn2d', 'resnet18')"]


def test_a_switch_refuses_a_number_and_says_true_or_false():
    line = problems_of({"early_stopping": {"enabled": 1}}).problems[0]
    assert line.startswith("early_stopping.enabled = 1: ") and line.endswith(" (allowed: true or false)")


def test_a_section_given_a_value_names_the_section():
    line, = problems_of({"optim": 3}).problems
    assert line.startswith("optim = 3: ") and "(allowed" not in line


@pytest.mark.parametrize("raw", [3, [], "x"])
def test_a_config_that_is_not_a_table_is_one_top_level_problem(raw):
    err = problems_of(raw)
    line, = err.problems
    assert line.startswith(f"(a top-level key) = {raw!r}: ") and "(allowed" not in line
    assert str(err) == "invalid config:\n  - " + line


def test_a_sweep_value_of_no_known_kind_is_one_line_per_item():
    err = problems_of({"sweep": {"values": [8, [1], None, {"a": 1}]}})
    rule = "not a number, true / false or a name (allowed: a list of numbers, true / false or choice names)"
    assert err.problems == [f"sweep.values.1 = [1]: {rule}", f"sweep.values.2 = None: {rule}",
                            f"sweep.values.3 = a table: {rule}"]


# ---------------------------------------------------------------------------------------------
# unknown keys


def test_an_unknown_key_in_a_section_suggests_the_close_one_and_lists_the_sections_keys():
    assert problems_of({"optim": {"lrr": 0.1}}).problems == [
        "optim.lrr: unknown key (did you mean optim.lr?); keys allowed in [optim]: optimizer, lr, momentum, "
        "batch_size, epochs, schedule, warmup_epochs, step_every, step_factor, exp_factor"]


def test_an_unknown_top_level_key_with_nothing_close_lists_the_top_level_keys():
    assert problems_of({"colour": "red"}).problems == [
        f"colour: unknown key; keys allowed in the top level: {TOP_KEYS}"]
    assert problems_of({"seeed": 1}).problems == [
        f"seeed: unknown key (did you mean seed?); keys allowed in the top level: {TOP_KEYS}"]


def test_every_unknown_key_is_reported_not_only_the_first():
    assert problems_of({"colour": 1, "model": {"widht": 8, "kind": "mlp"}}).problems == [
        "model.widht: unknown key (did you mean model.width?); keys allowed in [model]: kind, depth, width, "
        "activation, channels, conv_layers, kernel_size",
        f"colour: unknown key; keys allowed in the top level: {TOP_KEYS}",
    ]


# ---------------------------------------------------------------------------------------------
# rules that span fields, and validators' own messages


@pytest.mark.parametrize("raw, line", [
    ({"device": "gpu"}, "device: 'gpu' is not a device (allowed: 'auto', 'cpu', 'cuda' or 'cuda:N' "
                        "(N: a GPU's index, as PyTorch counts them))"),
    ({"data": {"dataset": "npz"}}, "data.path: dataset 'npz' is read from local files; set data.path to the .npz file"),
    ({"data": {"dataset": "mnist"}}, "data.path: dataset 'mnist' is read from local files; "
                                     "set data.path to the folder that holds them"),
    ({"data": {"n_test": 999}}, "data.n_test: MNIST-1D uses its canonical 1000-example test split; leave n_test at 1000"),
    ({"data": {"dataset": "moons"}, "model": {"kind": "cnn1d"}},
     "model.kind: 'cnn1d' needs sequence inputs (mnist1d, mnist, fashion-mnist, cifar10, cifar100, digits, npz); "
     "dataset 'moons' is 2-D points: use 'mlp'"),
    ({"model": {"kind": "cnn2d"}},
     "model.kind: 'cnn2d' needs an image data set (mnist, fashion-mnist, cifar10, cifar100, digits, npz); "
     "dataset 'mnist1d' has no images: use 'mlp' or 'cnn1d'"),
    ({"data": {"dataset": "xor"}, "model": {"kind": "resnet18"}},
     "model.kind: 'resnet18' needs an image data set (mnist, fashion-mnist, cifar10, cifar100, digits, npz); "
     "dataset 'xor' has no images: use 'mlp'"),
    ({"regularization": {"augment": "flip"}},
     "regularization.augment: 'flip' crops and flips images, but dataset 'mnist1d' is not a set of images "
     "(allowed with augment: mnist, fashion-mnist, cifar10, cifar100, digits, npz; else augment = 'none')"),
])
def test_a_validators_message_names_its_field_once(raw, line):
    assert problems_of(raw).problems == [line]


def test_a_validators_message_is_one_line_and_other_problems_still_follow():
    err = problems_of({"device": "gpu", "run": {"seeds": 0}})
    assert len(err.problems) == 2 and err.problems[0].startswith("device: 'gpu' is not a device")
    assert err.problems[1].startswith("run.seeds = 0: ")


def test_a_validator_message_without_a_field_gets_the_field_in_front():
    from pydantic import BaseModel, ValidationError, field_validator

    class Even(BaseModel):
        n: int

        @field_validator("n")
        @classmethod
        def _even(cls, v):
            if v % 2:
                raise ValueError(f"must be even: {v} is odd")
            return v

    with pytest.raises(ValidationError) as info:
        Even(n=3)
    assert explain(info.value) == ["n: must be even: 3 is odd"]
    assert explain(info.value, ("sec",)) == ["sec.n: must be even: 3 is odd"]


# ---------------------------------------------------------------------------------------------
# devices


@pytest.mark.parametrize("name, parsed", [
    ("auto", ("auto", None)), ("cpu", ("cpu", None)), ("cuda", ("cuda", None)),
    ("cuda:0", ("cuda", 0)), ("cuda:7", ("cuda", 7)), ("cuda:12", ("cuda", 12)),
])
def test_parse_device_splits_kind_and_index(name, parsed):
    assert parse_device(name) == parsed


@pytest.mark.parametrize("name", ["", None, "gpu", "cuda:", "cuda:123", "cuda:x", "CPU", " cpu", "cpu:0", "mps"])
def test_parse_device_refuses_anything_else_naming_what_is_allowed(name):
    with pytest.raises(ValueError) as info:
        parse_device(name)
    assert str(info.value) == (f"device: {name!r} is not a device (allowed: 'auto', 'cpu', 'cuda' or 'cuda:N' "
                               "(N: a GPU's index, as PyTorch counts them))")


# ---------------------------------------------------------------------------------------------
# --set


@pytest.mark.parametrize("text, value", [
    ("0.5", 0.5), ("1e-3", 0.001), ("64", 64), ("true", True), ("false", False), ("[2, 4]", [2, 4]),
    ('"quoted"', "quoted"), ("'single'", "single"), ("mnist1d", "mnist1d"), ("", ""), ("a=b", "a=b"),
    ("9" * 5000, "9" * 5000), ("[" * 2000 + "]" * 2000, "[" * 2000 + "]" * 2000),
])
def test_a_set_value_is_toml_when_it_parses_else_the_bare_text(text, value):
    assert parse_value(text) == value


def test_set_overrides_values_and_leaves_the_preset_untouched():
    raw = {"name": "p", "optim": {"lr": 0.1, "epochs": 9}}
    out = apply_overrides(raw, [" optim.lr = 0.5 ", "description=a=b", "model.width=64"])
    assert out == {"name": "p", "description": "a=b", "optim": {"lr": 0.5, "epochs": 9}, "model": {"width": 64}}
    assert raw == {"name": "p", "optim": {"lr": 0.1, "epochs": 9}}


def test_every_malformed_set_item_is_reported_in_order():
    err = problems_of({"optim": {"lr": 0.1}},
                      ["optim.lr", "=1", "a..b=1", "seed.x=1", "optim.lr.x=2", "optim.epochs=3"])
    assert err.source == "--set"
    assert err.problems == [
        "--set 'optim.lr': expected dotted.key=value, e.g. optim.lr=0.01",
        "--set '=1': expected dotted.key=value, e.g. optim.lr=0.01",
        "--set 'a..b=1': 'a..b' is not a dotted key",
        "--set 'seed.x=1': seed is a value, not a section",
        "--set 'optim.lr.x=2': optim.lr is a value, not a section",
    ]
    assert str(err).startswith("invalid config (--set):\n  - --set 'optim.lr': expected")


def test_a_set_item_below_a_value_names_the_value_it_hit_at_most_60_characters():
    long = "k" * 70
    err = problems_of({long: 1}, [f"{long}.x.y=1"])
    assert err.problems == [f"--set {C._fmt_value(long + '.x.y=1')}: {'k' * 60} is a value, not a section"]
    err = problems_of({"ratt": {"delta": 0.1}}, ["ratt.delta.a.b=1"])
    assert err.problems == ["--set 'ratt.delta.a.b=1': ratt.delta is a value, not a section"]


def test_a_long_set_item_is_shortened_in_its_message():
    item = "x" * 100
    assert problems_of({}, [item]).problems == [
        f"--set '{'x' * 56}...: expected dotted.key=value, e.g. optim.lr=0.01"]


def test_a_preset_nested_too_deeply_for_set_is_refused():
    deep: dict = {}
    for _ in range(2 * sys.getrecursionlimit()):
        deep = {"a": deep}
    with pytest.raises(ConfigError) as info:
        apply_overrides(deep, ["optim.lr=0.5"])
    assert info.value.problems == ["the preset nests tables too deeply"] and info.value.source == "--set"


def test_a_problem_only_the_overrides_bring_is_blamed_on_them():
    err = problems_of({"optim": {"lr": 0.1}}, ["optim.lr=0"], "presets/p.toml")
    assert err.source == "--set" and err.problems[0].startswith("optim.lr = 0: ")
    assert str(err).startswith("invalid config (--set):\n  - optim.lr = 0: ")


def test_a_problem_of_the_preset_itself_is_blamed_on_the_preset_file():
    err = problems_of({"optim": {"lr": -1}}, ["model.width=8"], "presets/p.toml")
    assert err.source == "presets/p.toml" and err.problems[0].startswith("optim.lr = -1: ")


@pytest.mark.parametrize("source", ["the lab", "p.TOML.bak", None])
def test_a_source_that_is_no_preset_file_keeps_its_name(source):
    err = problems_of({"optim": {"lr": 0.1}}, ["optim.lr=0"], source)
    assert err.source == source
    assert str(err).startswith(f"invalid config ({source}):\n" if source else "invalid config:\n")


@pytest.mark.parametrize("overrides", [None, []])
def test_without_overrides_the_source_is_the_preset(overrides):
    err = problems_of({"seed": -1}, overrides, "p.toml")
    assert err.source == "p.toml" and str(err).startswith("invalid config (p.toml):\n  - seed = -1: ")


def test_validate_names_its_source_and_lists_each_problem_on_its_own_line():
    with pytest.raises(ConfigError) as info:
        validate({"seed": -1, "optim": {"lr": 0}}, "x.toml")
    err = info.value
    assert err.source == "x.toml" and len(err.problems) == 2
    assert str(err) == f"invalid config (x.toml):\n  - {err.problems[0]}\n  - {err.problems[1]}"


# ---------------------------------------------------------------------------------------------
# values shown in messages


@pytest.mark.parametrize("value, shown", [
    ({"a": 1}, "a table"),
    ({}, "a table"),
    (2**199, str(2**199)),                       # 200 bits: 60 digits, shown whole
    (2**200, "an integer of 51 hex digits"),     # 201 bits: counted, not printed
    (-(2**4000), "an integer of 1001 hex digits"),  # (the minus sign is no digit)
    (True, "True"),
    ("x" * 58, "'" + "x" * 58 + "'"),            # 60 characters with the quotes: whole
    ("x" * 59, "'" + "x" * 56 + "..."),          # 61: cut to 57 and '...'
])
def test_fmt_value_shows_a_value_in_at_most_60_characters(value, shown):
    assert C._fmt_value(value) == shown


def test_fmt_value_of_a_value_too_deep_to_print_names_its_type():
    deep: list = []
    for _ in range(2 * sys.getrecursionlimit()):
        deep = [deep]
    assert C._fmt_value(deep) == "a list too large to show"


# ---------------------------------------------------------------------------------------------
# TOML presets


def test_read_toml_reads_utf8_under_an_ascii_locale(tmp_path):
    import locale

    p = tmp_path / "p.toml"
    p.write_bytes('name = "x"\ndescription = "étude λ"\n'.encode("utf-8"))
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # what open() without an encoding would read as ASCII
    try:
        assert read_toml(p) == {"name": "x", "description": "étude λ"}
    finally:
        locale.setlocale(locale.LC_CTYPE, old)


def test_read_toml_reads_a_preset(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('name = "é"\n[optim]\nlr = 0.5\n', encoding="utf-8")
    assert read_toml(p) == {"name": "é", "optim": {"lr": 0.5}}


def read_error(path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_toml(path)
    assert info.value.source == str(path) and len(info.value.problems) == 1
    return info.value


def test_read_toml_refuses_a_file_that_is_not_utf8(tmp_path):
    p = tmp_path / "p.toml"
    p.write_bytes(b'name = "\xff"\n')
    assert read_error(p).problems == [f"{p}: not a UTF-8 text file"]


def test_read_toml_says_why_a_file_cannot_be_read(tmp_path):
    assert read_error(tmp_path / "missing.toml").problems == [
        f"{tmp_path / 'missing.toml'}: cannot read (No such file or directory)"]
    assert read_error(tmp_path).problems == [f"{tmp_path}: cannot read (Is a directory)"]


def test_read_toml_names_a_syntax_error_and_where(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[optim]\nlr = = 3\n")
    line, = read_error(p).problems
    assert line.startswith(f"{p}: TOML syntax error: ") and "(at line 2, column 6)" in line


def test_read_toml_refuses_an_integer_too_long_to_read(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("seed = " + "9" * 5000 + "\n")
    line, = read_error(p).problems
    assert line.startswith(f"{p}: unreadable value: ") and "4300" in line


def test_read_toml_refuses_arrays_nested_too_deeply(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("seed = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert read_error(p).problems == [f"{p}: arrays or tables nested too deeply"]


def test_to_toml_escapes_what_toml_strings_cannot_hold_and_reads_back(tmp_path):
    text = 'X "q" \\ \x00\x1f \x7f\x80é\ttab'
    cfg = build({"name": "esc", "description": text})
    out = to_toml(cfg)
    assert 'description = "X \\"q\\" \\\\ \\u0000\\u001f \\u007f\x80é\\u0009tab"' in out.splitlines()
    p = tmp_path / "esc.toml"
    p.write_text(out, encoding="utf-8")
    assert validate(read_toml(p)) == cfg and read_toml(p)["description"] == text


def test_to_toml_writes_top_level_values_first_then_one_table_per_section():
    out = to_toml(build({"name": "t", "seed": 3}, ["model.width=8", "early_stopping.observe=true",
                                                    "sweep.param=optim.lr", "sweep.values=[1.0, 2.5]"]))
    lines = out.splitlines()
    assert lines[:4] == ['name = "t"', 'description = ""', "seed = 3", 'device = "auto"']
    assert "[model]" in lines and "width = 8" in lines and "observe = true" in lines and "restore_best = true" in lines
    assert "values = [1.0, 2.5]" in lines and 'values2 = []' in lines
    assert [ln for ln in lines if ln.startswith("[")] == [f"[{s}]" for s in C.SECTIONS]
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_dump_is_the_config_as_plain_json_types():
    d = build({"name": "d"}, ["sweep.param=optim.lr", "sweep.values=[1, 2.5]"]).dump()
    assert d["name"] == "d" and d["optim"]["lr"] == 0.001 and d["sweep"]["values"] == [1.0, 2.5]
    assert set(d) == set(Config.model_fields)


# ---------------------------------------------------------------------------------------------
# sweeps over any setting


def sweep_error(fn, *args) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args)
    return str(info.value)


@pytest.mark.parametrize("param, expected", [
    ("model.width", ("ModelSection", "width", int)),
    ("optim.lr", ("OptimSection", "lr", float)),
    ("early_stopping.observe", ("EarlyStoppingSection", "observe", bool)),
    ("data.path", ("DataSection", "path", str)),
])
def test_sweep_field_finds_the_section_and_the_type(param, expected):
    model, name, ann = sweep_field(param)
    assert (model.__name__, name, ann) == expected


def test_sweep_field_of_a_choice_gives_its_literal():
    model, name, ann = sweep_field("model.kind", "--param")
    assert name == "kind" and C.get_args(ann) == ("mlp", "cnn1d", "cnn2d", "resnet18")


@pytest.mark.parametrize("param, key, message", [
    ("run.seeds", "sweep.param", "sweep.param: 'run.seeds' is a [run] setting: it says how a sweep trains, not what; "
                                 f"sweep a setting of {SWEEPABLE}"),
    ("run.seeds.x", "--param", "--param: 'run.seeds.x' is a [run] setting: it says how a sweep trains, not what; "
                               f"sweep a setting of {SWEEPABLE}"),
    ("sweep.param", "sweep.param2", "sweep.param2: 'sweep.param' is a [sweep] setting: it says how a sweep trains, "
                                    f"not what; sweep a setting of {SWEEPABLE}"),
])
def test_sweep_field_refuses_the_settings_of_how_a_sweep_trains(param, key, message):
    assert sweep_error(sweep_field, param, key) == message


@pytest.mark.parametrize("param", ["foo.bar", "model.", "model.width.x", "width", ".width", ""])
def test_sweep_field_refuses_what_is_not_section_dot_name(param):
    assert sweep_error(sweep_field, param) == (
        f"sweep.param: {param!r} is not a setting (allowed: section.name of {SWEEPABLE}, "
        "e.g. model.width, noise.label_noise, model.kind)")


def test_sweep_field_refuses_an_unknown_name_listing_the_sections_settings():
    model_keys = "kind, depth, width, activation, channels, conv_layers, kernel_size"
    assert sweep_error(sweep_field, "model.widht", "--param") == (
        f"--param: 'model.widht' is not a setting one can sweep (did you mean model.width?); [model] has {model_keys}")
    assert sweep_error(sweep_field, "model.zzz") == (
        f"sweep.param: 'model.zzz' is not a setting one can sweep; [model] has {model_keys}")


@pytest.mark.parametrize("param, value, typed", [
    ("model.width", 8, 8), ("model.width", 8.0, 8), ("optim.lr", 1, 1.0), ("optim.lr", 0.5, 0.5),
    ("early_stopping.observe", True, True), ("model.kind", "cnn1d", "cnn1d"),
])
def test_sweep_value_types_a_value_as_its_setting_takes_it(param, value, typed):
    got = sweep_value(param, value)
    assert got == typed and type(got) is type(typed)


@pytest.mark.parametrize("param, value, key, message", [
    ("model.width", 0, "sweep.values",
     "sweep.values: model.width = 0: Input should be greater than or equal to 1 "
     "(allowed: an integer, 1 <= width <= 65536)"),
    ("model.width", 8.5, "--values",
     "--values: model.width = 8.5: Input should be a valid integer (allowed: an integer, 1 <= width <= 65536)"),
    ("model.width", "a", "",
     "model.width = 'a': Input should be a valid integer (allowed: an integer, 1 <= width <= 65536)"),
    ("optim.lr", True, "sweep.values2",
     "sweep.values2: optim.lr = True: Input should be a valid number (allowed: a number, 0.0 < lr <= 1e+06)"),
    ("model.kind", "rnn", "sweep.values",
     "sweep.values: model.kind = 'rnn': not a known choice (allowed: one of 'mlp', 'cnn1d', 'cnn2d', 'resnet18')"),
])
def test_sweep_value_refuses_what_the_setting_refuses_in_one_line(param, value, key, message):
    assert sweep_error(sweep_value, param, value, key) == message


def test_sweep_value_names_sweep_values_by_default():
    assert sweep_error(sweep_value, "ratt.delta", 1.0).startswith("sweep.values: ratt.delta = 1.0: ")
    assert sweep_error(sweep_value, "run.seeds", 2).startswith("sweep.param: 'run.seeds' is a [run] setting")


@pytest.mark.parametrize("typed, stored", [(8, 8.0), (0.5, 0.5), (True, True), (False, False), ("mlp", "mlp")])
def test_a_swept_number_is_stored_as_a_float_and_the_rest_as_itself(typed, stored):
    got = stored_sweep_value(typed)
    assert got == stored and type(got) is type(stored)


def S(**kw):
    return C.SweepSection(**kw)


@pytest.mark.parametrize("section, problem", [
    (S(), None),
    (S(param="model.width", values=[8, 16]), None),
    (S(param="model.width", values=[8, 16], param2="optim.lr", values2=[0.1, 0.01]), None),
    (S(param="optim.lrr"), "sweep.param: 'optim.lrr' is not a setting one can sweep (did you mean optim.lr?); "
                           "[optim] has optimizer, lr, momentum, batch_size, epochs, schedule, warmup_epochs, "
                           "step_every, step_factor, exp_factor"),
    (S(values=[8, 0]), "sweep.values: model.width = 0: Input should be greater than or equal to 1 "
                       "(allowed: an integer, 1 <= width <= 65536)"),
    (S(values=[8, 8.0]), "sweep.values: model.width values repeat: [8.0, 8.0]"),
    (S(values2=[1]), "sweep.values2: given without sweep.param2 (the grid's second setting)"),
    (S(param2="run.seeds", values2=[1]), "sweep.param2: 'run.seeds' is a [run] setting: it says how a sweep trains, "
                                         f"not what; sweep a setting of {SWEEPABLE}"),
    (S(param2="model.width", values2=[1]),
     "sweep.param2: 'model.width' is sweep.param too (a grid needs two different settings)"),
    (S(param2="model.depth"), "sweep.values2: empty; a grid over model.width x model.depth needs the values of model.depth"),
    (S(param2="model.depth", values2=[1, 99]),
     "sweep.values2: model.depth = 99: Input should be less than or equal to 32 (allowed: an integer, 0 <= depth <= 32)"),
    (S(param2="model.kind", values2=["mlp", "mlp"]), "sweep.values2: model.kind values repeat: ['mlp', 'mlp']"),
])
def test_check_sweep_says_what_is_wrong_with_a_sweep_table(section, problem):
    assert check_sweep(section) == problem


# ---------------------------------------------------------------------------------------------
# CPU threads


@pytest.mark.parametrize("threads, cores, used", [
    (3, 8, 3), (1, 8, 1), (64, 2, 64),      # a count is taken as it is
    (0, 8, 7), (0, 2, 1), (0, 1, 1),         # 0: all cores but one, at least one
])
def test_cpu_threads_leaves_one_core_to_the_rest_of_the_machine(monkeypatch, threads, cores, used):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert cpu_threads(threads) == used


@pytest.mark.parametrize("count, used", [(6, 5), (None, 1)])
def test_cpu_threads_without_affinity_counts_the_cpus(monkeypatch, count, used):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: count)
    assert cpu_threads(0) == used


def test_an_early_stopping_section_keeps_its_defaults():
    es = EarlyStoppingSection()
    assert (es.enabled, es.monitor, es.patience, es.min_delta, es.min_delta_mode, es.start_from_epoch,
            es.restore_best, es.observe) == (True, "val_err", 10, 0.0, "abs", 0, True, False)
