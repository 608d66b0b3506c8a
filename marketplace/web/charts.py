"""Server-rendered SVG charts (no JavaScript, no external library), each with axes, labelled ticks, a legend
that wraps (never clipped), a text alternative (``<title>``/``<desc>``) and the same numbers as a table in a
``<details>`` below it. Every text is in the page's language.

- :func:`utilisation_chart`: the factory dashboard's weekly share of capacity booked, one line per listing
  (machine hours, or lab samples);
- :func:`trend_svg`: the observatory's monthly utilisation of listed capacity;
- :func:`bars_svg`: one bar per period (e.g. monthly earnings);
- :func:`quality_trend_svg`: the observatory's monthly conformance rate and lab utilisation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_decimal

from marketplace.web import i18n

WIDTH = 480
LEFT, RIGHT, TOP = 58, 12, 14
PLOT_H = 200
FONT = 12
PALETTE = ("#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d", "#1864ab", "#e67700")
DASHES = ("", "6 3", "2 3")
AXIS, GRID, INK = "#8a93a3", "#e3e6ea", "#1d2433"


def N_(message: str) -> str:
    return message


@dataclass(frozen=True)
class Series:
    """One listing's weekly figures: ``(used, capacity)`` per week (capacity 0: not open that week)."""

    name: str
    points: list[tuple[float, float]]


@dataclass
class _Chart:
    """What the renderer draws: ``values`` per series in the y unit (None leaves a gap)."""

    chart_id: str
    title: str
    desc: str
    y_label: str
    x_labels: list[str]
    names: list[str]
    values: list[list[float | None]]
    y_max: float
    y_tick: Callable[[float], str]
    tips: list[list[str]] = field(default_factory=list)
    bars: bool = False


def period_label(day: date, locale: str, *, monthly: bool = False) -> str:
    """A week's first day ("12月7日" / "Dec 7") or a month ("2026年12月" / "Dec 2026") in the locale."""
    return format_skeleton("yMMM" if monthly else "MMMd", day, locale=Locale.parse(i18n.babel_name(locale)))


def _pct(value: float, locale: str) -> str:
    return format_decimal(round(value), locale=i18n.babel_name(locale)) + " %"


