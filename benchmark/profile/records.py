"""The columns every profile row shares, and a profiler's rows as one frame.

A profiler's row is a frozen dataclass of its own columns (which method, which point of a sweep)
with two shared parts held as fields: a `ProfileOrigin` (device, preset, commit: where the row
was measured) and a `Measurement` (median, quartiles, repeats, calls per repeat, peak memory).
`profile_frame` expands both into their columns where the field stands, so no profiler repeats
the shared columns and each keeps its own column order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import pandas as pd

from benchmark.profile.timing import Measurement


@dataclass(frozen=True)
class ProfileOrigin:
    """Where a row was measured: the first columns of every profile."""

    device: str
    preset: str
    commit: str

    def row_fields(self) -> dict[str, str]:
        return asdict(self)


def row_columns(row: Any) -> dict[str, Any]:
    """A row dataclass's columns in field order, its origin and measurement expanded in place."""
    columns: dict[str, Any] = {}
    for field in fields(row):
        value = getattr(row, field.name)
        if isinstance(value, ProfileOrigin | Measurement):
            columns.update(value.row_fields())
        else:
            columns[field.name] = value
    return columns


def profile_frame(rows: Iterable[Any]) -> pd.DataFrame:
    """One DataFrame row per profile row (the CSV a profiler writes)."""
    return pd.DataFrame([row_columns(row) for row in rows])
