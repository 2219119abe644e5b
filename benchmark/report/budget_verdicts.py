"""Would the findings read the same at a smaller step budget? (`budget_verdicts.csv`)

Kendall's τ (`convergence`) says whether the methods' ranking moves with the budget. A reader's
question is narrower: does a verdict of `findings.csv` ("A beats the reference in scenario S")
already hold when every method trains for fewer steps? Where configurations were trained at
several budgets, this module computes the clean-data findings at every budget exactly as
`report --leaderboard-steps <budget>` would write them (`findings.findings_frame` over the runs
given that budget: the same paired bootstrap, Holm within that budget's table) and lines each
comparison up against its verdict at the largest budget it was tested at:

- `budget_verdicts.csv`: per comparison (cohort x metric x scenario x method x reference) and
  budget, Δ with its CI, Holm-adjusted p, the verdict and the finding's id at that budget, the
  verdict at the largest budget and the `agreement`: `same`, `reversed` (significant both
  times, opposite signs), `gained` (significant only here), `lost` (significant only at the
  largest); empty at the largest budget itself.
- `budget_verdict_summary.csv`: per cohort x metric x smaller budget, how many comparisons fall
  in each agreement class, so a README can say at which budget the verdicts hold.
- `tables/<dataset>_budget_verdicts.md`: the summary as a table, then each comparison's Δ and
  verdict per budget.

Only comparisons tested at two budgets or more are kept (a method trained at one budget has no
other verdict to agree with).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from benchmark.report import render
from benchmark.report.convergence import (
    COHORT_COLUMNS,
    SECTION,
    Cohort,
    budget_families,
    config_of,
)
from benchmark.report.findings import findings_frame, oracle_labels
from benchmark.report.frames import budget_of, dataset_of, is_clean, label_of
from benchmark.report.tables import ORACLE_NOTE, Cell, TextTable, method_stub, slug
from benchmark.run.store import StoredRun

AGREEMENTS = ("same", "reversed", "gained", "lost")
"""How a verdict at a smaller budget relates to the one at the largest budget."""
KEY_COLUMNS = [*COHORT_COLUMNS, "metric", "scenario", "method", "kind", "versus"]
"""What one comparison is, across budgets."""
VERDICT_COLUMNS = [
    *KEY_COLUMNS, "steps", "largest_steps", "id", "diff", "ci_low", "ci_high", "p_holm",
    "verdict", "verdict_at_largest", "agreement",
]  # fmt: skip
SUMMARY_COLUMNS = [
    *COHORT_COLUMNS, "metric", "steps", "largest_steps", "comparisons",
    *AGREEMENTS, "significant", "significant_at_largest",
]  # fmt: skip
NOT_SIGNIFICANT = "n.s."


def agreement(verdict: str, at_largest: str) -> str:
    """One of `AGREEMENTS`: a verdict (`higher` / `lower` / `n.s.`) against the largest's."""
    if verdict == at_largest:
        return "same"
    if NOT_SIGNIFICANT not in (verdict, at_largest):
        return "reversed"
    return "gained" if at_largest == NOT_SIGNIFICANT else "lost"


