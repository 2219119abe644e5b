"""The contract every registered corruption honours, parametrised over `CORRUPTIONS`.

A corruption registered by MissBench or by a plugin package is checked here the moment it is
registered: deterministic for a seed (also in a fresh process, as a `--workers` process or a Ray
task applies it), nested severities where its record says so, validity masks of the right shape
and type where its record documents invalid pixels (and none elsewhere), only modalities of its
kinds touched, every other key unchanged and the inputs never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmark.core.spec import MASK, DatasetSpec, Modality
from benchmark.corrupt.corruption import SEVERITIES, Corrupted
from benchmark.corrupt.registry import CORRUPTIONS
from tests.paths import REPO

NAMES = CORRUPTIONS.names()
HEIGHT, WIDTH = 40, 56
"""Not square, so a model that mixes up the axes fails."""

MODALITIES = (
    Modality("rgb", 3, (0.3, 0.2, 0.2), (0.1, 0.08, 0.08), "R, G, B reflectance [0-1]"),
    Modality("nir", 1, (0.4,), (0.15,), "near-infrared reflectance [0-1]"),
    Modality("dsm", 1, (6.0,), (6.0,), "surface height [m]"),
    Modality("sar", 2, (0.2, 0.1), (0.1, 0.05), "VV, VH amplitude"),
    Modality("thermal", 1, (300.0,), (5.0,), "brightness temperature [K]", kind="other"),
)
SPECS = {
    "every_kind": DatasetSpec("every_kind", MODALITIES, ("a", "b"), ((0, 0, 0), (9, 9, 9))),
    "rgb_dsm": DatasetSpec("rgb_dsm", MODALITIES[::2][:2], ("a", "b"), ((0, 0, 0), (9, 9, 9))),
    "one_kind": DatasetSpec("one_kind", MODALITIES[2:3], ("a", "b"), ((0, 0, 0), (9, 9, 9))),
}
SPEC = SPECS["every_kind"]


def _sample(spec: DatasetSpec, seed: int = 5) -> dict[str, np.ndarray]:
    """Raw arrays around each modality's statistics, shaped as an off-centre cone (a shift in
    any direction changes it more the further it goes) with a little texture, and labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    cone = np.hypot(xx - 0.4 * WIDTH, yy - 0.6 * HEIGHT) / max(HEIGHT, WIDTH) - 0.3
    sample = {}
    for m in spec.modalities:
        mean, std = np.asarray(m.mean)[:, None, None], np.asarray(m.std)[:, None, None]
        texture = 0.1 * rng.standard_normal((m.channels, HEIGHT, WIDTH))
        scale = 2.0 + 0.2 * np.arange(m.channels)[:, None, None]
        sample[m.name] = (mean + std * (scale * cone + texture)).astype(np.float32)
    sample[MASK] = rng.integers(0, 2, (HEIGHT, WIDTH)).astype(np.uint8)
    return sample


SAMPLES = {name: _sample(spec) for name, spec in SPECS.items()}


def _apply(name: str, severity: int, spec_name: str = "every_kind", **where: object) -> Corrupted:
    seed, tile = where.get("seed", 0), where.get("tile", "tile_0")
    sample = where.get("sample", SAMPLES[spec_name])
    return CORRUPTIONS.get(name).corrupt(sample, SPECS[spec_name], severity, seed, tile)


