"""Build-time SVG charts, written by hand so they are tiny, dependency-free and byte-identical.

Every piece of text goes through :func:`html.escape`; charts are shown with ``<img>``, so even a
hostile model name inside one could not run script.
"""

from __future__ import annotations

from html import escape

COLORS = {"reference": "#3b6ea8", "strict": "#d9822b"}
MODE_LABEL = {"reference": "official scoring (reference)", "strict": "strict scoring"}


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def category_bars(title: str, rows: list[tuple[str, str, dict[str, float | None]]]) -> str:
    """A horizontal grouped bar chart on a 0-100 axis.

    ``rows``: (category title, metric label, {mode: value or None}). One bar per mode present.
    """
    modes = [m for m in ("reference", "strict") if any(vals.get(m) is not None for _, _, vals in rows)]
    modes = modes or ["reference"]
    label_w, bar_w, right = 230, 340, 50
    bar_h, gap = 11, 9
    row_h = bar_h * len(modes) + gap
    top = 54
    width = label_w + bar_w + right
    height = top + row_h * len(rows) + 28
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" font-size="14" font-weight="600" fill="#1b2430">{escape(title)}</text>',
    ]
    x = 8
    for mode in modes:
        out.append(f'<rect x="{x}" y="30" width="10" height="10" fill="{COLORS[mode]}"/>')
        out.append(f'<text x="{x + 14}" y="39" fill="#3d4756">{escape(MODE_LABEL[mode])}</text>')
        x += 14 + 7 * len(MODE_LABEL[mode]) + 16
    for tick in range(0, 101, 25):
        tx = label_w + bar_w * tick / 100
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{top + row_h * len(rows)}" stroke="#e3e7ed"/>')
        out.append(f'<text x="{tx:.1f}" y="{top + row_h * len(rows) + 16}" text-anchor="middle" fill="#6b7585">{tick}</text>')
    for i, (cat_title, metric, values) in enumerate(rows):
        y = top + i * row_h
        out.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 - 1:.1f}" text-anchor="end" fill="#1b2430">{escape(cat_title)}'
            f'<tspan fill="#6b7585" font-size="10"> {escape(metric)}</tspan></text>'
        )
        for j, mode in enumerate(modes):
            value = values.get(mode)
            by = y + j * bar_h
            if value is None:
                out.append(f'<text x="{label_w + 4}" y="{by + bar_h - 2}" fill="#9aa3b0" font-size="10">not reported</text>')
                continue
            w = bar_w * max(0.0, min(value, 100.0)) / 100
            out.append(
                f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_h - 1}" fill="{COLORS[mode]}">'
                f"<title>{escape(f'{cat_title} {metric} ({MODE_LABEL[mode]}): {_fmt(value)}')}</title></rect>"
            )
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 2}" fill="#3d4756" font-size="10">{_fmt(value)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