def findings_by_budget(
    runs: Sequence[StoredRun],
    methods: Sequence[str],
    reference: str,
    grid: Iterable[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """The clean-data findings at every budget some configuration of the `grid` (every run's
    spec; default: the runs') was trained at besides another: per budget, the findings of all
    finished `runs` given that budget, as a report with that leaderboard budget writes them."""
    grid = [r.spec for r in runs if r.spec is not None] if grid is None else list(grid)
    families = budget_families(grid)
    budgets = {budget_of(spec) for spec in grid if config_of(spec) in families}
    frames = []
    for budget in sorted(budgets, key=lambda b: (b[2], b[0], b[1])):
        given = [
            r
            for r in runs
            if r.spec is not None and r.state == "done" and budget_of(r.spec) == budget
        ]
        records = [
            dict(rec, method=label_of(run.spec), dataset=dataset_of(run.spec))
            for run in given
            for rec in run.records
            if is_clean(rec)
        ]
        found = findings_frame(records, [run.spec for run in given], methods, reference)
        frames.append(found[found["section"] == "clean"])
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def verdicts_frame(found: pd.DataFrame) -> pd.DataFrame:
    """`budget_verdicts.csv` from `findings_by_budget`: each comparison tested at two budgets
    or more, every budget a row, against its verdict at the largest."""
    if found.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    rows = []
    for _key, part in found.groupby(KEY_COLUMNS, sort=False):
        if part["steps"].nunique() < 2:
            continue
        last = part.loc[part["steps"].idxmax()]
        for row in part.sort_values("steps").itertuples(index=False):
            largest = row.steps == last["steps"]
            rows.append(
                {column: getattr(row, column) for column in KEY_COLUMNS}
                | {
                    "steps": int(row.steps),
                    "largest_steps": int(last["steps"]),
                    "id": row.id,
                    "diff": row.diff,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "p_holm": row.p_holm,
                    "verdict": row.verdict,
                    "verdict_at_largest": last["verdict"],
                    "agreement": "" if largest else agreement(row.verdict, last["verdict"]),
                }
            )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def summary_frame(verdicts: pd.DataFrame) -> pd.DataFrame:
    """`budget_verdict_summary.csv`: per cohort x metric x smaller budget, the comparisons in
    each agreement class and how many are significant there and at the largest."""
    smaller = verdicts[verdicts["agreement"].isin(AGREEMENTS)]
    rows = []
    keys = [*COHORT_COLUMNS, "metric", "steps", "largest_steps"]
    for key, part in smaller.groupby(keys, sort=False):
        counts = part["agreement"].value_counts()
        rows.append(
            dict(zip(keys, key, strict=True))
            | {"comparisons": len(part)}
            | {name: int(counts.get(name, 0)) for name in AGREEMENTS}
            | {
                "significant": int((part["verdict"] != NOT_SIGNIFICANT).sum()),
                "significant_at_largest": int(
                    (part["verdict_at_largest"] != NOT_SIGNIFICANT).sum()
                ),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _cohort_text(row: Mapping[str, Any]) -> str:
    """The setting a row belongs to, as the budget tables name it (`Cohort.text`)."""
    return Cohort(*(row[c] for c in COHORT_COLUMNS)).text(dataset=False)


def summary_table(summary: pd.DataFrame, dataset: str) -> TextTable:
    """Rows cohort x metric x budget, columns the agreement counts."""
    part = summary[summary["dataset"] == dataset]
    table = TextTable(
        title=f"{dataset}: the findings at a smaller step budget against the largest",
        caption=(
            "Clean-data findings (each method against the reference, paired bootstrap, Holm "
            "within each budget's table) at each smaller budget, compared with the same "
            "comparison's verdict at the largest budget: same verdict, reversed (significant "
            "both times with opposite signs), gained (significant only at the smaller budget), "
            "lost (significant only at the largest). Comparisons tested at one budget only are "
            "left out."
        ),
        stub=["setting", "metric", "budget"],
        columns=["comparisons", *AGREEMENTS, "significant", "significant at largest"],
        label=f"tab:{slug(dataset)}-budget-verdicts",
        markdown_note="",
    )
    for row in part.to_dict("records"):
        cells = [
            Cell(text=str(int(row[c])))
            for c in ("comparisons", *AGREEMENTS, "significant", "significant_at_largest")
        ]
        stub = [_cohort_text(row), row["metric"], f"{row['steps']} vs {row['largest_steps']}"]
        table.rows.append((stub, cells))
    return table


def _delta(row: Mapping[str, Any]) -> str:
    if not math.isfinite(row["diff"]):
        return "–"
    return f"{100 * row['diff']:+.1f} ({row['verdict']})"


def detail_table(verdicts: pd.DataFrame, dataset: str) -> TextTable:
    """Rows comparison, columns Δ (points) and verdict at each budget."""
    part = verdicts[verdicts["dataset"] == dataset]
    budgets = sorted(set(part["steps"]))
    oracles = oracle_labels(part)
    table = TextTable(
        title=f"{dataset}: each comparison's Δ mIoU (points) and verdict per step budget",
        caption=(
            "Method minus reference, mean over seeds and test tiles, with the verdict at "
            "Holm-adjusted p < 0.05 (higher / lower / n.s.); – = not tested at that budget. "
            + ORACLE_NOTE
            * bool(oracles)
        ).strip(),
        stub=["setting", "metric", "scenario", "method vs"],
        columns=[f"{b} steps" for b in budgets],
        label=f"tab:{slug(dataset)}-budget-verdict-detail",
        wide=True,
        markdown_note="",
    )
    for key, group in part.groupby(KEY_COLUMNS, sort=False):
        named = dict(zip(KEY_COLUMNS, key, strict=True))
        by_steps = {int(r["steps"]): r for r in group.to_dict("records")}
        cells = [Cell(text=_delta(by_steps[b]) if b in by_steps else "–") for b in budgets]
        stub = [
            _cohort_text(named),
            named["metric"],
            named["scenario"],
            f"{method_stub(named['method'], oracles)} vs {named['versus']}",
        ]
        table.rows.append((stub, cells))
    return table


def write_section(
    writer: Any,
    runs: Sequence[StoredRun],
    methods: Sequence[str],
    reference: str,
    grid: Iterable[Mapping[str, Any]] | None = None,
) -> bool:
    """The two CSVs and a Markdown document per dataset (`generate.ReportWriter`), in the
    budget section; nothing (False) without a comparison tested at two budgets."""
    verdicts = verdicts_frame(findings_by_budget(runs, methods, reference, grid))
    if verdicts.empty:
        return False
    summary = summary_frame(verdicts)
    writer.csv(
        verdicts,
        "budget_verdicts.csv",
        "each clean-data finding (method vs reference) at every step budget it was tested at, "
        "with the verdict at the largest budget and whether the smaller budget's agrees",
        SECTION,
    )
    writer.csv(
        summary,
        "budget_verdict_summary.csv",
        "per smaller step budget, how many findings keep, reverse, gain or lose the verdict "
        "they have at the largest budget",
        SECTION,
    )
    for dataset in dict.fromkeys(verdicts["dataset"]):
        made = [summary_table(summary, dataset), detail_table(verdicts, dataset)]
        writer.text(
            f"tables/{slug(dataset, keep='-_')}_budget_verdicts.md",
            "\n".join(
                [f"# {dataset}: findings per step budget\n"] + [render.to_markdown(t) for t in made]
            ),
            f"{dataset}: whether the findings at each smaller budget agree with the largest "
            "budget's (counts, then every comparison's Δ and verdict per budget)",
            SECTION,
        )
    return True
