"""The probe task's effect table, for the job-platform tests. Workers, the superuser view of the
database and raw jobs come from tests/fixtures/jobs.py."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture
def probe_effects_table(superuser_url: str) -> Iterator[str]:
    """The table the probe task writes its idempotent effect to (test-only, dropped after so
    the schema stays exactly what the migrations make)."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe_effects (key text PRIMARY KEY)")
        conn.execute("GRANT SELECT, INSERT ON probe_effects TO valdrix_app")
    yield "probe_effects"
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS probe_effects")
