"""Modality dropout: draw which modalities a training sample keeps, then hide the others.

A `SubsetSampler` draws availability masks over the non-empty subsets of the modalities with
explicit probabilities (never the empty set). The masks are applied either to the inputs
(`zero_inputs`: zero in normalised space, i.e. a per-channel mean fill, as ModDrop and ShaSpec
do) or to the encoders' feature pyramids at every scale (`zero_features`: mmFormer's and
RFNet's MaskModal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from benchmark.api import BenchmarkError, HParam, all_scenarios

SAMPLING = ("sample", "batch")
"""`sample`: one subset per sample (MMANet, mmFormer); `batch`: one per batch (ShaSpec, LCKD)."""


def sampler_hparams(what: str) -> dict[str, HParam]:
    """`subset_weights` and `sampling` for a method that draws modality subsets for `what`."""
    return {
        "subset_weights": HParam(
            (),
            f"{what}: relative probabilities of the non-empty subsets, full set first then by "
            "decreasing size and name (benchmark.core.scenarios order); empty = uniform",
        ),
        "sampling": HParam("sample", f"{what}: a subset per sample or per batch", choices=SAMPLING),
    }


def size_uniform_weights(subsets: Sequence[frozenset[str]]) -> tuple[float, ...]:
    """Probabilities of `subsets` that draw a size uniformly among the sizes present, then one
    subset of that size uniformly: LCKD's random stage (k ~ U{1..M-1}, then a random k-subset),
    which is not uniform over the subsets (with 4 modalities a pair is drawn 1/18 of the time,
    a single modality or a triple 1/12)."""
    sizes = Counter(len(s) for s in subsets)
    return tuple(1.0 / (len(sizes) * sizes[len(s)]) for s in subsets)


class SubsetSampler:
    """Draws boolean keep-masks [B, M] over the non-empty subsets of `modalities`.

    `weights` are relative probabilities in the order of `subsets` (full set first unless
    `include_full` is False, then by decreasing size, as `benchmark.core.scenarios.all_scenarios`);
    empty = uniform, or with `by_size` a size uniformly then a subset of it
    (`size_uniform_weights`). With two modalities the default is (1/3, 1/3, 1/3) over (full,
    a only, b only).
    """

    def __init__(
        self,
        modalities: Sequence[str],
        weights: Sequence[float] = (),
        per: str = "sample",
        include_full: bool = True,
        by_size: bool = False,
    ) -> None:
        if per not in SAMPLING:
            raise BenchmarkError(f"modality sampling {per!r}: expected one of {SAMPLING}")
        self.modalities = tuple(modalities)
        self.per = per
        scenarios = all_scenarios(self.modalities)
        if not include_full:
            scenarios = scenarios[1:]
        if not scenarios:
            raise BenchmarkError(f"no subsets to sample from {self.modalities}")
        self.subsets: list[frozenset[str]] = [s.present for s in scenarios]
        if not weights:
            weights = size_uniform_weights(self.subsets) if by_size else (1.0,) * len(self.subsets)
        if len(weights) != len(self.subsets) or any(w < 0 for w in weights) or sum(weights) <= 0:
            order = ", ".join("+".join(sorted(s)) for s in self.subsets)
            raise BenchmarkError(
                f"subset weights {tuple(weights)}: need {len(self.subsets)} non-negative values "
                f"(not all zero) in the order {order}"
            )
        probs = torch.tensor([float(w) for w in weights], dtype=torch.float64)
        self.probabilities = probs / probs.sum()
        self.table = torch.tensor(
            [[m in s for m in self.modalities] for s in self.subsets], dtype=torch.bool
        )
        """[subsets, M]: row i is the keep-mask of subset i."""

    @classmethod
    def from_hparams(cls, modalities: Sequence[str], hparams: Mapping) -> SubsetSampler:
        """Built from the two hyperparameters of `sampler_hparams`."""
        return cls(modalities, hparams["subset_weights"], hparams["sampling"])

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> Tensor:
        """Keep-mask [B, M] (bool); every row keeps at least one modality."""
        draws = 1 if self.per == "batch" else batch_size
        index = torch.multinomial(self.probabilities, draws, replacement=True)
        keep = self.table[index]
        if self.per == "batch":
            keep = keep.expand(batch_size, -1)
        return keep.to(device)

    def sample_available(self, available: Tensor) -> Tensor:
        """Keep-mask [B, M] within what each sample has (`available`, bool [B, M]).

        Training with missing data (`--train-missing`): a modality a sample lacks is never
        kept; where the drawn subset keeps nothing the sample has, it keeps all it has.
        """
        keep = self.sample(available.shape[0], available.device) & available
        return torch.where(keep.any(1, keepdim=True), keep, available)

    def as_dict(self, keep: Tensor) -> dict[str, Tensor]:
        """Column per modality: {name: bool[B]}."""
        return {m: keep[:, i] for i, m in enumerate(self.modalities)}


def _gate(x: Tensor, keep: Tensor) -> Tensor:
    """x with samples where `keep` is False set to zero (broadcast over C, H, W)."""
    return x * keep.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def zero_inputs(inputs: Mapping[str, Tensor], keep: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inputs with dropped modalities zeroed per sample (a mean fill in normalised space)."""
    return {m: _gate(x, keep[m]) if m in keep else x for m, x in inputs.items()}


def zero_features(
    pyramids: Sequence[Sequence[Tensor]], keep: Sequence[Tensor]
) -> list[list[Tensor]]:
    """MaskModal: every level of modality i's pyramid zeroed for samples with keep[i] False."""
    return [
        [_gate(level, k) for level in pyramid] for pyramid, k in zip(pyramids, keep, strict=True)
    ]
