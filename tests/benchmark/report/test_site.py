"""`report --html`: the static web leaderboard, tried in a real headless Chromium.

The committed report fixture (with corrupted records added, so that the corruption and
severity filters exist) is reported once with `html=True`; the browser tests open its
`site/index.html` from file:// and check what a reader does: the page loads without console
errors or network, a header click sorts, a filter narrows, a method page opens, and a
screenshot shows a drawn page. They skip, saying why, where Chromium (Debian's `chromium`) or
Playwright (the `dev` extra) is absent; `.ci/run` installs both.

Set MISSBENCH_SITE_SCREENSHOT=<path.png> to keep a copy of the screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.report import site
from benchmark.report.generate import generate_report
from benchmark.report.tables import Cell
from tests.benchmark.report.report_variants import add_corruptions, copy_fixture

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The fixture's report with its web leaderboard; returns the report folder."""
    root = copy_fixture(tmp_path_factory.mktemp("site"))
    add_corruptions(root, severities=(1, 3))
    generate_report(root, reference="baseline", qualitative=False, html=True)
    return root / "report"


def chromium() -> str:
    """Debian's Chromium (or MISSBENCH_CHROMIUM), else skip saying what to install."""
    path = os.environ.get("MISSBENCH_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("Chromium is not installed (`apt-get install chromium`; .ci/run does)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a new empty profile, driven by Playwright."""
    executable = chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')"
    )
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(30_000)
        yield context
        context.close()


class Opened:
    """A page of the site with every console message, page error and request it made."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self.console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def visible_rows(self) -> list[list[str]]:
        """The texts of the leaderboard's visible rows, in order."""
        return self.page.eval_on_selector_all(
            "#leaderboard tbody tr:not([hidden])",
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent))",
        )

    def column(self, header: str) -> int:
        """The index of the leaderboard column whose header is `header`."""
        headers = self.page.eval_on_selector_all(
            "#leaderboard thead th", "ths => ths.map(th => th.textContent.trim())"
        )
        return headers.index(header)

    def values(self, column: int) -> list[str]:
        """The sort values (`data-value`) of a column's visible cells, in order."""
        return self.page.eval_on_selector_all(
            "#leaderboard tbody tr:not([hidden])",
            f"rows => rows.map(r => r.cells[{column}].dataset.value)",
        )


def test_the_site_is_written_beside_the_report_and_listed(report):
    pages = ["index.html", "figures.html", "methods/baseline.html", "assets/site.js"]
    assert all((report / "site" / p).is_file() for p in pages)
    index = (report / "report.md").read_text(encoding="utf-8")
    assert "[`site/index.html`](site/index.html)" in index
    html = (report / "site" / "index.html").read_text(encoding="utf-8")
    # nothing from the network: no absolute URL is loaded, only our own files
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    figures = (report / "site" / "figures.html").read_text(encoding="utf-8")
    assert 'src="../figures/synthetic_heatmap.png"' in figures
    assert (report / "figures" / "synthetic_heatmap.png").is_file()


