"""The CPU sampling kernel compiled with numba: the NumPy kernel's sample, in two passes.

`sampler.random_subset_of_group_codes` (NumPy) makes seven passes over the pixels (label lookup,
negative-label check, key write, histogram, survivor mask, `flatnonzero`, ...), each one a full
array in memory; here the lookup, key and histogram share one loop and the survivors are
collected in a second, so the kernel costs about half as much. Both kernels take the same random
bytes and the same tie-break floats from the same torch generator, in the same order, and apply
the same rule, so they return the same pixels for the same seed; the one exception is two
tie-break keys equal to the last bit (probability about 1e-11 per call), which the two sorts may
order differently. `sampler.host_kernel_name` picks this kernel when numba imports (the `fast`
extra); the tests pin the two kernels to the same sample.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from methods.components.psa.sampler import KEY_BITS, KEY_LEVELS, random_bytes


@numba.njit(cache=True, nogil=True)
def survivors_and_cut_candidates(
    values: np.ndarray, table: np.ndarray, keys: np.ndarray, take: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose key lies at or below their group's cut, and which of them sit at the cut.

    Pixel i's code is table[value] (0 for a negative value, the last entry for values past the
    end) with its key byte in the low bits; `codes` (one per pixel, wide enough for every code)
    is scratch space. Returns the survivors (ascending flat indices), the positions among them
    of the pixels at their group's cut level (ascending), those pixels' groups, and per group
    how many of its cut pixels to keep.
    """
    num_groups = take.size
    last = table.size - 1
    histogram = np.zeros(num_groups * KEY_LEVELS, np.int64)
    for i in range(values.size):
        value = values[i]
        code = 0 if value < 0 else table[min(value, last)]
        code |= keys[i]
        codes[i] = code
        histogram[code] += 1
    # Per (group, level): 0 = no pixel taken, 1 = every pixel taken, 2 = the cut (some taken).
    state = np.zeros(num_groups * KEY_LEVELS, np.uint8)
    keep_at_cut = np.zeros(num_groups, np.int64)
    num_survivors = 0
    num_candidates = 0
    for group in range(num_groups):
        first = group * KEY_LEVELS
        quota = min(take[group], histogram[first : first + KEY_LEVELS].sum())
        below = 0
        for level in range(first, first + KEY_LEVELS):
            if below >= quota:
                break
            count = histogram[level]
            if below + count <= quota:
                state[level] = 1
            else:
                state[level] = 2
                keep_at_cut[group] = quota - below
                num_candidates += count
            num_survivors += count
            below += count
    survivors = np.empty(num_survivors + 1, np.int64)  # + 1: the branch-free append's spill
    candidates = np.empty(num_candidates, np.int64)
    candidate_groups = np.empty(num_candidates, np.int64)
    kept = 0
    at_cut = 0
    for i in range(values.size):  # branch-free appends: the survivors are a few per cent
        stored = codes[i]
        level_state = state[stored]
        survivors[kept] = i
        if level_state == 2:
            candidates[at_cut] = kept
            candidate_groups[at_cut] = stored >> KEY_BITS
            at_cut += 1
        kept += level_state != 0
    return survivors[:num_survivors], candidates, candidate_groups, keep_at_cut


@numba.njit(cache=True, nogil=True)
def drop_cut_surplus(
    survivors: np.ndarray,
    candidates: np.ndarray,
    candidate_groups: np.ndarray,
    keep_at_cut: np.ndarray,
    shuffle: np.ndarray,
) -> np.ndarray:
    """The survivors less each group's surplus at its cut: ranked by group + `shuffle` (uniform
    floats), a group's first keep_at_cut pixels stay (the NumPy kernel's rule and arithmetic)."""
    order = np.argsort(shuffle + candidate_groups)
    dropped = np.zeros(survivors.size, np.bool_)
    group = -1
    taken = 0
    num_dropped = 0
    for k in order:
        if candidate_groups[k] != group:
            group = candidate_groups[k]
            taken = 0
        if taken < keep_at_cut[group]:
            taken += 1
        else:
            dropped[candidates[k]] = True
            num_dropped += 1
    chosen = np.empty(survivors.size - num_dropped, np.int64)
    j = 0
    for i in range(survivors.size):
        if not dropped[i]:
            chosen[j] = survivors[i]
            j += 1
    return chosen


def random_subset_by_table(
    values: np.ndarray,
    table: np.ndarray,
    take: np.ndarray,
    generator: torch.Generator | None,
) -> np.ndarray:
    """`sampler.random_subset_by_table`, compiled: the key bytes, then the tie-break floats, drawn
    from `generator` as the NumPy kernel draws them."""
    keys = random_bytes(values.size, generator)
    # 16-bit codes where they fit: 64 KiB of scratch at 8 x 64 x 64 pixels stays below the
    # allocator's mmap threshold, where 32-bit codes were mapped and faulted in on every call.
    wide = take.size * KEY_LEVELS > np.iinfo(np.uint16).max + 1
    codes = np.empty(values.size, np.int32 if wide else np.uint16)
    survivors, candidates, candidate_groups, keep_at_cut = survivors_and_cut_candidates(
        np.ascontiguousarray(values), table, keys, take, codes
    )
    if candidates.size == 0:
        return survivors
    shuffle = torch.rand(candidates.size, dtype=torch.float64, generator=generator).numpy()
    return drop_cut_surplus(survivors, candidates, candidate_groups, keep_at_cut, shuffle)
