"""Where a finding's monthly figure comes from, said in words (``cost_basis`` and its
``price_detail`` as the API gives them)."""

from __future__ import annotations

from valdrix.scanning.schemas import FindingOut
from valdrix.web.templating import usd


def cost_basis_in_words(finding: FindingOut) -> str:
    detail = finding.price_detail
    billed = _billed(detail)
    if finding.cost_basis == "billed":
        return billed or _billed_period(detail)
    if finding.cost_basis == "list_price":
        words = "list price"
        if detail.get("catalog_as_of"):
            words += f" as of {detail['catalog_as_of']}"
        if detail.get("estimated"):
            words += (
                f" (estimated: the price catalog does not price {finding.region}, so the "
                "reference region's price is used)"
            )
        return f"{words}; {billed}" if billed else words
    if finding.cost_basis == "recommendation":
        source = detail.get("source") or "the cloud's own recommendation service"
        words = f"AWS recommendation: the saving {source} estimates"
        if detail.get("currency") not in (None, "USD"):
            words += f" ({detail.get('estimated_monthly_savings')} {detail['currency']} a month)"
        return words
    return f"unknown: {detail.get('why') or 'no price could be found'}"


def _billed(detail: dict[str, object]) -> str | None:
    """The bill's last 30 days, where the bill knows the resource."""
    amount = detail.get("billed_usd_30_days")
    if amount is None:
        return None
    through = detail.get("billed_through")
    words = f"billed: {usd(str(amount))} over the last 30 days"
    return f"{words} (through {through})" if through else words


def _billed_period(detail: dict[str, object]) -> str:
    """A figure a cloud's billing reports over a period of its own, run for a month."""
    amount, hours = detail.get("period_usd"), detail.get("period_hours")
    if amount is None or not isinstance(hours, int | float):
        return "billed: from the tenant's bill"
    source = detail.get("source") or "the bill"
    return (
        f"billed: {usd(str(amount))} over the last {round(hours / 24)} days ({source}), as a month"
    )
