"""Pixel-level semantic sampling and alignment (PSA) building blocks, fully vectorised.

* `downsample_labels`: labels onto a feature grid.
* `sample_pixels`: class-balanced pixel sampling (the same budget for every class present; all
  pixels of a rarer class; ignored pixels never drawn; optional hard/easy split), or uniform
  sampling with the same total budget. No Python loop over classes or images: on the CPU a
  numba kernel (`numba_kernel`, the `fast` extra) or, without numba, a NumPy one that draws the same
  sample; a PyTorch one on accelerators (`random_subset_per_group`).
* `supervised_infonce`: supervised contrastive (InfoNCE) loss between two sets of embeddings,
  positives = same class.
* `ProjectionHead`, `collapse_std`: the small projection MLP and the feature-collapse gauge.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.api import register_env, user_cache_dir

SAMPLING_MODES = ("balanced", "uniform")
HOST_KERNELS = ("numba", "numpy")
HOST_KERNEL_ENV = "MISSBENCH_PSA_KERNEL"
"""Environment variable that forces a CPU sampling kernel: numba, numpy or auto (the default)."""


def at_cell_centres(values: Tensor, size: tuple[int, int]) -> Tensor:
    """[..., H, W] -> [..., h, w]: the value at each grid cell's centre pixel.

    The same pixels as `F.interpolate(mode="nearest-exact")` (index floor((i + 0.5) * H / h)),
    but only those pixels are read: a strided view when the grid divides the size (the centre of
    cell i is then i * s + s // 2), one gather otherwise. (Interpolation copied the whole
    full-resolution tensor first: 66 ms for a batch of 16-class logits at 512 px on CPU.)
    """
    height, width = values.shape[-2:]
    cells_h, cells_w = size
    if (height, width) == (cells_h, cells_w):
        return values
    if height % cells_h == 0 and width % cells_w == 0:
        step_h, step_w = height // cells_h, width // cells_w
        return values[..., step_h // 2 :: step_h, step_w // 2 :: step_w]

    def centres(length: int, cells: int) -> Tensor:
        index = ((torch.arange(cells, device=values.device) + 0.5) * (length / cells)).floor()
        return index.long().clamp_(max=length - 1)

    return values[..., centres(height, cells_h)[:, None], centres(width, cells_w)]


def downsample_labels(
    mask: Tensor,
    size: tuple[int, int],
    purity: float = 0.0,
    num_classes: int | None = None,
    ignore_index: int = 255,
) -> Tensor:
    """[B, H, W] labels -> [B, h, w] grid labels.

    `purity` 0: the label at each cell's centre (never mixes labels; keeps `ignore_index`).
    `purity` p > 0: each cell's majority class, kept only where at least a share p of the
    cell's pixels carry it (else `ignore_index`): a cell is then labelled by what mostly fills
    it, not by whatever its centre pixel happens to be (a 9 x 4 px car is smaller than a stride-8
    cell, so the centre rule labels mostly-road cells "car"). Needs a grid that divides the
    mask and `num_classes`.
    """
    if purity <= 0:
        return at_cell_centres(mask, size).long()
    if num_classes is None:
        raise ValueError("downsample_labels with purity needs num_classes")
    batch, height, width = mask.shape
    cells_h, cells_w = size
    if height % cells_h or width % cells_w:
        raise ValueError(f"grid {size} does not divide labels of {height}x{width}")
    step_h, step_w = height // cells_h, width // cells_w
    labels = mask.long()
    labels = torch.where((labels >= 0) & (labels < num_classes), labels, num_classes)
    blocks = labels.view(batch, cells_h, step_h, cells_w, step_w).permute(0, 1, 3, 2, 4)
    blocks = blocks.reshape(-1, step_h * step_w)  # [cells, pixels per cell]
    bins = num_classes + 1  # the last bin counts ignored and unknown pixels
    cell = torch.arange(blocks.shape[0], device=mask.device).unsqueeze(1)
    counts = torch.bincount((cell * bins + blocks).reshape(-1), minlength=blocks.shape[0] * bins)
    counts = counts.view(-1, bins)[:, :num_classes]
    top, majority = counts.max(1)
    pure = top.float() >= purity * (step_h * step_w)
    out = torch.where(pure, majority, torch.full_like(majority, ignore_index))
    return out.view(batch, cells_h, cells_w)


def misclassified_on_grid(logits: Tensor, labels: Tensor) -> Tensor:
    """[B, h, w] bool: is the prediction at each grid cell's centre wrong (the "hard" pixels)?

    Reads the logits at the same cell centres `downsample_labels` reads the labels at, so
    prediction and label describe the same pixel, and never resamples the full-resolution
    logits (which at 512 px crops costs more than all of PSA's sampling).
    """
    return at_cell_centres(logits.detach(), tuple(labels.shape[-2:])).argmax(1) != labels


def count_groups(groups: Tensor, num_groups: int) -> Tensor:
    """`torch.bincount(groups, minlength=num_groups)` without CUDA's host sync.

    On CUDA, bincount first reads the maximum value back to the host to size its output; an
    index_add into a buffer of known size keeps the sampler free of that wait (on CPU the two
    cost about the same, so there is one code path).
    """
    counts = torch.zeros(num_groups, dtype=torch.long, device=groups.device)
    return counts.index_add_(0, groups, torch.ones_like(groups))


def lowest_keys_per_group(groups: Tensor, keys: Tensor, take: Tensor) -> Tensor:
    """Flat indices of the `take[g]` pixels with the lowest `keys` in each group g, ascending.

    The accelerator kernel: everything stays on the device until `nonzero`. The obvious way is
    one sort of every pixel by (group, key), and that sort is what PSA sampling used to spend
    its time on. Here a pixel first survives only if its key (uniform in [0, 1)) lies below a
    per-group threshold set so that a group keeps, on average, its quota plus four standard
    deviations and a margin; only the survivors are sorted. A group's lowest keys are always
    among its survivors, so the result is exactly the full sort's; a group that keeps fewer
    survivors than its quota (probability below 1e-4 per group) is redone with all of its
    pixels, which keeps it exact.
    """
    num_groups = take.numel()
    counts = count_groups(groups, num_groups)
    quota = torch.minimum(take, counts)
    expected = quota.double() + 4.0 * quota.double().sqrt() + 8.0
    threshold = torch.where(quota > 0, expected / counts.clamp(min=1), 0.0).to(keys.dtype)
    survivors = (keys < threshold.take(groups)).nonzero().squeeze(1)
    kept = groups.index_select(0, survivors)
    kept_counts = count_groups(kept, num_groups)
    short = kept_counts < quota
    if bool(short.any()):
        threshold = threshold.masked_fill(short, 2.0)
        survivors = (keys < threshold.take(groups)).nonzero().squeeze(1)
        kept = groups.index_select(0, survivors)
        kept_counts = count_groups(kept, num_groups)
    order = torch.argsort(kept.double() + keys.index_select(0, survivors).double())
    sorted_groups = kept.index_select(0, order)
    starts = torch.cumsum(kept_counts, 0) - kept_counts
    rank = torch.arange(order.numel(), device=groups.device) - starts.take(sorted_groups)
    chosen = order[rank < quota.take(sorted_groups)]
    return torch.sort(survivors.index_select(0, chosen)).values


def random_bytes(count: int, generator: torch.Generator | None) -> np.ndarray:
    """`count` uniform random bytes from a torch generator (or the global RNG).

    Drawn as 64-bit words (one generator call per eight bytes, an eighth of the cost of one
    float per pixel) so that the seed that fixes the rest of a run also fixes the sample.
    """
    words = torch.randint(
        -(2**63), 2**63 - 1, (-(-count // 8),), dtype=torch.int64, generator=generator
    )
    return words.numpy().view(np.uint8)[:count]


KEY_BITS = 8
KEY_LEVELS = 1 << KEY_BITS
"""The host kernel's keys are one random byte per pixel."""


LOW_BYTE = 0 if sys.byteorder == "little" else np.dtype(np.intp).itemsize - 1
"""Offset of an intp's least significant byte in memory, where the host kernel writes keys."""


def _kernel_env_problem(value: str) -> str:
    if value not in ("auto", *HOST_KERNELS):
        return f"expected auto, {', '.join(HOST_KERNELS)}"
    if value == "numba" and compiled_kernel(required=False) is None:
        return "numba does not import here; install the 'fast' extra (pip install -e '.[fast]')"
    return ""


register_env(HOST_KERNEL_ENV, "CPU sampling kernel of PSA", _kernel_env_problem)


@functools.cache
def host_kernel_name() -> str:
    """The CPU sampling kernel in use: "numba" where numba imports, else "numpy".

    The two draw the same sample for the same seed, so results do not depend on which one ran;
    `HOST_KERNEL_ENV` forces one (numba: an error if it cannot be imported).
    """
    wanted = os.environ.get(HOST_KERNEL_ENV, "auto")
    if wanted not in ("auto", *HOST_KERNELS):
        raise ValueError(f"{HOST_KERNEL_ENV}={wanted!r}: expected auto, numba or numpy")
    if wanted == "numpy":
        return "numpy"
    return "numba" if compiled_kernel(required=wanted == "numba") else "numpy"


def use_cache_dir() -> None:
    """Keep numba's compiled-kernel cache out of the source tree (by default it writes into
    `methods/components/psa/__pycache__/`, which may be read-only or a shared checkout): in
    `$NUMBA_CACHE_DIR` when the user set it, else the user's cache folder."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        folder = user_cache_dir() / "numba"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # no writable user cache: numba's own default (beside the source) it is
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
        numba = sys.modules.get("numba")
        if numba is not None:  # imported before us: its config has read the environment
            numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]


def compiled_kernel(required: bool) -> ModuleType | None:
    """The `numba_kernel` module, or None where numba does not import; with `required`, an error
    that names the extra to install instead of None."""
    use_cache_dir()
    try:
        return importlib.import_module("methods.components.psa.numba_kernel")
    except ImportError as error:
        if required:
            raise ImportError(
                f"the numba PSA kernel was asked for ({HOST_KERNEL_ENV} or host_kernel='numba'), "
                f"but numba does not import ({error}); install the 'fast' extra: "
                "pip install -e '.[fast]'"
            ) from error
        return None


def random_subset_by_table(
    values: np.ndarray,
    table: np.ndarray,
    take: np.ndarray,
    generator: torch.Generator | None,
    kernel: str | None = None,
) -> np.ndarray:
    """Flat indices of a uniformly random min(take[g], count) pixels of each group g, ascending.

    A pixel's group code (group << KEY_BITS) is table[value]: values past the end read the last
    entry and negative values are group 0. `kernel` ("numba" or "numpy", default
    `host_kernel_name()`) picks the CPU kernel; both return the same pixels for the same seed.
    """
    kernel = kernel or host_kernel_name()
    if kernel not in HOST_KERNELS:
        raise ValueError(f"unknown CPU sampling kernel {kernel!r}; expected one of {HOST_KERNELS}")
    if kernel == "numba":
        return compiled_kernel(required=True).random_subset_by_table(values, table, take, generator)
    return random_subset_of_group_codes(codes_by_table(values, table), take, generator)


def random_subset_on_host(
    groups: np.ndarray,
    take: np.ndarray,
    generator: torch.Generator | None,
    kernel: str | None = None,
) -> np.ndarray:
    """`random_subset_by_table` for pixels that already hold their group in [0, len(take))."""
    return random_subset_by_table(groups, group_code_table(take.size), take, generator, kernel)


def random_subset_of_group_codes(
    codes: np.ndarray, take: np.ndarray, generator: torch.Generator | None
) -> np.ndarray:
    """The NumPy kernel of `random_subset_by_table`, on each pixel's group code (group shifted
    left by KEY_BITS, from `codes_by_table`); `codes` (intp, contiguous) is overwritten with
    (group, key) codes.

    The lowest keys per group, as `lowest_keys_per_group`, with keys that are one random byte
    per pixel and ties at the cut broken at random. Eager PyTorch spends most of a small
    sampler's time in per-operation overhead and in a `nonzero` that is slow on random masks;
    NumPy on the same memory does not, and bytes let one histogram of (group, key) find each
    group's cut exactly, with no margin, no retry and no large sort: a group takes every pixel
    whose key lies below its cut level and a random choice of the pixels at the cut level
    (shuffled by fresh float keys, a few hundred pixels in all). Ranking pixels by (key, fresh
    random tie-break) is a uniformly random order, so every set of `quota` pixels of a group
    is equally likely.
    """
    num_groups = take.size
    codes.view(np.uint8)[LOW_BYTE :: codes.itemsize] = random_bytes(codes.size, generator)
    histogram = np.bincount(codes, minlength=num_groups * KEY_LEVELS)
    per_level = histogram.reshape(num_groups, KEY_LEVELS)  # a view: one row per group
    below_or_at = per_level.cumsum(1)
    quota = np.minimum(take, below_or_at[:, -1])[:, None]
    needed = below_or_at - per_level < quota  # levels with at least one pixel to take
    cut = (needed > (below_or_at <= quota)).ravel()  # the one level per group taken only in part
    survivors = np.flatnonzero(needed.ravel().take(codes))
    survivor_codes = codes[survivors]
    at_cut = cut.take(survivor_codes)
    candidates = np.flatnonzero(at_cut)
    if candidates.size == 0:
        return survivors
    # Group + a fresh uniform float: sorted, each group's cut pixels in a random order, groups
    # in ascending order; the first (count - surplus) of each group's run are taken.
    shuffle_keys = torch.rand(candidates.size, dtype=torch.float64, generator=generator).numpy()
    shuffle_keys += survivor_codes[candidates] >> KEY_BITS
    shuffled = candidates[np.argsort(shuffle_keys)]
    cut_levels = np.flatnonzero(cut)
    at_cut_counts = histogram.take(cut_levels)
    surplus = below_or_at.take(cut_levels) - quota.take(cut_levels >> KEY_BITS)
    taken_before = np.repeat(np.cumsum(at_cut_counts) - surplus, at_cut_counts)
    at_cut[shuffled[np.arange(shuffled.size) < taken_before]] = False
    return survivors[~at_cut]


def index_tensor(index: np.ndarray, device: torch.device) -> Tensor:
    """A host kernel's flat indices as the int64 tensor `sample_pixels` returns, on `device`
    (no copy on the CPU where intp is int64)."""
    return torch.from_numpy(index.astype(np.int64, copy=False)).to(device)


def random_subset_per_group(
    groups: Tensor,
    take: Tensor,
    generator: torch.Generator | None = None,
    on_host: bool | None = None,
    host_kernel: str | None = None,
) -> Tensor:
    """Flat int64 indices of a uniformly random min(take[g], count) pixels per group, ascending.

    `groups` holds each pixel's group in [0, len(take)). On the CPU (or with `on_host=True`)
    the host kernel `random_subset_on_host` runs (`host_kernel`: see `random_subset_by_table`);
    on an accelerator every pixel gets a float key and `lowest_keys_per_group` runs on the
    device. The two draw different (equally
    uniform) samples for the same seed, as CPU and CUDA random streams differ anyway.
    """
    if on_host is None:
        on_host = groups.device.type == "cpu"
    if on_host:
        index = random_subset_on_host(
            groups.cpu().numpy(), take.cpu().numpy(), generator, host_kernel
        )
        return index_tensor(index, groups.device)
    keys = torch.rand(groups.numel(), generator=generator, device=groups.device)
    return lowest_keys_per_group(groups, keys, take)


def class_groups(labels: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """Each pixel's sampling group, flat: 0 for negative and ignored labels, c + 1 for class c,
    num_classes + 1 for labels past the last class. Two cheap passes instead of four masks."""
    flat = labels.reshape(-1).long()
    groups = flat.clamp(-1, num_classes) + 1
    if 0 <= ignore_index < num_classes:
        groups.masked_fill_(flat == ignore_index, 0)
    return groups


@functools.lru_cache(maxsize=32)
def group_code_table(num_groups: int) -> np.ndarray:
    """Group g -> g shifted left by KEY_BITS (read-only, cached): the table for pixels that
    already hold their group."""
    table = np.arange(num_groups, dtype=np.intp) << KEY_BITS
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=32)
def class_code_table(num_classes: int, ignore_index: int) -> np.ndarray:
    """Label c -> group c + 1, shifted left by KEY_BITS; the last entry, where
    `take(mode="clip")` sends every label past the end, is group num_classes + 1.
    Read-only and cached: building it each step cost as much as a pass over the labels."""
    table = group_code_table(num_classes + 2)[1:].copy()
    if 0 <= ignore_index < num_classes:
        table[ignore_index] = 0
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=32)
def class_budget_on_host(num_classes: int, per_class: int) -> np.ndarray:
    """The host kernel's `take` for class groups: per_class for each class, 0 for the two
    unlabelled groups (read-only, cached)."""
    take = np.full(num_classes + 2, per_class, dtype=np.intp)
    take[0] = take[-1] = 0
    take.setflags(write=False)
    return take


def codes_by_table(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[value] per pixel (the last entry past the end, 0 for a negative value) as a new
    intp array, in one lookup; negative values, rare, are moved to 0 afterwards."""
    codes = table.take(values, mode="clip")
    if values.size and values.min() < 0:
        codes[values < 0] = 0
    return codes


