"""Sliding-window inference over whole tiles, identical for every method.

Windows overlap; the logits of overlapping windows are averaged and stitched back to the tile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

PredictFn = Callable[[Mapping[str, Tensor]], Tensor]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets covering [0, length) with the last window flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def sliding_window_logits(
    predict: PredictFn,
    inputs: Mapping[str, Tensor],
    num_classes: int,
    window: int,
    overlap: float = 0.5,
    batch_size: int = 16,
    size_multiple: int = 32,
) -> Tensor:
    """Average logits [K, H, W] of one tile given modality tensors [C, H, W] on one device.

    A tile smaller than the window is padded (reflect) up to a multiple of `size_multiple`
    so encoders with stride 32 see valid shapes; the padding is cropped away again.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    first = next(iter(inputs.values()))
    height, width = first.shape[-2:]
    pad_h = max(0, min(window, _round_up(height, size_multiple)) - height)
    pad_w = max(0, min(window, _round_up(width, size_multiple)) - width)
    if pad_h or pad_w:
        inputs = {
            k: F.pad(
                v[None],
                (0, pad_w, 0, pad_h),
                mode="reflect" if min(height, width) > 1 else "replicate",
            )[0]
            for k, v in inputs.items()
        }
    full_h, full_w = height + pad_h, width + pad_w
    win_h, win_w = min(window, full_h), min(window, full_w)
    stride_h = max(1, int(win_h * (1 - overlap)))
    stride_w = max(1, int(win_w * (1 - overlap)))
    boxes = [
        (y, x)
        for y in window_starts(full_h, win_h, stride_h)
        for x in window_starts(full_w, win_w, stride_w)
    ]
    logits = torch.zeros(num_classes, full_h, full_w, device=first.device)
    counts = torch.zeros(1, full_h, full_w, device=first.device)
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start : start + batch_size]
        batch = {
            k: torch.stack([v[:, y : y + win_h, x : x + win_w] for y, x in chunk])
            for k, v in inputs.items()
        }
        out = predict(batch).float()
        if out.shape[-2:] != (win_h, win_w):
            raise ValueError(
                f"predict returned {tuple(out.shape)}; expected (B, K, {win_h}, {win_w})"
            )
        for (y, x), window_logits in zip(chunk, out, strict=True):
            logits[:, y : y + win_h, x : x + win_w] += window_logits
            counts[:, y : y + win_h, x : x + win_w] += 1
    return (logits / counts)[:, :height, :width]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
