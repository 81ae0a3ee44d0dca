"""Per-provider credentials and clients."""
