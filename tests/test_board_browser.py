"""The built site in a real headless Chromium (Debian `chromium` + Playwright's Python driver).

Sorting by clicking a header, navigating to a task page, the predictions browser filters, and the
XSS checks: a model named ``<img src=x onerror=alert(1)>`` and an output holding ``<script>`` must
render as text (no dialog, no injected element). Skipped loudly when Chromium or Playwright is missing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_board_support import HOSTILE_INPUT_TAIL, HOSTILE_MODEL, HOSTILE_OUTPUT, board_ws, fresh_store  # noqa: F401

from medsbench.board import build_site
from medsbench.board.store import load_seed, slugify

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return ("REAL-BROWSER TEST SKIPPED: /usr/bin/chromium is missing "
                "(install the Debian packages: apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "REAL-BROWSER TEST SKIPPED: the Python package 'playwright' is missing (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _skip_reason()
    if reason:
        import warnings

        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def served(tmp_path, board_ws):
    """The site served on 127.0.0.1 by `board serve`'s server (a real HTTP origin)."""
    from medsbench.board.serve import make_server

    store = fresh_store(tmp_path, board_ws)
    out = tmp_path / "site"
    build_site(store, out)
    store.close()
    server = make_server(out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", out
    server.shutdown()
    server.server_close()


class Watch:
    """Records dialogs, page errors and failed requests of one page."""

    def __init__(self, page):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def _column(page, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort'))")


def test_sort_navigate_and_escape(browser, served, tmp_path):
    base, out = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(base + "index.html")
    page.wait_for_load_state("load")

    # Sorting: click the MCQA header (column 3, after model, kind and protocol) of the official table.
    before = [r.split("\n")[0] for r in page.eval_on_selector_all("#table-reference tbody th", "e => e.map(x => x.textContent)")]
    page.click("#table-reference thead th:nth-child(4)")
    values = _column(page, "#table-reference", 3)
    nums = [float(v) for v in values if v]
    assert nums == sorted(nums, reverse=True) and len(nums) >= 5
    assert all(values[: len(nums)]) and not any(values[len(nums):])  # blanks last
    assert page.get_attribute("#table-reference thead th:nth-child(4)", "aria-sort") == "descending"
    after = [r.split("\n")[0] for r in page.eval_on_selector_all("#table-reference tbody th", "e => e.map(x => x.textContent)")]
    assert after != before  # the order really changed
    page.click("#table-reference thead th:nth-child(4)")
    nums_up = [float(v) for v in _column(page, "#table-reference", 3) if v]
    assert nums_up == sorted(nums_up)
    page.click("#table-reference thead th:nth-child(1)")  # by name, A-Z
    names = page.eval_on_selector_all("#table-reference tbody th", "e => e.map(x => x.getAttribute('data-sort').toLowerCase())")
    assert names == sorted(names)
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    # The hostile model name is text: visible literally, no <img> injected anywhere.
    assert page.locator("#table-reference tbody th a", has_text=HOSTILE_MODEL).count() == 1
    assert page.eval_on_selector_all("img", "imgs => imgs.filter(i => i.getAttribute('src') === 'x').length") == 0
    assert page.evaluate("() => document.querySelectorAll('img[onerror]').length") == 0

    # Open a task page from the tasks index.
    page.click("nav >> text=Tasks")
    page.click("a[href='tasks/task57.html']")
    page.wait_for_load_state("load")
    assert page.url.endswith("/tasks/task57.html")
    assert page.locator("h1").inner_text().startswith("task57")
    rows = page.locator("#task-table tbody tr").count()
    assert rows == 2 + sum(1 for m in load_seed()["models"] if "task57" in m.get("tasks", {}))
    heads = page.eval_on_selector_all("#task-table thead th", "e => e.map(x => x.textContent)")
    col = next(i for i, h in enumerate(heads) if h.startswith("accuracy") and "official" in h)
    page.click(f"#task-table thead th:nth-child({col + 1})")  # official accuracy
    acc = [float(v) for v in _column(page, "#task-table", col) if v]
    assert acc == sorted(acc, reverse=True)

    # A model page with its chart.
    page.goto(base + f"models/{slugify(HOSTILE_MODEL)}.html")
    assert page.locator("h1").inner_text().startswith(HOSTILE_MODEL)
    assert page.evaluate("() => { const i = document.querySelector('figure.chart img'); return i.complete && i.naturalWidth > 0; }")

    assert watch.dialogs == [] and watch.errors == []
    page.close()


def test_predictions_browser_renders_markup_as_text(browser, served, tmp_path):
    base, _ = served
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    watch = Watch(page)
    page.goto(base + f"runs/{slugify('hostile')}.html")
    page.wait_for_selector("#pred-list article")
    assert page.locator("#pred-list article").count() == 10
    assert "showing 10 of 10" in page.inner_text("#f-count")

    # The output with <script> is shown as text, nothing ran, nothing was injected.
    out_pre = page.locator("#pred-list pre.output", has_text="<script>")
    assert out_pre.count() == 1 and out_pre.inner_text() == HOSTILE_OUTPUT
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => document.querySelectorAll('script').length") == 2  # board.js + JSON data
    assert page.evaluate("() => document.querySelectorAll('#pred-list *:not(article):not(header):not(h4):not(pre):not(div):not(p)').length") == 0
    assert page.locator("#pred-list pre", has_text=HOSTILE_INPUT_TAIL).count() == 1

    # Filters: task, verdict, search.
    page.select_option("#f-task", "task114")
    assert page.locator("#pred-list article").count() == 4
    assert all("task114" in h for h in page.eval_on_selector_all("#pred-list header", "e => e.map(x => x.textContent)"))
    page.select_option("#f-task", "")
    page.select_option("#f-verdict", "r1")
    correct = page.eval_on_selector_all("#pred-list header", "e => e.map(x => x.textContent)")
    assert correct and all("official: correct" in h for h in correct)
    page.select_option("#f-verdict", "na")
    assert page.locator("#pred-list article").count() == 4  # the summarization items
    page.select_option("#f-verdict", "")
    page.fill("#f-search", "croup")
    assert page.locator("#pred-list article").count() == 1
    page.fill("#f-search", "")
    page.screenshot(path=str(tmp_path / "run.png"), full_page=False)
    assert watch.dialogs == [] and watch.errors == []
    page.close()


def test_site_works_from_file_urls(browser, tmp_path, board_ws):
    """No server needed: the same site opened from disk (file://) sorts and browses."""
    store = fresh_store(tmp_path, board_ws)
    out = tmp_path / "site"
    build_site(store, out)
    store.close()
    page = browser.new_page()
    watch = Watch(page)
    page.goto((out / "index.html").as_uri())
    page.click("#table-strict thead th:nth-child(4)")
    assert page.get_attribute("#table-strict thead th:nth-child(4)", "aria-sort") == "descending"
    page.goto((out / "runs" / f"{slugify('tiny-llama')}.html").as_uri())
    page.wait_for_selector("#pred-list article")
    assert page.locator("#pred-list article").count() == 10
    page.goto((out / "about.html").as_uri())
    assert "Strict mode" in page.inner_text("main")
    assert watch.dialogs == [] and watch.errors == []
    page.close()
