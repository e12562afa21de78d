"""The benchmark suite behind `benchmarks/run.py` (see BENCHMARKS.md)."""
