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


RowReader = Callable[[int, int], Mapping[str, Tensor]]
"""(row0, row1) -> modality tensors [C, row1 - row0, W] of those tile rows, on one device."""


def sliding_window_bands(
    predict: PredictFn,
    read_rows: RowReader,
    height: int,
    width: int,
    num_classes: int,
    window: int,
    overlap: float = 0.5,
    batch_size: int = 16,
):
    """The logits of `sliding_window_logits`, streamed as horizontal bands.

    Yields `(row0, row1, logits[K, row1 - row0, W])` top to bottom, covering the tile once.
    Same windows, same batches, same summation order as `sliding_window_logits`, so the
    result is identical; but only the rows the current batch of windows touches are read
    (via `read_rows`) and only a band of about two window heights is accumulated, so a
    6000 x 6000 tile never lives in memory as a whole. Needs height, width >= window (no
    padding); smaller tiles go through `sliding_window_logits`.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if height < window or width < window:
        raise ValueError(f"tile {height}x{width} is smaller than the window {window}")
    stride = max(1, int(window * (1 - overlap)))
    boxes = [
        (y, x)
        for y in window_starts(height, window, stride)
        for x in window_starts(width, window, stride)
    ]
    top = 0  # first row not yet yielded
    logits = counts = None
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start : start + batch_size]
        row0, row1 = chunk[0][0], chunk[-1][0] + window
        rows = read_rows(row0, row1)
        batch = {
            k: torch.stack([v[:, y - row0 : y - row0 + window, x : x + window] for y, x in chunk])
            for k, v in rows.items()
        }
        out = predict(batch).float()
        if out.shape[-2:] != (window, window):
            raise ValueError(
                f"predict returned {tuple(out.shape)}; expected (B, K, {window}, {window})"
            )
        if logits is None:
            device = out.device
            logits = torch.zeros(num_classes, 0, width, device=device)
            counts = torch.zeros(1, 0, width, device=device)
        end = top + logits.shape[1]
        if row1 > end:  # grow the band downwards
            grow = row1 - end
            logits = torch.cat([logits, logits.new_zeros(num_classes, grow, width)], 1)
            counts = torch.cat([counts, counts.new_zeros(1, grow, width)], 1)
        for (y, x), window_logits in zip(chunk, out, strict=True):
            logits[:, y - top : y - top + window, x : x + window] += window_logits
            counts[:, y - top : y - top + window, x : x + window] += 1
        done = boxes[start + batch_size][0] if start + batch_size < len(boxes) else height
        if done > top:  # rows above the next window are final
            yield top, done, logits[:, : done - top] / counts[:, : done - top]
            logits, counts = logits[:, done - top :], counts[:, done - top :]
            top = done