def sample_pixels(
    labels: Tensor,
    per_class: int,
    num_classes: int,
    ignore_index: int,
    mode: str = "balanced",
    generator: torch.Generator | None = None,
    hard: Tensor | None = None,
    hard_fraction: float = 0.0,
    on_host: bool | None = None,
    host_kernel: str | None = None,
) -> Tensor:
    """Indices into flattened `labels` of the pixels to align, sorted ascending.

    balanced: `per_class` pixels of every class present (all of them when a class has fewer).
    With `hard` (bool per pixel, e.g. currently misclassified) and `hard_fraction` > 0, up to
    round(hard_fraction * per_class) of each class's budget comes from its hard pixels and the
    rest from its easy ones; a side that runs short is topped up from the other, so a class
    still gets min(count, per_class) pixels.
    uniform: the same total (per_class x number of classes present), drawn uniformly from the
    labelled pixels regardless of class (the imbalanced ablation).
    Within each class (or hard/easy side) every subset of the budget's size is equally likely
    (`random_subset_per_group`, whose `on_host` and `host_kernel` this passes on); `generator`
    (or the global RNG) fixes the sample.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {mode!r}; expected one of {SAMPLING_MODES}")
    if per_class <= 0:
        return labels.reshape(-1)[:0].long()
    num_groups = num_classes + 2
    device = labels.device
    if on_host is None:
        on_host = device.type == "cpu"
    if on_host and mode == "balanced" and (hard is None or hard_fraction <= 0):
        # The common case, on the CPU: labels to shifted group codes in one table lookup.
        index = random_subset_by_table(
            labels.reshape(-1).cpu().numpy(),
            class_code_table(num_classes, ignore_index),
            class_budget_on_host(num_classes, per_class),
            generator,
            host_kernel,
        )
        return index_tensor(index, device)
    groups = class_groups(labels, num_classes, ignore_index)
    if mode == "uniform":
        present = count_groups(groups, num_groups)[1:-1] > 0
        total = (per_class * present.sum()).view(1)
        unlabelled = ((groups == 0) | (groups == num_groups - 1)).long()
        take = torch.cat([total, torch.zeros(1, dtype=torch.long, device=device)])
        return random_subset_per_group(unlabelled, take, generator, on_host, host_kernel)
    take = torch.full((num_groups,), per_class, device=device)  # filled on the device: no copy
    take[0] = take[-1] = 0
    if hard is None or hard_fraction <= 0:
        return random_subset_per_group(groups, take, generator, on_host, host_kernel)
    groups = 2 * groups + hard.reshape(-1).long()  # group 2g: easy pixels of g, 2g + 1: hard
    counts = count_groups(groups, 2 * num_groups).view(num_groups, 2)
    n_easy, n_hard = counts.unbind(1)
    hard_budget = min(per_class, int(round(hard_fraction * per_class)))
    hard_share = torch.minimum(n_hard, take.clamp(max=hard_budget))  # 0 where take is 0
    easy_take = torch.minimum(n_easy, take - hard_share)
    hard_take = torch.minimum(n_hard, take - easy_take)
    take = torch.stack([easy_take, hard_take], dim=1).reshape(-1)
    return random_subset_per_group(groups, take, generator, on_host, host_kernel)


def sample_pixels_loop(
    labels: Tensor,
    per_class: int,
    num_classes: int,
    ignore_index: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The naive class-balanced sampler: Python loops over classes and images.

    Same contract as `sample_pixels(mode="balanced")` (per_class pixels of every present class,
    all of a rarer one, sorted flat indices) but one `nonzero` per image and class and one
    permutation per class. Never used in training: it is the profiler's reference point and the
    tests' independent check of the vectorised sampler's per-class counts.
    """
    batch = labels.shape[0]
    flat = labels.reshape(batch, -1)
    pixels_per_image = flat.shape[1]
    chosen = []
    for cls in range(num_classes):
        if cls == ignore_index:
            continue
        pool = torch.cat(
            [(flat[i] == cls).nonzero().squeeze(1) + i * pixels_per_image for i in range(batch)]
        )
        if pool.numel() == 0 or per_class <= 0:
            continue
        order = torch.randperm(pool.numel(), generator=generator, device="cpu").to(pool.device)
        chosen.append(pool[order[:per_class]])
    if not chosen:
        return flat.reshape(-1)[:0].long()
    return torch.sort(torch.cat(chosen)).values


