"""Fixtures the deploy tests share: a tiny finished run (optical + DSM, six steps) and a
two-modality GeoTIFF scene with a DSM void, both defined in `test_predict.py`."""

from tests.benchmark.deploy.test_predict import finished_run, scene  # noqa: F401
