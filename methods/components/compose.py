"""The residual compositional layer of shared-specific methods: f_m = s_m + conv([s_m ; p_m]).

One conv per pyramid level, shared by every modality (ShaSpec's "compositional layer"). The
residual goes onto the shared features (ShaSpec) or onto the specific ones (`residual`:
MetaRS's `Fusespfnv2_res`, whose block also puts an SCSE on each input and on the output,
`attention`). How its batch norm sees the modalities decides whether training and inference
agree:

* `private`: one BatchNorm per modality (its own statistics and affine), as the shared trunk's
  private norms: each modality is normalised with its own statistics in training and at
  inference, and no modality's loss reaches another's branch through batch statistics;
* `joint`: every modality in one batch (statistics pooled over modalities in training, as the
  running statistics used at inference are);
* `separate` (the first implementation, kept as an ablation): each modality through one shared
  BatchNorm on its own. Training then normalises each modality with its own batch statistics
  while inference uses running statistics pooled over the modalities: a train/eval mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from methods.components.attention import SCSE

COMPOSE_NORMS = ("private", "joint", "separate")
RESIDUALS = ("shared", "specific")


class Composer(nn.Module):
    """f_m = s_m + ReLU(BN(conv([s_m ; p_m]))) at every level, the conv shared by modalities.

    `residual="specific"` adds onto p_m instead; `attention` makes the block
    base + SCSE(ReLU(BN(conv([SCSE(s_m) ; SCSE(p_m)])))), each SCSE shared by modalities.
    """

    def __init__(
        self,
        shared_channels: Sequence[int],
        specific_channels: Sequence[int],
        modalities: Sequence[str],
        kernel: int = 1,
        norm: str = "private",
        residual: str = "shared",
        attention: bool = False,
    ) -> None:
        super().__init__()
        if norm not in COMPOSE_NORMS:
            raise ValueError(f"unknown compose norm {norm!r}; expected one of {COMPOSE_NORMS}")
        if residual not in RESIDUALS:
            raise ValueError(f"unknown compose residual {residual!r}; expected one of {RESIDUALS}")
        if residual == "specific" and list(shared_channels) != list(specific_channels):
            raise ValueError(
                f"a residual onto the specific features needs their widths {specific_channels} "
                f"to equal the shared ones {shared_channels}"
            )
        self.norm = norm
        self.residual = residual
        self.attention = (
            nn.ModuleList(
                nn.ModuleDict({"shared": SCSE(c), "specific": SCSE(sc), "out": SCSE(c)})
                for c, sc in zip(shared_channels, specific_channels, strict=True)
            )
            if attention
            else None
        )
        self.convs = nn.ModuleList(
            nn.Conv2d(c + sc, c, kernel, padding=kernel // 2, bias=False)
            for c, sc in zip(shared_channels, specific_channels, strict=True)
        )
        if norm == "private":
            self.norms = nn.ModuleList(
                nn.ModuleDict({m: nn.BatchNorm2d(c) for m in modalities}) for c in shared_channels
            )
        else:
            self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in shared_channels)
        self.act = nn.ReLU()  # not in place: the joint norm hands out views of one batch

    def forward(
        self, shared: Mapping[str, Sequence[Tensor]], specific: Mapping[str, Sequence[Tensor]]
    ) -> dict[str, list[Tensor]]:
        """Composed pyramids of every modality in `shared` (each also in `specific`)."""
        names = list(shared)
        out: dict[str, list[Tensor]] = {m: [] for m in names}
        for level, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            gates = self.attention[level] if self.attention is not None else None
            mixed = {
                m: conv(torch.cat(self.gated(gates, shared[m][level], specific[m][level]), dim=1))
                for m in names
            }
            if self.norm == "joint":
                sizes = [mixed[m].shape[0] for m in names]
                normed = norm(torch.cat([mixed[m] for m in names])).split(sizes)
                mixed = dict(zip(names, normed, strict=True))
            else:
                mixed = {
                    m: (norm[m] if self.norm == "private" else norm)(x) for m, x in mixed.items()
                }
            for m in names:
                composed = self.act(mixed[m])
                if gates is not None:
                    composed = gates["out"](composed)
                base = shared[m][level] if self.residual == "shared" else specific[m][level]
                out[m].append(base + composed)
        return out

    @staticmethod
    def gated(gates: nn.ModuleDict | None, shared: Tensor, specific: Tensor) -> list[Tensor]:
        """The conv's inputs, each through its SCSE when the block has them."""
        if gates is None:
            return [shared, specific]
        return [gates["shared"](shared), gates["specific"](specific)]
