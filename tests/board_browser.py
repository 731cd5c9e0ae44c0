"""Shared helpers of the real-browser board tests (no tests here): headless Chromium through Playwright,
axe-core accessibility checks, a local server for a built site, and layout checks at phone width.

Chromium: the Debian package (``apt-get install -y chromium chromium-driver``). axe-core: installed from npm
by ``scripts/test.sh`` into ``.cache/npm`` (or any ``axe.min.js`` named by ``MEDSBENCH_AXE``). Outside CI a
missing browser or axe-core skips with a loud reason; in CI (``CI`` set) it fails.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("MEDSBENCH_AXE") or REPO / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js")
PHONE, DESKTOP = 390, 1400


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def browser_skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return ("REAL-BROWSER TEST SKIPPED: /usr/bin/chromium is missing "
                "(install the Debian packages: apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "REAL-BROWSER TEST SKIPPED: the Python package 'playwright' is missing (pip install playwright)"
    return None


@contextmanager
def open_browser() -> Iterator[Any]:
    """Headless Chromium (skipped loudly, or failed in CI, when it is missing)."""
    reason = browser_skip_reason()
    if reason:
        _missing(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with open_browser() as b:
        yield b


def serve(site: Path) -> tuple[str, Any]:
    """The site on 127.0.0.1 by `board serve`'s server (a real HTTP origin); returns (base URL, server)."""
    from medsbench.board.serve import make_server

    server = make_server(site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


class Watch:
    """Records dialogs, page errors, console errors and requests of one page."""

    def __init__(self, page: Any):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: self.requests.append(r.url))

    def clean(self) -> bool:
        return not self.dialogs and not self.errors


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the current page (every rule of axe's default set)."""
    if not AXE.is_file():
        _missing(f"ACCESSIBILITY TEST SKIPPED: axe-core not found at {AXE} "
                 "(scripts/test.sh installs it: npm install --prefix .cache/npm axe-core@4)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Violations that fail the board: serious or critical ones, and heading order (moderate in axe)."""
    return [v for v in violations if v["impact"] in ("serious", "critical") or v["id"] == "heading-order"]


def sideways_overflow(page: Any) -> list[str]:
    """Elements sticking out of the viewport outside a scroll box (a page that scrolls sideways)."""
    return page.evaluate("""() => {
        const W = document.documentElement.clientWidth, out = [];
        if (document.documentElement.scrollWidth > W) out.push('document ' + document.documentElement.scrollWidth);
        for (const e of document.querySelectorAll('body *')) {
            if (e.closest('.scroll') || e.closest('[hidden]')) continue;
            const r = e.getBoundingClientRect();
            if (r.width && r.right > W + 1) out.push(e.tagName + '.' + e.className + ': ' + Math.round(r.right));
        }
        return out.slice(0, 10);
    }""")


def smallest_chart_text(page: Any) -> float:
    """The smallest rendered font size (px) of any text in an inline SVG chart of the page."""
    return page.evaluate("""() => {
        let least = 1e9;
        for (const svg of document.querySelectorAll('svg')) {
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            for (const t of svg.querySelectorAll('text, tspan')) {
                least = Math.min(least, parseFloat(getComputedStyle(t).fontSize) * scale);
            }
        }
        return least;
    }""")
