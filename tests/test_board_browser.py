"""The built site in a real headless Chromium (Debian `chromium` + Playwright's Python driver).

Sorting by clicking a header, the ranking's tiers and its toggle, navigating to a task page, the item
browser (lazy shards, filters, search, failed items), the XSS checks (a model named
``<img src=x onerror=alert(1)>`` and an output holding ``<script>`` render as text: no dialog, no
injected element), axe-core on every page type (0 serious or critical violations, heading order), and
every page at 390 px (no sideways scrolling, one category at a time on the overview, chart text >= 11 px);
the same checks on a second board whose pages carry the later sections (likelihood scoring with reliability
diagrams, contamination-aware scores, category averages and slices, tokens and cost, a paired comparison).
Skipped loudly when Chromium, Playwright or axe-core is missing (failed in CI).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from board_browser import DESKTOP, PHONE, Watch, axe_violations, browser, serious, serve, sideways_overflow  # noqa: F401
from board_browser import smallest_chart_text
from test_board_support import HOSTILE_INPUT_TAIL, HOSTILE_MODEL, HOSTILE_OUTPUT, board_ws, fresh_store  # noqa: F401
from test_board_support import SECTION_MODELS, record_run, run_rows, sections_store, sections_ws  # noqa: F401
from test_board_integrity import REFUSED, _rows

from medsbench.board.publish import add_run

from medsbench.board.site import build_site
from medsbench.board.names import unique_slug as slugify
from medsbench.board.store import load_seed


@pytest.fixture(scope="module")
def board_site(tmp_path_factory, board_ws):
    """The fixture store plus a partial run (2 failed items) and a sample (3 of 6 MCQA items), built and served."""
    import medsbench.board.site as site_mod

    tmp = tmp_path_factory.mktemp("browser")
    files = board_ws["files"]
    flaky = record_run(tmp / "runs" / "flaky", files, _rows(files, failed=lambda t, i: t == "task57" and i.id in ("0", "1")),
                       spec="openai:gpt-4,base_url=http://127.0.0.1:9/v1", status="failed")
    sample = record_run(tmp / "runs" / "sampled", files, [r for r in _rows(files) if r.task_id == "task114" or r.id < "3"],
                        spec="hf:/models/sampled")
    store = fresh_store(tmp, board_ws)
    add_run(store, flaky, model_name="flaky model", allow_partial=True)
    add_run(store, sample, model_name="sampled model")
    mp = pytest.MonkeyPatch()
    mp.setattr(site_mod, "SHARD_ITEMS", 2)  # several shards, to see them load lazily
    try:
        build_site(store, tmp / "site")
    finally:
        mp.undo()
    store.close()
    base, server = serve(tmp / "site")
    yield base, tmp / "site"
    server.shutdown()
    server.server_close()


def _column(page, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort'))")


def test_sort_navigate_and_escape(browser, board_site, tmp_path):
    base, out = board_site
    page = browser.new_page(viewport={"width": DESKTOP, "height": 1000})
    watch = Watch(page)
    page.goto(base + "index.html")
    # Default order: complete runs by the overall score, then the sample and the partial run (unranked).
    tiers = page.eval_on_selector_all("#table-reference tbody tr", "rs => rs.map(r => r.getAttribute('data-tier'))")
    assert tiers == sorted(tiers) and tiers.count("1") == 2
    overall = [float(v) for v, t in zip(_column(page, "#table-reference", 1), tiers) if t == "0" and v]
    assert overall == sorted(overall, reverse=True) and len(overall) >= 5
    assert page.get_attribute("#table-reference thead th:nth-child(2)", "aria-sort") == "descending"

    # Sorting: click the MCQA header (column 3, after model and overall): within each tier, best first.
    page.click("#table-reference thead th:nth-child(3) button")
    values = _column(page, "#table-reference", 2)
    tiers = page.eval_on_selector_all("#table-reference tbody tr", "rs => rs.map(r => r.getAttribute('data-tier'))")
    for tier in ("0", "1"):
        part = [v for v, t in zip(values, tiers) if t == tier]
        nums = [float(v) for v in part if v]
        assert nums == sorted(nums, reverse=True) and all(part[: len(nums)]) and not any(part[len(nums):])
    assert tiers == sorted(tiers)  # samples and partial runs never climb above complete runs
    assert page.get_attribute("#table-reference thead th:nth-child(3)", "aria-sort") == "descending"
    page.click("#table-reference thead th:nth-child(3) button")
    assert page.get_attribute("#table-reference thead th:nth-child(3)", "aria-sort") == "ascending"
    page.keyboard.press("Tab")  # the header buttons are reachable from the keyboard

    # The toggle hides samples and partial runs.
    assert page.locator("#table-reference tbody tr:visible").count() == len(tiers)
    page.check("#hide-incomplete")
    assert page.locator("#table-reference tbody tr:visible").count() == tiers.count("0")
    page.uncheck("#hide-incomplete")

    # The hostile model name is text: visible literally, no <img> injected anywhere.
    assert page.locator("#table-reference tbody th a", has_text=HOSTILE_MODEL).count() == 1
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    # Open a task page from the tasks index.
    page.click("nav >> text=Tasks")
    page.click("a[href='tasks/task57.html']")
    assert page.url.endswith("/tasks/task57.html")
    assert page.locator("h1").inner_text().startswith("task57")
    rows = page.locator("#task-table tbody tr").count()
    assert rows == 4 + sum(1 for m in load_seed()["models"] if "task57" in m.get("tasks", {}))
    assert "6 items in the test file" in page.inner_text("main")
    heads = page.eval_on_selector_all("#task-table thead th", "e => e.map(x => x.textContent)")
    col = next(i for i, h in enumerate(heads) if h.startswith("accuracy") and "official" in h)
    page.click(f"#task-table thead th:nth-child({col + 1}) button")
    acc = [float(v) for v in _column(page, "#task-table", col) if v]
    assert acc == sorted(acc, reverse=True)

    # A model page with its inline chart.
    page.goto(base + f"models/{slugify(HOSTILE_MODEL)}.html")
    assert page.locator("h1").inner_text().startswith(HOSTILE_MODEL)
    assert page.locator("figure.chart svg text", has_text="Multiple-choice QA").count() == 1
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


def test_item_browser_loads_shards_lazily_and_filters(browser, board_site):
    base, _ = board_site
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    watch = Watch(page)
    # Three items per page (instead of 50) so that a page needs only some of the 2-item shards.
    page.route("**/runs/*.html", lambda route: route.fulfill(
        response=(r := route.fetch()), body=r.text().replace('id="item-filters"', 'id="item-filters" data-page="3"')))
    page.goto(base + f"runs/{slugify('hostile')}.html")
    page.wait_for_selector("#item-list article")
    assert page.locator("#item-list article").count() == 3
    shards = sorted(u.rsplit("/", 1)[1] for u in watch.requests if "/items-" in u)
    assert shards == ["items-0000.js", "items-0001.js"]  # items 0-2: two of the five shards
    page.click("#item-more")
    page.wait_for_function("document.querySelectorAll('#item-list article').length === 6")
    assert "showing 6 of 10" in page.inner_text("#f-count")

    # The output with <script> is shown as text, nothing ran, nothing was injected.
    page.select_option("#f-task", "task57")
    page.click("#item-more")
    page.wait_for_function("document.querySelectorAll('#item-list article').length === 6")
    out_pre = page.locator("#item-list pre.output", has_text="<script>")
    assert out_pre.count() == 1 and out_pre.inner_text() == HOSTILE_OUTPUT
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => document.querySelectorAll('#item-list script, #item-list img').length") == 0
    assert page.locator("#item-list pre", has_text=HOSTILE_INPUT_TAIL).count() == 2  # the input, and inside the prompt
    assert page.locator("#item-list details.prompt").count() == 6  # the prompt sent, folded

    # Filters: wrong (official), strict parse failures (with the reason), no verdict (text task), search.
    page.select_option("#f-task", "")
    page.select_option("#f-show", "1")
    page.wait_for_selector("#item-list article")
    facts = page.eval_on_selector_all("#item-list p.facts", "e => e.map(x => x.textContent)")
    assert facts and all("official: wrong" in f for f in facts)
    page.select_option("#f-show", "8")
    page.wait_for_selector("#item-list article")
    parse = page.eval_on_selector_all("#item-list p.parse", "e => e.map(x => x.textContent)")
    assert parse and all(p.startswith("strict parse failed: ") for p in parse)
    page.select_option("#f-show", "128")
    page.wait_for_function("document.querySelector('#f-count').textContent.includes('of 4 matching')")
    page.select_option("#f-show", "")
    page.fill("#f-search", "croup")
    page.wait_for_function("document.querySelector('#f-count').textContent.includes('showing 1 matching')")
    assert page.locator("#item-list article").count() == 1
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


def test_failed_items_show_the_backend_message(browser, board_site):
    base, _ = board_site
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    watch = Watch(page)
    page.goto(base + f"runs/{slugify('flaky')}.html")
    page.wait_for_selector("#item-list article")
    page.select_option("#f-show", "4")
    page.wait_for_function("document.querySelector('#f-count').textContent.includes('of 2 matching')")
    outputs = page.eval_on_selector_all("#item-list pre.output", "e => e.map(x => x.textContent)")
    assert outputs == [f"failed: {REFUSED}"] * 2  # never "(empty)"
    assert "(empty" not in page.inner_text("#item-list")
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


PAGES = ["index.html", "tasks.html", "tasks/task57.html", f"models/{slugify(HOSTILE_MODEL)}.html",
         f"runs/{slugify('flaky')}.html", "about.html"]


def check_page(page, rel: str, width: int) -> None:
    """The current page: no serious or critical axe violation (nor a heading-order one), no sideways
    scrolling, chart text >= 11 px, and every scroll box reachable from the keyboard and named."""
    bad = serious(axe_violations(page))
    assert bad == [], (rel, width, bad)
    assert sideways_overflow(page) == [], (rel, width)
    if page.locator("svg").count():
        assert smallest_chart_text(page) >= 11, (rel, width)
    for box in page.query_selector_all(".scroll"):  # scroll boxes are reachable from the keyboard
        assert box.get_attribute("tabindex") == "0" and box.get_attribute("aria-label"), (rel, width)


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_page_type_is_accessible_and_fits_the_screen(browser, board_site, width):
    base, _ = board_site
    page = browser.new_page(viewport={"width": width, "height": 900})
    watch = Watch(page)
    for rel in PAGES:
        page.goto(base + rel)
        if rel.startswith("runs/"):
            page.wait_for_selector("#item-list article")
        check_page(page, rel, width)
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


@pytest.fixture(scope="module")
def sections_site(tmp_path_factory, sections_ws):
    """A board whose runs have the later sections: likelihood scoring, contamination, averages and slices,
    tokens and cost, and a paired comparison with a baseline; built and served."""
    tmp = tmp_path_factory.mktemp("browser-sections")
    store = sections_store(tmp / "board.sqlite", sections_ws)
    try:
        build_site(store, tmp / "site")
    finally:
        store.close()
    base, server = serve(tmp / "site")
    yield base, sections_ws
    server.shutdown()
    server.server_close()


def _count(page, selector: str, text: str | None = None) -> int:
    return page.locator(selector, has_text=text).count() if text else page.locator(selector).count()


def _assert_sections(page, rel: str, ws: dict) -> None:
    """The sections each page of :data:`SECTION_PAGES` is there to check are on it, filled."""
    if rel == "index.html":
        tuned = page.locator("#table-reference tbody tr", has_text=SECTION_MODELS["tuned"])
        assert tuned.locator("small.cell-note", has_text="clean score: 3 of 12 items contaminated").count() == 1
        assert _count(page, "#table-loglik tbody tr", SECTION_MODELS["loglik"]) == 2  # one row per task
    elif rel.startswith("tasks/"):
        rows = _count(page, "#loglik #task-loglik tbody tr")
        assert rows >= 2 and _count(page, "#loglik figure.panel svg.reliability") == rows
    elif rel.startswith("models/"):
        assert _count(page, "section.comparison table.comparison tbody tr") >= 1  # per category
        assert _count(page, "section.comparison table.comparison-tasks tbody tr") >= 2  # per task (folded)
    else:
        loglik = rel == f"runs/{slugify('loglik')}.html"
        if loglik:
            rows = _count(page, "#loglik #run-loglik tbody tr")
            assert rows >= 4 and _count(page, "#loglik figure.panel svg.reliability") == rows  # 2 tasks x 2 variants
        else:
            assert _count(page, "#loglik") == 0
        assert _count(page, "#contamination #run-contam tbody tr") == 2
        assert "3 of 12 items of this run overlap" in page.inner_text("#contamination")
        for label in ("all tasks", "MedQA", "MedMCQA"):
            assert _count(page, "#averages table.averages-table tbody th", label) == 1, label
        assert _count(page, "#usage #run-usage tbody tr") == 2
        usage = page.inner_text("#usage p.note")
        assert ("no cost" in usage) if loglik else ("Cost: $" in usage and "per 1,000 items" in usage), usage
        # An output of only white space (empty to the scorer) is said to be so, not shown as a blank box.
        preds = run_rows(ws["runs"]["loglik" if loglik else "tuned"])
        blank = sum(1 for r in preds if r.output and not r.output.strip())
        assert _count(page, "#item-list pre.output", "(empty output: white space only)") == blank


SECTION_PAGES = ["index.html", "tasks/task57.html", f"models/{slugify(SECTION_MODELS['tuned'])}.html",
                 f"runs/{slugify('tuned')}.html", f"runs/{slugify('loglik')}.html"]


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_later_sections_are_accessible_and_fit_the_screen(browser, sections_site, width):
    """Likelihood scoring (calibration table, reliability diagrams), contamination-aware scores (run page and
    the overview's clean cells), category averages and slices, tokens and cost, and the paired comparison
    tables (folded ones opened): present, and passing the checks of every page type."""
    base, ws = sections_site
    page = browser.new_page(viewport={"width": width, "height": 900})
    watch = Watch(page)
    for rel in SECTION_PAGES:
        page.goto(base + rel)
        if rel.startswith("runs/"):
            page.wait_for_selector("#item-list article")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        _assert_sections(page, rel, ws)
        check_page(page, rel, width)
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


def test_phone_overview_shows_one_category_at_a_time(browser, board_site, tmp_path):
    base, _ = board_site
    page = browser.new_page(viewport={"width": PHONE, "height": 900})
    page.goto(base + "index.html")
    visible = "() => Array.from(document.querySelectorAll('#table-reference thead th')).filter(t => t.offsetParent).map(t => t.textContent)"
    heads = page.evaluate(visible)
    assert len(heads) == 3 and heads[0].startswith("Model") and heads[1].startswith("Overall")
    assert heads[2].startswith("Multiple-choice QA")
    page.select_option("#phone-cat", "ner")
    heads = page.evaluate(visible)
    assert len(heads) == 3 and heads[2].startswith("Named entity recognition")
    # The scores of that category are on screen, beside the model names, without scrolling sideways.
    cells = page.eval_on_selector_all("#table-reference tbody tr", "rs => rs.map(r => Array.from(r.cells).filter(c => c.offsetParent).length)")
    assert set(cells) == {3}
    fits = "() => { const t = document.querySelector('#table-reference'); return [t.scrollWidth, t.closest('.scroll').clientWidth]; }"
    width, room = page.evaluate(fits)
    assert width <= room  # nothing to scroll: model, overall and the chosen category fit the screen
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    page.close()


def test_site_works_from_file_urls(browser, board_site):
    """No server needed: the same site opened from disk (file://) sorts and browses (shards are scripts)."""
    _, out = board_site
    page = browser.new_page()
    watch = Watch(page)
    page.goto((out / "index.html").as_uri())
    page.click("#table-strict thead th:nth-child(3) button")
    assert page.get_attribute("#table-strict thead th:nth-child(3)", "aria-sort") == "descending"
    page.goto((out / "runs" / f"{slugify('tiny-llama')}.html").as_uri())
    page.wait_for_selector("#item-list article")
    assert page.locator("#item-list article").count() == 10
    page.goto((out / "about.html").as_uri())
    assert "Strict mode" in page.inner_text("main")
    assert watch.clean(), (watch.dialogs, watch.errors)
    page.close()


def test_no_page_has_inline_script(board_site):
    """Pages carry no inline script at all: one static script file, data in separate shard files."""
    _, out = board_site
    for html in Path(out).rglob("*.html"):
        text = html.read_text()
        assert len(re.findall(r"<script\b", text)) == 1 and 'src="' in re.search(r"<script[^>]*>", text).group(0), html


def test_model_column_stays_when_the_ranking_scrolls_sideways(browser, board_site):
    base, _ = board_site
    page = browser.new_page(viewport={"width": 900, "height": 900})
    page.goto(base + "index.html")
    box = "document.querySelector('#table-reference').closest('.scroll')"
    assert page.evaluate(f"() => {box}.scrollWidth > {box}.clientWidth")  # the table is wider than its box
    first = "document.querySelector('#table-reference tbody th.sticky')"
    x0 = page.evaluate(f"() => {first}.getBoundingClientRect().left")
    page.evaluate(f"() => {{ {box}.scrollLeft = 500; }}")
    assert page.evaluate(f"() => {box}.scrollLeft") > 0
    assert page.evaluate(f"() => {first}.getBoundingClientRect().left") == x0
    page.close()
