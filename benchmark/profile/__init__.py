"""Timing and the profilers (`run_benchmark.py profile <name>`)."""
