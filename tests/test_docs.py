"""The role set-up SQL in the docs is the SQL the embedded database runs."""

from pathlib import Path

from valdrix.kit.embedded import role_setup_sql

DOCS = Path(__file__).resolve().parents[1] / "docs" / "database-roles.md"


def test_documented_role_sql_is_the_sql_valdrix_runs():
    assert role_setup_sql().strip() in DOCS.read_text()
