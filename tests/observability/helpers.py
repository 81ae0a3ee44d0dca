"""Reading /metrics as the operator does, for the metrics tests of every domain."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from valdrix.observability import exposition


def metrics_auth(client: httpx.AsyncClient) -> dict[str, str]:
    """The operator's metrics token (tests/conftest.py's settings set one) for the app behind
    ``client``."""
    token = client._transport.app.state.runtime.settings.metrics.token  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


async def scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    """The exposition as {family name: family}, fetched with the operator's metrics token."""
    response = await client.get("/metrics", headers=metrics_auth(client))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    for family in families.values():
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"no sample {name}{labels}")


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    """The sample's value, 0 when the series does not exist yet."""
    try:
        return sample(families, name, **labels)
    except AssertionError:
        return 0.0


async def fresh_scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    """A scrape that re-reads the figures cached for a minute (per-tenant totals, history) now."""
    exposition._tenant_gauges_read_at = -exposition.TENANT_GAUGES_TTL_SECONDS
    return await scrape(client)
