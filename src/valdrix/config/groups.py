"""One group of settings per domain (``settings.costs`` for costs), for that domain to read.

A group's field is read from ``env_prefix`` + the field's name in capitals
(``CostSettings.focus_close_days`` from ``VALDRIX_COSTS_FOCUS_CLOSE_DAYS``), or from the
variable ``env_names`` gives it where the two differ. Checks that span fields of one group live
in that group.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from valdrix.config.values import (
    TIER_NAMES,
    SettingsError,
    has_placeholder_word,
    parse_listen_address,
    split_commas,
)
from valdrix.kit.money import usd_text

# Virtual-hosted (bucket.s3[.region].amazonaws.com) or path-style (s3[.region].amazonaws.com/
# bucket) S3 object URLs, dualstack and China regions' .com.cn included; not website endpoints,
# which CloudFormation does not read.
S3_HTTPS_URL = re.compile(
    r"https://(?:[a-z0-9][a-z0-9.-]*\.)?s3(?![.-]website)(?:[.-][a-z0-9-]+){0,2}\.amazonaws\.com(?:\.cn)?/[^\s#?]+"
)
# A list given as one comma-separated variable ("10.0.0.1, 10.0.0.2"), not as JSON.
CommaSeparated = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]


class SettingsGroup(BaseModel):
    """The settings one domain reads."""

    model_config = ConfigDict(extra="forbid")

    env_prefix: ClassVar[str] = "VALDRIX_"
    env_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable ``field`` is read from."""
        return cls.env_names.get(field, (cls.env_prefix + field).upper())


class ApiSettings(SettingsGroup):
    """The HTTP API: where it listens, the URL users reach it at, what requests it accepts."""

    env_names: ClassVar[Mapping[str, str]] = {
        "host": "VALDRIX_API_HOST",
        "port": "VALDRIX_API_PORT",
    }

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    max_request_body_bytes: int = 1_048_576
    trusted_proxies: CommaSeparated = Field(default_factory=list)


class AuthSettings(SettingsGroup):
    """Sessions, password logins and external JWTs (OIDC)."""

    session_ttl_hours: int = 12
    login_max_failures_per_minute: int = 10  # per (client IP, email)
    login_max_failures_per_ip_per_minute: int = Field(default=20, ge=1)  # any emails, one IP
    # argon2 hashes at once per process: one core less than the machine has, so the event loop
    # keeps a core while logins queue.
    password_hash_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1, le=64
    )
    # argon2's cost for new password hashes: passes, and memory in KiB (RFC 9106's second
    # recommendation by default). Lower figures make passwords cheaper to guess from a leaked
    # database; the test suite lowers them, since it makes a password for each tenant.
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65_536, ge=64, le=4_194_304)

    oidc_hs256_secret: str | None = None
    oidc_jwks_url: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_tenant_claim: str = "valdrix_tenant_id"

    @model_validator(mode="after")
    def _check_oidc(self) -> AuthSettings:
        if self.oidc_hs256_secret is not None and (
            len(self.oidc_hs256_secret) < 32 or has_placeholder_word(self.oidc_hs256_secret)
        ):
            raise SettingsError(
                "VALDRIX_OIDC_HS256_SECRET must be at least 32 characters and not a placeholder"
            )
        if (self.oidc_hs256_secret or self.oidc_jwks_url) and not (
            self.oidc_issuer and self.oidc_audience
        ):
            raise SettingsError(
                "OIDC needs both VALDRIX_OIDC_ISSUER and VALDRIX_OIDC_AUDIENCE to be set"
            )
        return self


class RateLimitSettings(SettingsGroup):
    """API rate limits (see docs/operations/rate-limits.md): a token bucket per credential (an
    API key, or one person's sessions and tokens) and one per tenant, each refilled at
    ``*_per_second`` up to ``*_burst`` requests, shared by every API process."""

    env_prefix: ClassVar[str] = "VALDRIX_RATE_LIMIT_"

    credential_per_second: float = Field(default=20.0, gt=0)
    credential_burst: int = Field(default=600, ge=1)
    tenant_per_second: float = Field(default=50.0, gt=0)
    tenant_burst: int = Field(default=1500, ge=1)

    @property
    def full_after_seconds(self) -> float:
        """How long an empty bucket, of either kind, takes to fill up again."""
        return max(
            self.credential_burst / self.credential_per_second,
            self.tenant_burst / self.tenant_per_second,
        )


class MetricsSettings(SettingsGroup):
    """/metrics lists every tenant: on the API port only with this bearer token; or on its own
    listen address ("host:port") that only Prometheus can reach."""

    env_prefix: ClassVar[str] = "VALDRIX_METRICS_"

    token: SecretStr | None = None
    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen_address(value)
        return value

    @model_validator(mode="after")
    def _check_token(self) -> MetricsSettings:
        if self.token is not None:
            token = self.token.get_secret_value()
            if len(token) < 32 or has_placeholder_word(token):
                raise SettingsError(
                    "VALDRIX_METRICS_TOKEN must be at least 32 characters and not a placeholder"
                )
        return self

    @property
    def address(self) -> tuple[str, int] | None:
        """``listen`` as (host, port)."""
        return None if self.listen is None else parse_listen_address(self.listen)


