"""Method registry. Each module registers its method on import (registry key = module name)."""

from benchmark.method import Method
from benchmark.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")

from methods import baseline  # noqa: E402,F401,I001 (registry order = README table order)
from methods import stars  # noqa: E402,F401
from methods import moddrop  # noqa: E402,F401
from methods import unimodal  # noqa: E402,F401
from methods import distill  # noqa: E402,F401
from methods import generative  # noqa: E402,F401
from methods import shaspec  # noqa: E402,F401

__all__ = ["METHODS", "Method"]
