"""Shared building blocks for methods: encoders, fusion, decoders, heads. Never registered."""

from methods.components.decoders import FPNDecoder
from methods.components.encoders import ModalityEncoder
from methods.components.fusion import ConcatFusion
from methods.components.heads import SegmentationHead
from methods.components.segmenter import FusionSegmenter

__all__ = ["ConcatFusion", "FPNDecoder", "FusionSegmenter", "ModalityEncoder", "SegmentationHead"]
