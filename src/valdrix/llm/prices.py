"""Model prices per million tokens, and the cost bounds the budget reserves.

Prices come from the shipped ``model_prices.json`` plus the operator's ``VALDRIX_LLM_PRICES_FILE``
(same shape; it wins), for self-hosted models (price 0) or models newer than our file. A model
without a price cannot be called: its cost could not be bounded, so the budget could not hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path

from valdrix.config import Settings

MILLION = Decimal(1_000_000)
# Chat templates add a few tokens per message (role markers) on top of the content's bytes.
MESSAGE_OVERHEAD_TOKENS = 8


class UnpricedModel(LookupError):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no price; add it to VALDRIX_LLM_PRICES_FILE to call it"
        )
        self.model = model


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: Decimal
    output_per_million: Decimal

    def upper_bound(self, messages: list[dict[str, str]], max_tokens: int) -> Decimal:
        """The most a call can cost. Byte-level BPE tokenizers never make more tokens than the
        text has UTF-8 bytes, and the output is capped at ``max_tokens``."""
        prompt_bytes = sum(len(m["content"].encode()) for m in messages)
        prompt_bound = prompt_bytes + MESSAGE_OVERHEAD_TOKENS * len(messages)
        return self.cost(prompt_bound, max_tokens)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / MILLION


def _read(text: str, origin: str) -> dict[str, ModelPrice]:
    try:
        models = json.loads(text)["models"]
        return {
            name: ModelPrice(
                Decimal(str(entry["input_per_million"])),
                Decimal(str(entry["output_per_million"])),
            )
            for name, entry in models.items()
        }
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(
            f"{origin}: expected {{'models': {{name: {{input_per_million, output_per_million}}}}}}"
        ) from exc


@lru_cache(maxsize=8)
def _catalog(extra_file: Path | None) -> dict[str, ModelPrice]:
    shipped = resources.files("valdrix.llm").joinpath("model_prices.json").read_text()
    prices = _read(shipped, "model_prices.json")
    if extra_file is not None:
        prices.update(_read(extra_file.read_text(), str(extra_file)))
    return prices


def price_for(settings: Settings, model: str) -> ModelPrice:
    price = _catalog(settings.llm.prices_file).get(model)
    if price is None:
        raise UnpricedModel(model)
    return price
