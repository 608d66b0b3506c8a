from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketplace.core.settings import DEFAULT_JWT_SECRET, Settings


def test_production_refuses_the_default_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(environment="production", jwt_secret=DEFAULT_JWT_SECRET)


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="production", jwt_secret="short")


def test_production_accepts_a_real_secret() -> None:
    assert Settings(environment="production", jwt_secret="s" * 40).environment == "production"


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_PORT", "9999")
    monkeypatch.setenv("MARKETPLACE_AUTH_RATE_LIMIT", "3")
    s = Settings()
    assert s.port == 9999 and s.auth_rate_limit == 3
