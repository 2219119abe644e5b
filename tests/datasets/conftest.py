"""Decoded-tile caches of the dataset tests go to a temp folder, never into tests/data."""

import pytest


@pytest.fixture(autouse=True)
def _tile_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MISSBENCH_CACHE", str(tmp_path_factory.mktemp("tile_cache")))