def _text_width(text: str, size: float = FONT) -> float:
    """Estimated drawn width: CJK characters are a full em, others a little over half."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.58 for ch in text)


def _fit(text: str, width: float, size: float = FONT) -> str:
    """``text`` cut with an ellipsis so it fits ``width``."""
    if _text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if _text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out.rstrip() + "…"


def _nice_max(peak: float, floor: float) -> float:
    """The axis top: at least ``floor``, else ``peak`` rounded up to 1, 2, 2.5 or 5 × a power of ten."""
    if peak <= floor:
        return floor
    power = 10 ** math.floor(math.log10(peak))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= peak:
            return step * power
    return 10 * power


def _legend(names: Sequence[str], top: float) -> tuple[list[str], float]:
    """Legend entries in rows of two (one on a narrow chart's long names would be clipped otherwise)."""
    cols = 1 if len(names) == 1 else 2
    col_w = (WIDTH - LEFT - RIGHT) / cols
    parts: list[str] = []
    for i, name in enumerate(names):
        x = LEFT + (i % cols) * col_w
        y = top + (i // cols) * (FONT + 8)
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]
        parts.append(
            f'<g class="legend-item"><title>{escape(name)}</title>'
            f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" stroke="{colour}" '
            f'stroke-width="3"{_dash(dash)}/>'
            f'<text x="{x + 24:.1f}" y="{y:.1f}" font-size="{FONT}" fill="{INK}">'
            f"{escape(_fit(name, col_w - 32))}</text></g>"
        )
    rows = math.ceil(len(names) / cols)
    return parts, top + rows * (FONT + 8)


def _dash(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _axes(c: _Chart) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    base = TOP + PLOT_H
    parts = []
    for k in range(5):
        value = c.y_max * k / 4
        y = base - PLOT_H * k / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="{FONT - 1}" text-anchor="end" fill="{INK}">'
            f"{escape(c.y_tick(value))}</text>"
        )
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{AXIS}"/>')
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{AXIS}"/>')
    n = max(len(c.x_labels), 1)
    slot = plot_w / n
    # Labels shrink (to 9) before every other one is left out; the table below has them all.
    widest = max((_text_width(t, 1.0) for t in c.x_labels), default=1.0)
    size = max(9.0, min(FONT - 1.0, (slot - 8) / widest))
    every = max(1, math.ceil(widest * size / (slot - 8)))
    for j, label in enumerate(c.x_labels):
        x = LEFT + slot * (j + 0.5)
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="{AXIS}"/>')
        if j % every == 0:
            parts.append(
                f'<text class="x-label" x="{x:.1f}" y="{base + 17}" font-size="{size:.1f}" text-anchor="middle" '
                f'fill="{INK}">{escape(label)}</text>'
            )
    parts.append(
        f'<text class="y-label" x="{LEFT - 44}" y="{TOP + PLOT_H / 2:.1f}" font-size="{FONT - 1}" '
        f'text-anchor="middle" fill="{INK}" transform="rotate(-90 {LEFT - 44} {TOP + PLOT_H / 2:.1f})">'
        f"{escape(c.y_label)}</text>"
    )
    return parts


def _marks(c: _Chart) -> list[str]:
    plot_w = WIDTH - LEFT - RIGHT
    base = TOP + PLOT_H
    slot = plot_w / max(len(c.x_labels), 1)
    parts: list[str] = []
    for i, values in enumerate(c.values):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]
        run: list[str] = []
        points: list[str] = []
        for j, value in enumerate(values):
            tip = c.tips[i][j] if c.tips else ""
            if value is None:
                if len(run) > 1:
                    points.append(_polyline(run, colour, dash))
                run = []
                continue
            x = LEFT + slot * (j + 0.5)
            y = base - PLOT_H * min(value, c.y_max) / c.y_max
            if c.bars:
                w = slot * 0.6
                parts.append(
                    f'<rect class="bar" x="{x - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{base - y:.1f}" '
                    f'fill="{colour}"><title>{escape(tip)}</title></rect>'
                )
                continue
            run.append(f"{x:.1f},{y:.1f}")
            points.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{escape(tip)}</title></circle>'
            )
        if len(run) > 1:
            points.append(_polyline(run, colour, dash))
        parts.extend(points)
    return parts


def _polyline(run: list[str], colour: str, dash: str) -> str:
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2.5"{_dash(dash)} points="{" ".join(run)}"/>'


def _svg(c: _Chart) -> str:
    legend, bottom = _legend(c.names, TOP + PLOT_H + 44) if len(c.names) > 1 or not c.bars else ([], TOP + PLOT_H)
    height = bottom + 10 if legend else TOP + PLOT_H + 30
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" aria-labelledby="{c.chart_id}-title {c.chart_id}-desc" id="{c.chart_id}">'
        f'<title id="{c.chart_id}-title">{escape(c.title)}</title><desc id="{c.chart_id}-desc">{escape(c.desc)}</desc>'
    )
    return "".join([head, *_axes(c), *_marks(c), *legend, "</svg>"])


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]], *, summary: str) -> str:
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join(
        "<tr>" + f'<th scope="row">{escape(r[0])}</th>' + "".join(f"<td>{escape(v)}</td>" for v in r[1:]) + "</tr>"
        for r in rows
    )
    return (
        f'<details class="chart-data"><summary>{escape(summary)}</summary><div class="table-wrap"><table>'
        f"<caption>{escape(caption)}</caption><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
        "</details>"
    )


# -- the factory dashboard: utilisation per listing and week ---------------------------------------

