"""The text rule for every string the application accepts (bodies, query, path, header and form parameters).

PostgreSQL cannot store NUL in ``text`` (or ``\\u0000`` in ``jsonb``), and control characters make no sense in a
name, a code or a query parameter. So every accepted string is one of:

* :data:`Line`: one line of text (names, titles, codes, e-mail addresses, references, query parameters): no
  control character at all (C0, DEL, C1) and no Unicode line or paragraph separator;
* :data:`Text`: text that may span lines (descriptions, notes, comments, reasons): tabs and line breaks
  (``\\t \\n \\r``) are kept, every other control character is refused.

Both are plain ``pattern`` constraints, so they show in the OpenAPI document and clients (and schemathesis)
know them. :func:`marketplace.core.errors.validation_message` turns a mismatch into a readable message. The domain
packages (``listings``, ``payments``) cannot import this module: each declares the same two patterns next to its
schemas, and ``tests/test_text_inputs.py`` checks they are identical and that every string input of every
route carries one of them (or is on that test's explicit allow-list).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"

Line = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]
Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