def gather_pixels(features: Tensor, index: Tensor) -> Tensor:
    """[B, C, H, W] features at flattened (b, y, x) indices -> [M, C]."""
    b, c, h, w = features.shape
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
    return flat[index]


def supervised_infonce(
    anchors: Tensor, keys: Tensor, labels: Tensor, temperature: float = 0.1
) -> Tensor:
    """Supervised InfoNCE from each anchor to the key set (Khosla et al. 2020, cross-view form).

    For anchor i: -mean over keys j of the same class of log softmax_j(a_i . k_j / t), with
    L2-normalised embeddings. Anchor i and key i are the same pixel seen by two branches, so
    every anchor has at least one positive.
    """
    a = F.normalize(anchors.float(), dim=1)
    k = F.normalize(keys.float(), dim=1)
    logits = a @ k.t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]).float()
    return (-(log_prob * positive).sum(1) / positive.sum(1)).mean()


class ProjectionHead(nn.Module):
    """Linear -> ReLU -> Linear on sampled pixel vectors (never on the full feature map)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(out_channels, in_channels // 2)
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@torch.no_grad()
def collapse_std(features: Tensor) -> float:
    """Mean over channels of the per-channel std of the L2-normalised pixel vectors.

    About 1/sqrt(C) when the features spread over the unit sphere, about 0 when every pixel
    maps to the same direction (collapse). SimSiam's gauge, applied per pixel.
    """
    c = features.shape[1]
    z = F.normalize(features.detach().float(), dim=1).transpose(0, 1).reshape(c, -1)
    return float(z.std(dim=1).mean())
