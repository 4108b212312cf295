"""Benchmarks, one module each; `python -m harness.bench` runs them all (see docs/benchmarks.md)."""
