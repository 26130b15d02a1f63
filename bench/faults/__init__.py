"""Fault injection: each script breaks something on purpose and prints what it did and what was
lost (see docs/reliability.md)."""
