"""Importing fastgrad compiles nothing: kernels compile (or load from cache) on first use."""

import json
import subprocess
import sys
from pathlib import Path

from checkout import ROOT, in_checkout

import fastgrad


def test_tests_import_this_checkout():
    # pytest's pythonpath puts the checkout first, ahead of any installed copy
    assert Path(fastgrad.__file__).resolve() == ROOT / "fastgrad" / "__init__.py"


PROBE = r"""
import importlib, json, pkgutil, sys
from numba.core.dispatcher import Dispatcher

import fastgrad
import fastgrad.kernels

def dispatchers():
    found = {}
    for info in pkgutil.iter_modules(fastgrad.kernels.__path__):
        module = importlib.import_module("fastgrad.kernels." + info.name)
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                found[f"{info.name}.{name}"] = [str(s) for s in value.signatures]
    return found

loaded_by_import = sorted(m for m in sys.modules if m.startswith("fastgrad.kernels."))
before = dispatchers()
from fastgrad.kernels import activations
activations.activate(activations.TANH, 0.0, 0.5)
after = dispatchers()
print(json.dumps({"loaded": loaded_by_import, "before": before, "after": after}))
"""


def test_import_compiles_nothing():
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, **in_checkout()
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # import fastgrad alone brings in the kernels the network uses ...
    assert {
        "fastgrad.kernels.activations",
        "fastgrad.kernels.dense",
        "fastgrad.kernels.losses",
    } <= set(result["loaded"])
    # ... and every kernel module holds compiled functions, none compiled yet
    for module in ("activations", "losses", "dense", "line_series", "finite_diff"):
        assert any(name.startswith(module + ".") for name in result["before"]), module
    compiled = {name: sigs for name, sigs in result["before"].items() if sigs}
    assert compiled == {}
    # the probe does see a compilation when one happens
    assert result["after"]["activations.activate"] != []
