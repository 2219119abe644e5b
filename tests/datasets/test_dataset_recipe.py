"""The docs' real-dataset recipe: its worked example runs, on fake files, and honours the
dataset contract (the block is read from docs/extending.md, so what readers copy is what is
tested)."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest
import tifffile

from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.system.errors import DatasetNotFoundError
from tests.datasets import test_dataset_contract as contract
from tests.datasets.fake_scene import block_labels
from tests.paths import REPO

RECIPE = REPO / "docs" / "extending.md"
MARKER = "<!-- the real-dataset example: tests/datasets/test_dataset_recipe.py runs this block -->"
SCENES = [f"s{i}" for i in range(7)]
TEST_SCENES = ["s5", "s6"]
OLD_SCENE = "s1"
"""A scene whose height file is the early `dsm.tif`, not `dem.tif` (a train scene)."""
CORRECTED = "s2"
"""A scene with a corrected label in `labels_v2/` beside the original one (a train scene)."""


def readme_example() -> str:
    """The Python block that follows the marker in docs/extending.md."""
    text = RECIPE.read_text()
    assert text.count(MARKER) == 1, f"{RECIPE.name} needs exactly one line {MARKER}"
    after = text[text.index(MARKER) + len(MARKER) :]
    match = re.match(r"\s*```python\n(.*?)\n```", after, re.DOTALL)
    assert match is not None, f"{RECIPE.name}: no ```python block right after the example's marker"
    return match.group(1)


def write_riverside(root):
    """The made-up provider's tree: a folder per scene, grey labels, a test list."""
    rng = np.random.default_rng(5)
    base = root / "riverside"
    for scene in SCENES:
        raw = block_labels(rng, 4, 32, 32, 8)  # 0 = unlabelled, k = class k - 1
        folder = base / "scenes" / scene
        folder.mkdir(parents=True)
        rgb = np.array([(0, 0, 0), (20, 80, 180), (200, 60, 50), (60, 150, 60)])[raw]
        tifffile.imwrite(folder / "rgb.tif", rgb.astype(np.uint8), photometric="rgb")
        height = np.array([0.0, -1.0, 9.0, 2.0])[raw].astype(np.float32)
        tifffile.imwrite(folder / ("dsm.tif" if scene == OLD_SCENE else "dem.tif"), height)
        (base / "labels").mkdir(exist_ok=True)
        tifffile.imwrite(base / "labels" / f"{scene}.tif", raw.astype(np.uint8))
    (base / "labels_v2").mkdir()
    tifffile.imwrite(base / "labels_v2" / f"{CORRECTED}.tif", np.full((32, 32), 3, np.uint8))
    (base / "test.txt").write_text("\n".join(TEST_SCENES) + "\n")
    return root


@pytest.fixture()
def riverside(monkeypatch):
    """The example's class, registered for this test only (the registry is restored after)."""
    DATASETS.names()  # load the entry points first, so the copy below holds them
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))
    module = types.ModuleType("riverside_example")
    exec(
        compile(readme_example(), "docs/extending.md (real-dataset example)", "exec"),
        module.__dict__,
    )
    return DATASETS.get("riverside")


def test_the_example_splits_reads_and_decodes_the_provider_files(riverside, tmp_path):
    root = write_riverside(tmp_path)
    opened = {s: riverside(root, s, riverside.make_options({})) for s in riverside.SPLITS}
    names = {s: [d.tile_name(i) for i in range(len(d))] for s, d in opened.items()}
    # the official test list; every fourth of the other scenes held out of train for val
    assert names == {"train": ["s1", "s2", "s3"], "val": ["s0", "s4"], "test": TEST_SCENES}
    spec = opened["train"].spec
    assert spec.name == "riverside" and spec.modality_names == ("optical", "dsm")
    assert spec.classes == ("water", "building", "vegetation") and spec.ignore_index == 255

    train = opened["train"]
    sample = train.load(names["train"].index(OLD_SCENE))
    raw = tifffile.imread(root / "riverside" / "labels" / f"{OLD_SCENE}.tif").astype(np.int64)
    np.testing.assert_array_equal(sample[MASK], np.where(raw == 0, 255, raw - 1))
    np.testing.assert_array_equal(sample["dsm"][0], np.array([0.0, -1.0, 9.0, 2.0])[raw])

    corrected = train.load(names["train"].index(CORRECTED))[MASK]
    assert (corrected == 2).all()  # labels_v2/ wins over labels/

    for check in (
        contract.test_splits_are_not_empty_and_tiles_are_named_apart,
        contract.test_spec_matches_the_declared_modalities,
        contract.test_samples_have_the_keys_channels_shapes_and_dtypes_of_the_spec,
        contract.test_labels_are_classes_or_ignored,
        contract.test_a_window_is_the_slice_of_the_whole_tile,
        contract.test_statistics_are_finite_and_positive,
    ):
        check(opened)


def test_the_example_says_what_is_missing_in_one_line(riverside, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="riverside/scenes/<id>") as error:
        riverside(tmp_path, "train", riverside.make_options({}))
    assert "\n" not in str(error.value)
    root = write_riverside(tmp_path / "data")
    (root / "riverside" / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="no test.txt"):
        riverside(root, "test", riverside.make_options({}))
