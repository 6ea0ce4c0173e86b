"""The predict API, served by a real uvicorn process, and ``mlflow models serve``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from common.schema import KEY
from serve.api import RecordsError, create_app, records_to_frame
from serve.bundle import Bundle
from serve.config import ApiConfig, ModelSource
from serve.predict import predict

SECRET_ID = "SUBJ-SECRET-7Q3X"
SECRET_VALUE = 4729.183  # a value no log line would hold by chance
SECRET_SITE = "site-SECRET-K8"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], log: Path, ready: str, timeout: float, env=None):
    """Start ``cmd`` in its own process group; wait until GET ``ready`` answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{cmd[:4]} exited {proc.returncode}:\n{log.read_text()}")
        try:
            if requests.get(ready, timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    _stop(proc)
    pytest.fail(f"{cmd[:4]} did not answer {ready} in {timeout} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we started; SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _api(trained, tmp_path_factory, name: str, *extra: str):
    result, cfg = trained
    port = _free_port()
    log = tmp_path_factory.mktemp(name) / "server.log"
    cmd = [sys.executable, "-m", "serve", "api", "--model", result.model_uri]
    cmd += ["--tracking-uri", cfg.tracking_uri, "--port", str(port), *extra]
    proc = _start(cmd, log, f"http://127.0.0.1:{port}/health", timeout=90)
    return proc, f"http://127.0.0.1:{port}", port, log


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """The API with default host and limits: (base URL, port, log file)."""
    proc, url, port, log = _api(trained, tmp_path_factory, "api")
    yield url, port, log
    _stop(proc)


@pytest.fixture(scope="module")
def small_server(trained, tmp_path_factory):
    """The API with a 4000-byte body limit, at most 3 records per prediction
    request and 2 per explanation request."""
    proc, url, _, _ = _api(
        trained,
        tmp_path_factory,
        "api-small",
        "--max-body-bytes",
        "4000",
        "--max-records",
        "3",
        "--max-explain",
        "2",
    )
    yield url
    _stop(proc)


@pytest.fixture(scope="module")
def bundle(champion):
    """The model the servers serve (tests/serve/conftest.py)."""
    return champion


@pytest.fixture(scope="module")
def table(cohort_table):
    return cohort_table


def _records(bundle, frame: pd.DataFrame) -> list[dict]:
    """One JSON object per row: identifiers and feature columns, NaN left out."""
    columns = [c for c in KEY if c in frame] + bundle.feature_columns
    rows = frame[columns].astype(object).to_dict(orient="records")
    return [{k: _plain(v) for k, v in row.items() if not pd.isna(v)} for row in rows]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    for c in expected.columns:
        if pd.api.types.is_float_dtype(expected[c]):
            np.testing.assert_allclose(
                got[c].astype(float),
                expected[c].astype(float),
                rtol=1e-12,
                equal_nan=True,
                err_msg=c,
            )
        else:
            plain = [None if pd.isna(v) else _plain(v) for v in expected[c]]
            assert got[c].tolist() == plain, c


def _detail(response) -> str:
    return json.dumps(response.json()["detail"])


def test_health_names_the_model(server, bundle):
    url, _, _ = server
    assert requests.get(f"{url}/health").json() == {
        "status": "ok",
        "model": bundle.version,
    }


def test_model_lists_classes_and_feature_columns(server, bundle):
    url, _, _ = server
    response = requests.get(f"{url}/model")
    assert response.status_code == 200
    assert "NaN" not in response.text and "Infinity" not in response.text
    info = response.json()
    assert info["classes"] == bundle.classes
    assert info["feature_columns"] == bundle.feature_columns
    assert info["version"] == bundle.version


def test_predict_matches_python(server, bundle, table):
    url, _, _ = server
    sub = table.head(10).reset_index(drop=True)
    response = requests.post(f"{url}/predict", json={"records": _records(bundle, sub)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == bundle.version
    expected = predict(bundle, sub, source="request")
    _assert_same(pd.DataFrame(body["predictions"]), expected)


def test_predict_treats_absent_keys_as_not_measured(server, bundle, table):
    url, _, _ = server
    flags = [c for c in bundle.feature_columns if c.startswith("has_")]
    modality = flags[0].removeprefix("has_")
    dropped = [
        c
        for c in bundle.feature_columns
        if bundle.schema[c]["modality"] == modality or c == flags[0]
    ]
    sub = table.head(3).reset_index(drop=True)
    records = [
        {k: v for k, v in r.items() if k not in dropped} for r in _records(bundle, sub)
    ]
    records[1]["nfl_pg_ml"] = None  # null = not measured too
    response = requests.post(f"{url}/predict", json={"records": records})
    assert response.status_code == 200, response.text
    # Same as a table without the modality (flag 0) and without that value.
    missing = sub.copy()
    missing[[c for c in dropped if c != flags[0]]] = np.nan
    missing[flags[0]] = 0.0
    missing.loc[1, "nfl_pg_ml"] = np.nan
    expected = predict(bundle, missing, source="request")
    _assert_same(pd.DataFrame(response.json()["predictions"]), expected)
    assert not any(modality in m.split(",") for m in expected["modalities_used"])


def test_explain_gives_top_contributions_toward_the_predicted_class(
    server, bundle, table
):
    url, _, _ = server
    sub = table.head(6).reset_index(drop=True)
    records = _records(bundle, sub)
    top = requests.post(f"{url}/explain?top=4", json={"records": records}).json()
    every = requests.post(f"{url}/explain?top=1000", json={"records": records}).json()
    features = set(bundle.feature_columns) - {"site"}
    for i, (pred, exp, full) in enumerate(
        zip(top["predictions"], top["explanations"], every["explanations"], strict=True)
    ):
        assert exp["predicted_class"] == pred["predicted_class"]
        shap = [c["shap"] for c in exp["contributions"]]
        assert len(shap) == 4
        assert shap == sorted(shap, key=abs, reverse=True)
        assert abs(shap[-1]) >= max(abs(c["shap"]) for c in full["contributions"][4:])
        for c in full["contributions"]:
            assert c["feature"] in features
            assert c["value"] == records[i].get(c["feature"])
        # Efficiency: base value + all contributions = the predicted probability.
        total = full["base_value"] + sum(c["shap"] for c in full["contributions"])
        assert total == pytest.approx(pred[f"p_{pred['predicted_class']}"], abs=1e-6)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [{"nfl_pg_ml": 40.0}, {"nfl_pg_mi": 40.0}],
            r"record 1: unknown column 'nfl_pg_mi'; did you mean 'nfl_pg_ml'\?",
        ),
        (
            [{"zzzz": 1}],
            r"record 0: unknown column 'zzzz'\. A record holds the columns of a "
            r"features table",
        ),
        (
            [{"nfl_pg_ml": 40.0}, {"nfl_pg_ml": "high"}],
            r"record 1: nfl_pg_ml = 'high' is not a number\. Send a number",
        ),
        ([{"nfl_pg_ml": "inf"}], r"record 0: nfl_pg_ml = 'inf' is not finite"),
        (
            [{"nfl_pg_ml": "NaN"}],
            r"record 0: nfl_pg_ml = 'NaN' is not a number\. Send null",
        ),
        ([{"nfl_pg_ml": True}], r"record 0: nfl_pg_ml = true is not a number"),
        (
            [{"age": 60, "AGE": 61}],
            r"record 0: keys \['AGE', 'age'\] name the same column 'age'; send it once",
        ),
        (
            [{f"x{k}": 1 for k in range(5000)}],
            r"record 0 holds 5000 keys; a record of this model holds at most \d+",
        ),
        (
            [{f"x{i}_{k}": 1 for k in range(50)} for i in range(100)],
            r"the records hold 5000 different keys between them",
        ),
        ([{"site": 3}], r"record 0: site = 3; send it as text"),
        ([], r"records is empty; send at least one record"),
        (
            [{f"x{k}": 1 for k in range(7)}],
            r"record 0: unknown column 'x0'.*\| and 2 more problem\(s\)\.$",
        ),
    ],
)
def test_unreadable_records_are_refused_with_422(server, records, message):
    url, _, _ = server
    for endpoint in ("predict", "explain"):
        response = requests.post(f"{url}/{endpoint}", json={"records": records})
        assert response.status_code == 422
        assert re.search(message, response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"rows": []}', r'"records".*"Field required"'),
        ('{"records": [1, 2]}', r'"records", 0.*"Input should be a valid dictionary'),
        ('{"records": [{"a": [1]}]}', r'"records", 0, "a"'),
        ('{"records": ', r'"JSON decode error"'),
    ],
)
def test_a_body_that_is_not_records_is_refused_with_422(server, body, message):
    url, _, _ = server
    response = requests.post(
        f"{url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert re.search(message, _detail(response))
    assert re.search(r'send JSON \{"records"', response.json()["hint"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"records": [{"nfl_pg_ml": NaN}]}', r"nfl_pg_ml = nan is not a number"),
        (
            '{"records": [{"nfl_pg_ml": 40, "age": 60, "nfl_pg_ml": 41}]}',
            r"key 'nfl_pg_ml' appears twice in one object; send each column once",
        ),
    ],
)
def test_json_that_parsers_accept_silently_is_refused(server, body, message):
    url, _, _ = server
    for endpoint in ("predict", "explain"):
        response = requests.post(
            f"{url}/{endpoint}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert re.search(message, response.json()["detail"])


def test_a_record_larger_than_any_record_is_refused_before_parsing(server):
    url, _, _ = server
    keys = ", ".join(f'"unknown_column_{k:07d}": 1.5' for k in range(100_000))
    body = ('{"records": [{' + keys + "}]}").encode()  # 3.4 MB, one record
    response = requests.post(
        f"{url}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "a record of this request takes more than 64000 bytes" in _detail(response)


def test_explain_top_must_be_positive(server):
    url, _, _ = server
    response = requests.post(f"{url}/explain?top=0", json={"records": [{}]})
    assert response.status_code == 422
    assert re.search(r'"top".*greater than or equal to 1', _detail(response))


def test_too_many_records_are_refused_with_422(small_server):
    response = requests.post(
        f"{small_server}/predict", json={"records": [{"nfl_pg_ml": 40.0}] * 4}
    )
    assert response.status_code == 422
    assert re.search(
        r"4 records in one request; the limit is 3\. Split the batch",
        response.json()["detail"],
    )


def test_explanation_requests_have_their_own_lower_limit(small_server):
    response = requests.post(
        f"{small_server}/explain", json={"records": [{"nfl_pg_ml": 40.0}] * 3}
    )
    assert response.status_code == 422
    assert "3 records in one request; the limit is 2" in response.json()["detail"]


def test_oversize_bodies_are_refused_with_413(small_server):
    big = json.dumps({"records": [{"nfl_pg_ml": 40.0}] * 300})
    assert len(big) > 4000
    headers = {"Content-Type": "application/json"}
    declared = requests.post(f"{small_server}/predict", data=big, headers=headers)
    chunked = requests.post(
        f"{small_server}/predict",
        data=(big[i : i + 500].encode() for i in range(0, len(big), 500)),
        headers=headers,
    )
    for response in (declared, chunked):
        assert response.status_code == 413
        assert re.search(
            r"larger than the limit of 4000 bytes.*split the batch",
            response.json()["detail"],
        )
    small = json.dumps({"records": [{"nfl_pg_ml": 40.0}] * 2})
    ok = requests.post(
        f"{small_server}/predict",
        data=(small[i : i + 7].encode() for i in range(0, len(small), 7)),
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["predictions"]) == 2


def test_binds_to_loopback_by_default(server):
    _, port, log = server
    assert f"http://127.0.0.1:{port}" in log.read_text()
    try:
        others = {
            a[4][0]
            for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        }
    except OSError:
        others = set()
    for address in sorted(a for a in others if not a.startswith("127.")):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{address}:{port}/health", timeout=5)


def test_server_log_holds_no_submitted_value(server, bundle, table):
    url, _, log = server
    sub = table.head(4).reset_index(drop=True)
    records = _records(bundle, sub)
    records[0].update(participant_id=SECRET_ID, nfl_pg_ml=SECRET_VALUE)
    records[1].update(site=SECRET_SITE)  # unseen: warned about, not logged
    assert requests.post(f"{url}/predict", json={"records": records}).ok
    assert requests.post(f"{url}/explain?top=3", json={"records": records}).ok
    bad = [{"participant_id": SECRET_ID, "nfl_pg_ml": f"{SECRET_VALUE}x"}]
    assert requests.post(f"{url}/predict", json={"records": bad}).status_code == 422
    unknown = [{f"col_{SECRET_VALUE}": 1}]
    assert requests.post(f"{url}/predict", json={"records": unknown}).status_code == 422
    time.sleep(0.5)
    text = log.read_text()
    assert "POST /predict 200" in text and "POST /predict 422" in text
    assert "predict: 4 record(s) -> 200" in text
    assert "top=3" not in text  # no query strings
    secrets = [SECRET_ID, str(SECRET_VALUE), SECRET_SITE, *sub["participant_id"]]
    for secret in secrets:
        assert str(secret) not in text


# In-process checks of the error paths, with a stub model (no training needed).


class _Stub:
    """Predicts by raising ``error``; the rest of what predict() reads."""

    classes_ = np.array(["ALS", "HC"])
    detector_ = None

    def __init__(self, error: Exception):
        self.error = error

    def predict_proba(self, X):
        raise self.error


def _stub_bundle(error: Exception | None = None) -> Bundle:
    columns = ["nfl_pg_ml", "has_mri", "mri_fa", "site"]
    schema = [
        {
            "name": c,
            "dtype": "float",
            "unit": "",
            "modality": m,
            "min": None,
            "max": None,
        }
        for c, m in zip(columns, ["serum", "mri", "mri", "other"], strict=True)
    ]
    metadata = {
        "classes": ["ALS", "HC"],
        "feature_columns": columns,
        "schema": schema,
        "family": "stub",
        "conformal": {"alpha": 0.1, "thresholds": {"ALS": 0.5, "HC": 0.5}},
        "nested_cv_metrics": {"auc": float("nan")},
    }
    return Bundle(_Stub(error), metadata, "stub-uri", "stub v1")


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], r"records is empty"),
        ([{}] * 3, r"3 records in one request; the limit is 2"),
        (
            [{"nfl_pg_mI": 1}],
            r"^record 0: unknown column 'nfl_pg_mI'; did you mean 'nfl_pg_ml'\? A "
            r"record holds .* the model was trained on\.$",
        ),
        ([{"mri_fa": "n/a"}], r"record 0: mri_fa = 'n/a' is not a number"),
        ([{"mri_fa": float("-inf")}], r"record 0: mri_fa = -inf is not finite"),
        ([{"mri_fa": 10**400}], r"record 0: mri_fa = 1000.* is not finite"),
        ([{"site": True}], r"record 0: site = True; send it as text"),
    ],
)
def test_records_to_frame_names_record_column_and_fix(records, message):
    with pytest.raises(RecordsError, match=message):
        records_to_frame(records, _stub_bundle(), max_records=2)


