"""Loading a locked model and checking that it, and its input, are compatible."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pytest
import skops.io
import yaml
from sklearn.linear_model import LogisticRegression

from models import manifest
from models.locked import BUNDLE_FORMAT
from serve.bundle import check_versions, load_bundle


def test_the_champion_carries_its_model_card(champion):
    assert champion.classes == ["ALS", "MMN", "NMO", "MS", "HC"]
    assert champion.version.startswith("als-mimics-dx v")
    assert champion.schema["nfl_pg_ml"]["unit"] == "pg/mL"
    assert champion.schema["site"]["dtype"] == "string"
    assert 0 < champion.alpha < 1
    assert champion.sites  # the training sites
    meta = champion.metadata
    assert meta["bundle_format"] == BUNDLE_FORMAT
    assert meta["reference"]["nfl_pg_ml"]["controls_n"] > 0
    assert meta["packages"]["scikit-learn"] == version("scikit-learn")
    assert meta["ood"]["threshold"] == 1.0
    assert set(meta["calibration"]) == set(champion.classes)
    card = champion.describe()
    json.dumps(card, allow_nan=False)  # JSON-ready
    assert "background" not in card and card["version"] == champion.version
    # the card travels to other labs: the data's name and hash, not its path
    assert "/" not in meta["data_source"] and len(meta["data_fingerprint"]) >= 16


def _save(path, metadata):
    """A model folder as a lab would send it: MLflow's files and their manifest."""
    X = np.arange(20.0).reshape(-1, 2)
    model = LogisticRegression().fit(X, np.arange(10) % 2)
    mlflow.sklearn.save_model(model, path, metadata=metadata)
    manifest.write_manifest(manifest.file_hashes(path), path)
    return str(path)


def _store(trained) -> Path:
    """The registered champion's own folder in the trained store."""
    _, cfg = trained
    client = mlflow.MlflowClient(cfg.tracking_uri, cfg.tracking_uri)
    version = client.get_model_version_by_alias("als-mimics-dx", "champion").version
    location = client.get_model_version_download_uri("als-mimics-dx", version)
    return Path(location.removeprefix("file://"))


@pytest.fixture
def folder(trained, tmp_path) -> Path:
    """A copy of the registered champion's model folder, manifest included."""
    return Path(shutil.copytree(_store(trained), tmp_path / "model"))


class _Payload:
    """A pickle that runs a shell command when read."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


def _edit_card(folder: Path, edit) -> None:
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    edit(spec)
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))


def test_a_registered_model_loads_checked_with_its_fingerprint(trained, folder):
    result, cfg = trained
    bundle = load_bundle(result.model_uri, cfg.tracking_uri)
    hashes = manifest.read_manifest(folder)
    assert bundle.fingerprint == manifest.digest(hashes)
    assert {"MLmodel", "model.skops"} <= set(hashes)
    copy = load_bundle(str(folder))  # a copied folder with its manifest loads
    assert copy.fingerprint == bundle.fingerprint and copy.describe()["fingerprint"]


def test_a_pickled_model_folder_is_refused_unread(folder, tmp_path):
    mark = tmp_path / "ran"
    (folder / "model.pkl").write_bytes(pickle.dumps(_Payload(mark)))

    def to_pickle(spec):
        spec["flavors"]["sklearn"].update(
            serialization_format="pickle", pickled_model="model.pkl"
        )

    _edit_card(folder, to_pickle)
    # the sender rewrote the manifest too: the pickle is refused all the same
    manifest.write_manifest(manifest.file_hashes(folder), folder)
    with pytest.raises(ValueError, match=r"serialization_format = 'pickle'; only "):
        load_bundle(str(folder))
    assert not mark.exists()


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda m: m["conformal"].update(thresholds={"ALS": 1.0}), "conformal"),
        (lambda m: m["ood"].update(threshold=1e9), "ood"),
        (lambda m: m.update(trained_on_simulated_data=False), "simulated"),
    ],
)
def test_an_edited_model_card_is_refused_naming_the_file(folder, edit, what):
    _edit_card(folder, lambda spec: edit(spec["metadata"]))
    with pytest.raises(ValueError, match=r"MLmodel changed since the model was reg"):
        load_bundle(str(folder))


def test_a_changed_added_or_removed_file_is_named(folder):
    with (folder / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    (folder / "extra.pkl").write_bytes(b"x")
    (folder / "conda.yaml").unlink()
    with pytest.raises(ValueError) as err:
        load_bundle(str(folder))
    text = str(err.value)
    assert "model.skops changed" in text and "conda.yaml is missing" in text
    assert "extra.pkl is not in the manifest" in text


def test_the_registry_manifest_wins_over_a_rewritten_folder(trained):
    result, cfg = trained
    store = _store(trained)
    original = {p.name: p.read_bytes() for p in store.iterdir()}
    try:
        _edit_card(store, lambda s: s["metadata"]["ood"].update(threshold=1e9))
        manifest.write_manifest(manifest.file_hashes(store), store)
        with pytest.raises(ValueError, match="MLmodel changed since the model was"):
            load_bundle(result.model_uri, cfg.tracking_uri)
    finally:
        for name, data in original.items():
            (store / name).write_bytes(data)
    assert load_bundle(result.model_uri, cfg.tracking_uri).fingerprint


def test_a_folder_without_a_manifest_needs_the_flag_and_says_so(folder):
    (folder / manifest.MANIFEST).unlink()
    with pytest.raises(ValueError, match="has no manifest.json.*--trust-unverified"):
        load_bundle(str(folder))
    with pytest.warns(UserWarning, match="loaded without checking that its card"):
        bundle = load_bundle(str(folder), unverified=True)
    assert bundle.fingerprint is None


class Untrusted:
    """A type outside the package's trusted list."""

    def __init__(self):
        self.value = 1