def _digest(result: Corrupted) -> str:
    h = hashlib.sha1()
    for key in sorted(result.arrays):
        h.update(key.encode() + np.ascontiguousarray(result.arrays[key]).tobytes())
    for key in sorted(result.validity):
        h.update(b"valid:" + key.encode() + result.validity[key].tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed_and_tile(name: str) -> None:
    for severity in SEVERITIES:
        first, again = _apply(name, severity), _apply(name, severity)
        assert _digest(first) == _digest(again), severity


@pytest.mark.parametrize("name", NAMES)
def test_a_modality_never_depends_on_the_others_present(name: str) -> None:
    full = _apply(name, 4)
    for m in CORRUPTIONS.get(name).modalities(SPEC):
        alone = _apply(name, 4, sample={m: SAMPLES["every_kind"][m]})
        assert set(alone.arrays) == {m}
        assert np.array_equal(alone.arrays[m], full.arrays[m]), m
        assert alone.validity.keys() == full.validity.keys() & {m}
        if m in full.validity:
            assert np.array_equal(alone.validity[m], full.validity[m]), m


def test_the_same_in_a_fresh_process() -> None:
    """A worker process (another hash seed, another import order) corrupts the same tile
    identically: nothing depends on the process, only on (seed, name, severity, tile)."""
    script = (
        "import json, sys\n"
        "from tests.benchmark.corrupt.test_corruption_contract import NAMES, _apply, _digest\n"
        "json.dump({n: _digest(_apply(n, 3, tile='x/7.tif')) for n in NAMES}, sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    here = {n: _digest(_apply(n, 3, tile="x/7.tif")) for n in NAMES}
    assert json.loads(result.stdout) == here


@pytest.mark.parametrize("name", NAMES)
def test_severities_nest_where_the_record_says_so(name: str) -> None:
    record = CORRUPTIONS.get(name)
    if not record.nested:
        pytest.skip(f"{name}: its record says its severities are independent draws")
    targets = record.modalities(SPEC)
    for tile in ("tile_0", "tile_1"):
        damage, invalid = [], {m: np.zeros((HEIGHT, WIDTH), bool) for m in targets}
        for severity in SEVERITIES:
            result = _apply(name, severity, tile=tile)
            damage.append(_damage(result, targets))
            for m in targets:
                now = ~result.validity.get(m, np.ones((HEIGHT, WIDTH), bool))
                assert not (invalid[m] & ~now).any(), f"{m}: an invalid pixel became valid"
                invalid[m] = now
        assert damage[0] > 0 and all(a < b for a, b in zip(damage, damage[1:], strict=False)), (
            tile,
            damage,
        )


def _damage(result: Corrupted, targets: tuple[str, ...]) -> float:
    """Mean |corrupted - clean| in band stds over the targets."""
    total = []
    for m in targets:
        std = np.asarray(SPEC.modality(m).std)[:, None, None]
        total.append(np.mean(np.abs(result.arrays[m] - SAMPLES["every_kind"][m]) / std))
    return float(np.mean(total))


@pytest.mark.parametrize("name", NAMES)
def test_validity_masks_exactly_where_the_record_documents_invalid_pixels(name: str) -> None:
    record = CORRUPTIONS.get(name)
    targets = record.modalities(SPEC)
    seen_invalid = False
    for severity in SEVERITIES:
        result = _apply(name, severity)
        assert set(result.validity) <= set(targets)
        for valid in result.validity.values():
            assert valid.dtype == bool and valid.shape == (HEIGHT, WIDTH)
            assert not valid.flags.writeable, "a mask may be shared by several modalities"
            assert not valid.all(), "a modality valid everywhere has no entry"
            seen_invalid = True
        if not record.invalid:
            assert result.validity == {}, "invalid pixels its record does not document"
    assert seen_invalid == bool(record.invalid)


@pytest.mark.parametrize("spec_name", list(SPECS))
@pytest.mark.parametrize("name", NAMES)
def test_only_modalities_of_its_kinds_change(name: str, spec_name: str) -> None:
    record, spec, sample = CORRUPTIONS.get(name), SPECS[spec_name], SAMPLES[spec_name]
    targets = record.modalities(spec)
    kinds = {m.name: m.kind for m in spec.modalities}
    assert all(kinds[m] in record.kinds for m in targets)
    of_kinds = [m for m, kind in kinds.items() if kind in record.kinds]
    if record.relative and len(of_kinds) == len(kinds):
        assert targets == tuple(of_kinds[1:]), "the first modality stays as the reference"
    else:
        assert targets == tuple(of_kinds)
    result = _apply(name, 5, spec_name)
    for m in spec.modality_names:
        out = result.arrays[m]
        assert out.dtype == np.float32 and out.shape == sample[m].shape
        assert np.isfinite(out).all()
        assert np.array_equal(out, sample[m]) != (m in targets), m


@pytest.mark.parametrize("name", NAMES)
def test_untouched_keys_pass_through_and_inputs_stay_as_they_were(name: str) -> None:
    sample = {k: v.copy() for k, v in SAMPLES["every_kind"].items()}
    sample["rgb"] = sample["rgb"].astype(np.float64)  # raw arrays need not be float32
    for value in sample.values():
        value.flags.writeable = False  # an in-place write raises
    targets = CORRUPTIONS.get(name).modalities(SPEC)
    result = _apply(name, 5, sample=sample)
    assert result.arrays.keys() == sample.keys()
    assert result.arrays[MASK] is sample[MASK]
    for key, value in sample.items():
        assert np.array_equal(value, SAMPLES["every_kind"][key].astype(value.dtype))
        if key not in targets and key != MASK and value.dtype == np.float32:
            assert result.arrays[key] is value, f"{key}: an untouched float32 raster is not copied"
