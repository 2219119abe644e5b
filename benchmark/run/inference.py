"""Sliding-window inference over whole tiles, identical for every method.

Windows overlap; the logits of overlapping windows are averaged and stitched back to the tile.
Several *views* of one tile (its missing-modality scenarios, or its corruption severities) go
through the same windows together: each distinct tensor is padded and cropped once, so views
that share a modality hand the method the same window tensors, and a method's
`predict_views` encodes each of them once (`benchmark.core.sharing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PredictFn = Callable[[Mapping[str, Tensor]], Tensor]
View = Mapping[str, Tensor]
"""A view of a tile or a batch of windows: modality name -> tensor, only present modalities."""
PredictViewsFn = Callable[[Sequence[View]], Sequence[Tensor]]
"""Logits [B, K, h, w] of every view of one batch of windows (`Method.predict_views`)."""


def one_by_one(predict: PredictFn) -> PredictViewsFn:
    """A `PredictViewsFn` that predicts each view on its own (no sharing)."""
    return lambda views: [predict(view) for view in views]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets covering [0, length) with the last window flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def window_grid(
    height: int, width: int, window: int, overlap: float
) -> tuple[int, int, list[tuple[int, int]]]:
    """The window height and width on a `height` x `width` tile (the window, or the tile where
    it is smaller) and the windows' top-left corners at `overlap`, row by row."""
    win_h, win_w = min(window, height), min(window, width)
    stride_h = max(1, int(win_h * (1 - overlap)))
    stride_w = max(1, int(win_w * (1 - overlap)))
    boxes = [
        (y, x)
        for y in window_starts(height, win_h, stride_h)
        for x in window_starts(width, win_w, stride_w)
    ]
    return win_h, win_w, boxes


def map_distinct(views: Sequence[View], transform: Callable[[Tensor], Tensor]) -> list[dict]:
    """`views` with every tensor transformed, each distinct tensor object once: views that
    shared a tensor share its transform (the identity `encode_once` keys on)."""
    done: dict[int, Tensor] = {}
    out = []
    for view in views:
        mapped = {}
        for key, value in view.items():
            if id(value) not in done:
                done[id(value)] = transform(value)
            mapped[key] = done[id(value)]
        out.append(mapped)
    return out


def sliding_window_logits(
    predict: PredictFn,
    inputs: Mapping[str, Tensor],
    num_classes: int,
    window: int,
    overlap: float = 0.5,
    batch_size: int = 16,
    size_multiple: int = 32,
) -> Tensor:
    """Average logits [K, H, W] of one tile given modality tensors [C, H, W] on one device."""
    return sliding_window_views(
        one_by_one(predict), [inputs], num_classes, window, overlap, batch_size, size_multiple
    )[0]


def sliding_window_views(
    predict_views: PredictViewsFn,
    views: Sequence[View],
    num_classes: int,
    window: int,
    overlap: float = 0.5,
    batch_size: int = 16,
    size_multiple: int = 32,
) -> list[Tensor]:
    """Average logits [K, H, W] of each view of one tile (modality tensors [C, H, W]).

    A tile smaller than the window is padded (reflect) up to a multiple of `size_multiple`
    so encoders with stride 32 see valid shapes; the padding is cropped away again. Every view
    sees the same windows in the same batches, so each view's logits equal those of that view
    alone.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    first = next(iter(views[0].values()))
    height, width = first.shape[-2:]
    pad_h = max(0, min(window, _round_up(height, size_multiple)) - height)
    pad_w = max(0, min(window, _round_up(width, size_multiple)) - width)
    if pad_h or pad_w:
        mode = "reflect" if min(height, width) > 1 else "replicate"
        views = map_distinct(views, lambda v: F.pad(v[None], (0, pad_w, 0, pad_h), mode=mode)[0])
    full_h, full_w = height + pad_h, width + pad_w
    win_h, win_w, boxes = window_grid(full_h, full_w, window, overlap)
    logits = [torch.zeros(num_classes, full_h, full_w, device=first.device) for _ in views]
    counts = torch.zeros(1, full_h, full_w, device=first.device)
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start : start + batch_size]
        batch = map_distinct(views, windows_of(chunk, win_h, win_w))
        outputs = _checked(predict_views(batch), len(views), win_h, win_w)
        for y, x in chunk:
            counts[:, y : y + win_h, x : x + win_w] += 1
        for total, out in zip(logits, outputs, strict=True):
            for (y, x), window_logits in zip(chunk, out, strict=True):
                total[:, y : y + win_h, x : x + win_w] += window_logits
    return [(total / counts)[:, :height, :width] for total in logits]


def windows_of(
    boxes: Sequence[tuple[int, int]], height: int, width: int, row0: int = 0
) -> Callable[[Tensor], Tensor]:
    """A function stacking the windows at `boxes` (top-left corners in tile rows, the tensor
    starting at tile row `row0`) of a [C, H, W] tensor into [len(boxes), C, height, width]."""

    def crop(tensor: Tensor) -> Tensor:
        return torch.stack(
            [tensor[:, y - row0 : y - row0 + height, x : x + width] for y, x in boxes]
        )

    return crop


def _checked(outputs: Sequence[Tensor], views: int, height: int, width: int) -> list[Tensor]:
    """The views' logits as float, after checking there is one per view of the window size."""
    if len(outputs) != views:
        raise ValueError(f"predict_views returned {len(outputs)} outputs for {views} views")
    for out in outputs:
        if out.shape[-2:] != (height, width):
            raise ValueError(
                f"predict returned {tuple(out.shape)}; expected (B, K, {height}, {width})"
            )
    return [out.float() for out in outputs]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