def test_types_the_folder_trusts_are_not_trusted(folder):
    skops.io.dump(Untrusted(), folder / "model.skops")
    name = f"{Untrusted.__module__}.Untrusted"
    _edit_card(
        folder,
        lambda s: s["flavors"]["sklearn"]["skops_trusted_types"].append(name),
    )
    manifest.write_manifest(manifest.file_hashes(folder), folder)
    with pytest.raises(ValueError, match="holds types this package does not trust"):
        load_bundle(str(folder))


def test_the_environment_store_is_honoured_and_mlflow_state_kept(
    trained, monkeypatch, tmp_path
):
    result, cfg = trained
    monkeypatch.chdir(tmp_path)  # no mlflow.db here
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cfg.tracking_uri)
    assert load_bundle(result.model_uri).version.startswith("als-mimics-dx v")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before


def test_an_unknown_model_says_where_it_looked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError, match="cannot find model 'models:/nope@champion'"):
        load_bundle("models:/nope@champion", uri)


def test_a_model_without_a_card_is_refused(tmp_path):
    path = _save(tmp_path / "plain", None)
    with pytest.raises(ValueError, match=r"lacks \['bundle_format'.*Retrain"):
        load_bundle(path)


def test_another_bundle_format_is_refused(champion, tmp_path):
    meta = {**champion.metadata, "bundle_format": 1}
    path = _save(tmp_path / "old", meta)
    with pytest.raises(ValueError, match="bundle format 1; this version of serve"):
        load_bundle(path)


def test_a_model_that_is_not_a_locked_model_is_refused(champion, tmp_path):
    path = _save(tmp_path / "bare", champion.metadata)
    with pytest.raises(ValueError, match="holds a LogisticRegression, not a Locked"):
        load_bundle(path)


def test_another_major_version_is_refused_and_a_minor_one_warns():
    installed = version("scikit-learn")
    major, minor = (int(p) for p in installed.split(".")[:2])
    with pytest.raises(
        ValueError, match=r"trained with scikit-learn 0\.24\.2.*install"
    ):
        check_versions("m", {"scikit-learn": "0.24.2"})
    with pytest.warns(UserWarning, match=f"scikit-learn {major}.{minor + 1}.0"):
        check_versions("m", {"scikit-learn": f"{major}.{minor + 1}.0"})
    check_versions("m", {"scikit-learn": installed})  # same version: silent


def test_an_absent_modality_is_filled_as_not_acquired(champion, cohort_table):
    qsm = [c for c in cohort_table.columns if c.startswith("qsm_") or c == "has_qsm"]
    frame, notes = champion.conform(cohort_table.drop(columns=qsm), "t.csv")
    assert frame.columns.tolist() == champion.feature_columns
    assert (frame["has_qsm"] == 0).all()
    assert frame["qsm_putamen_l"].isna().all()
    assert notes == [
        "t.csv: no qsm columns: qsm treated as not acquired for every subject."
    ]


def test_a_missing_availability_flag_is_derived_from_the_values(champion, cohort_table):
    frame, _ = champion.conform(cohort_table.drop(columns=["has_serum"]), "t")
    expected = cohort_table["nfl_pg_ml"].notna() | cohort_table["aqp4_igg"].notna()
    assert (frame["has_serum"] == 1).sum() >= expected.sum()


def test_a_partly_missing_modality_is_an_error(champion, cohort_table):
    with pytest.raises(ValueError, match=r"t.csv: missing 1 column.*dti_cst_l_fa.*"):
        champion.conform(cohort_table.drop(columns=["dti_cst_l_fa"]), "t.csv")


def test_a_column_holding_no_number_is_of_the_wrong_type(champion, cohort_table):
    bad = cohort_table.assign(nfl_pg_ml="high")
    with pytest.raises(ValueError, match=r"'nfl_pg_ml' is of the wrong type.*pg/mL"):
        champion.conform(bad, "t.csv")


def test_a_table_with_none_of_the_columns_is_refused(champion):
    import pandas as pd

    with pytest.raises(ValueError, match="none of the model's .* input columns"):
        champion.conform(pd.DataFrame({"x": [1.0]}), "t.csv")
