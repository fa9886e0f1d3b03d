"""The examples in the docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import fastgrad

MODULES = ["fastgrad"] + sorted(
    name for _, name, _ in pkgutil.walk_packages(fastgrad.__path__, prefix="fastgrad.")
)

EXAMPLES = {
    "fastgrad": 1,
    "fastgrad.check": 11,
    "fastgrad.diagnostics": 4,
    "fastgrad.generic": 6,
    "fastgrad.init": 22,
    "fastgrad.mlp": 8,
    "fastgrad.numerical": 8,
    "fastgrad.taylor": 6,
    "fastgrad.thresholds": 6,
}
"""The fewest examples each module's docstrings run (examples marked ``+SKIP``
are not run): a module that loses examples fails here, one that gains some
raises its floor."""


def run_examples(name):
    module = importlib.import_module(name)
    return doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = run_examples(name)
    assert result.failed == 0
    assert result.attempted >= EXAMPLES.get(name, 0), (
        f"{name} ran {result.attempted} docstring examples, expected at least {EXAMPLES[name]}"
    )


def test_every_listed_module_exists():
    assert set(EXAMPLES) <= set(MODULES)
