"""PSA building blocks: class-balanced sampler, supervised InfoNCE, collapse gauge."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import torch

from methods.components.psa.sampler import (
    HOST_KERNEL_ENV,
    at_cell_centres,
    class_code_table,
    class_groups,
    codes_by_table,
    collapse_std,
    downsample_labels,
    gather_pixels,
    host_kernel_name,
    lowest_keys_per_group,
    random_bytes,
    random_subset_by_table,
    random_subset_on_host,
    random_subset_per_group,
    sample_pixels,
    sample_pixels_loop,
    supervised_infonce,
)

IGNORE = 255
K = 6


def make_labels(seed: int = 0) -> torch.Tensor:
    """[2, 32, 32] labels: classes 0..2 frequent, class 4 rare (5 px), class 3/5 absent,
    and a block of ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (2, 32, 32), generator=g)
    labels[0, :8, :8] = IGNORE
    labels[1, 0, :5] = 4
    return labels


def counts_of(labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.bincount(labels.reshape(-1)[index], minlength=K)


HAS_NUMBA = importlib.util.find_spec("numba") is not None
NEEDS_NUMBA = pytest.mark.skipif(not HAS_NUMBA, reason="numba (the 'fast' extra) not installed")
KERNEL_OPTIONS = {
    "numba": {"on_host": True, "host_kernel": "numba"},
    "numpy": {"on_host": True, "host_kernel": "numpy"},
    "device": {"on_host": False},
}
KERNELS = pytest.mark.parametrize(
    "kernel",
    [
        pytest.param(options, id=name, marks=NEEDS_NUMBA if name == "numba" else ())
        for name, options in KERNEL_OPTIONS.items()
    ],
)
"""Every sampling kernel meets the same contract: the two CPU ones (compiled and NumPy) and the
device one, which runs on CPU tensors too."""


@KERNELS
def test_balanced_equal_counts_per_present_class_and_all_of_a_rare_class(kernel):
    labels = make_labels()
    g = torch.Generator().manual_seed(1)
    index = sample_pixels(labels, 50, K, IGNORE, generator=g, **kernel)
    counts = counts_of(labels, index)
    assert counts[:3].tolist() == [50, 50, 50]
    assert counts[4] == 5  # rarer than the budget: every one of its pixels
    assert counts[3] == 0 and counts[5] == 0
    assert index.unique().numel() == index.numel()  # no pixel twice


@KERNELS
def test_never_draws_an_ignored_pixel(kernel):
    labels = make_labels()
    for mode in ("balanced", "uniform"):
        for seed in range(5):
            g = torch.Generator().manual_seed(seed)
            index = sample_pixels(labels, 10_000, K, IGNORE, mode, g, **kernel)
            assert (labels.reshape(-1)[index] != IGNORE).all()
    # a budget above every class count takes all labelled pixels, still no ignored one
    index = sample_pixels(labels, 10_000, K, IGNORE, **kernel)
    assert index.numel() == int((labels != IGNORE).sum())


@KERNELS
def test_deterministic_under_a_seed_and_different_across_seeds(kernel):
    labels = make_labels()

    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return sample_pixels(labels, 20, K, IGNORE, generator=g, **kernel)

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    torch.manual_seed(7)
    a = sample_pixels(labels, 20, K, IGNORE, **kernel)
    torch.manual_seed(7)
    assert torch.equal(a, sample_pixels(labels, 20, K, IGNORE, **kernel))  # global RNG


@KERNELS
def test_uniform_draws_the_same_total_budget_ignoring_class(kernel):
    labels = make_labels()
    index = sample_pixels(labels, 50, K, IGNORE, mode="uniform", **kernel)
    assert index.numel() == 50 * 4  # four classes present
    assert counts_of(labels, index)[4] < 5  # the rare class is not favoured (5 of ~1800 px)


@KERNELS
def test_hard_split_takes_its_share_from_hard_pixels_and_tops_up(kernel):
    labels = make_labels()
    g = torch.Generator().manual_seed(0)
    hard = torch.rand(labels.shape, generator=g) < 0.3
    index = sample_pixels(labels, 40, K, IGNORE, hard=hard, hard_fraction=0.5, **kernel)
    counts = counts_of(labels, index)
    assert counts[:3].tolist() == [40, 40, 40] and counts[4] == 5
    flat_labels, flat_hard = labels.reshape(-1)[index], hard.reshape(-1)[index]
    for c in range(3):
        assert int(flat_hard[flat_labels == c].sum()) == 20
    # no easy pixels at all: the whole budget comes from hard ones
    all_hard = torch.ones_like(hard)
    index = sample_pixels(labels, 40, K, IGNORE, hard=all_hard, hard_fraction=0.5, **kernel)
    assert counts_of(labels, index)[:3].tolist() == [40, 40, 40]
    assert (labels.reshape(-1)[index] != IGNORE).all()  # ignored pixels stay out, hard or not


@KERNELS
def test_empty_and_all_ignored_inputs(kernel):
    labels = torch.full((1, 4, 4), IGNORE)
    assert sample_pixels(labels, 8, K, IGNORE, **kernel).numel() == 0
    assert sample_pixels(labels, 8, K, IGNORE, mode="uniform", **kernel).numel() == 0
    assert sample_pixels(labels[:, :0], 8, K, IGNORE, **kernel).numel() == 0
    with pytest.raises(ValueError):
        sample_pixels(labels, 8, K, IGNORE, mode="greedy")


def test_downsample_labels_takes_cell_centres_and_keeps_ignore():
    mask = torch.zeros(1, 8, 8, dtype=torch.long)
    mask[:, 4:, 4:] = 2
    mask[:, :4, :4] = IGNORE
    down = downsample_labels(mask, (2, 2))
    assert down.tolist() == [[[IGNORE, 0], [0, 2]]]


def test_gather_pixels_matches_flat_indexing():
    x = torch.randn(2, 3, 4, 5)
    index = torch.tensor([0, 7, 20, 39])
    b, y, xx = index // 20, (index % 20) // 5, index % 5
    torch.testing.assert_close(gather_pixels(x, index), x[b, :, y, xx])


def test_supervised_infonce_rewards_class_aligned_embeddings():
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)
    prototypes = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)
    keys = prototypes[labels] + 0.05 * torch.randn(32, 16)
    aligned = supervised_infonce(keys + 0.05 * torch.randn(32, 16), keys, labels, 0.1)
    shuffled = supervised_infonce(torch.randn(32, 16), keys, labels, 0.1)
    assert aligned < shuffled
    # identical one-hot embeddings at a low temperature: each anchor's softmax mass splits
    # evenly over its class's 8 keys, so the loss is log(8)
    one_hot = torch.eye(16)[labels]
    exact = supervised_infonce(one_hot, one_hot, labels, 0.01)
    assert exact == pytest.approx(math.log(8), abs=1e-3)


