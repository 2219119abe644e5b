"""Cross-modal feature translators: map one modality's feature pyramid to another's.

A `TranslatorBank` holds one translator per ordered modality pair (A->B and B->A for two
modalities, every ordered pair for N) at each chosen pyramid level. A missing modality's
features are the mean of the translations from the modalities that are present; at a level
without translators the present modalities' mean feature stands in (the identity translation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeatureTranslator(nn.Module):
    """Bottleneck conv translator: 1x1 reduce -> 3x3 -> 1x1 expand (linear output).

    The 3x3 conv gives each output pixel a small spatial context; the bottleneck keeps the cost
    at about a third of a full-width 3x3 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: float = 0.5) -> None:
        super().__init__()
        hidden = max(8, int(round(in_channels * ratio)))
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def pair_key(source: str, target: str) -> str:
    return f"{source}_to_{target}"


class TranslatorBank(nn.Module):
    """One `FeatureTranslator` per ordered modality pair and per level in `levels`."""

    def __init__(
        self,
        modalities: Sequence[str],
        channels: Sequence[int],
        levels: Sequence[int],
        ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.levels = tuple(sorted(set(levels)))
        self.num_levels = len(channels)
        if any(not 0 <= level < len(channels) for level in self.levels):
            raise ValueError(f"translation levels {self.levels} outside 0..{len(channels) - 1}")
        self.pairs = [(s, t) for s in self.modalities for t in self.modalities if s != t]
        self.translators = nn.ModuleDict(
            {
                pair_key(s, t): nn.ModuleDict(
                    {
                        str(level): FeatureTranslator(channels[level], channels[level], ratio)
                        for level in self.levels
                    }
                )
                for s, t in self.pairs
            }
        )

    def translate(self, source: str, target: str, features: Sequence[Tensor]) -> dict[int, Tensor]:
        """source's pyramid -> predicted target features, at the translated levels only."""
        bank = self.translators[pair_key(source, target)]
        return {level: bank[str(level)](features[level]) for level in self.levels}

    def translate_all(
        self, pyramids: Mapping[str, Sequence[Tensor]]
    ) -> dict[tuple[str, str], dict[int, Tensor]]:
        """Every ordered pair among the modalities present in `pyramids`."""
        return {
            (s, t): self.translate(s, t, pyramids[s])
            for s, t in self.pairs
            if s in pyramids and t != s
        }

    def recover(
        self,
        target: str,
        pyramids: Mapping[str, Sequence[Tensor]],
        translations: Mapping[tuple[str, str], Mapping[int, Tensor]] | None = None,
    ) -> list[Tensor]:
        """The target's pyramid from the present modalities' pyramids (never the target's own).

        Translated levels: mean over present sources of T_{source->target}; other levels: mean
        of the sources' own features. Precomputed `translations` are reused when given.
        """
        sources = [m for m in self.modalities if m in pyramids and m != target]
        if not sources:
            raise KeyError(f"cannot recover {target!r}: no other modality present")
        recovered = []
        for level in range(self.num_levels):
            parts = []
            for source in sources:
                if level not in self.levels:
                    parts.append(pyramids[source][level])
                elif translations is not None and (source, target) in translations:
                    parts.append(translations[(source, target)][level])
                else:
                    bank = self.translators[pair_key(source, target)]
                    parts.append(bank[str(level)](pyramids[source][level]))
            recovered.append(parts[0] if len(parts) == 1 else torch.stack(parts).mean(0))
        return recovered

    def recover_per_sample(
        self,
        pyramids: Mapping[str, Sequence[Tensor]],
        translations: Mapping[tuple[str, str], Mapping[int, Tensor]],
        keep: Mapping[str, Tensor],
    ) -> dict[str, list[Tensor]]:
        """Every modality's pyramid when sample b keeps only the modalities with keep[m][b].

        A kept modality's features are its own; a dropped one's are, per sample, the mean of
        the translations from that sample's kept modalities (the identity at untranslated
        levels), as `recover` does for a whole batch. `translations` must hold every ordered
        pair (`translate_all` on the full pyramids); every sample keeps at least one modality.
        """
        out = {}
        for target in self.modalities:
            sources = [m for m in self.modalities if m != target]
            weights = [keep[s].to(pyramids[s][0].dtype).view(-1, 1, 1, 1) for s in sources]
            total = torch.stack(weights).sum(0).clamp(min=1)
            kept = keep[target].view(-1, 1, 1, 1)
            levels = []
            for level in range(self.num_levels):
                parts = [
                    translations[(s, target)][level] if level in self.levels else pyramids[s][level]
                    for s in sources
                ]
                recovered = sum(w * p for w, p in zip(weights, parts, strict=True)) / total
                levels.append(torch.where(kept, pyramids[target][level], recovered))
            out[target] = levels
        return out


def alignment_loss(prediction: Tensor, target: Tensor, kind: str = "cosine") -> Tensor:
    """Per-pixel distance between a translation and its target, averaged over pixels.

    `cosine`: 1 - cosine similarity over channels (SimSiam's negative cosine shifted to be
    >= 0; same gradient). `l1`: mean absolute difference. The caller decides whether `target`
    is detached (stop-gradient).
    """
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(prediction.float(), target.float(), dim=1).mean()
    if kind == "l1":
        return F.l1_loss(prediction.float(), target.float())
    raise ValueError(f"unknown alignment loss {kind!r}; expected cosine or l1")