_MACHINE = {
    "title": N_("Machine hours booked per week, as a share of available time"),
    "y": N_("Share of available time (%)"),
    "cell": N_("%(used)s of %(capacity)s h (%(share)s)"),
}
_LAB = {
    "title": N_("Lab samples booked per week, as a share of sample capacity"),
    "y": N_("Share of sample capacity (%)"),
    "cell": N_("%(used)s of %(capacity)s samples (%(share)s)"),
}


def utilisation_chart(series: Sequence[Series], weeks: Sequence[date], *, lab: bool, locale: str) -> str:
    """A line per listing of the share of its capacity booked each week (``lab``: samples, else machine hours),
    with the numbers in a table below; empty string when nothing had capacity."""
    series = [s for s in series if any(cap > 0 for _, cap in s.points)]
    if not series or not weeks:
        return ""
    _ = i18n.translations(locale).gettext
    text = _LAB if lab else _MACHINE
    labels = [period_label(w, locale) for w in weeks]
    values = [[100 * used / cap if cap > 0 else None for used, cap in s.points] for s in series]
    peak = max((v for row in values for v in row if v is not None), default=0.0)
    cells = [
        [
            _("closed")
            if cap <= 0
            else _(text["cell"])
            % {"used": _num(used, locale), "capacity": _num(cap, locale), "share": _pct(100 * used / cap, locale)}
            for used, cap in s.points
        ]
        for s in series
    ]
    summaries = []
    for s, row in zip(series, values, strict=True):
        known = [(v, w) for v, w in zip(row, labels, strict=True) if v is not None]
        top_value, top_week = max(known, key=lambda t: t[0])
        summaries.append(
            _("%(name)s: on average %(average)s, highest %(highest)s in the week of %(week)s.")
            % {
                "name": s.name,
                "average": _pct(sum(v for v, _w in known) / len(known), locale),
                "highest": _pct(top_value, locale),
                "week": top_week,
            }
        )
    named = list(zip(series, cells, strict=True))
    span = _("Weeks starting %(first)s to %(last)s.") % {"first": labels[0], "last": labels[-1]}
    chart = _Chart(
        chart_id="util-lab" if lab else "util-machine",
        title=_(text["title"]),
        desc=" ".join([span, *summaries]),
        y_label=_(text["y"]),
        x_labels=labels,
        names=[s.name for s in series],
        values=values,
        y_max=_nice_max(peak, 100.0),
        y_tick=lambda v: _pct(v, locale),
        tips=[[f"{s.name} · {labels[j]}: {cell}" for j, cell in enumerate(row)] for s, row in named],
    )
    rows = [[s.name, *row] for s, row in named]
    table = _table(_(text["title"]), [_("Listing"), *labels], rows, summary=_("Show the numbers"))
    return f'<figure class="chart-figure">{_svg(chart)}{table}</figure>'


def _num(value: float, locale: str) -> str:
    return format_decimal(round(value, 1), locale=i18n.babel_name(locale))


# -- the observatory: utilisation of listed capacity per month --------------------------------------


def trend_svg(points: list[tuple[str, float | None]], locale: str) -> str:
    """The share (0..1) of listed hours booked per month ("YYYY-MM"); a suppressed month leaves a gap."""
    _ = i18n.translations(locale).gettext
    if not any(v is not None for _m, v in points):
        return f'<p class="muted empty">{escape(_("No data for this period."))}</p>'
    labels = [period_label(date.fromisoformat(m + "-01"), locale, monthly=True) for m, _v in points]
    values: list[float | None] = [None if v is None else 100 * v for _m, v in points]
    shown = [_pct(v, locale) if v is not None else _("suppressed") for v in values]
    title = _("Utilisation of listed capacity")
    chart = _Chart(
        chart_id="trend",
        title=title,
        desc=_("Share of listed machine hours booked in each month: %(values)s.")
        % {"values": "; ".join(f"{label} {value}" for label, value in zip(labels, shown, strict=True))},
        y_label=_("Share of listed hours booked (%)"),
        x_labels=labels,
        names=[title],
        values=[values],
        y_max=_nice_max(max((v for v in values if v is not None), default=0.0), 100.0),
        y_tick=lambda v: _pct(v, locale),
        tips=[[f"{label}: {value}" for label, value in zip(labels, shown, strict=True)]],
    )
    table = _table(
        title, [_("Month"), _("Utilisation")], list(zip(labels, shown, strict=True)), summary=_("Show the numbers")
    )
    return f'<figure class="chart-figure">{_svg(chart)}{table}</figure>'


