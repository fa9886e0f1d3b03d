"""The jit factory: helpers without a Python entry, or without reference counting."""

import collections
import contextlib
import gc
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from checkout import in_checkout

import fastgrad as fg
from fastgrad import cli
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


@jit()
def _weighted_rows(x, weights):
    """Row sums of ``x`` weighted by ``weights.scale`` (layouts compile to different code)."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        total = 0.0
        for j in range(x.shape[1]):
            total += x[i, j]
        out[i] = weights.scale[i] * total
    return out


_Weights = collections.namedtuple("_Weights", "scale")


def test_a_direct_call_takes_each_argument_type_to_its_own_overload():
    # learned from the first call with float64 C arrays, the entry point must not serve
    # arrays it was not compiled for: another dtype, a transposed or strided view, a
    # read-only array, a named tuple holding another dtype. Each would be misread by
    # the machine code of the first overload.
    call = _jit.DirectCall(_weighted_rows)
    base = np.arange(12.0).reshape(3, 4)
    scale = _Weights(np.array([1.0, -2.0, 0.5]))
    assert np.array_equal(call(base, scale), (base.sum(axis=1)) * scale.scale)
    assert len(call._entries) == 1
    readonly = base.copy()
    readonly.flags.writeable = False
    wide = np.arange(24.0).reshape(3, 8)
    cases = [
        (base.astype(np.int64), scale),
        (base.astype(np.float32) + np.float32(0.25), scale),
        (np.asfortranarray(base), scale),
        (wide[:, ::2], scale),
        (wide.T[:3], scale),
        (readonly, scale),
        (base, _Weights(np.array([3, -1, 2], dtype=np.int64))),
        (base, _Weights(np.array([3, -1, 2], dtype=np.int32))),
    ]
    for x, weights in cases:
        expected = np.asarray(x, dtype=np.float64).sum(axis=1) * weights.scale
        for _ in range(2):  # learned on the first call, through the entry point on the second
            assert np.array_equal(call(x, weights), expected), (x.dtype, x.flags, weights)
    assert len(call._entries) == len(cases)  # the two strided views share one type
    # and the first overload still serves its own types, to the bit
    assert np.array_equal(call(base, scale), _weighted_rows(base, scale))


@jit()
def _shifted(x, shift):
    """``x`` plus ``shift.by``, in the type numba gives the sum (the scalar's type decides)."""
    return x + shift.by


_Shift = collections.namedtuple("_Shift", "by")


def test_direct_calls_from_threads_keep_scalars_of_each_type_to_their_own_overload():
    # Python bool, int and float, numpy scalars and 0-d arrays in a named tuple: learned
    # and served from several threads at once, each call as the dispatcher answers it
    call = _jit.DirectCall(_shifted)
    x = np.array([1, 2], dtype=np.int8)
    shifts = [True, 3, 2.5, np.int8(3), np.float32(0.5), np.uint64(7), np.array(1.5)]
    arguments = [(x, _Shift(by)) for by in shifts] + [(np.array(4.0), _Shift(2))]
    expected = [_shifted(*args) for args in arguments]

    def calls(start):
        for n in range(60):
            i = (start + n) % len(arguments)
            got, want = call(*arguments[i]), expected[i]
            if type(got) is not type(want) or np.asarray(got).dtype != np.asarray(want).dtype:
                return False
            if not np.array_equal(got, want):
                return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(calls, range(8)))
    assert len({np.asarray(result).dtype for result in expected}) > 3  # the types differ indeed


def test_a_direct_call_raises_as_the_dispatcher_does():
    call = _jit.DirectCall(_weighted_rows)
    with pytest.raises(Exception) as direct_error:
        call(np.zeros(3), _Weights(np.ones(3)))
    with pytest.raises(Exception) as dispatcher_error:
        _weighted_rows(np.zeros(3), _Weights(np.ones(3)))
    assert type(direct_error.value) is type(dispatcher_error.value)


def test_direct_keeps_one_wrapper_per_compiled_function():
    assert _jit.direct(_weighted_rows) is _jit.direct(_weighted_rows)
    assert _jit.direct(_weighted_rows) is not _jit.direct(_caller)


def _nrt_balance(run):
    """Return how many more arrays compiled code allocated than it freed during ``run()``."""
    from numba.core.runtime import _nrt_python, rtsys

    # the switch NUMBA_NRT_STATS sets at start, turned on for this call
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        gc.collect()
        before = rtsys.get_allocation_stats()
        run()
        gc.collect()
        after = rtsys.get_allocation_stats()
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()
    return (after.mi_alloc - before.mi_alloc) - (after.mi_free - before.mi_free)


@pytest.mark.parametrize(
    "hidden, epsilon",
    [("relu", 0.05), ("tanh", 0.05), (["tanh", "relu"], 1e-3), ("sigmoid", 1e-7)],
)
def test_helpers_without_reference_counting_leak_no_array(hidden, epsilon):
    # A helper compiled with refcount=False that called a compiled function
    # returning an array (a view included) would keep that array's count up:
    # every check through it would leave arrays that are never freed. The
    # cases run the series, line and direct paths and the line setup.
    net = fg.MLP([5, 7, 6, 3], hidden=hidden)
    params = net.init(seed=3)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 5))
    Y = np.eye(3)[rng.integers(0, 3, 6)]

    def run():
        for method in ("exact", "direct"):
            fg.numerical_gradient(net, params, X, Y, epsilon=epsilon, method=method)

    run()  # compile first: the compiler's own allocations do not count
    assert _nrt_balance(run) == 0


def test_numba_disable_jit_runs_every_function_as_python():
    """NUMBA_DISABLE_JIT=1 (debugging a kernel in Python): helpers are plain functions too."""
    kwargs = in_checkout()
    env = dict(kwargs.pop("env"), NUMBA_DISABLE_JIT="1", FASTGRAD_COMPILE_AHEAD="1")
    command = ["check", "--sizes", "3,2,2", "--batch", "2", "--json"]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from fastgrad import cli; sys.exit(cli.main(sys.argv[1:]))",
            *command,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == ""  # nothing compiles: no compile notice, no child
    python = json.loads(run.stdout)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(command) == 0
    compiled = json.loads(buffer.getvalue())
    assert python["verdict"] == compiled["verdict"] == "CORRECT"
    for ours, theirs in zip(python["tensors"], compiled["tensors"], strict=True):
        assert ours["name"] == theirs["name"]
        assert ours["checked"] == theirs["checked"] > 0
        assert ours["difference"] == pytest.approx(theirs["difference"], abs=1e-7)
