"""The test suite; its layout mirrors the packages it tests."""

from pathlib import Path

#: The repository root and the test data every test module reads from.
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
