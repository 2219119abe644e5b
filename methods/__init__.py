"""Method registry. Each module registers its method on import (registry key = module name)."""

from benchmark.method import Method
from benchmark.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")

from methods import baseline  # noqa: E402,F401

__all__ = ["METHODS", "Method"]
