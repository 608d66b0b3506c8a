"""Documents tests keep their blobs in a fresh directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketplace.core.settings import Settings


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.data_dir = tmp_path
    return settings