class MailSettings(SettingsGroup):
    """Outgoing mail (invitations). Without a host, invitation tokens go back to the inviter and
    the accounts they create stay unproven (see docs/architecture.md)."""

    env_prefix: ClassVar[str] = "VALDRIX_SMTP_"
    env_names: ClassVar[Mapping[str, str]] = {"sender": "VALDRIX_SMTP_FROM"}

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "Valdrix <no-reply@valdrix.invalid>"
    starttls: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def enabled(self) -> bool:
        return self.host is not None


class JobSettings(SettingsGroup):
    """Jobs and scheduling (see docs/jobs.md)."""

    env_names: ClassVar[Mapping[str, str]] = {
        "stuck_after_seconds": "VALDRIX_JOB_STUCK_AFTER_SECONDS",
        "stall_timeout_seconds": "VALDRIX_JOB_STALL_TIMEOUT_SECONDS",
        "recovery_interval_seconds": "VALDRIX_JOB_RECOVERY_INTERVAL_SECONDS",
        "retention_hours": "VALDRIX_JOB_RETENTION_HOURS",
        "run_retention_days": "VALDRIX_JOB_RUN_RETENTION_DAYS",
    }

    tier_cadence_hours: dict[str, float] = Field(
        default_factory=lambda: {
            "enterprise": 4.0,
            "pro": 4.0,
            "growth": 12.0,
            "starter": 24.0,
            "free": 24.0,
        }
    )
    tenant_job_slots: int = Field(default=4, ge=1, le=64)
    scheduler_batch_size: int = Field(default=500, ge=1, le=5000)
    scheduler_tick_seconds: int = Field(default=60, ge=1, le=3600)
    stuck_after_seconds: int = Field(default=3600, ge=60)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    stall_timeout_seconds: float = Field(default=60.0, gt=0)
    recovery_interval_seconds: int = Field(default=30, ge=1, le=3600)
    retention_hours: int = Field(default=168, ge=1)
    run_retention_days: int = Field(default=90, ge=1)
    worker_shutdown_grace_seconds: float = Field(default=60.0, ge=0)
    worker_imports: CommaSeparated = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_cadences(self) -> JobSettings:
        missing = set(TIER_NAMES) - set(self.tier_cadence_hours)
        if missing or any(hours <= 0 for hours in self.tier_cadence_hours.values()):
            raise SettingsError(
                "VALDRIX_TIER_CADENCE_HOURS needs a positive number of hours for every tier"
                f" ({', '.join(TIER_NAMES)})"
            )
        return self


class AwsSettings(SettingsGroup):
    """How Valdrix reaches AWS (see docs/scanning.md)."""

    env_prefix: ClassVar[str] = "VALDRIX_AWS_"

    endpoint_url: str | None = None  # simulators only (moto); never set in production
    principal_arn: str | None = None  # the identity customers' roles must trust
    # Where the operator published `valdrix connections quick-create-template` (an S3 URL, the
    # only kind the CloudFormation console's quick-create accepts): the setup then offers a
    # quick-create link. The console opens in `cloudformation_region` (IAM roles are global).
    cloudformation_template_url: str | None = None
    cloudformation_region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")

    @field_validator("cloudformation_template_url")
    @classmethod
    def _check_template_url(cls, value: str | None) -> str | None:
        if value is not None and not S3_HTTPS_URL.fullmatch(value):
            raise SettingsError(
                "VALDRIX_AWS_CLOUDFORMATION_TEMPLATE_URL must be the https:// URL of an S3"
                " object (https://<bucket>.s3.<region>.amazonaws.com/<key>): CloudFormation's"
                " quick-create reads templates from S3 only"
            )
        return value

    @model_validator(mode="after")
    def _check_quick_create(self) -> AwsSettings:
        if self.cloudformation_template_url and not self.principal_arn:
            raise SettingsError(
                "VALDRIX_AWS_CLOUDFORMATION_TEMPLATE_URL needs VALDRIX_AWS_PRINCIPAL_ARN: the"
                " quick-create link fills in the principal customers' roles trust"
            )
        return self


class ScanSettings(SettingsGroup):
    """How much of the cloud a scan reads at once, and for how long (see docs/scanning.md)."""

    env_prefix: ClassVar[str] = "VALDRIX_SCAN_"

    concurrency: int = Field(default=32, ge=1, le=256)
    region_budget_seconds: float = Field(default=30.0, gt=0)
    budget_seconds: float = Field(default=300.0, gt=0)


