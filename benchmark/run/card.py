"""A finished run's model card (`model.json`): what rebuilding and applying its model needs.

The run writes the card when it saves its selected weights; `benchmark.deploy` reads it back
to rebuild the model without the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.data.pipeline import RunData
from benchmark.system.provenance import git_commit, versions

CARD_FORMAT = 1


def model_card(spec: RunSpec, data: RunData, chosen: Mapping[str, int]) -> dict[str, Any]:
    """What rebuilding and applying the run's model needs, as JSON. The model is the default
    selection rule's; `selected_steps` holds every rule's choice (rule -> step), whose weights
    the store keeps beside it (`RunStore.model_path`)."""
    return {
        "format": CARD_FORMAT,
        "run_id": spec.run_id,
        "method": spec.method,
        "label": spec.label,
        "hparams": spec.hparams.pairs(),
        "train_modalities": list(spec.train_modalities),
        "dataset": spec.dataset,
        "dataset_options": spec.dataset_options.pairs(),
        "dataset_spec": data.train.spec.to_json(),
        "class_frequencies": list(data.frequencies),
        "steps": spec.steps,
        "selected_step": chosen[SELECTION_FULL_VAL],
        "selected_steps": dict(chosen),
        "window": spec.window,
        "overlap": spec.eval_overlap,
        "batch_size": spec.eval_batch_size,
        "commit": git_commit(),
        "versions": versions(),
    }