def test_records_to_frame_fills_absent_values_and_flags():
    records = [
        {"participant_id": "a", "mri_fa": "0.4", "site": "siteA"},
        {"nfl_pg_ml": 1},
        {"has_mri": 1, "nfl_pg_ml": None},
    ]
    frame = records_to_frame(records, _stub_bundle())
    assert list(frame.columns) == ["participant_id", *_stub_bundle().feature_columns]
    assert frame["participant_id"].iloc[0] == "a"
    assert frame["participant_id"].isna().tolist() == [False, True, True]
    np.testing.assert_array_equal(frame["mri_fa"], [0.4, np.nan, np.nan])
    np.testing.assert_array_equal(frame["nfl_pg_ml"], [np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(frame["has_mri"], [1.0, 0.0, 1.0])
    assert frame["site"].dtype == "string" and frame["site"].isna().tolist()[1:]


@pytest.fixture
def stub_server():
    """Serve a stub bundle in this process; yields (start(error) -> base URL)."""
    running = []

    def start(error: Exception) -> str:
        import uvicorn

        cfg = ApiConfig(ModelSource("stub-uri"))
        port = _free_port()
        app = create_app(_stub_bundle(error), cfg)
        srv = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        running.append((srv, thread))
        deadline = time.monotonic() + 20
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, thread in running:
        srv.should_exit = True
        thread.join(10)


def test_model_value_error_is_422_with_its_message(stub_server):
    url = stub_server(ValueError("stub: columns out of order; refit the model."))
    response = requests.post(f"{url}/predict", json={"records": [{"mri_fa": 0.4}]})
    assert response.status_code == 422
    assert response.json()["detail"] == "stub: columns out of order; refit the model."
    info = requests.get(f"{url}/model").json()
    assert info["nested_cv_metrics"] == {"auc": None}  # NaN made JSON-safe


def test_unexpected_error_is_500_logged_without_values(stub_server, caplog):
    url = stub_server(RuntimeError(f"boom at {SECRET_VALUE}"))
    with caplog.at_level(logging.INFO, logger="serve.api"):
        response = requests.post(
            f"{url}/predict",
            json={"records": [{"participant_id": SECRET_ID, "mri_fa": SECRET_VALUE}]},
        )
    assert response.status_code == 500
    assert re.search(r"internal error while answering /predict", _detail(response))
    assert str(SECRET_VALUE) not in response.text
    assert "predict failed: RuntimeError (message withheld)" in caplog.text
    assert str(SECRET_VALUE) not in caplog.text and SECRET_ID not in caplog.text


def test_mlflow_models_serve_answers_like_predict(trained, bundle, table, tmp_path):
    result, cfg = trained
    port = _free_port()
    env = {
        "MLFLOW_TRACKING_URI": cfg.tracking_uri,
        # mlflow starts the scoring server as `uvicorn ...` from PATH
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", result.model_uri]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    proc = _start(
        cmd, tmp_path / "mlflow.log", f"http://127.0.0.1:{port}/ping", 180, env
    )
    try:
        head = table[bundle.feature_columns].head(5)
        data = head.astype(object).where(head.notna(), None).to_numpy().tolist()
        response = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_split": {"columns": list(head.columns), "data": data}},
            timeout=60,
        )
    finally:
        _stop(proc)
    assert response.status_code == 200, response.text
    got = np.asarray(response.json()["predictions"], dtype=float)
    expected = predict(bundle, table.head(5))
    order = [f"p_{c}" for c in map(str, bundle.model.classes_)]
    np.testing.assert_allclose(got, expected[order].to_numpy(), rtol=1e-9)


def _json_value(value):
    if (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
    ):
        return None
    return value.item() if isinstance(value, np.generic) else value


def test_a_row_of_the_features_table_is_accepted_whole(server, table, bundle):
    """The API takes what `features extract` writes, metadata columns included
    (participant_id, sex, diagnosis, source_*, qc_*...), as `serve score` does."""
    url, _, _ = server
    rows = table.head(4)
    records = [
        {k: _json_value(v) for k, v in row.items()}
        for row in rows.to_dict(orient="records")
    ]
    assert {"sex", "diagnosis", "age"} <= set(records[0])
    assert any(k.startswith("source_") for k in records[0])
    response = requests.post(f"{url}/predict", json={"records": records}, timeout=60)
    assert response.status_code == 200, response.text
    api = pd.DataFrame(response.json()["predictions"])
    direct = predict(bundle, rows)
    columns = [f"p_{c}" for c in bundle.classes]
    np.testing.assert_allclose(api[columns], direct[columns], rtol=1e-9)


# --- beyond loopback: a bearer token -------------------------------------------


def test_a_non_loopback_host_needs_a_token_file_or_insecure(tmp_path):
    with pytest.raises(ValueError, match=r"--host 0.0.0.0 is not a loopback.*--token"):
        ApiConfig(ModelSource("m"), host="0.0.0.0")
    assert ApiConfig(ModelSource("m"), host="0.0.0.0", insecure=True).insecure
    token = tmp_path / "token.txt"
    assert ApiConfig(ModelSource("m"), host="10.1.2.3", token_file=token).token_file
    assert ApiConfig(ModelSource("m"), host="::1").host == "::1"


def test_the_command_refuses_a_public_host_without_a_token(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "serve", "api", "--model", "models:/x@y"]
        + ["--host", "0.0.0.0", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "not a loopback address" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "message"), [("short", "holds 5 characters"), (None, "cannot read")]
)
def test_a_bad_token_file_is_refused(tmp_path, content, message):
    from serve.api import read_token

    path = tmp_path / "token.txt"
    if content is not None:
        path.write_text(content + "\n")
    with pytest.raises(ValueError, match=message):
        read_token(path)


