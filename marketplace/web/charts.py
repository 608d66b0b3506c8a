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
