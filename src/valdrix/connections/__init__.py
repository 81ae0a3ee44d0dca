"""Cloud connections: how Valdrix reaches a tenant's accounts (no long-lived keys stored)."""