def test_collapse_std_reads_healthy_and_collapsed_features():
    torch.manual_seed(0)
    c = 64
    healthy = collapse_std(torch.randn(4, c, 8, 8))
    assert healthy == pytest.approx(1 / math.sqrt(c), rel=0.1)
    collapsed = torch.ones(4, c, 8, 8) + 1e-4 * torch.randn(4, c, 8, 8)
    assert collapse_std(collapsed) < 0.01 * healthy


def lowest_keys_by_full_sort(groups, keys, take):
    """The oracle: sort every pixel by (group, key) and keep each group's first take[g]."""
    order = sorted(range(groups.numel()), key=lambda i: (int(groups[i]), float(keys[i])))
    kept, seen = [], {}
    for i in order:
        g = int(groups[i])
        if seen.get(g, 0) < int(take[g]):
            kept.append(i)
            seen[g] = seen.get(g, 0) + 1
    return sorted(kept)


@pytest.mark.parametrize("seed", range(4))
def test_thinned_selection_equals_a_full_sort(seed):
    g = torch.Generator().manual_seed(seed)
    groups = torch.multinomial(torch.tensor([50.0, 20, 5, 1, 0.2, 10]), 3000, True, generator=g)
    keys = torch.rand(3000, generator=g)
    take = torch.tensor([40, 40, 40, 40, 40, 0])
    got = lowest_keys_per_group(groups, keys, take).tolist()
    assert got == lowest_keys_by_full_sort(groups, keys, take)


def test_thinned_selection_stays_exact_when_a_group_falls_short_of_its_quota():
    # Group 0's keys are all near 1, so almost none survive the threshold: the fallback must
    # redo that group with every pixel and still return its lowest keys.
    g = torch.Generator().manual_seed(0)
    groups = torch.cat([torch.zeros(500, dtype=torch.long), torch.ones(500, dtype=torch.long)])
    keys = torch.cat([0.99 + 0.01 * torch.rand(500, generator=g), torch.rand(500, generator=g)])
    take = torch.tensor([30, 30])
    got = lowest_keys_per_group(groups, keys, take).tolist()
    assert got == lowest_keys_by_full_sort(groups, keys, take)
    assert sum(1 for i in got if i < 500) == 30


