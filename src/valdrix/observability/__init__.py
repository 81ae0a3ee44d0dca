"""Health checks, metrics and other operator-facing surfaces."""
