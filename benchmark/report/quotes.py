"""Numbers in READMEs that check themselves: every quoted number names the table cell (or the
finding) it comes from, and `check` recomputes it from the committed files.

The convention (`docs/quoting.md` has the full text and examples) is HTML comments, invisible
on GitHub:

- `72.3<!--= S&method=stars&scenario=dsm+optical#miou_mean% -->`: the number before the marker
  equals column `miou_mean` (`%`: times 100) of the one row of the alias `S`'s file that the
  filters select, at the number's printed precision. A marker with several expressions
  separated by ` ; ` checks as many numbers before it, in order (`72.3 / 43.1<!--= a ; b -->`).
- References: `path?key=value&key!=value&key~part#column[%]` (or `#column/column`, a ratio
  row by row; `#"name %"` for a column named with spaces or `%`; `key=a|b` matches either),
  `path` relative to the README's folder (`.csv` files, or a `.md` pipe table as `file.md@N`,
  its N-th table, 1-based); or
  `ALIAS[&more filters]#column` after `<!--=def ALIAS = path?filters -->`. A finding is a row
  of `findings.csv`: `report/findings.csv?id=F1a2b3c4d#diff%`.
- Expressions: a single reference, or arithmetic over references in brackets and numbers, with
  `min`, `max`, `mean`, `median`, `std` (sample), `abs`, `count` (a reference inside an
  aggregate may select several rows), `round(x, digits)` (half up; for a difference of two
  printed values) and `holm(family, test)` (Holm-adjusted p of one p-value in a family):
  `[S&method=stars#miou_mean%] - [S&method=baseline#miou_mean%]`, `max([U#train_gflops])`. A
  table cell with fewer numbers than its template (a mean without its std) is checked against
  the first expressions.
- Bounds: an expression starting with `<`, `<=`, `>` or `>=` and a space checks a bound claim,
  `p < 0.01<!--= < max([S#p_value]) -->`: the value must be below the number (`<=` and `>=`
  compare the value rounded to the number's digits: `p ≥ 0.24` holds for 0.2399).
- Tables: `<!--=table` then one line per column, `N: expr ; expr`, then `-->`, before a pipe
  table: cell N of every row (1-based, the first cell included) is checked against the
  expressions with `{row}` replaced by the row's key: its first cell without emphasis and
  without anything from ` (` on, or the text of a `<!--=row key -->` marker in the row. A cell
  with its own marker is checked by that marker instead; `N: skip reason` exempts column N.
- Exemptions, each with its reason: `<!--=skip reason -->` after a number (or `skip reason` as
  one expression of several, `<!--= skip first printed ; REF -->`); `<!--=unchecked
  reason -->` anywhere in a paragraph, list item or table exempts its numbers that no marker
  checks.
- Results sections: every decimal number in a results section must be checked or exempt. A
  frozen folder's README is results throughout; in README.md the text from a `<!--=results -->`
  to the end of its section (the next heading of the same or a higher level) is.

`check(path)` returns the problems (an empty list = every number agrees); `suggest(path)`
lists, for each unchecked decimal number, the cells of the folder's CSVs that print as it, to
help write markers (`python -m benchmark.report.quotes suggest <README.md>`).
"""

from __future__ import annotations

import ast
import logging
import math
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from benchmark.report.stats import holm as holm_adjust

log = logging.getLogger(__name__)

NUMBER = re.compile(
    r"(?<![\w.])((?:(?<=[\s(\[=:;,|*])|^)[−-])?(\d+(?:\.\d+)?|\.\d+)(?![^\Wx]|x\w|\.\d)",
    re.M,
)
"""A number not glued to a word (`s5`, `v2`; `19.2x` and `.57` are numbers), with an attached
minus."""
COMMENT = re.compile(r"<!--(.*?)-->", re.S)
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
NOT_NUMBERS = re.compile(
    r"https?://\S+|\]\([^)]*\)|arXiv[:\s]+\d{4}\.\d+|doi:\S+|\b\d+\.\d+\.\d+\b|"
    r"\b\d{4}-\d{2}-\d{2}\b|\b[0-9a-f]{7}\b|p\s*<\s*0\.05\b(?!<!--=)"
)
"""Text whose digits are not quoted numbers: links, arXiv ids, DOIs, versions, dates, commits,
and the significance level (`p < 0.05`)."""
HEADING = re.compile(r"^(#{1,6})\s")
AGGREGATES = {
    "min": min,
    "max": max,
    "mean": statistics.fmean,
    "median": statistics.median,
    "std": statistics.stdev,
    "count": len,
}


