"""The jit factory: helpers without a Python entry, or without reference counting."""

import numpy as np

from fastgrad.kernels import _jit, dense, jets, line
from fastgrad.kernels._jit import jit


@jit(entry=False)
def _scaled_sum(x, scale):
    total = 0.0
    for k in range(x.shape[0]):
        total += scale * x[k]
    return total


@jit(entry=False, refcount=False)
def _uncounted_sum(x):
    total = 0.0
    for k in range(x.shape[0]):
        total += x[k]
    return total


@jit()
def _caller(x):
    return _scaled_sum(x, 2.0) + _uncounted_sum(x[1:])


def test_a_helper_without_python_entry_serves_compiled_callers_and_python():
    x = np.arange(5.0)
    assert _caller(x) == 2.0 * 10.0 + 10.0
    assert isinstance(_scaled_sum, _jit._Helper)
    assert _scaled_sum(x, 3.0) == 30.0  # through its trampoline
    assert _uncounted_sum(x) == 10.0


def test_a_helper_without_reference_counting_leaves_the_callers_arrays_alive():
    x = np.arange(1000.0)
    for _ in range(100):
        assert _caller(x) == 2.0 * x.sum() + x[1:].sum()
    assert x.sum() == 499500.0


def test_helpers_compile_without_python_entry_and_what_python_calls_with_one():
    assert isinstance(jets.activation_jet, _jit._Helper)
    assert isinstance(line.line_path, _jit._Helper)
    assert not isinstance(dense.output_delta, _jit._Helper)
