"""Settings from the environment: secrets refused when missing or placeholders, demo key file."""

from __future__ import annotations

import operator
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from valdrix.config import (
    KEY_FILE_NAME,
    Settings,
    SettingsError,
    environment_variables,
    generate_key_entry,
    load_settings,
    parse_encryption_keys,
)

OIDC = {"VALDRIX_OIDC_ISSUER": "https://id.example", "VALDRIX_OIDC_AUDIENCE": "valdrix"}


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no ``VALDRIX_`` setting but a private data directory."""
    for name in list(os.environ):
        if name.startswith("VALDRIX_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("VALDRIX_HOME", str(home))
    return home


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings().validate_for_startup()
    message = str(refused.value)
    assert "\n" not in message, message
    return message


def test_missing_encryption_keys_outside_the_demo_stop_start_up_with_one_line(home: Path) -> None:
    settings = load_settings()
    with pytest.raises(SettingsError) as refused:
        settings.validate_for_startup()
    message = str(refused.value)
    assert message.startswith("VALDRIX_ENCRYPTION_KEYS is not set")
    assert "valdrix keys generate" in message
    assert "\n" not in message
    assert not (home / KEY_FILE_NAME).exists()


def test_placeholder_encryption_key_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, VALDRIX_ENCRYPTION_KEYS="k1:changeme")
    assert message == "VALDRIX_ENCRYPTION_KEYS key 'k1' is a placeholder"


def test_configured_keys_are_used_active_first(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = generate_key_entry(), generate_key_entry()
    monkeypatch.setenv("VALDRIX_ENCRYPTION_KEYS", f"{new},{old}")
    assert load_settings().keyring == parse_encryption_keys(f"{new},{old}")


@pytest.mark.usefixtures("permissive_umask")
def test_demo_creates_a_private_key_file_once_and_reuses_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALDRIX_DEMO", "1")
    first = load_settings()
    first.validate_for_startup()
    key_file = home / KEY_FILE_NAME
    assert first.key_file == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_text()
    assert first.keyring == parse_encryption_keys(content)

    second = load_settings()
    assert second.keyring == first.keyring
    assert key_file.read_text() == content


def test_demo_with_configured_keys_writes_no_key_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = generate_key_entry()
    monkeypatch.setenv("VALDRIX_DEMO", "1")
    monkeypatch.setenv("VALDRIX_ENCRYPTION_KEYS", entry)
    assert load_settings().keyring == parse_encryption_keys(entry)
    assert not (home / KEY_FILE_NAME).exists()


def test_on_the_embedded_database_the_demos_key_file_is_used_when_no_key_is_set(
    home: Path,
) -> None:
    home.mkdir()
    entry = generate_key_entry()
    (home / KEY_FILE_NAME).write_text(entry + "\n")
    settings = load_settings()
    assert settings.keys_from_key_file
    assert settings.keyring == parse_encryption_keys(entry)


def test_outside_the_embedded_database_the_demos_key_file_is_not_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir()
    (home / KEY_FILE_NAME).write_text(generate_key_entry())
    message = refusal(
        monkeypatch,
        VALDRIX_DATABASE_URL="postgresql://valdrix_app@db.example/valdrix",
        VALDRIX_MIGRATION_DATABASE_URL="postgresql://valdrix_owner@db.example/valdrix",
    )
    assert message.startswith("VALDRIX_ENCRYPTION_KEYS is not set")


@pytest.mark.parametrize("only", ["VALDRIX_DATABASE_URL", "VALDRIX_MIGRATION_DATABASE_URL"])
def test_setting_only_one_of_the_two_database_urls_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, only: str
) -> None:
    monkeypatch.setenv(only, "postgresql://someone@db.example/valdrix")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "VALDRIX_DATABASE_URL" in message and "VALDRIX_MIGRATION_DATABASE_URL" in message
    assert "\n" not in message


def test_both_database_urls_select_an_external_database_and_neither_the_embedded_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().embedded
    monkeypatch.setenv("VALDRIX_DATABASE_URL", "postgresql://valdrix_app@db.example/valdrix")
    monkeypatch.setenv(
        "VALDRIX_MIGRATION_DATABASE_URL", "postgresql://valdrix_owner@db.example/valdrix"
    )
    assert not load_settings().embedded


@pytest.mark.parametrize(
    "secret",
    ["short", "x" * 31, "changeme" * 5, "our-oidc-signing-secret-goes-here-please", "TODO" * 10],
    ids=["short", "31-chars", "changeme", "says-secret", "todo"],
)
def test_short_or_placeholder_oidc_secret_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("VALDRIX_OIDC_HS256_SECRET", secret)
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == (
        "VALDRIX_OIDC_HS256_SECRET must be at least 32 characters and not a placeholder"
    )


def test_a_strong_oidc_secret_with_issuer_and_audience_is_accepted(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strong = secrets.token_hex(32)
    monkeypatch.setenv("VALDRIX_OIDC_HS256_SECRET", strong)
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    assert load_settings().auth.oidc_hs256_secret == strong


@pytest.mark.parametrize("missing", list(OIDC))
def test_oidc_without_issuer_or_audience_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setenv("VALDRIX_OIDC_JWKS_URL", "https://id.example/.well-known/jwks.json")
    for name, value in OIDC.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(
        SettingsError, match="needs both VALDRIX_OIDC_ISSUER and VALDRIX_OIDC_AUDIENCE"
    ):
        load_settings()


def test_trusted_proxies_parse_from_a_comma_separated_list(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().api.trusted_proxies == []
    monkeypatch.setenv("VALDRIX_TRUSTED_PROXIES", " 10.0.0.1, 10.0.0.2 ,,fd00::1,")
    assert load_settings().api.trusted_proxies == ["10.0.0.1", "10.0.0.2", "fd00::1"]


def test_a_malformed_setting_is_named_in_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALDRIX_API_PORT", "eighty")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("VALDRIX_API_PORT: ")
    assert "\n" not in message


def test_every_tier_needs_a_positive_cadence(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALDRIX_TIER_CADENCE_HOURS", '{"free": 24, "pro": 4}')
    with pytest.raises(SettingsError, match="every tier"):
        load_settings()
    monkeypatch.setenv(
        "VALDRIX_TIER_CADENCE_HOURS",
        '{"free": 48, "starter": 24, "growth": 6, "pro": 2, "enterprise": 1}',
    )
    assert load_settings().jobs.tier_cadence_hours["enterprise"] == 1


def test_tier_enum_matches_the_configured_tier_names() -> None:
    from valdrix.config import TIER_NAMES
    from valdrix.tenancy.models import Tier

    assert tuple(t.value for t in Tier) == TIER_NAMES


def test_llm_is_disabled_until_a_key_or_base_url_is_set():
    assert Settings().llm.enabled is False
    assert Settings(llm={"api_key": "gsk_" + "a1b2" * 10}).llm.enabled is True
    assert Settings(llm={"base_url": "http://localhost:11434/v1"}).llm.enabled is True


def test_llm_limits_need_every_tier_and_a_fallback_needs_its_model():
    with pytest.raises(ValueError, match="VALDRIX_LLM_DAILY_CAP_USD"):
        Settings(llm={"daily_cap_usd": {"free": "1"}})
    with pytest.raises(ValueError, match="VALDRIX_LLM_FALLBACK_MODEL"):
        Settings(llm={"fallback_base_url": "https://api.openai.com/v1"})


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        (
            "VALDRIX_LLM_DAILY_CAP_CEILING_USD",
            "VALDRIX_LLM_DAILY_CAP_CEILING_USD for free ($0.05) is below the tier's"
            " VALDRIX_LLM_DAILY_CAP_USD ($0.10)",
        ),
        (
            "VALDRIX_LLM_MONTHLY_LIMIT_CEILING_USD",
            "VALDRIX_LLM_MONTHLY_LIMIT_CEILING_USD for free ($0.05) is below the tier's"
            " VALDRIX_LLM_MONTHLY_LIMIT_USD ($1.00)",
        ),
    ],
)
def test_an_llm_ceiling_below_its_tier_default_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, message: str
) -> None:
    ceilings = '{"free": "0.05", "starter": 100, "growth": 400, "pro": 1000, "enterprise": 4000}'
    monkeypatch.setenv(variable, ceilings)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == message
    monkeypatch.setenv(variable, ceilings.replace('"0.05"', "10"))
    assert load_settings()


# Every variable Valdrix reads. Grouping the settings by domain changed none of them.
VARIABLES = """
    VALDRIX_DEMO VALDRIX_HOME VALDRIX_DATABASE_URL VALDRIX_MIGRATION_DATABASE_URL
    VALDRIX_DB_POOL_SIZE VALDRIX_DB_SLOW_STATEMENT_MS VALDRIX_ENCRYPTION_KEYS VALDRIX_LOG_FORMAT
    VALDRIX_LOG_LEVEL
    VALDRIX_API_HOST VALDRIX_API_PORT VALDRIX_PUBLIC_URL VALDRIX_MAX_REQUEST_BODY_BYTES
    VALDRIX_TRUSTED_PROXIES VALDRIX_SESSION_TTL_HOURS VALDRIX_LOGIN_MAX_FAILURES_PER_MINUTE
    VALDRIX_LOGIN_MAX_FAILURES_PER_IP_PER_MINUTE VALDRIX_PASSWORD_HASH_CONCURRENCY
    VALDRIX_PASSWORD_HASH_TIME_COST VALDRIX_PASSWORD_HASH_MEMORY_KIB
    VALDRIX_RATE_LIMIT_CREDENTIAL_PER_SECOND VALDRIX_RATE_LIMIT_CREDENTIAL_BURST
    VALDRIX_RATE_LIMIT_TENANT_PER_SECOND VALDRIX_RATE_LIMIT_TENANT_BURST
    VALDRIX_OIDC_HS256_SECRET VALDRIX_OIDC_JWKS_URL VALDRIX_OIDC_ISSUER VALDRIX_OIDC_AUDIENCE
    VALDRIX_OIDC_TENANT_CLAIM VALDRIX_METRICS_TOKEN VALDRIX_METRICS_LISTEN VALDRIX_SMTP_HOST
    VALDRIX_SMTP_PORT VALDRIX_SMTP_USERNAME VALDRIX_SMTP_PASSWORD VALDRIX_SMTP_FROM
    VALDRIX_SMTP_STARTTLS VALDRIX_SMTP_TIMEOUT_SECONDS VALDRIX_TIER_CADENCE_HOURS
    VALDRIX_TENANT_JOB_SLOTS VALDRIX_SCHEDULER_BATCH_SIZE VALDRIX_SCHEDULER_TICK_SECONDS
    VALDRIX_JOB_STUCK_AFTER_SECONDS VALDRIX_WORKER_HEARTBEAT_SECONDS
    VALDRIX_JOB_STALL_TIMEOUT_SECONDS VALDRIX_JOB_RECOVERY_INTERVAL_SECONDS
    VALDRIX_JOB_RETENTION_HOURS VALDRIX_JOB_RUN_RETENTION_DAYS
    VALDRIX_WORKER_SHUTDOWN_GRACE_SECONDS VALDRIX_WORKER_IMPORTS VALDRIX_AWS_ENDPOINT_URL
    VALDRIX_AWS_PRINCIPAL_ARN VALDRIX_AWS_CLOUDFORMATION_TEMPLATE_URL
    VALDRIX_AWS_CLOUDFORMATION_REGION
    VALDRIX_SCAN_CONCURRENCY VALDRIX_SCAN_REGION_BUDGET_SECONDS
    VALDRIX_SCAN_BUDGET_SECONDS VALDRIX_LLM_BASE_URL VALDRIX_LLM_API_KEY VALDRIX_LLM_MODEL
    VALDRIX_LLM_PROVIDER_NAME VALDRIX_LLM_FALLBACK_BASE_URL VALDRIX_LLM_FALLBACK_API_KEY
    VALDRIX_LLM_FALLBACK_MODEL VALDRIX_LLM_FALLBACK_PROVIDER_NAME
    VALDRIX_LLM_CONNECT_TIMEOUT_SECONDS VALDRIX_LLM_READ_TIMEOUT_SECONDS
    VALDRIX_LLM_MAX_RETRIES VALDRIX_LLM_CIRCUIT_FAILURE_THRESHOLD
    VALDRIX_LLM_CIRCUIT_COOLDOWN_SECONDS VALDRIX_LLM_JSON_MODE VALDRIX_LLM_MAX_OUTPUT_TOKENS
    VALDRIX_LLM_MAX_PROMPT_FINDINGS VALDRIX_LLM_MAX_PROMPT_BYTES VALDRIX_LLM_PRICES_FILE
    VALDRIX_LLM_DAILY_CAP_USD VALDRIX_LLM_MONTHLY_LIMIT_USD VALDRIX_LLM_DAILY_CAP_CEILING_USD
    VALDRIX_LLM_MONTHLY_LIMIT_CEILING_USD VALDRIX_LLM_SPIKE_FLOOR_USD
    VALDRIX_LLM_RESERVATION_TTL_SECONDS VALDRIX_LLM_RETRY_BASE_SECONDS
    VALDRIX_LLM_RETRY_CAP_SECONDS VALDRIX_LLM_RETRY_WINDOW_HOURS
    VALDRIX_COSTS_RESTATEMENT_FLOOR VALDRIX_COSTS_FOCUS_CLOSE_DAYS
    VALDRIX_COSTS_MAX_UPLOAD_BYTES VALDRIX_COSTS_CE_LOOKBACK_DAYS
    VALDRIX_COSTS_MAX_DECOMPRESSED_BYTES VALDRIX_COSTS_MAX_ROWS_PER_IMPORT
