"""AWS list prices: the shipped catalog (``catalog.json``) and how it is built from the AWS
Price List bulk files (``valdrix prices build``; docs/scanning.md, "Dollar figures")."""

from __future__ import annotations

from functools import lru_cache

from valdrix.scanning.pricing.catalog import PriceCatalog, load_catalog

CATALOG_FILE = "catalog.json"


@lru_cache(maxsize=1)
def aws_catalog() -> PriceCatalog:
    return load_catalog(__name__, CATALOG_FILE)
