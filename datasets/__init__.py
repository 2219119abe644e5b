"""Dataset registry. Each module registers its datasets on import.

Note: this top-level package shadows Hugging Face's `datasets`; MissBench never uses that
library and runs from its own editable install (a test checks `datasets.__file__`).
"""

from benchmark.registry import Registry
from datasets.base import MultiModalDataset

DATASETS: Registry[type[MultiModalDataset]] = Registry("dataset")

from datasets import synthetic  # noqa: E402,F401  (registers synthetic, synthetic_sar, synthetic_3m)

__all__ = ["DATASETS", "MultiModalDataset"]