@KERNELS
def test_loop_reference_and_vectorised_sampler_draw_the_same_counts_per_class(kernel):
    labels = make_labels(3)
    for per_class in (1, 5, 50, 10_000):
        fast = sample_pixels(labels, per_class, K, IGNORE, **kernel)
        loop = sample_pixels_loop(labels, per_class, K, IGNORE, torch.Generator().manual_seed(0))
        assert counts_of(labels, fast).tolist() == counts_of(labels, loop).tolist()
        assert (labels.reshape(-1)[loop] != IGNORE).all()
        assert torch.equal(loop, torch.sort(loop).values)


@pytest.mark.parametrize(
    ("full", "grid"), [((64, 64), (8, 8)), ((50, 37), (7, 5)), ((16, 16), (16, 16))]
)
def test_cell_centres_are_the_pixels_nearest_exact_interpolation_reads(full, grid):
    values = torch.randn(2, 3, *full)
    expected = torch.nn.functional.interpolate(values, size=grid, mode="nearest-exact")
    assert torch.equal(at_cell_centres(values, grid), expected)
    labels = torch.randint(0, 6, (2, *full))
    expected_labels = torch.nn.functional.interpolate(
        labels[:, None].float(), size=grid, mode="nearest-exact"
    )[:, 0].long()
    assert torch.equal(downsample_labels(labels, grid), expected_labels)


def test_labels_outside_the_class_range_and_an_in_range_ignore_index_are_never_drawn():
    labels = torch.tensor([[-3, -1, 0, 0, 1, 1, 2, 2, 6, 99]])
    for name, kernel in KERNEL_OPTIONS.items():
        if name == "numba" and not HAS_NUMBA:
            continue
        index = sample_pixels(labels, 10, 3, ignore_index=2, **kernel)
        assert index.tolist() == [2, 3, 4, 5]
        small = sample_pixels(labels.to(torch.uint8).clamp(max=9), 10, 3, 2, **kernel)
        assert small.tolist() == [2, 3, 4, 5]  # any integer dtype


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16])
@pytest.mark.parametrize("ignore_index", [2, IGNORE, -1])
def test_host_table_lookup_is_the_torch_group_mapping(dtype, ignore_index):
    # The CPU fast path maps labels to groups with a table (`class_code_table`); it must be
    # the same mapping as `class_groups` up to which unlabelled group (0 or the last) a pixel
    # lands in, and draw the very sample the generic host kernel draws from those groups.
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(-3, 12, (2, 9, 7), generator=g).to(dtype)
    labels[0, 0, :4] = 300  # far past the last class
    groups = class_groups(labels, 8, ignore_index)
    unlabelled = (groups == 0) | (groups == 9)
    table = class_code_table(8, ignore_index)
    codes = torch.from_numpy(codes_by_table(labels.reshape(-1).numpy(), table))
    assert codes.dtype == torch.long and codes.numel() == labels.numel()
    from_table = codes >> 8
    assert torch.equal(from_table[~unlabelled], groups[~unlabelled])
    assert ((from_table[unlabelled] == 0) | (from_table[unlabelled] == 9)).all()
    take = torch.full((10,), 3)
    take[0] = take[-1] = 0
    fast = sample_pixels(labels, 3, 8, ignore_index, generator=torch.Generator().manual_seed(5))
    generic = random_subset_on_host(groups.numpy(), take.numpy(), torch.Generator().manual_seed(5))
    assert fast.tolist() == generic.tolist()


def random_case(seed: int) -> tuple[torch.Tensor, int, int, int]:
    """Labels of a random shape, dtype and range (negative, ignored and out-of-range values
    included), with a random class count, ignore index and budget."""
    g = torch.Generator().manual_seed(seed)
    num_classes = int(torch.randint(2, 20, (1,), generator=g))
    side = int(torch.randint(1, 40, (1,), generator=g))
    batch = int(torch.randint(1, 5, (1,), generator=g))
    labels = torch.randint(-3, num_classes + 4, (batch, side, side), generator=g)
    labels = labels.to([torch.int64, torch.int32, torch.int16][seed % 3])
    if seed % 5 == 0:
        labels = labels.clamp(min=0).to(torch.uint8)
    ignore_index = [IGNORE, 0, num_classes - 1, -1][seed % 4]
    per_class = int(torch.randint(1, 200, (1,), generator=g))
    return labels, num_classes, ignore_index, per_class


