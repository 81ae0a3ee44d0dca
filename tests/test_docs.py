"""The docs say what the code does: the role set-up SQL is the SQL the embedded database runs,
and every ``VALDRIX_`` variable they name is one Valdrix reads."""

import re
from pathlib import Path

from valdrix.config import environment_variables
from valdrix.kit.embedded import role_setup_sql

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "database-roles.md"
# Read by the test suite and CI, not by Valdrix.
TEST_VARIABLES = {"VALDRIX_TEST_DATABASE_URL", "VALDRIX_FUZZ_LONG", "VALDRIX_PROMTOOL"}


def test_documented_role_sql_is_the_sql_valdrix_runs():
    assert role_setup_sql().strip() in DOCS.read_text()


def test_every_variable_the_docs_name_is_one_valdrix_reads():
    known = set(environment_variables()) | TEST_VARIABLES
    unknown = {
        (str(path.relative_to(ROOT)), name)
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
        # A family of variables ("VALDRIX_SMTP_*") is named by its prefix.
        for name in re.findall(r"VALDRIX_[A-Z0-9_]*[A-Z0-9]", path.read_text())
        if name not in known and not any(variable.startswith(f"{name}_") for variable in known)
    }
    assert not unknown
