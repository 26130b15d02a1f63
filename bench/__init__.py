"""Benchmarks and fault-injection scripts (issue 6); each is a plain ``python bench/NAME.py``.

See docs/performance.md and docs/reliability.md for the commands and the figures.
"""
