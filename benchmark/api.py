"""The stable surface for people who extend MissBench.

Import from here, not from the harness's internals (whose module layout may change between
versions).

A method is a `Method` subclass decorated with `register_method("name")`; a dataset is a
`MultiModalDataset` subclass decorated with `register_dataset("name")`. MissBench's own methods
and datasets are registered exactly this way. To add them from your own package, declare an
entry point in the group `missbench.methods` or `missbench.datasets` that names the module
holding the decorated classes::

    [project.entry-points."missbench.methods"]
    my_methods = "my_package.methods"

Every process that runs a run (the CLI, `--workers` processes, Ray tasks) imports those modules
before it looks a name up.
"""

from benchmark.core.dataset import DatasetOptions, MultiModalDataset, RawSample, Window
from benchmark.core.errors import BenchmarkError, DatasetNotFoundError
from benchmark.core.hparams import HParam, Params
from benchmark.core.method import (
    Batch,
    Method,
    Paper,
    TrainContext,
    evaluation_mode,
    labels_of,
    modality_inputs,
)
from benchmark.core.plugins import register_dataset, register_method
from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.core.spec import MASK, DatasetSpec, Modality
from benchmark.profile.profilers import Profiler, register_profiler

__all__ = [
    "MASK",
    "Batch",
    "BenchmarkError",
    "DatasetNotFoundError",
    "DatasetOptions",
    "DatasetSpec",
    "HParam",
    "Method",
    "Modality",
    "MultiModalDataset",
    "Paper",
    "Profiler",
    "Params",
    "RawSample",
    "Scenario",
    "TrainContext",
    "Window",
    "all_scenarios",
    "evaluation_mode",
    "labels_of",
    "modality_inputs",
    "register_dataset",
    "register_method",
    "register_profiler",
]
