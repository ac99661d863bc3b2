"""Benchmarks of feedserver at 1,000 to 100,000 seed files: `python -m benchmarks`,
see BENCHMARKS.md."""
