"""Config: TOML file < command-line options, frozen, every key checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.__main__ import parse
from training.config import TrainConfig

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "experiments" / "default.toml"


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