@dataclass
class Number:
    """A number in the README: where it is and what it says."""

    start: int
    end: int
    line: int
    text: str
    value: float
    decimals: int
    block: int
    row: int | None = None
    """Index of the table row it is in (None outside tables)."""
    cell: int | None = None
    """1-based cell of that row."""
    check: str | None = None
    """The expression it is checked against."""
    exempt: str | None = None
    """Why it is not checked."""

    @property
    def decimal(self) -> bool:
        return self.decimals > 0


@dataclass
class Problem:
    """One disagreement between a README and its sources."""

    path: Path
    line: int
    number: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.number}: {self.message}"


@dataclass
class Document:
    """A README parsed into numbers, markers, blocks and sections."""

    path: Path
    text: str
    numbers: list[Number]
    markers: list[tuple[int, int, str]]
    """(start, end, body after `=`) of every `<!--= ... -->` comment."""
    block_of: Callable[[int], int]
    results: list[tuple[int, int]]
    """Character ranges of the results sections."""
    tables: list[list[tuple[int, int, list[tuple[int, int]]]]] = field(default_factory=list)
    """Per pipe table: per row (after the header and rule) its (start, end, cell spans)."""

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def in_results(self, pos: int) -> bool:
        return any(a <= pos < b for a, b in self.results)


def _blank(text: str, spans: Sequence[tuple[int, int]], fill: str = " ") -> str:
    """`text` with the given spans replaced by `fill` (newlines kept), so positions stay."""
    chars = list(text)
    for a, b in spans:
        for i in range(a, b):
            if chars[i] != "\n":
                chars[i] = fill
    return "".join(chars)


def parse(path: Path, results_everywhere: bool) -> Document:
    """Numbers, markers, blocks, tables and results sections of a Markdown file."""
    text = Path(path).read_text(encoding="utf-8")
    fences = [m.span() for m in FENCE.finditer(text)]
    visible = _blank(text, fences)
    code = [
        m.span() for m in CODE_SPAN.finditer(COMMENT.sub(lambda m: "x" * len(m.group(0)), visible))
    ]
    comments = [
        (m.start(), m.end(), m.group(1))
        for m in COMMENT.finditer(visible)
        if not any(a <= m.start() < b for a, b in code)  # a marker shown as code is an example
    ]
    markers = [(a, b, body[1:].strip()) for a, b, body in comments if body.startswith("=")]
    scan = _blank(visible, [(a, b) for a, b, _ in comments])
    scan = _blank(scan, code)
    scan = _blank(scan, [m.span() for m in NOT_NUMBERS.finditer(visible)])
    block_starts = _block_starts(scan)

    def block_of(pos: int) -> int:
        index = 0
        for i, start in enumerate(block_starts):
            if start <= pos:
                index = i
        return index

    numbers = []
    # numbers are read with markers as an opaque filler: `1.6<!--..-->-1.8` is a range, not
    # a negative number after a space
    opaque = _blank(scan, [(a, b) for a, b, _ in comments], fill="\x00")
    for m in NUMBER.finditer(opaque):
        sign, digits = m.group(1), m.group(2)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        value = float(digits) * (-1 if sign else 1)
        numbers.append(
            Number(
                m.start(),
                m.end(),
                visible.count("\n", 0, m.start()) + 1,
                m.group(0),
                value,
                decimals,
                block_of(m.start()),
            )
        )
    results = [(0, len(text))] if results_everywhere else _results_sections(text, markers)
    doc = Document(Path(path), text, numbers, markers, block_of, results)
    doc.tables = _tables(scan)
    for t_index, table in enumerate(doc.tables):
        for r_index, (a, b, cells) in enumerate(table):
            for number in numbers:
                if a <= number.start < b:
                    number.row = _row_id(t_index, r_index)
                    number.cell = next(
                        (i + 1 for i, (x, y) in enumerate(cells) if x <= number.start < y), None
                    )
    return doc


