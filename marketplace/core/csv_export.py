"""CSV downloads for spreadsheets: streamed, UTF-8 with a byte-order mark (so Excel reads Chinese text
correctly), CRLF line ends, and every text cell safe from formula injection.

Use :func:`csv_response` with rows of already formatted cells; pass any free text a person typed (memos,
titles, names) through :func:`safe_cell` so a spreadsheet shows it as text and never runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime

from fastapi.responses import StreamingResponse

BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 500


def safe_cell(value: object) -> str:
    """One cell as text a spreadsheet never evaluates: ``None`` is empty; a datetime is ISO 8601 with its
    zone (naive datetimes are taken as UTC); text starting with ``= + - @``, a tab or a carriage return gets
    a leading apostrophe. Numbers pass unchanged (a negative amount stays a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_line(values: Sequence[object]) -> str:
    """One CSV record (CRLF-terminated); cells are written as given (make them safe first)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


async def _chunks(rows: AsyncIterable[Sequence[object]] | Iterable[Sequence[object]]) -> AsyncIterator[str]:
    yield BOM
    batch: list[str] = []
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            batch.append(csv_line(row))
            if len(batch) >= _ROWS_PER_CHUNK:
                yield "".join(batch)
                batch = []
    else:
        for row in rows:
            batch.append(csv_line(row))
            if len(batch) >= _ROWS_PER_CHUNK:
                yield "".join(batch)
                batch = []
    if batch:
        yield "".join(batch)


def csv_response(
    rows: AsyncIterable[Sequence[object]] | Iterable[Sequence[object]], *, filename: str
) -> StreamingResponse:
    """Stream ``rows`` (the header row first) as a CSV attachment named ``filename``. Cells are written as
    they come: pass text through :func:`safe_cell`. The filename must be plain ASCII (no quotes)."""
    if not filename or any(c in filename for c in '"\\\r\n') or not filename.isascii():
        raise ValueError("CSV filename must be plain ASCII without quotes or line breaks")
    return StreamingResponse(
        _chunks(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
