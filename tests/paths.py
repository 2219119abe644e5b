"""Where the repository and the tests' committed data are, for tests at any folder depth."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
