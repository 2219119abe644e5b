"""Where a record came from: the commit in a checkout, the installed version elsewhere."""

from __future__ import annotations

import subprocess
from importlib import metadata

import pytest

from benchmark.system import provenance


@pytest.fixture(autouse=True)
def _fresh_cache():
    provenance.git_commit.cache_clear()
    yield
    provenance.git_commit.cache_clear()


def test_in_a_checkout_the_commit_is_recorded():
    commit = provenance.git_commit()
    assert len(commit.removesuffix("+dirty")) == 12
    int(commit.removesuffix("+dirty"), 16)  # hexadecimal


def test_outside_a_checkout_the_installed_version_is_recorded(monkeypatch):
    def no_git(*args: str) -> str:
        raise subprocess.CalledProcessError(128, ["git", *args])

    monkeypatch.setattr(provenance, "_git", no_git)
    assert provenance.git_commit() == f"missbench=={metadata.version('missbench')}"
