"""A run that declares training tiles without a modality (`--train-missing`) normalises that
modality with the statistics of the tiles that have it, in every split of the run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmark.core.hparams import Params
from benchmark.core.plugins import DATASETS
from benchmark.core.records import RunSpec
from benchmark.data.pipeline import open_dataset, prepare_data, tile_availability
from benchmark.data.statistics import RestatedSplit, channel_stats, present_statistics
from tests.conftest import TINY

OPTIONS = {**TINY, "train_tiles": 4}


@pytest.fixture()
def train(data_root):
    cls = DATASETS.get("synthetic")
    return cls(data_root, "train", cls.make_options(OPTIONS))


class Poisoned(RestatedSplit):
    """`base` with one tile's `modality` replaced by absurd values (what no statistic of the
    tiles that have it may see, when that tile is declared absent)."""

    def __init__(self, base, tile: int, modality: str) -> None:
        super().__init__(base, base.spec)
        self.tile, self.modality = tile, modality

    def load(self, index, window=None):
        sample = dict(self.base.load(index, window))
        if index == self.tile:
            sample[self.modality] = np.full_like(sample[self.modality], 1e4)
        return sample


def stats_of(spec, name):
    modality = spec.modality(name)
    return modality.mean, modality.std


def test_statistics_come_from_the_tiles_that_have_the_modality(train):
    have = {"dsm": np.array([True, False, True, True]), "optical": np.ones(4, dtype=bool)}
    spec = present_statistics(train, have)
    mean, std, _ = channel_stats(train.load(i)["dsm"] for i in (0, 2, 3))
    np.testing.assert_allclose(spec.modality("dsm").mean, mean, rtol=1e-12)
    np.testing.assert_allclose(spec.modality("dsm").std, std, rtol=1e-12)
    assert stats_of(spec, "dsm") != stats_of(train.spec, "dsm")  # tile 1 would have counted
    assert stats_of(spec, "optical") == stats_of(train.spec, "optical")  # nothing absent


def test_an_absent_tile_never_shapes_the_statistics(train):
    have = {"dsm": np.array([True, False, True, True]), "optical": np.ones(4, dtype=bool)}
    clean = present_statistics(train, have)
    poisoned = Poisoned(train, tile=1, modality="dsm")
    assert stats_of(present_statistics(poisoned, have), "dsm") == stats_of(clean, "dsm")
    everyone = dict.fromkeys(have, np.ones(4, dtype=bool))
    everyone["dsm"] = np.array([True, True, True, False])  # tile 1 present: it counts
    assert stats_of(present_statistics(poisoned, everyone), "dsm") != stats_of(
        present_statistics(train, everyone), "dsm"
    )


def run_spec(train_missing=()):
    return RunSpec(
        method="baseline",
        hparams=Params({"lr": 1e-3}),
        dataset="synthetic",
        dataset_options=Params(OPTIONS),
        seed=3,
        steps=4,
        val_checks=1,
        eval_overlap=0.0,
        eval_batch_size=2,
        train_modalities=("dsm", "optical"),
        train_missing=train_missing,
    )


def test_every_split_of_a_run_normalises_with_the_run_statistics(data_root, train):
    spec = run_spec((("dsm", 0.5),))
    have = tile_availability(("dsm", "optical"), len(train), {"dsm": 0.5}, seed=3)
    expected = present_statistics(train, have)
    data = prepare_data(spec, data_root)
    for split in (data.train, data.val, data.test):
        assert split.spec == expected
        assert stats_of(split.spec, "dsm") != stats_of(train.spec, "dsm")
    assert open_dataset(spec, "test", data_root).spec == expected
    assert len(data.train) == len(train) and data.val.split == "val"


def test_a_run_without_absent_tiles_keeps_the_dataset_and_its_statistics(data_root, train):
    for missing in ((), (("dsm", 0.0),)):
        dataset = open_dataset(run_spec(missing), "train", data_root)
        assert type(dataset) is type(train)
        assert dataset.spec == train.spec


def test_restated_split_is_its_base_but_for_the_statistics(train):
    spec = dataclasses.replace(train.spec, name=train.spec.name)
    restated = RestatedSplit(train, spec)
    assert restated.NAME == train.NAME and restated.split == "train"
    assert len(restated) == len(train) and restated.tile_name(1) == train.tile_name(1)
    assert restated.tile_shape(0) == train.tile_shape(0)
    np.testing.assert_array_equal(restated.load(0)["dsm"], train.load(0)["dsm"])
