"""User-facing errors: the CLI prints them as one line and exits with status 2."""

import re


class BenchmarkError(Exception):
    """Bad input from the user (flag, name, file). Never a bug in our code."""


class DatasetNotFoundError(BenchmarkError):
    """A dataset's files are absent; the message says where to get them and where to put them."""


_BYTES_LITERAL = re.compile(r"""b(['"]).*?(?<!\\)\1""")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\ufffc]")
_BYTE_MENTION = re.compile(r"\bbyte 0x[0-9a-fA-F]{2}\b")


def describe(error: BaseException, limit: int = 300) -> str:
    """`Type: message` of a library's exception, fit to quote in a one-line error.

    Libraries quote the file they could not read (tifffile: `header=b'...'`, codecs: `byte
    0x89`); an error message must never echo a file's contents, so byte literals and byte
    values are elided, unprintable characters dropped, and only the first line is kept.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = _BYTES_LITERAL.sub("<bytes>", text)
    text = _BYTE_MENTION.sub("a byte", text)
    text = _UNPRINTABLE.sub("", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    name = type(error).__name__
    return f"{name}: {text}" if text else name
