"""Dollar amounts as people read them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer


def usd_text(amount: Decimal) -> str:
    """A plain decimal with at least cents, never in exponent form: ``1E+1`` reads ``10.00``,
    ``0.125`` stays ``0.125``."""
    whole, _, cents = f"{amount.normalize():f}".partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def plain_text(amount: Decimal) -> str:
    """A plain decimal as given, never in exponent form: ``1E+6`` reads ``1000000``."""
    return f"{amount.normalize():f}"


# The one way API answers carry an amount: a decimal string never in exponent form, with the
# scale it has (``0.0000008000``, not ``8.000E-7``; ``0.50`` stays ``0.50``).
PlainDecimal = Annotated[Decimal, PlainSerializer(lambda amount: f"{amount:f}", return_type=str)]
