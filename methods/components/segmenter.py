"""The multimodal fusion network most methods share: encoders -> fusion -> FPN -> head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from benchmark.api import DatasetSpec
from methods.components.decoders import FPNDecoder
from methods.components.encoders import ModalityEncoder
from methods.components.fusion import ConcatFusion
from methods.components.heads import SegmentationHead


class FusionSegmenter(nn.Module):
    """One encoder per modality, concat fusion at every scale, FPN decoder, head.

    `forward` needs every modality it was built for; how a missing one is filled (zeros,
    translation, imputation) is the calling method's decision, made visibly there.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        modalities: Sequence[str],
        backbone: str,
        decoder_channels: int,
        weights: str = "none",
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.encoders = nn.ModuleDict(
            {
                name: ModalityEncoder(backbone, spec.modality(name).channels, weights)
                for name in self.modalities
            }
        )
        channels = self.encoders[self.modalities[0]].channels
        self.fusion = ConcatFusion(channels, len(self.modalities))
        self.decoder = FPNDecoder(channels, decoder_channels)
        self.head = SegmentationHead(decoder_channels, spec.num_classes)

    def encode(self, inputs: Mapping[str, Tensor]) -> list[list[Tensor]]:
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"FusionSegmenter needs modalities {missing}; fill them first")
        return [self.encoders[m](inputs[m]) for m in self.modalities]

    def encode_each(self, inputs: Mapping[str, Tensor]) -> dict[str, list[Tensor]]:
        """Pyramids of whichever of its modalities `inputs` holds, each with its own rows (the
        present samples only, under `encode_present`)."""
        return {m: self.encoders[m](inputs[m]) for m in self.modalities if m in inputs}

    def decode(self, fused: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        return self.head(self.decoder(fused), size)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        first = inputs[self.modalities[0]]
        return self.decode(self.fusion(self.encode(inputs)), tuple(first.shape[-2:]))
