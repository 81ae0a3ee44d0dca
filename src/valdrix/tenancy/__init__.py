"""Tenants, users, memberships, credentials, authorization and the audit log."""
