"""``Settings``: the core every part of Valdrix shares, and one group per domain.

Every variable keeps a flat name (``VALDRIX_COSTS_FOCUS_CLOSE_DAYS``), so the variables are read
by one source that decodes each as pydantic-settings decodes a field of its type, then places it
in its group (``settings.costs.focus_close_days``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
from valdrix.config.values import (
    KEY_FILE_NAME,
    SettingsError,
    ensure_demo_key_file,
    parse_encryption_keys,
)

PREFIX = "VALDRIX_"


def _default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "valdrix"


class Settings(BaseSettings):
    """Read from ``VALDRIX_`` variables when created; arguments take precedence over them.

    A group is given as a mapping of its fields or as the group itself:
    ``Settings(home=path, costs={"focus_close_days": 3})``.
    """

    model_config = SettingsConfigDict(extra="forbid")

    demo: bool = False
    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    migration_database_url: str | None = None
    db_pool_size: int = 10
    # Statements slower than this are logged (``db.slow_statement``); 0 logs every statement.
    db_slow_statement_ms: float = Field(default=500.0, ge=0)
    encryption_keys: str | None = None
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"

    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    scans: ScanSettings = Field(default_factory=ScanSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    costs: CostSettings = Field(default_factory=CostSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _VariablesSource(settings_cls)

    @model_validator(mode="after")
    def _check_database_urls(self) -> Settings:
        if bool(self.database_url) != bool(self.migration_database_url):
            raise SettingsError(
                "set both VALDRIX_DATABASE_URL (app role) and VALDRIX_MIGRATION_DATABASE_URL"
                " (owner role), or neither to use the embedded database"
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def key_file(self) -> Path:
        return self.home / KEY_FILE_NAME

    @property
    def keys_from_key_file(self) -> bool:
        """Whether the keys are the demo's key file under ``home``: without
        ``VALDRIX_ENCRYPTION_KEYS``, on the embedded database the demo made them for."""
        return not self.encryption_keys and self.embedded and self.key_file.exists()

    @cached_property
    def keyring(self) -> list[tuple[str, bytes]]:
        """Encryption keys, active first. Demo mode creates a key file if none is configured;
        other commands on the embedded database read the one it created."""
        raw = self.encryption_keys
        if not raw and self.demo:
            raw = ensure_demo_key_file(self.key_file)
        elif self.keys_from_key_file:
            raw = self.key_file.read_text().strip()
        if not raw:
            raise SettingsError(
                "VALDRIX_ENCRYPTION_KEYS is not set: create one with `valdrix keys generate`"
                " (only `valdrix demo` makes its own)"
            )
        keys = parse_encryption_keys(raw)
        if not keys:
            raise SettingsError("VALDRIX_ENCRYPTION_KEYS holds no key")
        return keys

    def updated(self, **changes: Any) -> Settings:
        """A copy with some settings changed, a group's as a mapping of the fields that change:
        ``settings.updated(costs={"focus_close_days": 3})``. A group's changes are checked as
        when it is read; a name Settings does not have is refused. The copy reads its keyring
        afresh."""
        update: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in type(self).model_fields:
                raise TypeError(f"Settings has no field {name!r}")
            current = getattr(self, name)
            if isinstance(current, SettingsGroup) and isinstance(value, Mapping):
                value = current.model_validate({**current.model_dump(exclude_unset=True), **value})
            update[name] = value
        copy = self.model_copy(update=update)
        copy.__dict__.pop("keyring", None)  # cached_property: computed from the copy's fields
        return copy

    def validate_for_startup(self) -> None:
        """Raise SettingsError if secrets needed to run are missing or placeholders."""
        _ = self.keyring


@cache
def environment_variables() -> Mapping[str, tuple[str, ...]]:
    """Every ``VALDRIX_`` variable and the setting it fills: ``("home",)`` for the core,
    ``("costs", "focus_close_days")`` for a group."""
    variables: dict[str, tuple[str, ...]] = {}
    for name, field in Settings.model_fields.items():
        group = _group_of(field)
        if group is None:
            variables[f"{PREFIX}{name.upper()}"] = (name,)
        else:
            variables.update(
                {group.variable(member): (name, member) for member in group.model_fields}
            )
    return variables


def _group_of(field: FieldInfo) -> type[SettingsGroup] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, SettingsGroup):
        return annotation
    return None


class _FlatVariables(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX)


def _field_at(path: tuple[str, ...]) -> FieldInfo:
    field = Settings.model_fields[path[0]]
    group = _group_of(field)
    return field if group is None else group.model_fields[path[1]]


def _flat_name(variable: str) -> str:
    return variable.removeprefix(PREFIX).lower()


@cache
def _flat_variables() -> type[BaseSettings]:
    """A settings class with one field per variable, named by the variable and typed as the
    setting it fills, for pydantic-settings to read the environment with."""
    fields: dict[str, Any] = {}
    for variable, path in environment_variables().items():
        field = _field_at(path)
        fields[_flat_name(variable)] = (field.annotation, field)
    return create_model("FlatVariables", __base__=_FlatVariables, **fields)


class _VariablesSource(PydanticBaseSettingsSource):
    """The ``VALDRIX_`` variables that are set, each in its group, not yet validated."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError("the variables are read all at once, by __call__")

    def __call__(self) -> dict[str, Any]:
        paths = {_flat_name(variable): path for variable, path in environment_variables().items()}
        values: dict[str, Any] = {}
        for name, value in EnvSettingsSource(_flat_variables())().items():
            match paths[name]:
                case (group, field):
                    values.setdefault(group, {})[field] = value
                case (field,):
                    values[field] = value
        return values


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
        loc = tuple(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", exc))
        if isinstance(first.get("ctx", {}).get("error"), SettingsError):
            return str(first["ctx"]["error"])
        return f"{_variable_at(loc)}: {message}" if loc else message
    return str(exc)


def _variable_at(loc: tuple[str, ...]) -> str:
    """The variable an error's location points into; a dict's key follows it
    (``VALDRIX_LLM_DAILY_CAP_USD.FREE``)."""
    variables = {path: variable for variable, path in environment_variables().items()}
    for size in (2, 1):
        if (variable := variables.get(loc[:size])) is not None:
            return variable + "".join(f".{part}" for part in loc[size:]).upper()
    return PREFIX + ".".join(loc).upper()
