"""Build-time SVG charts, written by hand so they are tiny, dependency-free and byte-identical.

Charts are placed inline in the pages (not ``<img>``): every label and value is visible text (no
hover needed) of at least 12 px at the chart's natural width (:data:`WIDTH`, which fits a 390 px
phone screen), and every piece of text goes through :func:`html.escape`.
"""

from __future__ import annotations

from html import escape

WIDTH = 340
FONT = 12  # px at natural width; never scaled down on a 390 px screen (the page column is wider than WIDTH)
COLORS = {"reference": "#2f5f93", "strict": "#9c4d00"}
KIND_COLORS = {"measured": "#2f5f93", "submission": "#9c4d00", "reported": "#5a6472"}
MODE_LABEL = {"reference": "official scoring", "strict": "strict scoring"}
INK, MUTED, GRID = "#1b2430", "#4a5565", "#d5dbe3"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _open(width: int, height: int, label: str, cls: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="{FONT}">',
        f"<title>{escape(label)}</title>",
    ]


def category_panel(title: str, metric: str, bars: list[tuple[str, float, str]]) -> str:
    """One category of the overview chart: a horizontal bar per model, best first, each labelled with the
    model's name and its value on a 0-100 axis. ``bars``: (model name, value, kind)."""
    label_w, bar_w, row_h, top = 158, 136, 18, 30
    height = top + row_h * max(len(bars), 1) + 6
    out = _open(WIDTH, height, f"{title} ({metric}, official scoring): " + "; ".join(
        f"{name} {_fmt(v)}" for name, v, _ in bars), "panel")
    out.append(f'<text x="0" y="14" font-weight="600" font-size="13" fill="{INK}">{escape(title)}'
               f'<tspan fill="{MUTED}" font-weight="400" font-size="{FONT}"> {escape(metric)}</tspan></text>')
    for tick in (0, 50, 100):
        x = label_w + bar_w * tick / 100
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 4}" stroke="{GRID}"/>')
    if not bars:
        out.append(f'<text x="{label_w}" y="{top + 12}" fill="{MUTED}">no complete run scored</text>')
    for i, (name, value, kind) in enumerate(bars):
        y = top + i * row_h
        w = bar_w * max(0.0, min(value, 100.0)) / 100
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" fill="{INK}">{escape(_short(name, 21))}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" fill="{KIND_COLORS.get(kind, MUTED)}"/>')
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" fill="{INK}">{_fmt(value)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def category_bars(title: str, rows: list[tuple[str, str, dict[str, float | None]]]) -> str:
    """A model's categories: each category's title on its own line, then one bar per scoring mode
    (0-100) with its value. ``rows``: (category title, metric label, {mode: value or None})."""
    modes = [m for m in ("reference", "strict") if any(vals.get(m) is not None for _, _, vals in rows)] or ["reference"]
    bar_w, bar_h, head = 250, 15, 16
    block = head + bar_h * len(modes) + 8
    top = 40
    height = top + block * len(rows)
    out = _open(WIDTH, height, title, "bars")
    out.append(f'<text x="0" y="14" font-weight="600" font-size="13" fill="{INK}">{escape(_short(title, 44))}</text>')
    x = 0
    for mode in modes:
        out.append(f'<rect x="{x}" y="22" width="11" height="11" fill="{COLORS[mode]}"/>')
        out.append(f'<text x="{x + 15}" y="32" fill="{MUTED}">{escape(MODE_LABEL[mode])}</text>')
        x += 15 + 7 * len(MODE_LABEL[mode]) + 14
    for i, (cat_title, metric, values) in enumerate(rows):
        y = top + i * block
        out.append(f'<text x="0" y="{y + 12}" fill="{INK}">{escape(cat_title)}'
                   f'<tspan fill="{MUTED}"> {escape(metric)}</tspan></text>')
        for j, mode in enumerate(modes):
            value = values.get(mode)
            by = y + head + j * bar_h
            if value is None:
                out.append(f'<text x="0" y="{by + 11}" fill="{MUTED}">{escape(MODE_LABEL[mode])}: not reported</text>')
                continue
            w = bar_w * max(0.0, min(value, 100.0)) / 100
            out.append(f'<rect x="0" y="{by + 1}" width="{w:.1f}" height="{bar_h - 3}" fill="{COLORS[mode]}">'
                       f"<title>{escape(f'{cat_title} {metric} ({MODE_LABEL[mode]}): {_fmt(value)}')}</title></rect>")
            out.append(f'<text x="{w + 4:.1f}" y="{by + 11}" fill="{INK}">{_fmt(value)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def reliability_diagram(title: str, curve: dict[str, list], *, ece: float | None = None) -> str:
    """A reliability diagram: per confidence bin (x: mean confidence) the accuracy (y), both 0-100, with
    the diagonal of perfect calibration; each bin's dot is labelled with its item count. ``curve``: the
    ``reliability`` record of results.json (edges, counts, confidence, accuracy in 0-1)."""
    size, left, top, bottom = 200, 44, 30, 40
    width, height = left + size + 96, top + size + bottom
    points = [(c, a, n) for c, a, n in zip(curve.get("confidence", []), curve.get("accuracy", []),
                                           curve.get("counts", [])) if c is not None and a is not None and n]
    said = "; ".join(f"confidence {100 * c:.0f}: accuracy {100 * a:.0f} (n={n})" for c, a, n in points)
    label = f"{title}: reliability diagram" + (f", ECE {ece:.1f}" if ece is not None else "") + (f"; {said}" if said else "")
    out = _open(width, height, label, "reliability")
    out.append(f'<text x="0" y="14" font-weight="600" font-size="13" fill="{INK}">{escape(_short(title, 40))}'
               + (f'<tspan fill="{MUTED}" font-weight="400" font-size="{FONT}"> ECE {ece:.1f}</tspan>' if ece is not None
                  else "") + "</text>")

    def xy(conf: float, acc: float) -> tuple[float, float]:
        return left + size * conf, top + size * (1 - acc)

    for tick in (0, 50, 100):
        x, y = xy(tick / 100, tick / 100)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + size}" stroke="{GRID}"/>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + size}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{x:.1f}" y="{top + size + 15}" text-anchor="middle" fill="{MUTED}">{tick}</text>')
        out.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{tick}</text>')
    out.append(f'<text x="{left + size / 2}" y="{top + size + 32}" text-anchor="middle" fill="{INK}">confidence</text>')
    out.append(f'<text x="{left + size + 8}" y="{top + 12}" fill="{INK}">accuracy</text>')
    out.append(f'<text x="{left + size + 8}" y="{top + 28}" fill="{MUTED}">dashed:</text>')
    out.append(f'<text x="{left + size + 8}" y="{top + 43}" fill="{MUTED}">calibrated</text>')
    x0, y0 = xy(0, 0)
    x1, y1 = xy(1, 1)
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{MUTED}" stroke-dasharray="4 3"/>')
    if len(points) > 1:
        path = " ".join(f"{xy(c, a)[0]:.1f},{xy(c, a)[1]:.1f}" for c, a, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLORS["reference"]}" stroke-width="1.5"/>')
    for c, a, n in points:
        x, y = xy(c, a)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{COLORS["reference"]}">'
                   f"<title>{escape(f'confidence {100 * c:.1f}, accuracy {100 * a:.1f}, n={n}')}</title></circle>")
        out.append(f'<text x="{x + 5:.1f}" y="{y - 5:.1f}" fill="{INK}">{n}</text>')
    if not points:
        out.append(f'<text x="{left + 8}" y="{top + size / 2}" fill="{MUTED}">no items</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
