"""Simulated clouds for the demo, the tests and the benchmarks (never used against real AWS)."""