def _row_id(table: int, row: int) -> int:
    return table * 100_000 + row


def _block_starts(scan: str) -> list[int]:
    """Where each block begins: after a blank line, at a list item, at each table row (a
    table row is its own block, so a marker in it reaches only its own numbers)."""
    starts, pos, previous_blank = [0], 0, True
    for line in scan.split("\n"):
        stripped = line.lstrip()
        item = re.match(r"([-*+]|\d+\.)\s", stripped) is not None
        if not stripped:
            previous_blank = True
        else:
            if previous_blank or item or stripped.startswith(("|", "#")):
                starts.append(pos)
            previous_blank = stripped.startswith("#")
        pos += len(line) + 1
    return sorted(set(starts))


def _tables(scan: str) -> list[list[tuple[int, int, list[tuple[int, int]]]]]:
    """Pipe tables: the rows after the header and the rule, each with its cells' spans."""
    tables, current, pos = [], [], 0
    for line in scan.split("\n"):
        if line.lstrip().startswith("|"):
            current.append((pos, pos + len(line), _cells(line, pos)))
        elif current:
            tables.append(current[2:])
            current = []
        pos += len(line) + 1
    if current:
        tables.append(current[2:])
    return tables


def _cells(line: str, offset: int) -> list[tuple[int, int]]:
    bars = [i for i, ch in enumerate(line) if ch == "|" and (i == 0 or line[i - 1] != "\\")]
    return [(offset + a + 1, offset + b) for a, b in zip(bars[:-1], bars[1:], strict=False)]


