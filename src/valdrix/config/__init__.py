"""Settings read from the environment (prefix ``VALDRIX_``).

``Settings`` holds a small core (data directory, database, encryption keys, logging, demo mode)
and one group per domain (``groups.py``), for that domain to read:
``settings.costs.focus_close_days`` is ``VALDRIX_COSTS_FOCUS_CLOSE_DAYS``. Outside demo mode the
service refuses to start with missing or placeholder secrets; the demo creates what it needs
under ``VALDRIX_HOME`` and says so.
"""

from valdrix.config.groups import (
    ApiSettings,
    AuthSettings,
    AwsSettings,
    CostSettings,
    JobSettings,
    LlmSettings,
    MailSettings,
    MetricsSettings,
    RateLimitSettings,
    ScanSettings,
    SettingsGroup,
)
from valdrix.config.settings import Settings, environment_variables, load_settings
from valdrix.config.values import (
    KEY_FILE_NAME,
    PLACEHOLDER_MARKERS,
    TIER_NAMES,
    SettingsError,
    ensure_demo_key_file,
    generate_key_entry,
    parse_encryption_keys,
    parse_listen_address,
)

__all__ = [
    "KEY_FILE_NAME",
    "PLACEHOLDER_MARKERS",
    "TIER_NAMES",
    "ApiSettings",
    "AuthSettings",
    "AwsSettings",
    "CostSettings",
    "JobSettings",
    "LlmSettings",
    "MailSettings",
    "MetricsSettings",
    "RateLimitSettings",
    "ScanSettings",
    "Settings",
    "SettingsError",
    "SettingsGroup",
    "ensure_demo_key_file",
    "environment_variables",
    "generate_key_entry",
    "load_settings",
    "parse_encryption_keys",
    "parse_listen_address",
]
