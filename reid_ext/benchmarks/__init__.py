"""Benchmark scripts: ``python -m reid_ext.benchmarks.<method>`` (ours vs reference, side by side)."""
