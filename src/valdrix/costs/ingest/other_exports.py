"""Naming the cost export a file is when it is not FOCUS: a provider's older native export
(AWS CUR, Azure cost details, Google Cloud's BigQuery billing export) is the file people most
often upload by mistake, and "21 mandatory columns are missing" does not tell them what to do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class OtherExport:
    name: str
    # Any one of these columns (as the export writes them) marks the file as this export.
    columns: frozenset[str]
    instead: str


OTHER_EXPORTS = (
    OtherExport(
        "an AWS Cost and Usage Report (CUR)",
        frozenset(
            {
                "lineItem/UnblendedCost",
                "lineItem/UsageAccountId",
                "line_item_unblended_cost",
                "line_item_usage_account_id",
            }
        ),
        "in AWS Billing and Cost Management, create a Data Export of type"
        ' "FOCUS 1.0 with AWS columns" and import that',
    ),
    OtherExport(
        "an Azure cost details export",
        frozenset(
            {
                "CostInBillingCurrency",
                "costInBillingCurrency",
                "PreTaxCost",
                "costInUsd",
                "CostInUsd",
            }
        ),
        'in Cost Management, create an export of type "Cost and usage details (FOCUS)"'
        " and import that",
    ),
    OtherExport(
        "a Google Cloud billing export",
        frozenset({"usage_start_time", "service.description", "sku.description"}),
        "query the FOCUS view of your BigQuery billing export and import its result",
    ),
)


def not_focus_reason(columns: Collection[str], mandatory: Collection[str]) -> str | None:
    """Why a file whose header has ``columns`` is not a FOCUS export at all (None when it
    holds at least half of the ``mandatory`` columns: then each missing one is named)."""
    present = [name for name in mandatory if name in columns]
    if len(present) * 2 >= len(mandatory):
        return None
    found = f"it has {len(present)} of FOCUS's {len(mandatory)} mandatory columns"
    for export in OTHER_EXPORTS:
        if export.columns & set(columns):
            return f"this is {export.name}, not a FOCUS export ({found}): {export.instead}"
    return (
        f"this is not a FOCUS export ({found}); export FOCUS 1.0 or later from your"
        " provider (AWS Data Exports, Azure Cost Management or the BigQuery FOCUS view)"
    )
