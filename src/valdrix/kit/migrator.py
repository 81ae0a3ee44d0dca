"""Run and inspect Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

import valdrix

RUNTIME_PARTITION = re.compile(r"^cost_(records|daily|resource_days)_\d{6}$")


def migrations_dir() -> Path:
    """Migrations ship inside the wheel; an editable checkout reads them from the repository."""
    packaged = Path(valdrix.__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(valdrix.__file__).resolve().parents[2] / "migrations"


def include_in_autogenerate(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """procrastinate's tables come from its own schema.sql (see the job-platform migration), and
    the cost tables' monthly partitions are created at run time (see the costs migration)."""
    table = getattr(obj, "table", obj)
    table_name = str(getattr(table, "name", name) or "")
    return not table_name.startswith("procrastinate_") and not RUNTIME_PARTITION.match(table_name)


def alembic_config(owner_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", owner_url.replace("%", "%%"))
    return config


def upgrade_to_head(owner_url: str) -> None:
    command.upgrade(alembic_config(owner_url), "head")


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return set(script.get_heads())


async def database_is_at_head(connection: AsyncConnection) -> bool:
    def current(sync_connection: object) -> set[str]:
        context = MigrationContext.configure(sync_connection)  # type: ignore[arg-type]
        return set(context.get_current_heads())

    return await connection.run_sync(current) == head_revisions()