def _results_sections(text: str, markers: Sequence[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """From each `<!--=results -->` to the end of its section (the next heading of the same or
    a higher level than the one it is under)."""
    headings = [(m.start(), len(m.group(1))) for m in re.finditer(r"^(#{1,6})\s", text, re.M)]
    out = []
    for a, _b, body in markers:
        if body.split()[0:1] != ["results"]:
            continue
        before = [(pos, level) for pos, level in headings if pos <= a]
        level = before[-1][1] if before else 0
        end = next((pos for pos, lv in headings if pos > a and lv <= level), len(text))
        out.append((a, end))
    return out


# --- references ---------------------------------------------------------------------------


class QuoteError(ValueError):
    """A marker that cannot be read or evaluated."""


@cache
def _read_table(path: Path) -> pd.DataFrame:
    """A source table as text: a CSV, or the N-th pipe table of a Markdown file (`f.md@N`)."""
    name = str(path)
    if "@" in path.name and ".md@" in path.name:
        file, _, nth = name.rpartition("@")
        return _markdown_table(Path(file), int(nth))
    if not path.is_file():
        raise QuoteError(f"no file {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _markdown_table(path: Path, nth: int) -> pd.DataFrame:
    if not path.is_file():
        raise QuoteError(f"no file {path}")
    tables, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip().startswith("|"):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    if not 1 <= nth <= len(tables):
        raise QuoteError(f"{path} has {len(tables)} table(s), not a table {nth}")
    header, *rows = tables[nth - 1]
    rows = [r for r in rows if not all(re.fullmatch(r":?-+:?", c) for c in r if c)]
    return pd.DataFrame([r + [""] * (len(header) - len(r)) for r in rows], columns=header)


def _as_float(text: str) -> float | None:
    """A cell's number (`**72.3**`, `72.3 ± 0.5` -> 72.3; `–` -> None)."""
    match = re.search(r"[−-]?\d+(?:\.\d+)?(?:e[−+-]?\d+)?", str(text).replace(",", ""))
    if not match:
        return None
    return float(match.group(0).replace("−", "-"))


def _matches(cell: str, op: str, wanted: str) -> bool:
    if op == "~":
        return wanted in cell
    a, b = _as_float(cell), _as_float(wanted)
    plain = re.fullmatch(r"[−-]?\d+(?:\.\d+)?(?:e[−+-]?\d+)?", wanted.strip()) is not None
    same = (
        abs(a - b) <= 1e-9 * max(1.0, abs(b))
        if plain and a is not None and b is not None and str(cell).strip() != ""
        else cell == wanted
    )
    return same if op == "=" else not same


@dataclass
class Resolver:
    """Resolves references of one README: its folder and its aliases."""

    folder: Path
    aliases: dict[str, str] = field(default_factory=dict)

    def expand(self, ref: str) -> str:
        ref = ref.strip()
        name = re.match(r"[A-Za-z_]\w*(?=[&#]|$)", ref)
        if name and name.group(0) in self.aliases:
            prefix, rest = self.aliases[name.group(0)], ref[name.end() :]
            if rest.startswith("&"):
                rest = ("&" if "?" in prefix else "?") + rest[1:]
            return prefix + rest
        return ref

    def values(self, ref: str) -> list[float]:
        """Every selected row's value of the reference's column."""
        full = self.expand(ref)
        if "#" not in full:
            raise QuoteError(f"reference {full!r} names no column (`#column`)")
        location, _, column = full.rpartition("#")
        column = column.strip()
        scale = 100.0 if column.endswith("%") and not column.endswith('%"') else 1.0
        if scale != 1.0:
            column = column[:-1].strip()
        column = column.strip('"')  # a column whose name has spaces or `%`: `#"data %"`
        path_text, _, query = location.partition("?")
        frame = _read_table((self.folder / path_text.strip()).resolve())
        over = None
        if "/" in column:  # a ratio of two columns, row by row
            column, over = (c.strip() for c in column.split("/", 1))
        for name in filter(None, (column, over)):
            if name not in frame.columns:
                raise QuoteError(f"{path_text} has no column {name!r}")
        keep = pd.Series(True, index=frame.index)
        for part in filter(None, (p.strip() for p in query.split("&"))):
            match = re.fullmatch(r"([^=!~]+?)\s*(!=|=|~)\s*(.*)", part)
            if not match:
                raise QuoteError(f"cannot read the filter {part!r}")
            key, op, wanted = match.group(1).strip(), match.group(2), match.group(3).strip()
            if key not in frame.columns:
                raise QuoteError(f"{path_text} has no column {key!r} to filter on")
            options = wanted.split("|") if op == "=" else [wanted]
            keep &= frame[key].map(lambda c, o=options, p=op: any(_matches(c, p, w) for w in o))
        out = []
        for _index, row in frame.loc[keep].iterrows():
            value = _as_float(row[column])
            below = 1.0 if over is None else _as_float(row[over])
            if value is None or below is None:
                raise QuoteError(f"{full}: a selected cell is not a number ({row[column]!r})")
            out.append(scale * value / below)
        return out


def _bracketed(expression: str) -> tuple[str, list[str]]:
    """The expression with each bracketed reference replaced by `__refN`, and the references.

    A `[` opens a reference at the start or after `(`, `,`, an operator or a space; one after
    a name (`stars[stop_grad=false]`) is part of a value, and brackets nest inside a reference.
    """
    code, refs, depth, start, previous = [], [], 0, 0, ""
    for index, char in enumerate(expression):
        if depth == 0 and char == "[" and (previous in "(,+-*/" or not previous):
            depth, start = 1, index + 1
        elif depth and char == "[":
            depth += 1
        elif depth and char == "]":
            depth -= 1
            if depth == 0:
                refs.append(expression[start:index])
                code.append(f"__ref{len(refs) - 1}")
        elif not depth:
            code.append(char)
        if not char.isspace() and depth == 0:
            previous = char if char != "]" else "x"
    if depth:
        raise QuoteError(f"unbalanced [ in {expression!r}")
    return "".join(code), refs


def evaluate(expression: str, resolver: Resolver) -> float:
    """The value of one marker expression."""
    expression = expression.strip()
    code, refs = _bracketed(expression)
    if not refs:
        values = resolver.values(expression)
        if len(values) != 1:
            raise QuoteError(f"{resolver.expand(expression)} selects {len(values)} rows, not 1")
        return values[0]
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as error:
        raise QuoteError(f"cannot read the expression {expression!r}") from error
    return _eval(tree.body, refs, resolver)


def _values(node: ast.AST, refs: Sequence[str], resolver: Resolver) -> list[float]:
    """Every selected value of a bare reference (several rows allowed), else the one value."""
    if isinstance(node, ast.Name) and node.id.startswith("__ref"):
        return resolver.values(refs[int(node.id[5:])])
    return [_eval(node, refs, resolver)]


def _eval(node: ast.AST, refs: Sequence[str], resolver: Resolver) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id.startswith("__ref"):
        values = resolver.values(refs[int(node.id[5:])])
        if len(values) != 1:
            ref = resolver.expand(refs[int(node.id[5:])])
            raise QuoteError(f"{ref} selects {len(values)} rows, not 1 (use an aggregate)")
        return values[0]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, refs, resolver)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        a, b = _eval(node.left, refs, resolver), _eval(node.right, refs, resolver)
        ops = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}
        return ops[type(node.op)] if type(node.op) in ops else a / b
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name == "abs" and len(node.args) == 1:
            return abs(_eval(node.args[0], refs, resolver))
        if name == "round" and len(node.args) == 2:  # half up, as the tables print
            digits = int(_eval(node.args[1], refs, resolver))
            return _half_up(_eval(node.args[0], refs, resolver), digits)
        if name == "holm" and len(node.args) == 2:  # Holm-adjusted p of one test in a family
            family = _values(node.args[0], refs, resolver)
            one = _eval(node.args[1], refs, resolver)
            adjusted = holm_adjust(family)
            match = [a for p, a in zip(family, adjusted, strict=True) if abs(p - one) < 1e-12]
            if not match:
                raise QuoteError("holm(): the test is not in its family")
            return float(match[0])
        if name in AGGREGATES:
            values: list[float] = []
            for arg in node.args:
                values += _values(arg, refs, resolver)
            if not values and name == "count":  # "none of the 20 tests": a claim too
                return 0.0
            if not values:
                raise QuoteError(f"{name}() of no rows")
            return float(AGGREGATES[name](values))
    raise QuoteError(f"unsupported expression: {ast.unparse(node)}")


def _half_up(value: float, decimals: int) -> float:
    """`value` as printed with `decimals` digits (half up)."""
    scale = 10.0**decimals
    return math.floor(value * scale + 0.5) / scale


def _within(op: str, value: float, bound: float) -> bool:
    """A bound claim (`p < 0.01`: the marker `<!--= < expr -->`): value op bound."""
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]