@NEEDS_NUMBA
@pytest.mark.parametrize("seed", range(40))
def test_compiled_and_numpy_kernels_draw_the_same_sample(seed):
    # The numba kernel replaces the NumPy one wherever numba imports, so a result must not
    # depend on which was installed: the same pixels for the same seed, in every mode, for any
    # label dtype, negative and out-of-range labels and budgets above and below class sizes.
    labels, num_classes, ignore_index, per_class = random_case(seed)
    hard = torch.rand(labels.shape, generator=torch.Generator().manual_seed(seed)) < 0.3
    for options in ({}, {"mode": "uniform"}, {"hard": hard, "hard_fraction": 0.5}):
        drawn = {
            kernel: sample_pixels(
                labels,
                per_class,
                num_classes,
                ignore_index,
                generator=torch.Generator().manual_seed(seed),
                host_kernel=kernel,
                **options,
            )
            for kernel in ("numba", "numpy")
        }
        assert torch.equal(drawn["numba"], drawn["numpy"]), options


@NEEDS_NUMBA
def test_compiled_kernel_with_cut_ties_matches_numpy_on_large_classes():
    # Classes of thousands of pixels put a dozen pixels on each key level, so every class's
    # cut is broken by the tie-break floats: the part where the two kernels could part ways.
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (8, 64, 64), generator=g)
    for seed in range(10):
        a, b = (
            sample_pixels(
                labels,
                300,
                4,
                IGNORE,
                generator=torch.Generator().manual_seed(seed),
                host_kernel=kernel,
            )
            for kernel in ("numba", "numpy")
        )
        assert torch.equal(a, b) and a.numel() == 4 * 300


@NEEDS_NUMBA
def test_compiled_kernel_with_more_groups_than_16_bit_codes_hold_matches_numpy():
    # Past 254 classes (or 126 with the hard/easy split) the compiled kernel's scratch codes
    # are 32-bit: the same sample there too.
    labels = torch.randint(-2, 310, (2, 50, 50), generator=torch.Generator().manual_seed(0))
    hard = labels % 3 == 0
    for options in ({}, {"mode": "uniform"}, {"hard": hard, "hard_fraction": 0.5}):
        a, b = (
            sample_pixels(
                labels,
                5,
                300,
                IGNORE,
                generator=torch.Generator().manual_seed(1),
                host_kernel=kernel,
                **options,
            )
            for kernel in ("numba", "numpy")
        )
        assert torch.equal(a, b) and a.numel() > 1000, options


def test_host_kernel_can_be_forced_and_bad_choices_are_named(monkeypatch):
    monkeypatch.setenv(HOST_KERNEL_ENV, "numpy")
    host_kernel_name.cache_clear()
    try:
        assert host_kernel_name() == "numpy"
        monkeypatch.setenv(HOST_KERNEL_ENV, "fortran")
        host_kernel_name.cache_clear()
        with pytest.raises(ValueError, match=f"{HOST_KERNEL_ENV}='fortran'"):
            host_kernel_name()
        # numba asked for but not importable: an error that names the extra, not a fallback.
        monkeypatch.setitem(sys.modules, "numba", None)
        monkeypatch.delitem(sys.modules, "methods.components.psa.numba_kernel", raising=False)
        monkeypatch.setenv(HOST_KERNEL_ENV, "numba")
        host_kernel_name.cache_clear()
        with pytest.raises(ImportError, match=r"fast"):
            host_kernel_name()
        table = class_code_table(3, IGNORE)
        with pytest.raises(ImportError, match=r"fast"):  # asked for by argument: the same error
            random_subset_by_table(table, table, table, None, kernel="numba")
        monkeypatch.setenv(HOST_KERNEL_ENV, "auto")  # ... while auto falls back to NumPy
        host_kernel_name.cache_clear()
        assert host_kernel_name() == "numpy"
    finally:
        host_kernel_name.cache_clear()
    with pytest.raises(ValueError, match="'cuda'"):
        random_subset_by_table(table[:0], table, table, None, kernel="cuda")


