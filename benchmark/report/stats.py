"""Statistics for reports: seed summaries with t-based confidence intervals, and a paired
bootstrap over seeds x test tiles built from the records' per-tile confusion matrices.

Everything here is deterministic: the bootstrap uses a fixed RNG seed, so a table regenerated
from the same records is byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
ALPHA = 0.05

TEST_NAME = (
    "two-sided paired bootstrap: seeds and {split} tiles resampled jointly for both methods, "
    "mIoU recomputed from the summed per-tile confusion matrices ({n} resamples, RNG seed {seed}); "
    "* = p < {alpha:g}, not corrected for multiple comparisons"
)

# Student t 0.975 quantiles for 1..30 degrees of freedom (two-sided 95 %).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959964


def test_description(
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    alpha: float = ALPHA,
    split: str = "test",
) -> str:
    """The significance test's name and parameters, for table captions (`split`: whose tiles
    are resampled, as captions name it: test or validation)."""
    return TEST_NAME.format(n=resamples, seed=seed, alpha=alpha, split=split)


def t_quantile_975(df: int) -> float:
    """0.975 quantile of Student's t: exact table up to 30 dof, Cornish-Fisher beyond."""
    if df < 1:
        return float("nan")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1), count and the t-based 95 % CI of the mean over seeds."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float]) -> Summary:
    """Summary of finite values; NaN std / CI with fewer than two values, all NaN with none."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        nan = float("nan")
        return Summary(nan, nan, 0, nan, nan)
    mean = float(arr.mean())
    if n == 1:
        return Summary(mean, float("nan"), 1, float("nan"), float("nan"))
    std = float(arr.std(ddof=1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


def miou_batch(matrices: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Macro IoU over `classes` of confusion matrices [..., K, K] (rows truth, cols prediction).

    Same convention as `benchmark.run.metrics`: a class absent from both truth and prediction is
    skipped; NaN when every class is skipped.
    """
    cm = np.asarray(matrices, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(axis=-1) + cm.sum(axis=-2) - tp
    idx = list(classes)
    tp, union = tp[..., idx], union[..., idx]
    defined = union > 0
    iou = np.where(defined, tp / np.where(defined, union, 1), 0.0)
    count = defined.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, iou.sum(axis=-1) / np.maximum(count, 1), np.nan)