def agrees(number: Number, value: float) -> bool:
    """Whether `value` prints as `number` at its precision (half a unit of its last digit)."""
    if not math.isfinite(value):
        return False
    return abs(value - number.value) <= 0.5 * 10.0 ** (-number.decimals) + 1e-9


# --- checking -----------------------------------------------------------------------------


def _split(body: str) -> list[str]:
    return [part.strip() for part in re.split(r"\s;\s", body) if part.strip()]


def _row_key(doc: Document, row: tuple[int, int, list[tuple[int, int]]]) -> str:
    a, b, cells = row
    for start, _end, body in doc.markers:
        if a <= start < b and body.startswith("row "):
            return body[4:].strip()
    if not cells:
        return ""
    x, y = cells[0]
    text = COMMENT.sub("", doc.text[x:y]).strip().strip("*_ ").strip()
    return text.split(" (")[0].strip().strip("*_")


def assign(doc: Document, resolver: Resolver) -> list[Problem]:
    """Attach each marker's expressions (and each exemption) to the numbers they speak for."""
    problems = []
    templates: list[tuple[int, dict[int, list[str]]]] = []
    unchecked: list[tuple[int, str]] = []
    for start, end, body in doc.markers:
        word = body.split(maxsplit=1)[0] if body else ""
        rest = body[len(word) :].strip()
        block = doc.block_of(start)
        before = [n for n in doc.numbers if n.block == block and n.end <= start]
        if word == "def":
            name, _, prefix = rest.partition("=")
            resolver.aliases[name.strip()] = prefix.strip()
        elif word == "table":
            columns: dict[int, list[str]] = {}
            for line in filter(None, (x.strip() for x in rest.splitlines())):
                number, _, exprs = line.partition(":")
                if not number.strip().isdigit():
                    problems.append(
                        Problem(doc.path, doc.line_of(start), "", f"bad table line {line!r}")
                    )
                    continue
                columns[int(number)] = _split(exprs)
            templates.append((end, columns))
        elif word in ("row", "results"):
            continue
        elif word == "skip" and len(_split(body)) == 1:
            free = [n for n in before if n.check is None and n.exempt is None]
            if not free:
                problems.append(Problem(doc.path, doc.line_of(start), "", "skip without a number"))
            else:
                free[-1].exempt = rest or "no reason given"
        elif word == "unchecked":
            unchecked.append((block, rest or "no reason given"))
        else:
            exprs = _split(body)
            free = [n for n in before if n.check is None and n.exempt is None]
            if len(free) < len(exprs):
                problems.append(
                    Problem(
                        doc.path,
                        doc.line_of(start),
                        "",
                        f"marker with {len(exprs)} expression(s) after {len(free)} number(s)",
                    )
                )
                continue
            gap = COMMENT.sub("", doc.text[free[-1].end : start])
            if not re.fullmatch(r"[\s*_)\]%x×°]*", gap):
                problems.append(
                    Problem(
                        doc.path, doc.line_of(start), "", f"marker not next to a number: {gap!r}"
                    )
                )
                continue
            for number, expr in zip(free[-len(exprs) :], exprs, strict=True):
                if expr.split()[0] == "skip":  # one number of several exempt, with its reason
                    number.exempt = expr[4:].strip() or "no reason given"
                else:
                    number.check = expr
    for end, columns in templates:
        table = next((t for t in doc.tables if t and t[0][0] > end), None)
        if table is None:
            problems.append(Problem(doc.path, doc.line_of(end), "", "table marker before no table"))
            continue
        for row in table:
            key = _row_key(doc, row)
            for cell, exprs in columns.items():
                if exprs and exprs[0].startswith("skip"):  # `N: skip reason`: a column of no source
                    for number in doc.numbers:
                        if row[0] <= number.start < row[1] and number.cell == cell:
                            number.exempt = number.exempt or exprs[0][4:].strip() or "skipped"
                    continue
                inside = [
                    n
                    for n in doc.numbers
                    if row[0] <= n.start < row[1]
                    and n.cell == cell
                    and n.check is None
                    and n.exempt is None
                ]
                if not inside:
                    continue
                if len(inside) > len(exprs):
                    problems.append(
                        Problem(
                            doc.path,
                            doc.line_of(row[0]),
                            " ".join(n.text for n in inside),
                            f"cell {cell} has {len(inside)} number(s), the template {len(exprs)}",
                        )
                    )
                    continue
                for number, expr in zip(inside, exprs, strict=False):  # a mean without its std
                    number.check = expr.replace("{row}", key)
    for block, reason in unchecked:  # what no marker of the block checks
        for number in doc.numbers:
            if number.block == block and number.check is None and number.exempt is None:
                number.exempt = reason
    return problems


