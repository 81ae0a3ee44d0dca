"""``valdrix prices build``: regenerate the shipped AWS price catalog from AWS Price List bulk
files on disk (docs/scanning.md, "Dollar figures", says where to download them)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer
from rich.table import Table

from valdrix.cli.common import JSON_OPTION, fail, print_json, print_table
from valdrix.scanning.providers import aws_pricing
from valdrix.scanning.providers.aws_pricing.build import build_catalog, write_catalog
from valdrix.scanning.providers.aws_pricing.offer_files import PriceInputError

prices_app = typer.Typer(no_args_is_help=True, help="The shipped list-price catalogs.")


def _shipped_catalog() -> Path:
    return Path(str(resources.files(aws_pricing).joinpath(aws_pricing.CATALOG_FILE)))


@prices_app.command("build")
def build(
    inputs: list[Path] = typer.Option(
        ...,
        "--input",
        help="A folder of price files: AWS Price List offer files (offers/v1.0/aws/<OfferCode>/"
        "<version>/<region>/index.json) and/or region price tables with a provenance.json. "
        "Repeat for several folders.",
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Where to write the catalog (default: the installed catalog)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build the AWS price catalog from price files, offline; say which regions got list
    prices of their own and how many prices each still quotes from the reference region."""
    try:
        catalog, report = build_catalog(inputs)
    except PriceInputError as exc:
        fail(f"price input: {exc}")
    target = output or _shipped_catalog()
    write_catalog(catalog, target)
    if as_json:
        print_json(
            {
                "output": str(target),
                "as_of": catalog["as_of"],
                "sources": report.sources,
                "regions": {
                    region: {"list_prices": report.listed[region], "estimated": len(missing)}
                    for region, missing in report.missing.items()
                },
            }
        )
        return
    table = Table("region", "list prices", "estimated (from " + catalog["reference_region"] + ")")
    for region, missing in report.missing.items():
        table.add_row(region, str(report.listed[region]), str(len(missing)))
    print_table(table)
    print(f"wrote {target}: as of {catalog['as_of']}, {report.sources} source files")
