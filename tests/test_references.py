"""Every citation in code and docs points at an entry of docs/references.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests import ROOT

REFERENCES = ROOT / "docs" / "references.md"
CITATION = re.compile(r"refs#([a-z0-9-]+)")
#: Citations of files outside this repository (the old form), refused.
OUTSIDE = re.compile(r"lit §\d|literature\.md|domain\.md")


def _sources() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / p for p in listed if (ROOT / p).is_file()]


def anchors() -> set[str]:
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', REFERENCES.read_text()))


def test_every_citation_has_its_anchor():
    known = anchors()
    cited = {}
    for path in _sources():
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            for anchor in CITATION.findall(line):
                cited.setdefault(anchor, []).append(
                    f"{path.relative_to(ROOT)}:{line_no}"
                )
    assert len(cited) >= 10, "the simulator and baselines cite their sources"
    missing = {a: where[:3] for a, where in cited.items() if a not in known}
    assert not missing, f"citations without an anchor in docs/references.md: {missing}"


def test_no_citation_points_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _sources()
        if path not in (REFERENCES, Path(__file__).resolve())
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, f"cite docs/references.md (refs#<anchor>) instead: {found[:10]}"


def test_each_entry_gives_a_source_or_says_uncited():
    text = REFERENCES.read_text()
    sections = re.split(r'<a id="[a-z0-9-]+"></a>', text)[1:]
    assert len(sections) == len(anchors())
    for section in sections:
        assert re.search(r"\d{4}|UE|source study", section), section[:80]
