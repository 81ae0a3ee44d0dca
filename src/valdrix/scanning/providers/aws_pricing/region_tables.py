"""Reading the per-region EBS and load balancer price tables shipped by the aws-clutter package
(PyPI, MIT licence; ``aws_clutter/data/ebs_pricing.json`` and ``elb_pricing.json``), which its
authors extracted from the AWS Price List for every region.

A folder holding them must also hold ``provenance.json`` (``{"source": ..., "as_of": ...}``):
the tables carry no date of their own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from valdrix.scanning.providers.aws_pricing.offer_files import PriceInputError
from valdrix.scanning.providers.aws_pricing.price_keys import TableRule

TABLE_FILES = {"ebs": "ebs_pricing.json", "elb": "elb_pricing.json"}


@dataclass(frozen=True)
class TablePrice:
    region: str
    key: str
    usd: Decimal
    file: str
    entry: str  # where in the file: region and path


@dataclass(frozen=True)
class RegionTables:
    folder: str  # under the input directory
    provenance: dict[str, str]
    as_of: dt.date
    prices: tuple[TablePrice, ...]


def region_tables(root: Path, rules: tuple[TableRule, ...]) -> Iterator[RegionTables]:
    for provenance_path in sorted(root.rglob("provenance.json")):
        folder = provenance_path.parent
        name = folder.relative_to(root).as_posix()
        provenance = json.loads(provenance_path.read_text())
        try:
            as_of = dt.date.fromisoformat(provenance["as_of"])
        except (KeyError, ValueError) as exc:
            raise PriceInputError(f"{name}/provenance.json: no as_of date ({exc!r})") from exc
        prices: list[TablePrice] = []
        for table, file_name in TABLE_FILES.items():
            path = folder / file_name
            if path.exists():
                by_region = _regions(json.loads(path.read_text()))
                prices += _table_prices(by_region, f"{name}/{file_name}", table, rules)
        yield RegionTables(name, provenance, as_of, tuple(prices))


def _regions(data: Any) -> dict[str, Any]:
    """{region: its entry}: the EBS table is a list of entries naming their region (regions,
    local zones, wavelength zones); the ELB table a dict by region."""
    if isinstance(data, dict):
        return data
    return {
        entry["rzCode"]: entry["ebs_prices"] for entry in data if entry.get("rzType") == "region"
    }


def _table_prices(
    by_region: dict[str, Any], file: str, table: str, rules: tuple[TableRule, ...]
) -> Iterator[TablePrice]:
    for region, entry in sorted(by_region.items()):
        for rule in rules:
            if rule.table != table:
                continue
            node: Any = entry
            for step in rule.path:
                node = node.get(step) if isinstance(node, dict) else None
            if node is None:
                continue  # the region does not sell it (io2 is not in every region)
            try:
                usd = Decimal(node) * rule.scale
            except (TypeError, InvalidOperation) as exc:
                where = "/".join(rule.path)
                raise PriceInputError(f"{file}: {region} {where} is not a price: {node!r}") from exc
            yield TablePrice(region, rule.key, usd, file, f"{region} {'/'.join(rule.path[:-1])}")
