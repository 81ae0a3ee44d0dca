"""Alembic environment: always runs as the owner role, one migrator at a time."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Importing the model modules registers their tables on the metadata.
import valdrix.analysis.models
import valdrix.connections.models
import valdrix.costs.models
import valdrix.jobs.models
import valdrix.llm.models
import valdrix.scanning.models
import valdrix.tenancy.models  # noqa: F401
from valdrix.kit.db import MIGRATION_OPTION, async_url
from valdrix.kit.migrator import include_in_autogenerate
from valdrix.kit.orm import Base

MIGRATION_LOCK_KEY = 7_246_317_001  # pg_advisory_lock key serialising concurrent migrators

target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "the migration URL is set by valdrix.migrations.migrator"
    engine = create_engine(
        async_url(url), poolclass=pool.NullPool, execution_options={MIGRATION_OPTION: True}
    )
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                include_object=include_in_autogenerate,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


run_migrations_online()
