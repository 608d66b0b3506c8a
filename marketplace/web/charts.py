"""Server-rendered SVG charts (no JavaScript, no external library)."""

from __future__ import annotations

from html import escape

from marketplace.web import i18n


def utilisation_svg(series: list[tuple[str, list[tuple[float, float]]]], weeks: list[str], locale: str) -> str:
    """Grouped bars per machine: available hours (light) and booked hours (dark) for each week."""
    _ = i18n.translations(locale).gettext
    row_h, bar_w, gap, left, top = 90, 10, 6, 8, 24
    width = left + len(weeks) * (2 * bar_w + gap) + 20
    height = top + len(series) * row_h + 10
    peak = max([max(a, b) for _, values in series for a, b in values] + [1.0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="util-title"><title id="util-title">'
        f"{escape(_('Booked vs available hours per week'))}</title>"
    ]
    parts.append(
        f'<text x="{left}" y="14" font-size="11">{escape(_("available"))} ▯ / {escape(_("booked"))} ▮ '
        f"({escape(weeks[0])} – {escape(weeks[-1])})</text>"
    )
    for i, (name, values) in enumerate(series):
        base = top + (i + 1) * row_h - 14
        parts.append(f'<text x="{left}" y="{base - row_h + 26}" font-size="11">{escape(name[:60])}</text>')
        for j, (available, booked) in enumerate(values):
            x = left + j * (2 * bar_w + gap)
            ha = (available / peak) * (row_h - 34)
            hb = (booked / peak) * (row_h - 34)
            parts.append(
                f'<rect class="bar alt" x="{x}" y="{base - ha:.1f}" width="{bar_w}" height="{ha:.1f}">'
                f"<title>{escape(weeks[j])}: {available:.0f} h {escape(_('available'))}</title></rect>"
            )
            parts.append(
                f'<rect class="bar" x="{x + bar_w}" y="{base - hb:.1f}" width="{bar_w}" height="{hb:.1f}">'
                f"<title>{escape(weeks[j])}: {booked:.0f} h {escape(_('booked'))}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(points: list[tuple[str, float | None]], locale: str) -> str:
    """A simple line of a share (0..1) per month; suppressed months leave a gap."""
    _ = i18n.translations(locale).gettext
    width, height, left, top, bottom = 640, 180, 40, 16, 30
    n = max(len(points), 1)
    step = (width - left - 10) / max(n - 1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'aria-labelledby="trend-title"><title id="trend-title">{escape(_("Utilisation of listed capacity"))}'
        f"</title>"
    ]
    plot_h = height - top - bottom
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#c5cad3"/>')
    parts.append(
        f'<text x="4" y="{top + 4}" font-size="10">100%</text><text x="4" y="{top + plot_h}" font-size="10">0%</text>'
    )
    path: list[str] = []
    for i, (month, value) in enumerate(points):
        x = left + i * step
        parts.append(f'<text x="{x:.0f}" y="{height - 8}" font-size="10" text-anchor="middle">{escape(month)}</text>')
        if value is None:
            if path:
                parts.append(f'<polyline fill="none" stroke="#0b6bcb" stroke-width="2" points="{" ".join(path)}"/>')
            path = []
            continue
        y = top + plot_h * (1 - max(0.0, min(1.0, value)))
        path.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0b6bcb"><title>{escape(month)}: '
            f"{value:.0%}</title></circle>"
        )
    if path:
        parts.append(f'<polyline fill="none" stroke="#0b6bcb" stroke-width="2" points="{" ".join(path)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(points: list[tuple[str, float]], label: str, unit: str) -> str:
    """Vertical bars, one per period (e.g. monthly earnings)."""
    width, height, left, top, bottom = 640, 180, 10, 16, 30
    n = max(len(points), 1)
    slot = (width - left - 10) / n
    peak = max([v for _, v in points] + [1.0])
    plot_h = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'aria-label="{escape(label)}">'
    ]
    for i, (period, value) in enumerate(points):
        h = plot_h * value / peak
        x = left + i * slot + slot * 0.15
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}"><title>{escape(period)}: {value:,.2f} {escape(unit)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
            f"{escape(period)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