def check(path: Path, results_everywhere: bool | None = None) -> list[Problem]:
    """Every problem of a README: a marked number its source does not give, a marker that
    cannot be read, an unmarked decimal number in a results section. `results_everywhere`:
    whether the whole file is results (default: every README but the repository's top one,
    i.e. a README in a folder named `results` or below it)."""
    path = Path(path)
    if results_everywhere is None:
        results_everywhere = "results" in path.resolve().parent.parts
    doc = parse(path, results_everywhere)
    resolver = Resolver(path.parent)
    problems = assign(doc, resolver)
    for number in doc.numbers:
        if number.check is not None:
            bound = re.match(r"(<=|>=|<|>)\s", number.check)
            expression = number.check[bound.end() :] if bound else number.check
            try:
                value = evaluate(expression, resolver)
            except (QuoteError, ZeroDivisionError) as error:
                problems.append(Problem(doc.path, number.line, number.text, str(error)))
                continue
            shown = _half_up(value, number.decimals) if bound and "=" in bound.group(1) else value
            if bound and not _within(bound.group(1), shown, number.value):
                problems.append(
                    Problem(
                        doc.path,
                        number.line,
                        number.text,
                        f"the source gives {value:.6g}, not {bound.group(1)} {number.text} "
                        f"({expression})",
                    )
                )
            elif not bound and not agrees(number, value):
                problems.append(
                    Problem(
                        doc.path,
                        number.line,
                        number.text,
                        f"the source gives {value:.6g} ({number.check})",
                    )
                )
        elif number.decimal and number.exempt is None and doc.in_results(number.start):
            problems.append(
                Problem(doc.path, number.line, number.text, "unmarked number in a results section")
            )
    return problems


