"""Fixtures of the make + verify tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace.core.settings import Settings


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The documents' blobs (uploads, signed reports, issued PDFs) in a fresh directory per test."""
    settings.data_dir = tmp_path
    return settings