def test_the_token_guards_every_route_but_health(tmp_path):
    import uvicorn

    from serve.api import read_token

    path = tmp_path / "token.txt"
    path.write_text("s3cret-token-of-32-characters-xx\n")
    token = read_token(path)
    cfg = ApiConfig(ModelSource("stub-uri"), token_file=path)
    port = _free_port()
    app = create_app(_stub_bundle(), cfg, token)
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/health", timeout=10).status_code == 200
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": token},
        ):
            answer = requests.get(f"{url}/model", headers=headers, timeout=10)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in answer.json()["detail"]
        answer = requests.post(
            f"{url}/predict", json={"records": []}, headers={}, timeout=10
        )
        assert answer.status_code == 401  # refused before the body is read
        for scheme in ("Bearer", "bearer", "BEARER"):  # RFC 7235: any case
            good = {"Authorization": f"{scheme} {token}"}
            answer = requests.get(f"{url}/model", headers=good, timeout=10)
            assert answer.status_code == 200
        wrong_case = {"Authorization": f"Bearer {token.upper()}"}
        answer = requests.get(f"{url}/model", headers=wrong_case, timeout=10)
        assert answer.status_code == 401  # the token itself is case-sensitive
    finally:
        srv.should_exit = True
        thread.join(10)


def test_a_batch_answers_each_request_as_it_would_be_answered_alone(bundle, table):
    """Requests scored together (micro-batching): each answer equals its lone
    answer; a bad request fails alone; the unit check of one request's rows
    does not touch another's."""
    from serve.api import predict_batch

    records = _records(bundle, table.head(9))
    qsm = [c for c in bundle.feature_columns if c.startswith("qsm_")]
    with_qsm_rows = table[table[qsm].notna().any(axis=1)].head(6)
    ppm = [
        {k: (v / 1000 if k in qsm else v) for k, v in r.items()}
        for r in _records(bundle, with_qsm_rows)
    ]
    requests_ = [records[:2], [{"nfl_pg_ml": "twelve"}], ppm, records[6:9]]
    batch = predict_batch(bundle, requests_, max_records=100)
    alone = [predict_batch(bundle, [r], max_records=100)[0] for r in requests_]
    assert [status for _, status in batch] == [200, 422, 200, 200]
    for (got, _), (want, _) in zip(batch, alone, strict=True):
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    # the ppm request's rows are refused for their unit, the others' are not
    with_qsm = [any(k in qsm for k in r) for r in ppm]
    assert sum(with_qsm) >= 5
    for answer, has in zip(batch[2][0]["predictions"], with_qsm, strict=True):
        assert ("look like ppm" in answer["error"]) == has
    assert all(p["error"] == "" for p in batch[3][0]["predictions"])
    # one good batch: scored as one table, the same answers
    good = [records[:2], records[2:3], records[3:9]]
    together = predict_batch(bundle, good, max_records=100)
    for (got, _), request in zip(together, good, strict=True):
        want = predict_batch(bundle, [request], max_records=100)[0][0]
        for g, w in zip(got["predictions"], want["predictions"], strict=True):
            assert g.keys() == w.keys()
            for key in g:
                if isinstance(w[key], float):
                    assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-12)
                else:
                    assert g[key] == w[key]


