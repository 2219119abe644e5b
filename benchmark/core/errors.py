"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class BenchmarkError(Exception):
    """Bad input from the user (flag, name, file). Never a bug in our code."""


class DatasetNotFoundError(BenchmarkError):
    """A dataset's files are absent; the message says where to get them and where to put them."""
