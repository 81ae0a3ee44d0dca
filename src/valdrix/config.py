"""Settings read from the environment (prefix ``VALDRIX_``).

Outside demo mode the service refuses to start with missing or placeholder secrets; the
demo creates what it needs under ``VALDRIX_HOME`` and says so.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from valdrix.kit.money import usd_text

PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "secret", "xxx", "todo")
KEY_FILE_NAME = "encryption.keys"
# Service tiers, cheapest first (the Tier enum in tenancy.models mirrors these).
TIER_NAMES = ("free", "starter", "growth", "pro", "enterprise")


class SettingsError(ValueError):
    """A configuration problem explained in one line, for humans."""


def _default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "valdrix"


def parse_encryption_keys(raw: str) -> list[tuple[str, bytes]]:
    """Parse ``kid:base64key,kid:base64key`` (first key is the active one)."""
    keys: list[tuple[str, bytes]] = []
    for index, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not encoded:
            raise SettingsError(
                f"VALDRIX_ENCRYPTION_KEYS entry {index + 1} must look like 'kid:base64key'"
            )
        try:
            key: bytes | None = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = None
        if _is_placeholder_key(encoded, key):
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key '{kid}' is a placeholder")
        if key is None:
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key '{kid}' is not base64")
        if len(key) != 32:
            raise SettingsError(
                f"VALDRIX_ENCRYPTION_KEYS key '{kid}' must be 32 bytes (AES-256), got {len(key)}"
            )
        if any(kid == existing for existing, _ in keys):
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key id '{kid}' appears twice")
        keys.append((kid, key))
    return keys


def _is_placeholder_key(encoded: str, key: bytes | None) -> bool:
    """A marker word in text that is no 32-byte key, or a 32-byte key with almost no entropy.

    Marker words are not searched in real keys: random base64 holds "xxx" or "todo" about once
    in 700 keys.
    """
    if key is not None and len(key) == 32:
        return len(set(key)) < 16  # 32 random bytes have ~30 distinct values
    return any(marker in encoded.lower() for marker in PLACEHOLDER_MARKERS)


_PLACEHOLDER_WORD = re.compile(
    r"(?:^|[^a-z0-9])(?:" + "|".join(map(re.escape, PLACEHOLDER_MARKERS)) + r")(?:[^a-z0-9]|$)"
)


def _has_placeholder_word(value: str) -> bool:
    """A marker standing as its own word ("my-secret", "changeme"), not inside random text,
    or a value with almost no variety ("changemechangeme...", "xxxxxxxx...")."""
    return bool(_PLACEHOLDER_WORD.search(value.lower())) or len(set(value.lower())) < 10


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (an IPv6 host in brackets: ``[::1]:9100``) as (host, port)."""
    host, _, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs its brackets, or its last group reads as the port
    if (
        not host
        or any(char.isspace() for char in value)
        or not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)
    ):
        raise SettingsError(
            f"VALDRIX_METRICS_LISTEN must look like host:port (10.0.0.5:9100, [::1]:9100),"
            f" got {value!r}"
        )
    return host, int(port)