@dataclass(frozen=True)
class PairedResult:
    """Difference `a - b` of the seed-mean score, its bootstrap CI and two-sided p-value."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int
    n_tiles: int

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < ALPHA)

    def columns(self, diff: str = "diff", prefix: str = "") -> dict[str, float | int | bool]:
        """The comparison as table columns, in the order every report writes them, so that
        the tables cannot drift apart: `diff` names the difference's column and `prefix` goes
        before `ci_low` / `ci_high` (where a table has a summary's CI of its own beside it)."""
        return {
            diff: self.diff,
            f"{prefix}ci_low": self.ci_low,
            f"{prefix}ci_high": self.ci_high,
            "p_value": self.p_value,
            "significant": self.significant,
            "n_seeds": self.n_seeds,
            "n_tiles": self.n_tiles,
        }


NO_COMPARISON = PairedResult(math.nan, math.nan, math.nan, math.nan, 0, 0)
"""The row of a method with nothing to compare against: NaN difference, CI and p, not
significant, no seeds or tiles (`(result or NO_COMPARISON).columns()`)."""


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    classes: Sequence[int],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    weights: Sequence[float] | None = None,
    nested: bool = False,
) -> PairedResult:
    """Paired bootstrap of mean-over-seeds mIoU(a) - mIoU(b).

    `a`, `b`: per-tile confusion matrices [S, T, K, K], seed s and tile t of `a` paired with
    seed s and tile t of `b` (same seed, same test tile). Each resample draws S seed indices and
    T tile indices with replacement, applies the *same* draw to both methods, sums each drawn
    seed's drawn tile matrices, recomputes mIoU per seed and averages over the drawn seeds.
    With one seed only tiles are resampled. p = 2 (k + 1) / (R + 1), at most 1, where k is the
    number of the R resampled differences on the far side of 0 (never 0 from finitely many
    resamples); the CI is the percentile interval. With few tiles and seeds the resampling
    distribution is coarse, so read p next to `n_seeds` and `n_tiles`.

    With `weights` (one per view), `a` and `b` are [S, T, V, K, K]: V views of every tile
    (scenarios, or draws of a failure model, `benchmark.report.failure`), and a seed's score is
    sum_v weights[v] x mIoU(its drawn tiles' matrices of view v); the draws are the same as
    without weights, so seeds and tiles are resampled exactly alike.

    `nested`: each seed has test tiles of its own (seed i trained and tested on the data
    generated with seed i, `seed=run`), so tile t of one seed is no relation of tile t of
    another: each seed's T tiles are drawn on their own (the first seed keeps the shared draw,
    the others draw from the same generator after it), the two-stage bootstrap of a nested
    design. Without it the test tiles are one set that every seed is scored on, and one tile
    draw serves every seed.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ndim = 4 if weights is None else 5
    if a.shape != b.shape or a.ndim != ndim:
        expected = "[S, T, K, K]" if weights is None else "[S, T, V, K, K]"
        raise ValueError(f"expected two {expected} arrays of one shape, got {a.shape}, {b.shape}")
    view_weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if view_weights is not None and view_weights.shape != (a.shape[2],):
        raise ValueError(f"expected {a.shape[2]} view weights, got {view_weights.shape}")

    def score(sums: np.ndarray) -> np.ndarray:
        """Per-seed score of tile sums [..., K, K] (or [..., V, K, K] with weights)."""
        miou = miou_batch(sums, classes)
        return miou if view_weights is None else np.sum(miou * view_weights, axis=-1)

    n_seeds, n_tiles = a.shape[:2]
    observed = float(np.mean(score(a.sum(axis=1)) - score(b.sum(axis=1))))
    rng = np.random.default_rng(seed)
    tile_draws = rng.integers(0, n_tiles, size=(resamples, n_tiles))
    seed_draws = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    tile_weights = np.zeros((resamples, n_tiles))
    np.add.at(tile_weights, (np.arange(resamples)[:, None], tile_draws), 1.0)
    seed_weights = np.zeros((resamples, n_seeds))
    np.add.at(seed_weights, (np.arange(resamples)[:, None], seed_draws), 1.0)
    delta = _resampled(tile_weights, a, score) - _resampled(tile_weights, b, score)  # [R, S]
    if nested and n_seeds > 1:  # the first seed keeps the shared draw, the others draw anew
        for s in range(1, n_seeds):
            drawn = np.zeros((resamples, n_tiles))
            rows = np.arange(resamples)[:, None]
            np.add.at(drawn, (rows, rng.integers(0, n_tiles, size=(resamples, n_tiles))), 1.0)
            own = slice(s, s + 1)
            mine = _resampled(drawn, a[own], score) - _resampled(drawn, b[own], score)
            delta[:, s] = mine[:, 0]
    with np.errstate(invalid="ignore"):
        diffs = np.nansum(delta * seed_weights, axis=1) / np.sum(
            seed_weights * np.isfinite(delta), axis=1
        )
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0 or not np.isfinite(observed):
        nan = float("nan")
        return PairedResult(observed, nan, nan, nan, n_seeds, n_tiles)
    low, high = np.quantile(diffs, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    beyond = min(int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0)))
    p_value = float(min(1.0, 2 * (beyond + 1) / (diffs.size + 1)))
    return PairedResult(observed, float(low), float(high), p_value, n_seeds, n_tiles)


def _resampled(tile_weights: np.ndarray, matrices: np.ndarray, score) -> np.ndarray:  # noqa: ANN001
    """Per-seed scores [R, S] of the resampled tile sums of [S, T, (V,) K, K] matrices.

    One matrix product per block of resamples (memory stays at tens of MB for 15 scenarios
    and 20,000 resamples). Confusion counts and draw counts are integers, so every sum is
    exact in float64 and the result does not depend on the order of summation.
    """
    views = matrices
    n_seeds, n_tiles = views.shape[:2]
    flat = np.moveaxis(views, 1, 0).reshape(n_tiles, -1)  # [T, S*V*K*K]
    out = np.empty((tile_weights.shape[0], n_seeds))
    block = max(1, 2_000_000 // max(1, flat.shape[1]))
    for start in range(0, tile_weights.shape[0], block):
        sums = tile_weights[start : start + block] @ flat
        out[start : start + block] = score(sums.reshape(-1, *views.shape[0:1], *views.shape[2:]))
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and is not counted).

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)):
    it controls the family-wise error rate at alpha under any dependence, and rejects
    everything Bonferroni rejects and possibly more.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * float(p[index])))
        out[index] = running
    return out