def test_concurrent_requests_get_their_own_answers(server, bundle, table):
    from concurrent.futures import ThreadPoolExecutor

    url, _, _ = server
    records = _records(bundle, table.head(24))
    expected = predict(bundle, records_to_frame(records, bundle), source="request")

    def ask(i: int):
        if i == 5:  # one bad request among them
            body = {"records": [{"nfl_pg_ml": "n.d."}]}
        else:
            body = {"records": [records[i]]}
        return requests.post(f"{url}/predict", json=body, timeout=60)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, range(len(records))))
    assert answers[5].status_code == 422 and "n.d." in answers[5].text
    for i, answer in enumerate(answers):
        if i == 5:
            continue
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"][0]
        assert got["participant_id"] == records[i]["participant_id"]
        for c in bundle.classes:
            assert got[f"p_{c}"] == pytest.approx(expected[f"p_{c}"].iloc[i], abs=1e-9)


def test_several_worker_processes_serve_the_model(trained, tmp_path_factory, bundle):
    proc, url, _, log = _api(trained, tmp_path_factory, "api-workers", "--workers", "2")
    try:
        answer = requests.post(
            f"{url}/predict", json={"records": [{"nfl_pg_ml": 30.0}]}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == bundle.version
    finally:
        _stop(proc)
    assert log.read_text().count("serving ") == 2  # each process loaded the model


def test_the_batcher_keeps_batches_full_under_steady_load():
    """Clients that send their next request as soon as they are answered: after the
    first batches, each batch holds every client instead of alternating a full
    batch with the one or two requests that arrived while answers went out."""
    from serve.api import MicroBatcher

    sizes: list[int] = []

    def score(items):
        sizes.append(len(items))
        time.sleep(0.01)  # a batch costs the same whatever its size
        return [({"item": i}, 200) for i in items]

    async def run():
        # a gather window well above the clients' turnaround: no timing flake
        batcher = MicroBatcher(score, max_batch=64, gather_s=0.05)

        async def client(k):
            for n in range(10):
                content, status = await batcher.submit((k, n))
                assert content == {"item": (k, n)} and status == 200
                await asyncio.sleep(0.001 + 0.00015 * k)  # each its own turnaround

        await asyncio.gather(*(client(k) for k in range(16)))
        lone = await batcher.submit("alone")  # no load: answered at once
        assert lone == ({"item": "alone"}, 200)

    asyncio.run(run())
    assert sum(sizes) == 16 * 10 + 1
    assert sizes[-1] == 1
    assert sizes[:-1] == [16] * 10