RowReader = Callable[[int, int], Sequence[View]]
"""(row0, row1) -> the views of those tile rows (tensors [C, row1 - row0, W], one device)."""


def sliding_window_bands(
    predict_views: PredictViewsFn,
    read_rows: RowReader,
    height: int,
    width: int,
    num_classes: int,
    window: int,
    overlap: float = 0.5,
    batch_size: int = 16,
) -> Iterator[tuple[int, int, list[Tensor]]]:
    """The logits of `sliding_window_views`, streamed as horizontal bands.

    Yields `(row0, row1, [logits[K, row1 - row0, W] per view])` top to bottom, covering the
    tile once. Same windows, same batches, same summation order as `sliding_window_views`, so
    the result is identical; but only the rows the current batch of windows touches are read
    (via `read_rows`) and only a band of about two window heights is accumulated, so a
    6000 x 6000 tile never lives in memory as a whole. Needs height, width >= window (no
    padding); smaller tiles go through `sliding_window_views`.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if height < window or width < window:
        raise ValueError(f"tile {height}x{width} is smaller than the window {window}")
    _, _, boxes = window_grid(height, width, window, overlap)
    top = 0  # first row not yet yielded
    logits: list[Tensor] = []
    counts = None
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start : start + batch_size]
        row0, row1 = chunk[0][0], chunk[-1][0] + window
        rows = read_rows(row0, row1)
        batch = map_distinct(rows, windows_of(chunk, window, window, row0))
        outputs = _checked(predict_views(batch), len(rows), window, window)
        if counts is None:
            device = outputs[0].device
            logits = [torch.zeros(num_classes, 0, width, device=device) for _ in outputs]
            counts = torch.zeros(1, 0, width, device=device)
        end = top + counts.shape[1]
        if row1 > end:  # grow the band downwards
            grow = row1 - end
            logits = [torch.cat([t, t.new_zeros(num_classes, grow, width)], 1) for t in logits]
            counts = torch.cat([counts, counts.new_zeros(1, grow, width)], 1)
        for y, x in chunk:
            counts[:, y - top : y - top + window, x : x + window] += 1
        for total, out in zip(logits, outputs, strict=True):
            for (y, x), window_logits in zip(chunk, out, strict=True):
                total[:, y - top : y - top + window, x : x + window] += window_logits
        done = boxes[start + batch_size][0] if start + batch_size < len(boxes) else height
        if done > top:  # rows above the next window are final
            yield top, done, [t[:, : done - top] / counts[:, : done - top] for t in logits]
            logits = [t[:, done - top :] for t in logits]
            counts = counts[:, done - top :]
            top = done


def scene_grid(height: int, width: int, window: int, overlap: float, size_multiple: int = 32):
    """The padded scene size, the window's height and width and the strides, as
    `sliding_window_views` and `window_grid` compute them for a tile of this size."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    full_h = height + max(0, min(window, _round_up(height, size_multiple)) - height)
    full_w = width + max(0, min(window, _round_up(width, size_multiple)) - width)
    win_h, win_w = min(window, full_h), min(window, full_w)
    stride_h = max(1, int(win_h * (1 - overlap)))
    stride_w = max(1, int(win_w * (1 - overlap)))
    return full_h, full_w, win_h, win_w, stride_h, stride_w


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