def generate_key_entry() -> str:
    kid = "k" + secrets.token_hex(4)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VALDRIX_", extra="ignore")

    demo: bool = False
    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    migration_database_url: str | None = None
    encryption_keys: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"

    session_ttl_hours: int = 12
    login_max_failures_per_minute: int = 10  # per (client IP, email)
    login_max_failures_per_ip_per_minute: int = Field(default=20, ge=1)  # any emails, one IP
    # argon2 hashes at once per process: one core less than the machine has, so the event loop
    # keeps a core while logins queue.
    password_hash_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1, le=64
    )
    # /metrics lists every tenant: on the API port only with this bearer token; or on its own
    # listen address ("host:port") that only Prometheus can reach.
    metrics_token: SecretStr | None = None
    metrics_listen: str | None = None

    # Outgoing mail (invitations). Without a host, invitation tokens go back to the inviter and
    # the accounts they create stay unproven (see docs/architecture.md).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Valdrix <no-reply@valdrix.invalid>"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    max_request_body_bytes: int = 1_048_576
    db_pool_size: int = 10

    oidc_hs256_secret: str | None = None
    oidc_jwks_url: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_tenant_claim: str = "valdrix_tenant_id"

    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Jobs and scheduling (see docs/jobs.md).
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
    job_stuck_after_seconds: int = Field(default=3600, ge=60)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    job_stall_timeout_seconds: float = Field(default=60.0, gt=0)
    job_recovery_interval_seconds: int = Field(default=30, ge=1, le=3600)
    job_retention_hours: int = Field(default=168, ge=1)
    job_run_retention_days: int = Field(default=90, ge=1)
    worker_shutdown_grace_seconds: float = Field(default=60.0, ge=0)
    worker_imports: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Cloud access and scans (see docs/scanning.md).
    aws_endpoint_url: str | None = None  # simulators only (moto); never set in production
    aws_principal_arn: str | None = None  # the identity customers' roles must trust
    scan_concurrency: int = Field(default=32, ge=1, le=256)
    scan_region_budget_seconds: float = Field(default=30.0, gt=0)
    scan_budget_seconds: float = Field(default=300.0, gt=0)

    # LLM analysis (see docs/llm.md). Analysis is enabled when an API key or a base URL is set.
    llm_base_url: str = "https://api.groq.com/openai/v1"
    llm_api_key: SecretStr | None = None
    llm_model: str = "llama-3.3-70b-versatile"
    llm_provider_name: str | None = None  # metric label; the base URL's host by default
    llm_fallback_base_url: str | None = None
    llm_fallback_api_key: SecretStr | None = None
    llm_fallback_model: str | None = None
    llm_fallback_provider_name: str | None = None
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    llm_read_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_circuit_failure_threshold: int = Field(default=5, ge=1)
    llm_circuit_cooldown_seconds: float = Field(default=30.0, gt=0)
    llm_json_mode: bool = True
    llm_max_output_tokens: int = Field(default=1500, ge=64, le=32_000)
    llm_max_prompt_findings: int = Field(default=25, ge=1, le=200)
    llm_max_prompt_bytes: int = Field(default=24_000, ge=2_000, le=500_000)
    llm_prices_file: Path | None = None  # extra model prices (self-hosted models, new models)
    llm_daily_cap_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("0.10"),
            "starter": Decimal("0.50"),
            "growth": Decimal("2.00"),
            "pro": Decimal("5.00"),
            "enterprise": Decimal("20.00"),
        }
    )
    llm_monthly_limit_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("1.00"),
            "starter": Decimal("10.00"),
            "growth": Decimal("40.00"),
            "pro": Decimal("100.00"),
            "enterprise": Decimal("400.00"),
        }
    )
    # The most a tenant admin may set, per tier (operator-set; above it is refused).
    llm_daily_cap_ceiling_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("1.00"),
            "starter": Decimal("5.00"),
            "growth": Decimal("20.00"),
            "pro": Decimal("50.00"),
            "enterprise": Decimal("200.00"),
        }
    )
    llm_monthly_limit_ceiling_usd: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "free": Decimal("10.00"),
            "starter": Decimal("100.00"),
            "growth": Decimal("400.00"),
            "pro": Decimal("1000.00"),
            "enterprise": Decimal("4000.00"),
        }
    )
    llm_spike_floor_usd: Decimal = Field(default=Decimal("1.00"), ge=0)
    llm_reservation_ttl_seconds: float | None = Field(default=None, gt=0)
    llm_retry_base_seconds: float = Field(default=60.0, gt=0)
    llm_retry_cap_seconds: float = Field(default=1800.0, gt=0)
    llm_retry_window_hours: float = Field(default=24.0, gt=0)

    # Cost data (see docs/costs.md).
    costs_restatement_floor: Decimal = Field(default=Decimal("1.00"), ge=0)
    costs_focus_close_days: int = Field(default=5, ge=0, le=60)
    costs_max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    costs_ce_lookback_days: int = Field(default=35, ge=1, le=365)
    # Bounds on what one import may expand to (a small gzip can hold gigabytes).
    costs_max_decompressed_bytes: int = Field(default=4 * 1024**3, ge=1024)
    costs_max_rows_per_import: int = Field(default=20_000_000, ge=1)

    @field_validator("metrics_listen")
    @classmethod
    def _check_metrics_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen_address(value)
        return value

    @field_validator("trusted_proxies", "worker_imports", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.oidc_hs256_secret is not None and (
            len(self.oidc_hs256_secret) < 32 or _has_placeholder_word(self.oidc_hs256_secret)
        ):
            raise SettingsError(
                "VALDRIX_OIDC_HS256_SECRET must be at least 32 characters and not a placeholder"
            )
        if self.metrics_token is not None:
            token = self.metrics_token.get_secret_value()
            if len(token) < 32 or _has_placeholder_word(token):
                raise SettingsError(
                    "VALDRIX_METRICS_TOKEN must be at least 32 characters and not a placeholder"
                )
        if (self.oidc_hs256_secret or self.oidc_jwks_url) and not (
            self.oidc_issuer and self.oidc_audience
        ):
            raise SettingsError(
                "OIDC needs both VALDRIX_OIDC_ISSUER and VALDRIX_OIDC_AUDIENCE to be set"
            )
        missing = set(TIER_NAMES) - set(self.tier_cadence_hours)
        if missing or any(hours <= 0 for hours in self.tier_cadence_hours.values()):
            raise SettingsError(
                "VALDRIX_TIER_CADENCE_HOURS needs a positive number of hours for every tier"
                f" ({', '.join(TIER_NAMES)})"
            )
        for name, limits in (
            ("VALDRIX_LLM_DAILY_CAP_USD", self.llm_daily_cap_usd),
            ("VALDRIX_LLM_MONTHLY_LIMIT_USD", self.llm_monthly_limit_usd),
            ("VALDRIX_LLM_DAILY_CAP_CEILING_USD", self.llm_daily_cap_ceiling_usd),
            ("VALDRIX_LLM_MONTHLY_LIMIT_CEILING_USD", self.llm_monthly_limit_ceiling_usd),
        ):
            if set(TIER_NAMES) - set(limits) or any(value < 0 for value in limits.values()):
                raise SettingsError(
                    f"{name} needs a non-negative amount for every tier ({', '.join(TIER_NAMES)})"
                )
        # A tier's default must be a limit its admins could have set themselves.
        for variable, defaults, ceilings in (
            ("VALDRIX_LLM_DAILY_CAP", self.llm_daily_cap_usd, self.llm_daily_cap_ceiling_usd),
            (
                "VALDRIX_LLM_MONTHLY_LIMIT",
                self.llm_monthly_limit_usd,
                self.llm_monthly_limit_ceiling_usd,
            ),
        ):
            for tier in TIER_NAMES:
                if ceilings[tier] < defaults[tier]:
                    raise SettingsError(
                        f"{variable}_CEILING_USD for {tier} (${usd_text(ceilings[tier])}) is below"
                        f" the tier's {variable}_USD (${usd_text(defaults[tier])})"
                    )
        if self.llm_fallback_base_url and not self.llm_fallback_model:
            raise SettingsError("VALDRIX_LLM_FALLBACK_BASE_URL needs VALDRIX_LLM_FALLBACK_MODEL")
        if bool(self.database_url) != bool(self.migration_database_url):
            raise SettingsError(
                "set both VALDRIX_DATABASE_URL (app role) and VALDRIX_MIGRATION_DATABASE_URL"
                " (owner role), or neither to use the embedded database"
            )
        return self

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``metrics_listen`` as (host, port)."""
        return None if self.metrics_listen is None else parse_listen_address(self.metrics_listen)

    @property
    def mail_enabled(self) -> bool:
        return self.smtp_host is not None

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def llm_enabled(self) -> bool:
        """A provider is configured: an API key, or an explicit base URL (Ollama needs no key)."""
        return self.llm_api_key is not None or "llm_base_url" in self.model_fields_set

    @property
    def llm_reservation_ttl(self) -> float:
        """How long a reservation may stay open before the sweeper takes it for a crashed call:
        every attempt of the primary and fallback timing out, plus a margin."""
        if self.llm_reservation_ttl_seconds is not None:
            return self.llm_reservation_ttl_seconds
        attempt = self.llm_connect_timeout_seconds + self.llm_read_timeout_seconds
        return 2 * attempt * (self.llm_max_retries + 1) + 60

    @property
    def key_file(self) -> Path:
        return self.home / KEY_FILE_NAME

    @cached_property
    def keyring(self) -> list[tuple[str, bytes]]:
        """Encryption keys, active first. Demo mode creates a key file if none is configured."""
        raw = self.encryption_keys
        if not raw and self.demo:
            raw = ensure_demo_key_file(self.key_file)
        if not raw:
            raise SettingsError(
                "VALDRIX_ENCRYPTION_KEYS is not set: create one with `valdrix keys generate`"
                " (only `valdrix demo` makes its own)"
            )
        keys = parse_encryption_keys(raw)
        if not keys:
            raise SettingsError("VALDRIX_ENCRYPTION_KEYS holds no key")
        return keys

    def validate_for_startup(self) -> None:
        """Raise SettingsError if secrets needed to run are missing or placeholders."""
        _ = self.keyring


def ensure_demo_key_file(path: Path) -> str:
    """Read the demo key file, creating it with mode 0600 on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_entry() + "\n")
    return path.read_text().strip()


def load_settings() -> Settings:
    try:
        return Settings()
    except SettingsError:
        raise
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise SettingsError(_one_line(exc)) from exc


def _one_line(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc))
        if isinstance(first.get("ctx", {}).get("error"), SettingsError):
            return str(first["ctx"]["error"])
        return f"VALDRIX_{field.upper()}: {message}" if field else message
    return str(exc)
