"""The error a hardware adapter raises when the library its unit file names cannot be imported.

A leaf module: the adapters (device/sensors, device/camera) raise it and device/libraries.py,
which imports the adapters to check them, catches it; neither imports the other for it.
"""
from __future__ import annotations


class LibraryMissing(Exception):
    """A hardware library named by the unit file cannot be imported on this machine."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{key}: {problem}; {fix}")
        self.key = key
        self.problem = problem
        self.fix = fix
