"""Dataset registry. Each module registers its datasets on import.

Note: this top-level package shadows Hugging Face's `datasets`; MissBench never uses that
library and runs from its own editable install (a test checks `datasets.__file__`).
"""

from benchmark.registry import Registry
from datasets.base import MultiModalDataset

DATASETS: Registry[type[MultiModalDataset]] = Registry("dataset")

from datasets import synthetic  # noqa: E402,F401  (registers synthetic, synthetic_sar, synthetic_3m)

__all__ = ["DATASETS", "MultiModalDataset"]
# registration order = listing order (README table)
from datasets import vaihingen  # noqa: E402,F401,I001  (registers vaihingen)
from datasets import potsdam  # noqa: E402,F401  (registers potsdam)
from datasets import whu_opt_sar  # noqa: E402,F401  (registers whu_opt_sar)
from datasets import earthmiss  # noqa: E402,F401  (registers earthmiss)
from datasets import folder  # noqa: E402,F401  (registers folder, real_potsdam_mini)
