"""Scan providers, one module per cloud; importing a provider's module registers it."""
