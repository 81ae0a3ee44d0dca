"""Settings from the environment: secrets refused when missing or placeholders, demo key file."""

from __future__ import annotations

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


def test_outside_the_demo_an_existing_demo_key_file_is_not_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir()
    (home / KEY_FILE_NAME).write_text(generate_key_entry())
    message = refusal(monkeypatch)
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
    assert load_settings().oidc_hs256_secret == strong


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
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("VALDRIX_TRUSTED_PROXIES", " 10.0.0.1, 10.0.0.2 ,,fd00::1,")
    assert load_settings().trusted_proxies == ["10.0.0.1", "10.0.0.2", "fd00::1"]


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
    assert load_settings().tier_cadence_hours["enterprise"] == 1


def test_tier_enum_matches_the_configured_tier_names() -> None:
    from valdrix.config import TIER_NAMES
    from valdrix.tenancy.models import Tier

    assert tuple(t.value for t in Tier) == TIER_NAMES


def test_llm_is_disabled_until_a_key_or_base_url_is_set():
    assert Settings().llm_enabled is False
    assert Settings(llm_api_key="gsk_" + "a1b2" * 10).llm_enabled is True
    assert Settings(llm_base_url="http://localhost:11434/v1").llm_enabled is True


def test_llm_limits_need_every_tier_and_a_fallback_needs_its_model():
    with pytest.raises(ValueError, match="VALDRIX_LLM_DAILY_CAP_USD"):
        Settings(llm_daily_cap_usd={"free": "1"})
    with pytest.raises(ValueError, match="VALDRIX_LLM_FALLBACK_MODEL"):
        Settings(llm_fallback_base_url="https://api.openai.com/v1")


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
