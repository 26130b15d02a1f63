"""The benchmark and fault scripts' short runs: registered marker ``bench`` (selected by default;
``-m "not bench"`` leaves them out)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "bench: a short (--quick) run of a script in bench/ or bench/faults/")
