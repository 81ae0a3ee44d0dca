"""LLM providers, prices and the per-tenant spend budget."""
