"""Building the AWS price catalog from price files on disk, offline.

Inputs (any mix, under one or more folders):

- AWS Price List bulk offer files, as AWS publishes them: for each offer code in
  ``OFFER_RULES`` (AmazonEC2, AmazonRDS, AWSELB ...) and each region,
  ``offers/v1.0/aws/<OfferCode>/<version>/<region>/index.json`` (see docs/scanning.md for where
  to download them). With several versions of one offer and region, the newest is read.
- Region price tables with a ``provenance.json`` (``region_tables``).

Per region and key the price comes from the newest input that has it. The catalog records each
source's date and file and, per price, the SKU or table entry it came from. Regions without an
input of their own get no prices: lookups quote them from the reference region as estimated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from valdrix.scanning.providers.aws_pricing.offer_files import (
    OfferFile,
    PriceInputError,
    offer_files,
    prices_in,
)
from valdrix.scanning.providers.aws_pricing.price_keys import OFFER_RULES, TABLE_RULES
from valdrix.scanning.providers.aws_pricing.region_tables import region_tables
from valdrix.scanning.providers.aws_pricing.regions import (
    COMMERCIAL_REGIONS,
    REFERENCE_REGION,
    is_commercial,
)

HOURS_PER_MONTH = 730


@dataclass
class BuildReport:
    """What a build found: per region, the keys with a price of its own, and the reference
    region's keys it lacks (quoted as estimated)."""

    listed: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    sources: int = 0


@dataclass(frozen=True)
class _Candidate:
    usd: Decimal
    unit: str
    source: str
    as_of: str
    where: dict[str, str]


def build_catalog(inputs: list[Path]) -> tuple[dict[str, Any], BuildReport]:
    sources: dict[str, dict[str, str]] = {}
    candidates: dict[str, dict[str, list[_Candidate]]] = {}
    for root in inputs:
        if not root.is_dir():
            raise PriceInputError(f"{root}: not a folder")
        # Offer files first: of two inputs of one date, the first read wins.
        found = [*_offer_file_prices(root, sources), *_table_prices(root, sources)]
        for region, key, candidate in found:
            if is_commercial(region):
                candidates.setdefault(region, {}).setdefault(key, []).append(candidate)

    prices = {
        region: {key: _newest(found) for key, found in sorted(by_key.items())}
        for region, by_key in sorted(candidates.items())
    }
    if REFERENCE_REGION not in prices:
        raise PriceInputError(
            f"the inputs have no prices for {REFERENCE_REGION}, the region other regions are "
            "quoted from"
        )
    used = {price["source"] for by_key in prices.values() for price in by_key.values()}
    catalog = {
        "provider": "aws",
        "built_by": "valdrix prices build",
        "as_of": max(sources[source]["as_of"] for source in used),
        "currency": "USD",
        "hours_per_month": HOURS_PER_MONTH,
        "reference_region": REFERENCE_REGION,
        "regions": sorted(set(COMMERCIAL_REGIONS) | set(prices)),
        "note": (
            "On-demand list prices: Linux, shared tenancy, single-AZ. A region's price for a key "
            "is its own when listed under prices; otherwise it is the reference region's, "
            "marked estimated."
        ),
        "sources": {source: sources[source] for source in sorted(used)},
        "prices": prices,
    }
    return catalog, _report(prices, len(used))


def _offer_file_prices(
    root: Path, sources: dict[str, dict[str, str]]
) -> Iterator[tuple[str, str, _Candidate]]:
    units = {rule.key.split("/")[0]: rule.unit for rule in OFFER_RULES}
    for offer_file in _newest_offer_files(root):
        if not is_commercial(offer_file.region):
            continue
        source = f"{offer_file.offer_code}/{offer_file.region}"
        sources[source] = {
            "kind": "AWS Price List bulk offer file",
            "offer_code": offer_file.offer_code,
            "file": offer_file.name,
            "as_of": offer_file.published.isoformat(),
        }
        for price in prices_in(offer_file, OFFER_RULES):
            unit = units[price.key.split("/")[0]]
            candidate = _Candidate(
                price.usd, unit, source, sources[source]["as_of"], {"sku": price.sku}
            )
            yield offer_file.region, price.key, candidate


def _table_prices(
    root: Path, sources: dict[str, dict[str, str]]
) -> Iterator[tuple[str, str, _Candidate]]:
    units = {rule.key: rule.unit for rule in TABLE_RULES}
    for tables in region_tables(root, TABLE_RULES):
        for price in tables.prices:
            sources[price.file] = tables.provenance | {
                "kind": "region price table",
                "file": price.file,
                "as_of": tables.as_of.isoformat(),
            }
            candidate = _Candidate(
                price.usd, units[price.key], price.file, sources[price.file]["as_of"],
                {"entry": price.entry},
            )  # fmt: skip
            yield price.region, price.key, candidate


def write_catalog(catalog: dict[str, Any], output: Path) -> None:
    output.write_text(catalog_text(catalog))


def catalog_text(catalog: dict[str, Any]) -> str:
    """The catalog as committed: one price a line, so a refresh reads as a diff of prices."""
    lines = ["{"]
    head = [(name, value) for name, value in catalog.items() if name not in ("sources", "prices")]
    lines += [f"  {json.dumps(name)}: {json.dumps(value)}," for name, value in head]
    lines.append('  "sources": {')
    lines.append(_entries(catalog["sources"], indent=4))
    lines.append("  },")
    lines.append('  "prices": {')
    regions = [
        f"    {json.dumps(region)}: {{\n{_entries(by_key, indent=6)}\n    }}"
        for region, by_key in catalog["prices"].items()
    ]
    lines.append(",\n".join(regions))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _entries(mapping: dict[str, Any], *, indent: int) -> str:
    pad = " " * indent
    return ",\n".join(f"{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in mapping.items())


def _newest_offer_files(root: Path) -> list[OfferFile]:
    newest: dict[tuple[str, str], OfferFile] = {}
    for offer_file in offer_files(root):
        slot = (offer_file.offer_code, offer_file.region)
        if slot not in newest or offer_file.published > newest[slot].published:
            newest[slot] = offer_file
    return [newest[slot] for slot in sorted(newest)]


def _newest(found: list[_Candidate]) -> dict[str, str]:
    # Stable: among inputs of one date the first read wins (offer files before tables).
    best = max(found, key=lambda candidate: candidate.as_of)
    price = {"usd": format(best.usd.normalize(), "f"), "unit": best.unit, "source": best.source}
    return price | best.where


def _report(prices: dict[str, dict[str, dict[str, str]]], sources: int) -> BuildReport:
    reference = set(prices[REFERENCE_REGION])
    report = BuildReport(sources=sources)
    for region in sorted(set(COMMERCIAL_REGIONS) | set(prices)):
        own = set(prices.get(region, {}))
        report.listed[region] = len(own)
        report.missing[region] = sorted(reference - own)
    return report
