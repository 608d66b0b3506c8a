"""Tables of the document store (filled in by the documents work)."""

from __future__ import annotations