class LlmSettings(SettingsGroup):
    """LLM analysis (see docs/llm.md). Analysis is enabled when an API key or a base URL is set."""

    env_prefix: ClassVar[str] = "VALDRIX_LLM_"

    base_url: str = "https://api.groq.com/openai/v1"
    api_key: SecretStr | None = None
    model: str = "llama-3.3-70b-versatile"
    provider_name: str | None = None  # metric label; the base URL's host by default
    fallback_base_url: str | None = None
    fallback_api_key: SecretStr | None = None
    fallback_model: str | None = None
    fallback_provider_name: str | None = None
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0)
    json_mode: bool = True
    max_output_tokens: int = Field(default=1500, ge=64, le=32_000)
    max_prompt_findings: int = Field(default=25, ge=1, le=200)
    max_prompt_bytes: int = Field(default=24_000, ge=2_000, le=500_000)
    prices_file: Path | None = None  # extra model prices (self-hosted models, new models)
    daily_cap_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("0.10"),
            "starter": Decimal("0.50"),
            "growth": Decimal("2.00"),
            "pro": Decimal("5.00"),
            "enterprise": Decimal("20.00"),
        }
    )
    monthly_limit_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("1.00"),
            "starter": Decimal("10.00"),
            "growth": Decimal("40.00"),
            "pro": Decimal("100.00"),
            "enterprise": Decimal("400.00"),
        }
    )
    # The most a tenant admin may set, per tier (operator-set; above it is refused).
    daily_cap_ceiling_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("1.00"),
            "starter": Decimal("5.00"),
            "growth": Decimal("20.00"),
            "pro": Decimal("50.00"),
            "enterprise": Decimal("200.00"),
        }
    )
    monthly_limit_ceiling_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("10.00"),
            "starter": Decimal("100.00"),
            "growth": Decimal("400.00"),
            "pro": Decimal("1000.00"),
            "enterprise": Decimal("4000.00"),
        }
    )
    spike_floor_usd: Decimal = Field(default=Decimal("1.00"), ge=0)
    reservation_ttl_seconds: float | None = Field(default=None, gt=0)
    retry_base_seconds: float = Field(default=60.0, gt=0)
    retry_cap_seconds: float = Field(default=1800.0, gt=0)
    retry_window_hours: float = Field(default=24.0, gt=0)

    @model_validator(mode="after")
    def _check_limits(self) -> LlmSettings:
        for name, limits in (
            ("VALDRIX_LLM_DAILY_CAP_USD", self.daily_cap_usd),
            ("VALDRIX_LLM_MONTHLY_LIMIT_USD", self.monthly_limit_usd),
            ("VALDRIX_LLM_DAILY_CAP_CEILING_USD", self.daily_cap_ceiling_usd),
            ("VALDRIX_LLM_MONTHLY_LIMIT_CEILING_USD", self.monthly_limit_ceiling_usd),
        ):
            if set(TIER_NAMES) - set(limits) or any(value < 0 for value in limits.values()):
                raise SettingsError(
                    f"{name} needs a non-negative amount for every tier ({', '.join(TIER_NAMES)})"
                )
        # A tier's default must be a limit its admins could have set themselves.
        for variable, defaults, ceilings in (
            ("VALDRIX_LLM_DAILY_CAP", self.daily_cap_usd, self.daily_cap_ceiling_usd),
            ("VALDRIX_LLM_MONTHLY_LIMIT", self.monthly_limit_usd, self.monthly_limit_ceiling_usd),
        ):
            for tier in TIER_NAMES:
                if ceilings[tier] < defaults[tier]:
                    raise SettingsError(
                        f"{variable}_CEILING_USD for {tier} (${usd_text(ceilings[tier])}) is below"
                        f" the tier's {variable}_USD (${usd_text(defaults[tier])})"
                    )
        if self.fallback_base_url and not self.fallback_model:
            raise SettingsError("VALDRIX_LLM_FALLBACK_BASE_URL needs VALDRIX_LLM_FALLBACK_MODEL")
        return self

    @property
    def enabled(self) -> bool:
        """A provider is configured: an API key, or an explicit base URL (Ollama needs no key)."""
        return self.api_key is not None or "base_url" in self.model_fields_set

    @property
    def reservation_ttl(self) -> float:
        """How long a reservation may stay open before the sweeper takes it for a crashed call:
        every attempt of the primary and fallback timing out, plus a margin."""
        if self.reservation_ttl_seconds is not None:
            return self.reservation_ttl_seconds
        attempt = self.connect_timeout_seconds + self.read_timeout_seconds
        return 2 * attempt * (self.max_retries + 1) + 60


class CostSettings(SettingsGroup):
    """Cost data (see docs/costs.md)."""

    env_prefix: ClassVar[str] = "VALDRIX_COSTS_"

    restatement_floor: Decimal = Field(default=Decimal("1.00"), ge=0)
    focus_close_days: int = Field(default=5, ge=0, le=60)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    ce_lookback_days: int = Field(default=35, ge=1, le=365)
    # Bounds on what one import may expand to (a small gzip can hold gigabytes).
    max_decompressed_bytes: int = Field(default=4 * 1024**3, ge=1024)
    max_rows_per_import: int = Field(default=20_000_000, ge=1)
