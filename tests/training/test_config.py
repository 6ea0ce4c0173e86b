"""Config: TOML file < command-line options, frozen, every key checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import ROOT
from training.__main__ import parse
from training.config import TrainConfig

DEFAULT_TOML = ROOT / "experiments" / "default.toml"


def test_default_toml_is_the_default_config():
    assert TrainConfig.from_toml(DEFAULT_TOML) == TrainConfig()


def test_options_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cv]\nseed = 7\nn_trials = 3\n[task]\ntask = "als_vs_mimics"\n')
    cfg = parse(["--config", str(path), "--trials", "5"])
    assert (cfg.seed, cfg.n_trials, cfg.task) == (7, 5, "als_vs_mimics")
    assert cfg.task_classes() == ("ALS", "mimic")


def test_contrast_task_from_the_command_line():
    cfg = parse(["--task", "contrast", "--contrast", "NMO", "MS", "--no-harmonize"])
    assert cfg.task_classes() == ("NMO", "MS") and cfg.harmonize is False


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("seeed = 1\n", r"unknown config key\(s\) \['seeed'\]"),
        ('task = "triage"\n', "task = 'triage'"),
        ('task = "contrast"\ncontrast = ["ALS", "CIDP"]\n', "contrast = "),
        ('mimics = ["ALS"]\n', "mimics = "),
        ("alpha = 1.5\n", r"alpha = 1\.5"),
        ('calibrate = "platt"\n', "calibrate = 'platt'"),
        ("seed = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_toml(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        TrainConfig.from_toml(tmp_path / "missing.toml")


def test_cohort_and_features_are_exclusive():
    with pytest.raises(ValueError, match="either a cohort directory or a features"):
        TrainConfig(cohort=Path("a"), features=Path("b.csv"))


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().seed = 1


def test_tracking_precedence_option_config_environment_default(tmp_path):
    from training.__main__ import parse

    env = {"MLFLOW_TRACKING_URI": "sqlite:///env.db", "MLFLOW_REGISTRY_URI": "r"}
    assert parse([], env={}).tracking_uri == "sqlite:///mlflow.db"
    assert parse([], env=env).tracking_uri == "sqlite:///env.db"
    assert parse([], env=env).registry_uri == "r"
    toml = tmp_path / "c.toml"
    toml.write_text('[tracking]\ntracking_uri = "sqlite:///file.db"\n')
    assert parse(["--config", str(toml)], env=env).tracking_uri == "sqlite:///file.db"
    given = ["--config", str(toml), "--tracking-uri", "http://127.0.0.1:5000"]
    assert parse(given, env=env).tracking_uri == "http://127.0.0.1:5000"


def test_toml_input_table_with_code_maps(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[input]\n"
        'features = "lab.xlsx"\n'
        'label_column = "Group"\n'
        'label_map = { "1" = "ALS", "0" = "HC" }\n'
        'sex_map = { "1" = "M", "2" = "F" }\n'
        "[models]\n"
        'models = ["logreg"]\n'
    )
    cfg = TrainConfig.from_toml(toml)
    assert cfg.label_map == ("1=ALS", "0=HC") and cfg.models == ("logreg",)
    assert cfg.input_mapping().sex_map == {"1": "M", "2": "F"}
    with pytest.raises(ValueError, match=r"--label-map sends codes to \['CIDP'\]"):
        TrainConfig(label_map=("1=CIDP",))


def test_small_cohorts_get_repeats_and_a_permutation_test():
    small, notes = TrainConfig().resolved(24)
    assert (small.repeats, small.n_permutations) == (5, 100) and len(notes) == 2
    large, notes = TrainConfig().resolved(400)
    assert (large.repeats, large.n_permutations) == (1, 0) and not notes
    chosen, notes = TrainConfig(repeats=2, n_permutations=0).resolved(24)
    assert (chosen.repeats, chosen.n_permutations) == (2, 0) and not notes
