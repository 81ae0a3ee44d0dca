"""Reading AWS Price List bulk offer files: one service's products and on-demand prices in one
region (``offers/v1.0/aws/<OfferCode>/<version>/<region>/index.json``).

An offer file holds ``offerCode``, ``version``, ``publicationDate``, ``products`` keyed by SKU
(each with ``productFamily`` and ``attributes``: ``usagetype``, ``instanceType`` ...) and
``terms.OnDemand[sku][offerTermCode].priceDimensions[rateCode]`` with ``unit``, ``beginRange``
and ``pricePerUnit.USD``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from valdrix.scanning.providers.aws_pricing.price_keys import OfferRule

# Outside us-east-1 a usage type starts with the region's code: USE2-, EU-, APN1-, CAN1- ...
_REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d*-")


class PriceInputError(Exception):
    """A price input Valdrix cannot read as it expects: which file, which product, and why."""


@dataclass(frozen=True)
class OfferFile:
    path: Path
    name: str  # the path under the input directory, as the catalog records it
    offer_code: str
    region: str
    published: dt.date
    products: dict[str, Any]
    on_demand: dict[str, Any]


@dataclass(frozen=True)
class OfferPrice:
    key: str
    usd: Decimal
    sku: str


def read_offer_file(path: Path, root: Path) -> OfferFile | None:
    """The offer file at ``path``; None if it is not one (a region index, another JSON)."""
    name = path.relative_to(root).as_posix()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PriceInputError(f"{name}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or "products" not in data or "offerCode" not in data:
        return None
    region = path.parent.name
    try:
        published = dt.datetime.fromisoformat(data["publicationDate"]).date()
        on_demand = data["terms"]["OnDemand"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PriceInputError(f"{name}: no publicationDate or terms.OnDemand ({exc!r})") from exc
    offer = OfferFile(path, name, data["offerCode"], region, published, data["products"], on_demand)
    for sku, product in offer.products.items():
        code = product.get("attributes", {}).get("regionCode")
        if code is not None and code != region:
            raise PriceInputError(
                f"{name}: SKU {sku} is for {code}, but the file is in the folder of {region}"
            )
    return offer


def offer_files(root: Path) -> Iterator[OfferFile]:
    for path in sorted(root.rglob("index.json")):
        offer = read_offer_file(path, root)
        if offer is not None:
            yield offer


def prices_in(offer: OfferFile, rules: tuple[OfferRule, ...]) -> Iterator[OfferPrice]:
    """Every catalog price ``offer`` gives under ``rules``, one per (rule, product) that
    matches. Two products giving one key different prices is an error (a rule too loose)."""
    seen: dict[str, OfferPrice] = {}
    for rule in rules:
        if rule.offer_code != offer.offer_code:
            continue
        for sku in sorted(offer.products):
            key = _key_for(rule, offer.products[sku])
            if key is None:
                continue
            usd = _price(offer, sku, rule) * rule.scale
            earlier = seen.get(key)
            if earlier is not None and earlier.usd != usd:
                raise PriceInputError(
                    f"{offer.name}: SKUs {earlier.sku} and {sku} both price {key}, at "
                    f"{earlier.usd} and {usd}; the rule for {rule.key} must tell them apart"
                )
            if earlier is None:
                seen[key] = OfferPrice(key, usd, sku)
                yield seen[key]


def _key_for(rule: OfferRule, product: dict[str, Any]) -> str | None:
    attributes: dict[str, str] = {
        **product.get("attributes", {}),
        "productFamily": product.get("productFamily", ""),
    }
    if any(attributes.get(name) != value for name, value in rule.attributes.items()):
        return None
    parts: dict[str, str] = {}
    if rule.usage_type is not None:
        usage = _REGION_PREFIX.sub("", attributes.get("usagetype", ""))
        match = re.fullmatch(rule.usage_type, usage)
        if match is None:
            return None
        parts |= {name: value or "" for name, value in match.groupdict().items()}
    for placeholder, attribute in rule.parts.items():
        if attribute not in attributes:
            return None
        parts[placeholder] = attributes[attribute]
    for placeholder, mapping in rule.values.items():
        if parts.get(placeholder) not in mapping:
            return None
        parts[placeholder] = mapping[parts[placeholder]]
    return rule.key.format(**parts)


def _price(offer: OfferFile, sku: str, rule: OfferRule) -> Decimal:
    """The on-demand USD price of ``sku`` per ``rule.offer_unit``: its only price dimension,
    or of a tiered price the first tier (with ``skip_free_tier``, the first that costs)."""
    where = f"{offer.name}: SKU {sku} ({rule.key})"
    terms = offer.on_demand.get(sku)
    if not terms:
        raise PriceInputError(f"{where}: no on-demand price")
    dimensions = [
        dimension
        for term in terms.values()
        for dimension in term.get("priceDimensions", {}).values()
    ]
    try:
        priced = sorted(
            (
                (Decimal(str(d.get("beginRange", "0"))), Decimal(d["pricePerUnit"]["USD"]), d)
                for d in dimensions
            ),
            key=lambda item: item[0],
        )
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise PriceInputError(f"{where}: a price dimension has no USD price ({exc!r})") from exc
    if rule.skip_free_tier:
        priced = [item for item in priced if item[1] > 0]
    if not priced:
        raise PriceInputError(f"{where}: no price dimension with a price")
    _, usd, dimension = priced[0]
    if dimension.get("unit") != rule.offer_unit:
        raise PriceInputError(
            f"{where}: priced per {dimension.get('unit')!r}, expected per {rule.offer_unit!r}"
        )
    return usd
