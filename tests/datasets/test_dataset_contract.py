"""The contract every registered dataset must honour, on fake data with the real layout.

Parametrised over the dataset registry: a newly registered dataset is tested here the moment
it is registered (and fails until `tests/datasets/fake_data.py:fake_dataset` can write fake
data for it).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.core.dataset import MultiModalDataset
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.system.errors import DatasetNotFoundError
from tests.datasets.fake_data import fake_dataset


@pytest.fixture(scope="module", params=DATASETS.names(), ids=str)
def opened(request, tmp_path_factory, data_root) -> dict[str, MultiModalDataset]:
    """Train, val and test splits of one registered dataset, on fake data."""
    name = request.param
    root, options = fake_dataset(name, tmp_path_factory.mktemp(name), data_root)
    cls = DATASETS.get(name)
    return {s: cls(root, s, cls.make_options(options)) for s in cls.SPLITS}


def test_splits_are_not_empty_and_tiles_are_named_apart(opened):
    for split, dataset in opened.items():
        assert len(dataset) > 0, split
        names = [dataset.tile_name(i) for i in range(len(dataset))]
        assert len(set(names)) == len(names), (split, names)


def test_spec_matches_the_declared_modalities(opened):
    dataset = opened["train"]
    cls = type(dataset)
    assert dataset.spec.modality_names == cls.modalities_for(dataset.options)
    assert dataset.spec.name  # the registered name, or a card's own name for `folder`
    assert len(dataset.spec.palette) == dataset.spec.num_classes
    for split in ("val", "test"):
        assert opened[split].spec.modality_names == dataset.spec.modality_names


def test_samples_have_the_keys_channels_shapes_and_dtypes_of_the_spec(opened):
    for split, dataset in opened.items():
        spec = dataset.spec
        for index in range(len(dataset)):
            sample = dataset.load(index)
            assert set(sample) == {*spec.modality_names, MASK}, (split, index)
            height, width = dataset.tile_shape(index)
            for modality in spec.modalities:
                array = sample[modality.name]
                assert array.dtype == np.float32, (split, modality.name, array.dtype)
                assert array.shape == (modality.channels, height, width), (split, modality.name)
            assert sample[MASK].dtype == np.int64
            assert sample[MASK].shape == (height, width)


def test_labels_are_classes_or_ignored(opened):
    for split, dataset in opened.items():
        spec = dataset.spec
        for index in range(len(dataset)):
            values = np.unique(dataset.load(index)[MASK])
            valid = (values >= 0) & (values < spec.num_classes) | (values == spec.ignore_index)
            assert valid.all(), (split, index, values)
    counts = opened["train"].class_pixel_counts()
    assert counts.sum() > 0  # the statistics and class weights need labelled training pixels


def test_a_window_is_the_slice_of_the_whole_tile(opened):
    dataset = opened["train"]
    height, width = dataset.tile_shape(0)
    window = (slice(height // 4, height // 2 + 1), slice(1, width - 1))
    whole, part = dataset.load(0), dataset.load(0, window)
    assert set(part) == set(whole)
    for key, array in whole.items():
        np.testing.assert_array_equal(part[key], array[..., window[0], window[1]], err_msg=key)


def test_statistics_are_finite_and_positive(opened):
    for modality in opened["train"].spec.modalities:
        assert np.isfinite(modality.mean).all() and np.all(np.asarray(modality.std) > 0)


@pytest.mark.parametrize(
    "name", [n for n in DATASETS.names() if not DATASETS.get(n).GENERATED], ids=str
)
def test_absent_files_say_where_to_get_them(name, tmp_path):
    cls = DATASETS.get(name)
    _, options = fake_dataset(name, tmp_path / "fake", tmp_path)
    if "card" in options:  # the card is the dataset: point it at a file that is not there
        options = {"card": str(tmp_path / "absent" / "card.yaml")}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as error:
        cls(empty, "train", cls.make_options(options)).spec  # noqa: B018
    message = str(error.value)
    assert "\n" not in message.strip() and len(message) > 20
