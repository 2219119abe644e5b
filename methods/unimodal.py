"""Dedicated models: one network per available-modality subset, trained only on that subset.

The per-scenario reference that papers call e.g. "Baseline-SAR" (MetaRS/STARS) or the
"dedicated" setting (ShaSpec): for each non-empty modality subset the harness trains one run
whose `context.train_modalities` is that subset, and evaluates it only on that scenario. The
network is the baseline's fusion network built over exactly those modalities (a single branch
for a single modality), so the only difference to `baseline` is the data it sees.
"""

from __future__ import annotations

from benchmark.api import Batch, complete_samples, register_method
from methods.baseline import Baseline


@register_method("unimodal")
class Unimodal(Baseline):
    """One fusion network per modality subset, trained and tested on that subset only."""

    DEDICATED = True
    SUMMARY = (
        "Dedicated per-scenario models: the baseline network built and trained on exactly one "
        "modality subset (one run per subset; the leaderboard shows them as one method)."
    )
    MISSING_MODALITY = (
        "never sees one: each scenario is served by the model trained on exactly its modalities"
    )
    INVALID_PIXELS = (
        "mean-fills them (zero in normalised space): its answer to a missing modality is "
        "another run's model, which cannot take over per pixel, so its own fill is the mean fill"
    )
    PAPER = None
    DEVIATIONS = (
        "Not a published method: the per-scenario upper/reference bound of the literature "
        "('Baseline-SAR' in MetaRS and STARS, the 'dedicated' setting in ShaSpec).",
        "Same fusion network, loss and schedule as `baseline`, built over the run's own "
        "modalities (with one modality the fusion is a 1x1 conv over one branch).",
        "If asked for a subset of its modalities (only the contract tests do), it zero-fills "
        "the absent ones like `baseline`; the harness only evaluates its own scenario.",
    )
    ENCODES_ABSENT = ""  # unlike `baseline`: a sample lacking a modality is never encoded
    TRAIN_MISSING = (
        "each subset model trains only on the samples that have all its modalities (a batch "
        "with none advances the schedule without an update)"
    )

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        rows = complete_samples(batch, self.modalities)
        if bool(rows.all()):
            return super().update(batch, step)
        if not bool(rows.any()):
            self.skip_step()
            return {"skipped_update": 1.0}
        losses = super().update({k: v[rows] for k, v in batch.items()}, step)
        return {**losses, "samples_used": float(rows.sum())}


__all__ = ["Unimodal"]
