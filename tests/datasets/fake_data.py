"""Helpers shared by the real-dataset tests: run a committed fake-data script, run the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmark.cli import main
from tests.datasets.fake_scene import block_labels

DATA = Path(__file__).resolve().parents[1] / "data"


def make_fake(dataset: str, root: Path) -> Path:
    """Run `tests/data/<dataset>/make_fake.py` into `root/<dataset>`; returns `root`."""
    path = DATA / dataset / "make_fake.py"
    spec = importlib.util.spec_from_file_location(f"make_fake_{dataset}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make(root / dataset)
    return root


def committed_files(dataset: str, folder: str | None = None) -> set[str]:
    base = DATA / dataset / (folder or dataset)
    return {
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and ".missbench_cache" not in p.parts
    }


def generated_files(root: Path, dataset: str) -> set[str]:
    base = root / dataset
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def run_cli(dataset: str, data_root: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "--dataset",
            dataset,
            "--data-root",
            str(data_root),
            "--methods",
            "baseline",
            "--missing",
            "all",
            "--preset",
            "smoke",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            *extra,
        ]
    )


def write_real_potsdam_mini(root: Path) -> Path:
    """A fake of the shared real samples' layout (`real_potsdam_mini`): two 64 px patches."""
    import numpy as np
    import tifffile
    from PIL import Image

    base = root / "potsdam_multisenseseg"
    rng = np.random.default_rng(3)
    for folder in ("optical", "dsm", "labels"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for tile in ("00000", "00001"):
        labels = block_labels(rng, 6, 64, 64, 8).astype(np.uint8)
        optical = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        dsm = (labels * 3.0 + rng.random((64, 64))).astype(np.float32)
        tifffile.imwrite(base / "optical" / f"{tile}.tif", optical, photometric="rgb")
        tifffile.imwrite(base / "dsm" / f"{tile}.tif", dsm, photometric="minisblack")
        Image.fromarray(labels).save(base / "labels" / f"{tile}.png")
    return root


SYNTHETIC_TINY = {"tile_size": 64, "train_tiles": 3, "val_tiles": 2, "test_tiles": 2}


def fake_dataset(name: str, root: Path, synthetic_root: Path) -> tuple[Path, dict]:
    """(data root, options) under which registered dataset `name` opens on fake data.

    Every registered dataset needs an entry here: the dataset contract suite
    (`tests/datasets/test_dataset_contract.py`) fails for one without it, naming this function.
    """
    if name.startswith("synthetic"):
        return synthetic_root, dict(SYNTHETIC_TINY)
    if name == "folder":
        return Path("."), {"card": str(make_fake("folder", root) / "folder" / "card.yaml")}
    if name == "real_potsdam_mini":
        return write_real_potsdam_mini(root), {}
    if (DATA / name / "make_fake.py").exists():
        return make_fake(name, root), {}
    raise KeyError(
        f"dataset {name!r} has no fake data for the contract suite: add a writer to "
        "tests/datasets/fake_data.py:fake_dataset (see tests/data/<dataset>/make_fake.py)"
    )