""".split()  # noqa: SIM905 (a list of 81 names reads better as text)


def test_settings_are_read_from_exactly_these_variables() -> None:
    assert sorted(environment_variables()) == sorted(VARIABLES)


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("VALDRIX_COSTS_FOCUS_CLOSE_DAYS", "9", "costs.focus_close_days", 9),
        ("VALDRIX_JOB_STUCK_AFTER_SECONDS", "120", "jobs.stuck_after_seconds", 120),
        (
            "VALDRIX_WORKER_IMPORTS",
            "acme.jobs, acme.more",
            "jobs.worker_imports",
            ["acme.jobs", "acme.more"],
        ),
        ("VALDRIX_SMTP_FROM", "Ops <ops@example.com>", "mail.sender", "Ops <ops@example.com>"),
        ("VALDRIX_API_HOST", "10.0.0.7", "api.host", "10.0.0.7"),
        ("VALDRIX_SCAN_CONCURRENCY", "8", "scans.concurrency", 8),
        ("VALDRIX_LLM_MODEL", "llama-3.1-8b-instant", "llm.model", "llama-3.1-8b-instant"),
        ("VALDRIX_DB_POOL_SIZE", "3", "db_pool_size", 3),
    ],
)
def test_a_variable_reaches_its_setting_in_its_group(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    setting: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, value)
    assert operator.attrgetter(setting)(load_settings()) == expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "VALDRIX_COSTS_FOCUS_CLOSE_DAYS",
            "61",
            "VALDRIX_COSTS_FOCUS_CLOSE_DAYS: Input should be less than or equal to 60",
        ),
        (
            "VALDRIX_JOB_STUCK_AFTER_SECONDS",
            "59",
            "VALDRIX_JOB_STUCK_AFTER_SECONDS: Input should be greater than or equal to 60",
        ),
        (
            "VALDRIX_LLM_DAILY_CAP_USD",
            '{"free": "lots"}',
            "VALDRIX_LLM_DAILY_CAP_USD.FREE: Input should be a valid decimal",
        ),
    ],
)
def test_an_invalid_value_is_refused_in_one_line_naming_its_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == message


def test_arguments_take_precedence_over_variables_field_by_field(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALDRIX_LLM_MODEL", "from-the-environment")
    monkeypatch.setenv("VALDRIX_LLM_MAX_RETRIES", "7")
    settings = Settings(llm={"max_retries": 1})
    assert (settings.llm.model, settings.llm.max_retries) == ("from-the-environment", 1)


def test_a_changed_copy_keeps_the_rest_and_checks_what_changes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALDRIX_COSTS_MAX_UPLOAD_BYTES", "4096")
    settings = load_settings()
    changed = settings.updated(costs={"focus_close_days": 3})
    assert (changed.costs.focus_close_days, changed.costs.max_upload_bytes) == (3, 4096)
    assert settings.costs.focus_close_days == 5
    with pytest.raises(ValueError, match="less than or equal to 60"):
        settings.updated(costs={"focus_close_days": 61})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        settings.updated(costs={"close_days": 3})
    with pytest.raises(TypeError, match="costs_focus_close_days"):
        settings.updated(costs_focus_close_days=3)


def test_a_changed_copy_with_other_keys_uses_them(home: Path) -> None:
    old, new = generate_key_entry(), generate_key_entry()
    settings = Settings(encryption_keys=old)
    assert settings.keyring == parse_encryption_keys(old)
    assert settings.updated(encryption_keys=new).keyring == parse_encryption_keys(new)
