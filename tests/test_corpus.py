"""The bad-input corpus (tests/corpus/cases.toml): every case through its real
entry point, with its exit code (or HTTP status) and message, no traceback, and
nothing partial left behind."""

from __future__ import annotations

import logging
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import requests

from tests.serve.test_api import server  # noqa: F401  (the API over loopback)

CASES = tomllib.loads(
    (Path(__file__).parent / "corpus" / "cases.toml").read_text(encoding="utf-8")
)["case"]


def test_the_corpus_is_large_and_covers_every_entry_point():
    assert len(CASES) >= 40
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    entries = {" ".join(c["args"][:2]) for c in CASES if "args" in c}
    entries |= {"api" for c in CASES if "api" in c}
    for entry in ("features extract", "training --features", "training --config",
                  "training analyze", "serve score", "serve explain",
                  "serve monitor", "api"):  # fmt: skip
        assert any(e.startswith(entry.split(" --")[0]) for e in entries), entry


def _prepare(case: dict, work: Path, small_cohort: Path) -> None:
    if any("{cohort}" in a for a in case.get("args", [])) or any(
        k.startswith("cohort/")
        for key in ("files", "latin1", "truncate", "replace")
        for k in case.get(key, {})
    ):
        shutil.copytree(small_cohort, work / "cohort")
    for pattern in case.get("remove", []):
        for path in work.glob(pattern):
            path.unlink()
    for encoding, key in (("utf-8", "files"), ("latin-1", "latin1")):
        for name, text in case.get(key, {}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(text.encode(encoding))
    for name, (pattern, new) in case.get("replace", {}).items():
        text = (work / name).read_text(encoding="utf-8")
        edited = re.sub(pattern, new, text, count=1)
        assert edited != text, f"{case['name']}: {pattern!r} not in {name}"
        (work / name).write_text(edited, encoding="utf-8")
    for pattern, keep in case.get("truncate", {}).items():
        path = sorted(work.glob(pattern))[0]
        path.write_bytes(path.read_bytes()[:keep])


@pytest.fixture(scope="module")
def features_csv(tmp_path_factory, small_cohort) -> Path:
    from features.extract import extract_features

    path = tmp_path_factory.mktemp("corpus") / "features.csv"
    extract_features(small_cohort, n_jobs=1).table.to_csv(path, index=False)
    return path


def _main(entry: str):
    if entry == "features":
        from features.__main__ import main
    elif entry == "training":
        from training.__main__ import main
    else:
        from serve.__main__ import main
    return main


@pytest.mark.parametrize(
    "case", [c for c in CASES if "args" in c], ids=lambda c: c["name"]
)
def test_a_command_line_case(
    case, tmp_path, small_cohort, features_csv, trained, capsys, caplog, monkeypatch
):
    result, cfg = trained
    work = tmp_path
    (work / "out").mkdir()
    _prepare(case, work, small_cohort)
    places = {
        "{work}": str(work),
        "{cohort}": str(work / "cohort"),
        "{out}": str(work / "out"),
        "{features}": str(features_csv),
        "{model}": result.model_uri,
        "{tracking}": cfg.tracking_uri,
    }
    args = []
    for arg in case["args"]:
        for key, value in places.items():
            arg = arg.replace(key, value)
        args.append(arg)
    monkeypatch.chdir(work)
    monkeypatch.delenv("ALSDX_DEBUG", raising=False)
    caplog.set_level(logging.INFO)
    code = _main(args[0])(args[1:])
    captured = capsys.readouterr()
    said = captured.out + captured.err + caplog.text
    assert code == case["exit"], said
    assert case["says"].lower() in said.lower(), said
    assert "Traceback" not in said
    if case["exit"] != 0:  # refused: nothing written, not even in part
        assert list((work / "out").rglob("*")) == []
    assert not list(work.rglob(".tmp-*"))
    for name in case.get("absent", []):  # what code in the input would have made
        assert not (work / name).exists(), f"{name} exists: the input ran code"


@pytest.mark.parametrize(
    "case", [c for c in CASES if "api" in c], ids=lambda c: c["name"]
)
def test_an_api_case(case, server):  # noqa: F811
    url, _, log = server
    answer = requests.post(
        f"{url}{case['api']}",
        data=case["body"].encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == case["status"], answer.text
    assert case["says"].lower() in answer.text.lower(), answer.text
    assert "Traceback" not in answer.text
    assert "Traceback" not in log.read_text()
