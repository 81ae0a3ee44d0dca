"""The migrations and the models describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from valdrix.kit.db import async_url
from valdrix.kit.migrator import head_revisions, include_in_autogenerate
from valdrix.kit.orm import Base


def test_autogenerate_finds_nothing_to_do(database):
    import valdrix.jobs.models
    import valdrix.tenancy.models  # noqa: F401

    engine = create_engine(async_url(database.urls.owner), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": include_in_autogenerate},
        )
        differences = compare_metadata(context, Base.metadata)
        current = set(context.get_current_heads())
    engine.dispose()
    assert differences == [], f"models and migrations disagree: {differences}"
    assert current == head_revisions()


def test_there_is_exactly_one_head():
    assert len(head_revisions()) == 1