# -- bars: one value per period ------------------------------------------------------------------------


def bars_svg(points: list[tuple[str, float]], label: str, unit: str, *, locale: str = "en") -> str:
    """Vertical bars, one per period (labels already in the page's language), ``unit`` after each value."""
    _ = i18n.translations(locale).gettext
    if not points:
        return f'<p class="muted empty">{escape(_("No data yet."))}</p>'
    shown = [f"{format_decimal(v, format='#,##0.##', locale=i18n.babel_name(locale))} {unit}" for _p, v in points]
    chart = _Chart(
        chart_id="bars",
        title=label,
        desc="; ".join(f"{p}: {s}" for (p, _v), s in zip(points, shown, strict=True)),
        y_label=unit,
        x_labels=[p for p, _v in points],
        names=[label],
        values=[[v for _p, v in points]],
        y_max=_nice_max(max(v for _p, v in points), 1.0),
        y_tick=lambda v: format_decimal(v, format="#,##0.#", locale=i18n.babel_name(locale)),
        tips=[[f"{p}: {s}" for (p, _v), s in zip(points, shown, strict=True)]],
        bars=True,
    )
    rows = [[p, s] for (p, _v), s in zip(points, shown, strict=True)]
    table = _table(label, [_("Period"), label], rows, summary=_("Show the numbers"))
    return f'<figure class="chart-figure">{_svg(chart)}{table}</figure>'


# -- the observatory: conformance of inspected lots and lab utilisation per month ----------------------


def quality_trend_svg(
    months: Sequence[str], *, conformance: Sequence[float | None], lab_use: Sequence[float | None], locale: str
) -> str:
    """Two lines per month ("YYYY-MM"): the conformance rate of inspected lots and the utilisation of listed
    lab sample capacity (shares 0..1); a suppressed or empty month leaves a gap."""
    _ = i18n.translations(locale).gettext
    if not any(v is not None for v in (*conformance, *lab_use)):
        return f'<p class="muted empty">{escape(_("No inspections or lab bookings in this period."))}</p>'
    labels = [period_label(date.fromisoformat(m + "-01"), locale, monthly=True) for m in months]
    names = [_("Conformance rate"), _("Lab utilisation")]
    values = [[None if v is None else 100 * v for v in row] for row in (conformance, lab_use)]
    shown = [[_pct(v, locale) if v is not None else "–" for v in row] for row in values]
    title = _("Conformance rate and lab utilisation")
    chart = _Chart(
        chart_id="quality-trend",
        title=title,
        desc=" ".join(
            f"{name}: " + "; ".join(f"{label} {value}" for label, value in zip(labels, row, strict=True)) + "."
            for name, row in zip(names, shown, strict=True)
        ),
        y_label=_("Share (%)"),
        x_labels=labels,
        names=names,
        values=values,
        y_max=_nice_max(max((v for row in values for v in row if v is not None), default=0.0), 100.0),
        y_tick=lambda v: _pct(v, locale),
        tips=[
            [f"{name} · {label}: {value}" for label, value in zip(labels, row, strict=True)]
            for name, row in zip(names, shown, strict=True)
        ],
    )
    rows = [[label, c, u] for label, c, u in zip(labels, shown[0], shown[1], strict=True)]
    table = _table(title, [_("Month"), *names], rows, summary=_("Show the numbers"))
    return f'<figure class="chart-figure">{_svg(chart)}{table}</figure>'
