"""Small shared types of the harness.

Specs, records, registries, the method and dataset contracts, hyperparameters, errors and
atomic I/O.
"""
