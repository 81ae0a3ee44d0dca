"""Valdrix: multi-tenant FinOps platform."""

__version__ = "0.1.0"