@KERNELS
@pytest.mark.parametrize("seed", range(3))
def test_random_subsets_have_exact_sizes_for_any_group_sizes(kernel, seed):
    # Group sizes from 0 to thousands and quotas below, at and above them: every group gets
    # exactly min(take, count) of its own pixels, each once, in ascending order.
    g = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([0, 1, 7, 128, 129, 300, 2000, 5000])
    groups = torch.repeat_interleave(torch.arange(sizes.numel()), sizes)
    groups = groups[torch.randperm(groups.numel(), generator=g)]
    take = torch.tensor([5, 5, 7, 128, 128, 256, 17, 0])
    index = random_subset_per_group(groups, take, g, **kernel)
    assert index.dtype == torch.long
    assert torch.equal(index, index.unique())  # ascending, no pixel twice
    got = torch.bincount(groups[index], minlength=sizes.numel())
    assert got.tolist() == torch.minimum(take, sizes).tolist()


@KERNELS
def test_every_pixel_of_a_class_is_equally_likely_to_be_drawn(kernel):
    # 3000 draws of 30 pixels per class from a class of 2560 pixels (ten per key level of the
    # host kernel, so its cut level always holds ties) and one of 60: each pixel should be
    # chosen 30/2560 and 50 % of the time. A kernel biased towards low indices, or towards
    # some of the pixels that share a key level, fails the chi-square bound.
    big, small, per_class, draws = 2560, 60, 30, 3000
    labels = torch.cat([torch.zeros(big, dtype=torch.long), torch.ones(small, dtype=torch.long)])
    labels = labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))]
    hits = torch.zeros(labels.numel())
    g = torch.Generator().manual_seed(1)
    for _ in range(draws):
        hits[sample_pixels(labels[None], per_class, 2, IGNORE, generator=g, **kernel)] += 1
    for cls, size in ((0, big), (1, small)):
        observed = hits[labels == cls]
        share = per_class / size
        expected, variance = draws * share, draws * share * (1 - share)
        assert observed.sum() == draws * per_class
        chi2 = float(((observed - expected) ** 2 / variance).sum())
        dof = size - 1
        assert chi2 < dof + 5 * math.sqrt(2 * dof), (cls, chi2, dof)


def test_random_bytes_are_uniform_and_follow_the_generator():
    a = random_bytes(1 << 16, torch.Generator().manual_seed(0))
    b = random_bytes(1 << 16, torch.Generator().manual_seed(0))
    assert a.dtype.name == "uint8" and a.size == 1 << 16 and (a == b).all()
    counts = torch.bincount(torch.from_numpy(a.astype("int64")), minlength=256).double()
    assert abs(counts.mean() - 256) < 1e-9 and (counts - 256).abs().max() < 5 * 16
    assert random_bytes(13, None).size == 13  # not a multiple of eight: trimmed


def test_majority_labels_with_purity():
    from methods.components.psa.sampler import downsample_labels

    mask = torch.tensor(
        [[[0, 0, 1, 1], [0, 2, 1, 1], [3, 3, 255, 255], [3, 3, 255, 1]]], dtype=torch.long
    )
    centre = downsample_labels(mask, (2, 2))
    assert centre.tolist() == [[[2, 1], [3, 1]]]  # the centre rule labels cells by one pixel
    strict = downsample_labels(mask, (2, 2), 0.75, num_classes=6, ignore_index=255)
    assert strict.tolist() == [[[0, 1], [3, 255]]]  # 3 of 4 pixels are 0; 1 of 4 is 1: ignored
    loose = downsample_labels(mask, (2, 2), 0.25, num_classes=6, ignore_index=255)
    assert loose.tolist() == [[[0, 1], [3, 1]]]
    with pytest.raises(ValueError, match="does not divide"):
        downsample_labels(mask, (3, 3), 0.5, num_classes=6)


@NEEDS_NUMBA
def test_the_compiled_kernel_caches_outside_the_source_tree(tmp_path):
    """numba's default cache is `__pycache__` beside the kernel's source; ours is the user's."""
    import os
    import subprocess
    from pathlib import Path

    from tests.paths import REPO

    kernel = importlib.util.find_spec("methods.components.psa.numba_kernel")
    source_cache = Path(kernel.origin).parent / "__pycache__"
    before = set(source_cache.glob("*.nb[ic]"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = (
        "import torch; from methods.components.psa.sampler import sample_pixels; "
        "sample_pixels(torch.zeros(1, 8, 8, dtype=torch.long), 4, 2, 255, host_kernel='numba')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=REPO)
    assert list((tmp_path / "missbench" / "numba").rglob("*.nbi"))
    assert set(source_cache.glob("*.nb[ic]")) == before
