"""Helpers of the benchmarks: workloads, the tools compared, timing, formatting.

The suites (``bench/bench_*.py``) and the scripts (``bench/table.py`` and
its siblings) import from here; nothing here is collected as a benchmark.
"""
