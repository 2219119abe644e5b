"""Compute what several views of one input have in common once.

Evaluation asks a method for many views of the same windows: every missing-modality scenario
(a subset of the same modality tensors) and, under a corruption, every severity (the untouched
modalities' tensors are the clean ones). Encoding each present modality again for every view
costs 2^(M-1) encoder passes per modality where one would do. Inside a `shared_encodings`
block, `encode_once(key, x, encode)` runs `encode(x)` once per (key, tensor object) and hands
the same result to every later call: the harness builds the views from the same tensor objects,
so identity is sameness. Outside a block (training, a single `predict`) it is a plain call.

Only encodings that are a function of that one tensor may go through it (a per-modality encoder
in eval mode); the result is then bit-identical to computing it again.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar

from torch import Tensor

T = TypeVar("T")

_memo: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "missbench_shared_encodings", default=None
)


@contextlib.contextmanager
def shared_encodings() -> Iterator[None]:
    """Within the block, `encode_once` and `zeros_once` compute each distinct thing once.

    The memo keeps the tensors it was keyed by alive, so an id is never reused inside a block;
    it is dropped when the block ends.
    """
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def encode_once(key: Hashable, x: Tensor, encode: Callable[[Tensor], T]) -> T:
    """`encode(x)`, computed once per (`key`, tensor object) inside a `shared_encodings` block.

    `key` names the encoding, e.g. `(module, modality)`: two encoders of the same tensor are two
    entries.
    """
    memo = _memo.get()
    if memo is None:
        return encode(x)
    slot = (key, id(x))
    if slot not in memo:
        memo[slot] = (x, encode(x))
    return memo[slot][1]


def zeros_once(like: Tensor, shape: Sequence[int]) -> Tensor:
    """Return zeros of `shape` with the dtype and device of `like`.

    Inside a `shared_encodings` block it is the same object for the same shape, so what
    encodes it (a zero-filled modality) is computed once too.
    """
    memo = _memo.get()
    if memo is None:
        return like.new_zeros(tuple(shape))
    slot = ("zeros", tuple(shape), like.dtype, like.device)
    if slot not in memo:
        memo[slot] = like.new_zeros(tuple(shape))
    return memo[slot]


def sharing_active() -> bool:
    """Whether a `shared_encodings` block is open (a method may then pick its per-view path)."""
    return _memo.get() is not None


__all__ = ["encode_once", "shared_encodings", "sharing_active", "zeros_once"]
