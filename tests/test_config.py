import pytest

from gengap_tui import presets
from gengap_tui.config import Config, ConfigError, build, parse_value, read_toml, to_toml, validate


def problems(raw=None, overrides=()):
    with pytest.raises(ConfigError) as info:
        build(raw or {}, list(overrides))
    return "\n".join(info.value.problems)


@pytest.mark.parametrize(
    "override, field, allowed",
    [
        ("optim.lr=-0.1", "optim.lr = -0.1", "0.0 < lr <= 1e+06"),
        ("model.width=abc", "model.width = 'abc'", "an integer, 1 <= width <= 65536"),
        ("model.width=2.5", "model.width = 2.5", "an integer"),
        ("noise.label_noise=1.5", "noise.label_noise = 1.5", "0.0 <= label_noise <= 1"),
        ("early_stopping.patience=0", "early_stopping.patience = 0", "1 <= patience"),
        ("model.kind=transformer", "model.kind = 'transformer'", "'mlp', 'cnn1d'"),
        ("early_stopping.min_delta_mode=pct", "early_stopping.min_delta_mode = 'pct'", "'abs', 'rel'"),
        ("regularization.dropout=1", "regularization.dropout = 1", "dropout < 1"),
        ("optim.batch_size=0", "optim.batch_size = 0", "1 <= batch_size"),
        ("early_stopping.restore_best=maybe", "early_stopping.restore_best = 'maybe'", "true or false"),
    ],
)
def test_bad_values_name_field_value_and_range(override, field, allowed):
    msg = problems(overrides=[override])
    assert field in msg
    assert allowed in msg


def test_unknown_keys_are_errors_with_a_suggestion():
    msg = problems(overrides=["optim.lrr=0.1"])
    assert "optim.lrr: unknown key" in msg and "did you mean optim.lr?" in msg
    msg = problems({"colour": "red"})
    assert "colour: unknown key" in msg
    msg = problems({"optim": {"lr": 0.1, "nesterov": True}})
    assert "optim.nesterov: unknown key" in msg


def test_wrong_type_in_a_preset_is_rejected_not_coerced():
    # strict: a quoted number in TOML is a string, not an int
    msg = problems({"model": {"width": "256"}})
    assert "model.width = '256'" in msg
    msg = problems({"early_stopping": {"enabled": 1}})
    assert "early_stopping.enabled = 1" in msg
    msg = problems({"optim": "fast"})
    assert "optim" in msg


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        build({}, ["optim.lr=0", "model.depth=-1", "noise.kind=flip"])
    assert len(info.value.problems) == 3


def test_overrides_are_coerced_from_text():
    cfg = build({}, ["optim.lr=0.05", "model.width=64", "early_stopping.observe=true",
                     "noise.kind=pairflip", "sweep.values=[2, 4, 8]", "optim.epochs=7"])
    assert cfg.optim.lr == 0.05 and cfg.model.width == 64 and cfg.early_stopping.observe is True
    assert cfg.noise.kind == "pairflip" and cfg.sweep.values == [2, 4, 8] and cfg.optim.epochs == 7
    assert parse_value("1e-3") == 0.001 and parse_value("hello") == "hello"


def test_malformed_override():
    assert "expected dotted.key=value" in problems(overrides=["optim.lr"])
    assert "is a value, not a section" in problems(overrides=["seed.x=1"])


def test_cross_field_checks():
    assert "data.path" in problems(overrides=["data.dataset=mnist"])
    assert "model.kind" in problems(overrides=["data.dataset=moons", "model.kind=cnn1d"])


def test_toml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text('name = "x"\n[optim]\nlr = = 3\n')
    with pytest.raises(ConfigError) as info:
        read_toml(p)
    assert str(p) in str(info.value) and "line 3" in str(info.value)


def test_to_toml_round_trips(tmp_path):
    cfg = build({"name": "rt", "description": 'quote " and \\ slash'},
                ["optim.lr=0.02", "sweep.param=optim.lr", "sweep.values=[1.0, 2.5]",
                 "sweep.param2=model.kind", 'sweep.values2=["mlp", "cnn1d"]'])
    p = tmp_path / "rt.toml"
    p.write_text(to_toml(cfg))
    assert validate(read_toml(p)) == cfg


def test_packaged_presets_validate_and_have_descriptions():
    names = presets.available()
    for required in ("default", "label-noise", "random-labels", "weight-decay", "dropout",
                     "early-stopping-observe"):
        assert required in names
    for name, path in names.items():
        cfg = presets.load(name)
        assert isinstance(cfg, Config)
        assert cfg.name == name
        assert len(presets.describe(path)) > 20


def test_default_preset_matches_the_brief():
    cfg = presets.load("default")
    assert cfg.data.dataset == "mnist1d" and cfg.model.kind == "mlp"
    assert (cfg.model.depth, cfg.model.width) == (2, 256)
    assert cfg.optim.optimizer == "adam" and cfg.noise.label_noise == 0.15
    assert cfg.noise.kind == "symmetric"
    assert cfg.early_stopping.enabled and cfg.early_stopping.monitor == "val_err"
    assert cfg.early_stopping.patience == 10


def test_preset_names_cannot_escape_the_preset_folders():
    for bad in ("../../etc/passwd", "..", ".hidden", "a b", "x\0y"):
        with pytest.raises(ConfigError):
            presets.load(bad)
    with pytest.raises(ConfigError) as info:
        presets.load("no-such-preset")
    assert "unknown preset 'no-such-preset'" in str(info.value) and "default" in str(info.value)


def test_user_presets_save_and_load():
    cfg = build({"name": "mine"}, ["optim.lr=0.123"])
    path = presets.save(cfg)
    assert path.parent == presets.user_dir()
    assert presets.load("mine").optim.lr == 0.123
