"""MissBench's own datasets: one module per dataset (family), each registered on import
(`benchmark.api.register_dataset`). This package is the `missbench.datasets` entry point of the
`missbench` distribution; its import order is the registry's (and the README table's) order.

Note: this top-level package shares its name with Hugging Face's `datasets`; MissBench never
uses that library and runs from its own editable install. Where the other one comes first on
the import path, the CLI and `benchmark.api` stop at start-up with one line saying so
(`benchmark/system/packages.py`; tests/test_packaging.py installs a stand-in).
"""

# ruff: noqa: I001  (registration order is deliberate, not alphabetical)
from datasets import synthetic  # noqa: F401
from datasets import vaihingen  # noqa: F401
from datasets import potsdam  # noqa: F401
from datasets import whu_opt_sar  # noqa: F401
from datasets import earthmiss  # noqa: F401
from datasets import folder  # noqa: F401
