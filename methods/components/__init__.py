"""Shared building blocks for methods, never registered, in three rooms by job.

This folder holds the networks' building blocks (encoders, fusion, decoders, heads, the
shared-specific trunk and composer, translators, the generator and discriminator of
`generative`); `training/` what methods do around a network to learn with missing modalities
(modality dropout, fills, distillation, whitening); `psa/` STARS's pixel sampling and alignment
with its compiled kernel and its profiler.
"""

from methods.components.decoders import FPNDecoder
from methods.components.encoders import ModalityEncoder
from methods.components.fusion import ConcatFusion
from methods.components.heads import SegmentationHead
from methods.components.segmenter import FusionSegmenter

__all__ = ["ConcatFusion", "FPNDecoder", "FusionSegmenter", "ModalityEncoder", "SegmentationHead"]
