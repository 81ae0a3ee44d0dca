"""LLM analysis of scan findings: a background job with advisory output, under a budget."""
