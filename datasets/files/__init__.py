"""A real dataset's files: bounded YAML cards, card field checks, raster reading and label
decoding, train-split channel statistics and the memory-mapped tile cache.

The loaders in `datasets/` share these; nothing here registers a dataset or imports a loader.
"""
