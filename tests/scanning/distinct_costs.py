"""What findings cost once each dollar is counted once, worked out from the findings as the API
shows them (their figures and price details), not from what Valdrix says it left out: the
independent answer the totals are held to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any


def distinct_monthly_usd(findings: Iterable[dict[str, Any]]) -> Decimal:
    """Each resource's cost once: the largest figure any finding gives that resource's cost.

    A stopped instance's finding prices its volumes (one line per volume in its price detail);
    every other finding prices its own resource, in full or as a saving on it. Those are all
    shares of the same money, so the most any finding gives a resource is what it costs.
    """
    largest: dict[tuple[str, str, str], Decimal] = {}
    for finding in findings:
        for resource_id, usd in _priced_resources(finding):
            key = (finding["account_id"], finding["region"], resource_id)
            largest[key] = max(largest.get(key, usd), usd)
    return sum(largest.values(), start=Decimal("0"))


def gross_monthly_usd(findings: Iterable[dict[str, Any]]) -> Decimal:
    """Every finding's whole figure, summed."""
    return sum(
        (Decimal(f["monthly_cost_usd"]) for f in findings if f["monthly_cost_usd"] is not None),
        start=Decimal("0"),
    )


def _priced_resources(finding: dict[str, Any]) -> Iterator[tuple[str, Decimal]]:
    if finding["monthly_cost_usd"] is None:
        return
    lines = finding["price_detail"].get("volumes")
    if finding["cost_basis"] == "list_price" and lines is not None:
        for line in lines:
            yield line["volume_id"], Decimal(line["monthly_usd"])
    else:
        yield finding["resource_id"], Decimal(finding["monthly_cost_usd"])
