"""MissBench's own methods: one module per method, each registered on import under its module's
name (`benchmark.api.register_method`). This package is the `missbench.methods` entry point of
the `missbench` distribution; its import order is the registry's (and the README table's) order.
"""

# ruff: noqa: I001  (registration order is deliberate, not alphabetical)
from methods import baseline  # noqa: F401
from methods import stars  # noqa: F401
from methods import moddrop  # noqa: F401
from methods import unimodal  # noqa: F401
from methods import distill  # noqa: F401
from methods import generative  # noqa: F401
from methods import shaspec  # noqa: F401
from methods import metars  # noqa: F401
from methods import lckd  # noqa: F401
from methods import mmanet  # noqa: F401
