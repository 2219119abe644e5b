"""Test-time corruptions of present modalities: one registered record per corruption.

`corruption` (the record and how it is applied), `registry` (`CORRUPTIONS`, filled from the
`missbench.corruptions` entry points), `catalogue` (MissBench's own corruptions), `blocks` (the
building blocks their models share) and `tile` (`TileCorruption`: a corruption at a severity).
Numpy only: no training code.
"""
