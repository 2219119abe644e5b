"""STARS's pixel-level semantic sampling and alignment (PSA), in one place by job.

* `sampler`: labels onto the feature grid, class-balanced pixel sampling (its NumPy and PyTorch
  kernels), the supervised InfoNCE loss, the projection head and the collapse gauge;
* `numba_kernel`: the CPU sampling kernel compiled with numba (the `fast` extra), loaded by
  `sampler` only where numba imports;
* `profiler`: `run_benchmark.py profile psa`, what sampling and the loss cost against a STARS
  step (registered by `methods/stars.py`; imported only when that profile runs).
"""
