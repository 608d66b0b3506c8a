"""A streaming reader of a ``multipart/form-data`` upload: the ``file`` part's bytes are handed on chunk by chunk
as they arrive (never buffered whole), small text fields (``org_id``) are kept.

Starlette's own form parser spools the whole file before the endpoint runs, which would let an oversized upload
fill the disk before the size limit could refuse it; this one lets :func:`service.stage` stop at the limit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from marketplace.core.errors import Unprocessable

FILE_FIELD = "file"
_FIELD_LIMIT = 200  # bytes of a text field
_TEXT_FIELDS = frozenset({"org_id"})


class MultipartUpload:
    """One upload read from ``body`` (the raw request stream) with the request's ``content_type`` header."""

    def __init__(self, content_type: str, body: AsyncIterator[bytes]) -> None:
        kind, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise Unprocessable("Send the document as multipart/form-data with the file in the field 'file'.")
        self._boundary = boundary
        self._body = body
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._files = 0

    @property
    def org_id(self) -> uuid.UUID | None:
        raw = self.fields.get("org_id", "").strip()
        if not raw:
            return None
        try:
            return uuid.UUID(raw)
        except ValueError as exc:
            raise Unprocessable("org_id: must be a valid UUID") from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes of the ``file`` part; afterwards :attr:`filename` and :attr:`fields` are known."""
        events: list[tuple[str, Any]] = []
        header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
        headers: dict[bytes, bytes] = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            header["field"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            header["value"] += data[start:end]

        def on_header_end() -> None:
            headers[bytes(header["field"]).lower()] = bytes(header["value"])
            header["field"], header["value"] = bytearray(), bytearray()

        def on_headers_finished() -> None:
            events.append(("part", dict(headers)))
            headers.clear()

        def on_part_data(data: bytes, start: int, end: int) -> None:
            events.append(("data", bytes(data[start:end])))

        callbacks: Any = {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        }
        parser = MultipartParser(self._boundary, callbacks)
        current: str | None = None  # "file", a text field's name, or None (ignored part)
        try:
            async for raw in self._body:
                parser.write(raw)
                for kind, value in events:
                    if kind == "part":
                        current = self._start_part(value)
                    elif current == FILE_FIELD:
                        yield value
                    elif current is not None:
                        self._add_text(current, value)
                events.clear()
            parser.finalize()
        except ValueError as exc:  # python_multipart's parse errors derive from ValueError
            raise Unprocessable("The multipart body is malformed.") from exc
        if self._files == 0:
            raise Unprocessable("file: attach the document in the multipart field 'file'.")

    def _start_part(self, headers: dict[bytes, bytes]) -> str | None:
        _disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD:
            self._files += 1
            if self._files > 1:
                raise Unprocessable("file: send one document per upload.")
            filename = options.get(b"filename")
            self.filename = filename.decode("utf-8", "replace") if filename is not None else None
            return FILE_FIELD
        if name in _TEXT_FIELDS:
            self.fields[name] = ""
            return name
        return None

    def _add_text(self, name: str, data: bytes) -> None:
        value = self.fields.get(name, "") + data.decode("utf-8", "replace")
        if len(value) > _FIELD_LIMIT:
            raise Unprocessable(f"{name}: too long")
        self.fields[name] = value
