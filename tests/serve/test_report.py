"""The explanation report: content, self-containment, and a clean render in
headless Chromium (Debian's chromium; `make test` installs it)."""

from __future__ import annotations

import numpy as np
import pytest

from serve.__main__ import main
from serve.bundle import load_bundle
from serve.report import write_report
from tests.browser import needs_chromium, render


@pytest.fixture(scope="module")
def report(champion, cohort_table, tmp_path_factory):
    table = cohort_table.head(6).copy()
    table.loc[5, "alsfrs_r"] = 99.0  # not scorable: listed, not explained
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(champion, table, out, top=8, source="six.parquet")
    return out, table


def test_the_report_holds_the_cohort_the_model_card_and_each_subject(report):
    out, table = report
    page = out.read_text()
    for heading in (
        "Predicted class mix",
        "SHAP importance by modality",
        "SHAP importance by feature",
        "SHAP beeswarm: push on p(ALS)",
        "Largest shifts from the training distribution",
        "Model card",
        "Intended use",
        "Nested cross-validation metrics (95 % bootstrap CI)",
        "Calibration of the out-of-fold probabilities",
        "Conformal sets (alpha",
        "Out-of-distribution flag",
    ):
        assert heading in page, heading
    assert "SIMULATED cohort" in page
    assert page.count("<section") == 5  # one per scored subject
    for pid in table["participant_id"].head(5):
        assert f"<h3>{pid}" in page
    assert f"Not scored: six.parquet, row 6 ({table.loc[5, 'participant_id']})" in page
    assert "alsfrs_r = 99 is outside [0, 48]" in page
    # 5 cohort figures + waterfall and biomarkers-vs-controls per subject
    assert page.count('src="data:image/png;base64,') == 5
    assert page.count('src="data:image/svg+xml;base64,') == 2 * 5
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_an_existing_report_is_not_overwritten(report, champion, cohort_table):
    out, _ = report
    with pytest.raises(FileExistsError, match="exists; pass --overwrite"):
        write_report(champion, cohort_table.head(2), out)


@needs_chromium
def test_the_report_renders_in_headless_chromium_without_errors(report):
    out, _ = report
    page = render(out)
    assert page.errors == [] and page.warnings == []
    assert page.offline, page.requests
    assert len(page.images) == 15
    sizes = np.array([[w, h] for _, w, h in page.images])
    assert all(done for done, _, _ in page.images) and (sizes > 50).all()


def test_the_explain_command_writes_the_report(trained, cohort_table, tmp_path):
    result, cfg = trained
    features = tmp_path / "f.parquet"
    cohort_table.head(3).to_parquet(features)
    out = tmp_path / "r.html"
    args = ["explain", "--model", result.model_uri, "--tracking-uri", cfg.tracking_uri]
    args += ["--features", str(features), "--out", str(out)]
    assert main(args) == 0
    assert out.read_text().count("<section") == 3
    assert main(args) == 2  # exists
    assert main([*args, "--overwrite", "--max-subjects", "1"]) == 0
    page = out.read_text()
    assert page.count("<section") == 1 and "The first 1 of 3 scored" in page
    fingerprint = load_bundle(result.model_uri, cfg.tracking_uri).fingerprint
    assert "<b>Fingerprint</b>" in page and f"<code>{fingerprint}</code>" in page


@pytest.mark.distributed
def test_explaining_on_a_local_cluster_equals_the_embedded_run(
    trained, champion, cohort_table, tmp_path
):
    pytest.importorskip("distributed")
    from common.executor import executor
    from serve.explain import shap_values
    from serve.predict import prepare_input

    frame, errors = prepare_input(champion, cohort_table.head(40))
    assert (errors == "").all()
    embedded = shap_values(champion, frame, seed=4)
    with executor("local:2") as client:
        spread = shap_values(champion, frame, seed=4, client=client)
    # whole batches per task and one feature order: equal, not merely close
    np.testing.assert_array_equal(spread.values, embedded.values)
    np.testing.assert_array_equal(spread.base_values, embedded.base_values)
    assert spread.data.index.equals(frame.index)
    # the command: the same report as embedded
    result, cfg = trained
    features = tmp_path / "f.parquet"
    cohort_table.head(20).to_parquet(features)
    args = ["explain", "--model", result.model_uri, "--tracking-uri", cfg.tracking_uri]
    args += ["--features", str(features), "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "a.html")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.html"), "--dask", "local:2"]) == 0
    a, b = ((tmp_path / n).read_text() for n in ("a.html", "b.html"))
    assert a.count("<section") == 20
    assert a == b