class Cells(HTMLParser):
    """The tags and the text of each cell of an HTML row, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        if tag == "td":
            self.texts.append("")

    def handle_data(self, data: str) -> None:
        if self.texts:
            self.texts[-1] += data


def test_text_put_into_a_page_is_escaped():
    texts = {key: "<script>alert(1)</script>" for key in ("dataset", "kind", "imbalance")}
    texts |= {k: '"&' for k in ("train_missing", "budget", "scenario", "corruption")}
    texts |= {"method": "m<b>", "severity": "0"}
    cells = {metric: Cell(0.5, 0.1, 2, 2) for metric in site.METRICS}
    row = site.BoardRow(texts, cells, (2, 2), "a<b>", ())
    out = site.row_html(row, site.COLUMNS)
    parsed = Cells()
    parsed.feed(out)
    assert parsed.tags <= {"tr", "td", "a", "strong", "sup"}  # no tag of the texts' own
    shown = dict(zip([c.key for c in site.COLUMNS], parsed.texts, strict=True))
    assert all(shown[key] == text for key, text in texts.items())  # read back as written
    assert "a-b.html" in out
    assert site.rich("`x<y` & z") == "<code>x&lt;y</code> &amp; z"
    assert site.link("javascript:alert(1)", "t") == "t"


def test_freeze_with_html_is_refused_in_one_line(report, tmp_path, capsys):
    dest = tmp_path / "frozen"
    assert main(["report", str(report.parent), "--freeze", str(dest), "--html"]) == 2
    err = capsys.readouterr().err
    assert "--html --overwrite" in err and len(err.strip().splitlines()) == 1
    assert not dest.exists()


def test_the_leaderboard_loads_from_disk_without_errors_or_network(report, browser):
    opened = Opened(browser, (report / "site" / "index.html").as_uri())
    assert opened.problems == []
    assert all(url.startswith(("file:", "data:")) for url in opened.requests), opened.requests
    rows = opened.visible_rows()
    total = opened.page.locator("#leaderboard tbody tr").count()
    assert 0 < len(rows) < total  # clean data by default: the corrupted rows are filtered out
    corruption = opened.column("corruption")
    assert {row[corruption] for row in rows} == {site.CLEAN_LABEL}
    assert opened.page.text_content("#count") == f"Showing {len(rows)} of {total} rows"
    # the tables' marks: bold best and a significance or fewer-seeds mark somewhere
    assert opened.page.locator("#leaderboard strong").count() > 0
    assert opened.page.locator("#leaderboard sup.marks").count() > 0
    opened.page.close()


def test_clicking_a_header_sorts_the_rows(report, browser):
    opened = Opened(browser, (report / "site" / "index.html").as_uri())
    miou = opened.column("mIoU (%)")
    header = opened.page.locator("#leaderboard thead th").nth(miou)
    header.locator("button").click()
    values = opened.values(miou)
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and len(numbers) > 2
    assert values[len(numbers) :] == [""] * (len(values) - len(numbers))  # missing last
    assert header.get_attribute("aria-sort") == "ascending"
    header.locator("button").click()
    numbers = [float(v) for v in opened.values(miou) if v]
    assert numbers == sorted(numbers, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    method = opened.column("method")
    opened.page.locator("#leaderboard thead th").nth(method).locator("button").click()
    names = [row[method] for row in opened.visible_rows()]
    assert names == sorted(names) and len(set(names)) > 1
    assert opened.problems == []
    opened.page.close()


def test_a_filter_changes_the_visible_rows(report, browser):
    opened = Opened(browser, (report / "site" / "index.html").as_uri())
    scenario = opened.column("scenario (present, −missing)")
    before = opened.visible_rows()
    wanted = "dsm (−optical)"
    assert wanted in {row[scenario] for row in before}
    opened.page.select_option("select[data-key=scenario]", wanted)
    after = opened.visible_rows()
    assert after == [row for row in before if row[scenario] == wanted]
    assert 0 < len(after) < len(before)
    # every corruption of that scenario: more rows, only dsm's corruption and clean data
    opened.page.select_option("select[data-key=corruption]", "")
    corruption = opened.column("corruption")
    rows = opened.visible_rows()
    assert {row[corruption] for row in rows} == {site.CLEAN_LABEL, "dsm_voids"}
    assert "corruption=" in opened.page.url and "scenario=" in opened.page.url
    opened.page.click("#reset")
    assert len(opened.visible_rows()) == opened.page.locator("#leaderboard tbody tr").count()
    assert opened.problems == []
    opened.page.close()


def test_a_method_page_opens_from_the_leaderboard(report, browser):
    opened = Opened(browser, (report / "site" / "index.html").as_uri())
    opened.page.locator("#leaderboard tbody tr:not([hidden]) a").first.click()
    opened.page.wait_for_load_state("load")
    assert opened.page.url.endswith("/site/methods/baseline.html")
    assert opened.page.text_content("h1") == "baseline"
    text = opened.page.text_content("main")
    for heading in ("Missing-modality policy", "Deviations", "Cost", "Hyperparameters"):
        assert heading in text
    assert "inv_sqrt_freq" in text  # class_weighting's default, from `list baseline`'s table
    # its variants link back to the leaderboard filtered to them
    opened.page.locator("main ul a", has_text="baseline[class_weighting=none]").click()
    opened.page.wait_for_load_state("load")
    method = opened.column("method")
    names = {row[method] for row in opened.visible_rows()}
    assert names == {"baseline[class_weighting=none]"}
    assert opened.problems == []
    opened.page.close()


def test_a_screenshot_shows_a_drawn_leaderboard(report, browser, tmp_path):
    from PIL import Image

    opened = Opened(browser, (report / "site" / "index.html").as_uri())
    shot = tmp_path / "leaderboard.png"
    opened.page.screenshot(path=str(shot))
    opened.page.close()
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 900)
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text, rules and the bar, not a blank page
    keep = os.environ.get("MISSBENCH_SITE_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
