"""The AWS price catalog: built from price files on disk by ``valdrix prices build``, list prices
where a region has input of its own, estimated (with the reason) where it has none."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from valdrix.scanning.pricing.catalog import PriceCatalog
from valdrix.scanning.providers import aws_pricing
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.scanning.providers.aws_pricing.build import build_catalog, catalog_text
from valdrix.scanning.providers.aws_pricing.offer_files import PriceInputError
from valdrix.scanning.providers.aws_pricing.price_keys import OFFER_RULES
from valdrix.scanning.providers.aws_pricing.regions import COMMERCIAL_REGIONS, REFERENCE_REGION

REPO = Path(__file__).resolve().parents[2]
PRICE_FILES = REPO / "data" / "prices" / "aws"
SHIPPED = Path(str(aws_pricing.__file__)).parent / aws_pricing.CATALOG_FILE


def offer_file(
    root: Path, offer_code: str, region: str, products: dict[str, tuple[dict[str, str], Any]]
) -> Path:
    """An offer file in AWS's layout: ``products`` maps a SKU to (attributes incl.
    productFamily, its on-demand price dimension)."""
    doc: dict[str, Any] = {
        "formatVersion": "v1.0",
        "offerCode": offer_code,
        "version": "20250701000000",
        "publicationDate": "2025-07-01T00:00:00Z",
        "products": {},
        "terms": {"OnDemand": {}},
    }
    for sku, (attributes, dimension) in products.items():
        family = attributes.pop("productFamily", "")
        doc["products"][sku] = {"sku": sku, "productFamily": family, "attributes": attributes}
        doc["terms"]["OnDemand"][sku] = {
            f"{sku}.JRTCKXETXF": {"priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": dimension}}
        }
    path = root / "offers/v1.0/aws" / offer_code / "20250701000000" / region / "index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def linux_instance(instance_type: str, usd: str, unit: str = "Hrs") -> tuple[dict[str, str], Any]:
    attributes = {
        "productFamily": "Compute Instance",
        "instanceType": instance_type,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
        "usagetype": f"EUW3-BoxUsage:{instance_type}",
    }
    return attributes, {"unit": unit, "beginRange": "0", "pricePerUnit": {"USD": usd}}


def test_the_shipped_catalog_is_a_fresh_build_of_the_committed_price_files() -> None:
    catalog, _ = build_catalog([PRICE_FILES])

    assert SHIPPED.read_text() == catalog_text(catalog), (
        "the shipped catalog differs from a build of data/prices/aws: run "
        "`valdrix prices build --input data/prices/aws` instead of editing it by hand"
    )


def test_a_region_with_its_own_offer_file_is_quoted_at_its_list_price_with_the_sku(
    tmp_path: Path,
) -> None:
    offer_file(
        tmp_path, "AmazonEC2", "eu-west-3", {"SKU-PARIS-M5": linux_instance("m5.large", "0.112")}
    )
    offer_file(
        tmp_path, "AmazonEC2", "us-east-1", {"SKU-VIRGINIA-M5": linux_instance("m5.large", "0.096")}
    )

    catalog = PriceCatalog(build_catalog([tmp_path])[0])
    paris = catalog.ec2_hour("eu-west-3", "m5.large")

    assert paris is not None
    assert (paris.unit_price, paris.estimated) == (Decimal("0.112"), False)
    assert paris.source["sku"] == "SKU-PARIS-M5"
    assert paris.source["file"] == "offers/v1.0/aws/AmazonEC2/20250701000000/eu-west-3/index.json"
    assert paris.as_of.isoformat() == "2025-07-01"


def test_a_region_without_input_is_quoted_from_the_reference_region_as_estimated(
    tmp_path: Path,
) -> None:
    offer_file(
        tmp_path, "AmazonEC2", "us-east-1", {"SKU-VIRGINIA-M5": linux_instance("m5.large", "0.096")}
    )

    catalog = PriceCatalog(build_catalog([tmp_path])[0])
    tokyo = catalog.ec2_hour("ap-northeast-1", "m5.large")

    assert tokyo is not None
    assert (tokyo.unit_price, tokyo.estimated) == (Decimal("0.096"), True)
    assert tokyo.estimated_because == (
        "no price input for ap-northeast-1; quoted at the us-east-1 list price"
    )
    assert catalog.ec2_hour("ap-northeast-1", "m5.xlarge") is None  # not even the reference has it


def test_shipped_catalog_gives_list_prices_where_it_has_input_and_says_why_elsewhere() -> None:
    catalog = aws_catalog()

    ohio = catalog.ec2_hour("us-east-2", "t3.micro")
    ireland_disk = catalog.ebs_gb_month("eu-west-1", "gp3")
    ireland_instance = catalog.ec2_hour("eu-west-1", "t3.micro")

    assert ohio is not None and not ohio.estimated and ohio.source["offer_code"] == "AmazonEC2"
    assert ireland_disk is not None and not ireland_disk.estimated
    assert ireland_disk.as_of.isoformat() == "2022-02-01"  # the region table's date, not ours
    assert ireland_instance is not None and ireland_instance.estimated
    assert ireland_instance.estimated_because == (
        "the price inputs for eu-west-1 have no price for ec2_hour/t3.micro; "
        "quoted at the us-east-1 list price"
    )


@pytest.mark.parametrize("region", COMMERCIAL_REGIONS)
def test_every_price_the_reference_region_has_resolves_in_every_commercial_region(
    region: str,
) -> None:
    catalog = aws_catalog()
    reference = catalog.keys(REFERENCE_REGION)
    own = catalog.keys(region)

    for key in sorted(reference):
        unit = next(
            rule.unit for rule in OFFER_RULES if rule.key.split("/")[0] == key.split("/")[0]
        )
        quote = catalog.quote(region, key, unit)
        assert quote is not None, key
        assert quote.estimated is (key not in own), key


def test_every_offer_rule_prices_something_in_the_reference_region() -> None:
    families = {key.split("/")[0] for key in aws_catalog().keys(REFERENCE_REGION)}

    assert {rule.key.split("/")[0] for rule in OFFER_RULES} <= families


def test_a_product_without_a_usd_price_is_refused_naming_the_file_and_sku(tmp_path: Path) -> None:
    attributes, _ = linux_instance("m5.large", "0")
    broken = (attributes, {"unit": "Hrs", "pricePerUnit": {"CNY": "0.7"}})
    offer_file(tmp_path, "AmazonEC2", "eu-west-3", {"SKU-BROKEN": broken})

    with pytest.raises(PriceInputError) as refused:
        build_catalog([tmp_path])

    message = str(refused.value)
    assert "offers/v1.0/aws/AmazonEC2/20250701000000/eu-west-3/index.json" in message
    assert "SKU-BROKEN" in message and "USD" in message


def test_a_product_in_an_unexpected_unit_is_refused(tmp_path: Path) -> None:
    offer_file(
        tmp_path, "AmazonEC2", "eu-west-3", {"SKU-ODD": linux_instance("m5.large", "1", "Days")}
    )

    with pytest.raises(PriceInputError, match=r"SKU SKU-ODD .*per 'Days', expected per 'Hrs'"):
        build_catalog([tmp_path])


def test_two_products_pricing_one_key_differently_are_refused(tmp_path: Path) -> None:
    products = {
        "SKU-A": linux_instance("m5.large", "0.112"),
        "SKU-B": linux_instance("m5.large", "0.113"),
    }
    offer_file(tmp_path, "AmazonEC2", "eu-west-3", products)

    with pytest.raises(
        PriceInputError, match=re.escape("SKUs SKU-A and SKU-B both price ec2_hour/m5.large")
    ):
        build_catalog([tmp_path])


def test_the_build_command_reports_a_broken_file_in_one_readable_line(tmp_path: Path) -> None:
    attributes, _ = linux_instance("m5.large", "0")
    offer_file(tmp_path, "AmazonEC2", "eu-west-3", {"SKU-BROKEN": (attributes, {"unit": "Hrs"})})
    command = [sys.executable, "-m", "valdrix", "prices", "build", "--input", str(tmp_path)]
    command += ["--output", str(tmp_path / "catalog.json")]

    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)

    assert done.returncode != 0
    assert "SKU-BROKEN" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "catalog.json").exists()


def test_the_build_command_writes_the_catalog_and_says_what_each_region_got(
    tmp_path: Path,
) -> None:
    output = tmp_path / "catalog.json"
    command = [sys.executable, "-m", "valdrix", "prices", "build", "--input", str(PRICE_FILES)]
    command += ["--output", str(output), "--json"]

    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["regions"]["us-east-1"]["estimated"] == 0
    assert summary["regions"]["eu-west-1"]["list_prices"] > 0
    assert summary["regions"]["mx-central-1"]["list_prices"] == 0
    assert output.read_text() == SHIPPED.read_text()
