"""The docs say what the code does: the role set-up SQL is the SQL the embedded database runs,
every ``VALDRIX_`` variable they name is one Valdrix reads, and the cost components detectors
share are the ones they declare."""

import re
from pathlib import Path

from valdrix.config import environment_variables
from valdrix.kit.embedded import role_setup_sql
from valdrix.scanning.registry import load_all_detectors

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


def test_the_shared_cost_components_documented_are_those_detectors_declare():
    text = (ROOT / "docs" / "scanning.md").read_text()
    section = text.split("## Counting each dollar once")[1].split("\n## ")[0]
    documented = {
        component: sorted(re.findall(r"`([^`]+)`", priced_by))
        for component, priced_by in re.findall(r"^\| `([^`]+)` \| (.+) \|$", section, re.M)
    }
    assert documented == load_all_detectors().shared_costs()
