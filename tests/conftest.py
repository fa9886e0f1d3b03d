"""Shared test configuration.

Hypothesis runs derandomized by default, so that every run (and CI) draws
the same examples; ``FASTGRAD_HYPOTHESIS_PROFILE=explore`` draws fresh random
examples, many more of them, for a longer local search.

Tests marked ``long`` run only when a ``-m`` expression selects them
(``pytest -m long``), so that ``pytest`` alone stays quick.
"""

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile(
    "default", derandomize=True, database=None, deadline=None, max_examples=20, print_blob=True
)
settings.register_profile("explore", deadline=None, max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("FASTGRAD_HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``long`` unless ``-m`` chose which tests to run."""
    if config.option.markexpr:
        return
    skip = pytest.mark.skip(reason="long: run with pytest -m long")
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(skip)


@pytest.fixture
def rng():
    """A numpy Generator with a fixed seed, fresh for each test."""
    return np.random.default_rng(20240613)