def counts(path: Path, results_everywhere: bool | None = None) -> dict[str, int]:
    """How many numbers of a README are checked, exempt, and unmarked decimals (a summary)."""
    path = Path(path)
    if results_everywhere is None:
        results_everywhere = "results" in path.resolve().parent.parts
    doc = parse(path, results_everywhere)
    assign(doc, Resolver(path.parent))
    return {
        "checked": sum(n.check is not None for n in doc.numbers),
        "exempt": sum(n.exempt is not None for n in doc.numbers),
        "unmarked_decimals": sum(
            n.decimal and n.check is None and n.exempt is None for n in doc.numbers
        ),
    }


# --- writing markers ----------------------------------------------------------------------


def suggest(path: Path, limit: int = 6) -> list[str]:
    """For each unchecked decimal number of a README, the CSV cells under its folder that
    print as it (`file?filters#column[%]`), most specific first: a start for a marker, to be
    read and confirmed by hand (a cell that prints the same can mean something else)."""
    path = Path(path)
    doc = parse(path, True)
    assign(doc, Resolver(path.parent))
    sources = sorted(path.parent.rglob("*.csv"))
    cells = []
    for source in sources:
        frame = _read_table(source.resolve())
        ids = [c for c in frame.columns if frame[c].map(lambda v: _as_float(v) is None).any()]
        for index, row in frame.iterrows():
            for column in frame.columns:
                value = _as_float(row[column])
                if value is None or column in ids:
                    continue
                cells.append((source, index, column, value, row, ids))
    out = []
    for number in doc.numbers:
        if not number.decimal or number.check is not None or number.exempt is not None:
            continue
        line = doc.text.splitlines()[number.line - 1]
        found = []
        for source, _index, column, value, row, ids in cells:
            for scale, mark in ((1.0, ""), (100.0, "%")):
                if agrees(number, scale * value):
                    filters = "&".join(f"{c}={row[c]}" for c in ids if row[c])
                    words = sum(str(row[c]).lower() in line.lower() for c in ids if row[c])
                    rel = source.relative_to(path.parent)
                    found.append((-words, f"{rel}?{filters}#{column}{mark}"))
        found.sort()
        out.append(f"{path}:{number.line}: {number.text}")
        out += [f"    {ref}" for _w, ref in found[:limit]] or ["    (no cell prints as it)"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmark.report.quotes check|suggest|count <README.md>...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("check", "suggest", "count"):
        print(__doc__.split("\n\n")[0])  # noqa: T201
        print("usage: python -m benchmark.report.quotes check|suggest|count README.md ...")  # noqa: T201
        return 2
    failed = False
    for name in args[1:]:
        if args[0] == "check":
            problems = check(Path(name))
            failed |= bool(problems)
            for problem in problems:
                print(problem)  # noqa: T201
        elif args[0] == "count":
            print(name, counts(Path(name)))  # noqa: T201
        else:
            print("\n".join(suggest(Path(name))))  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
