"""The dense passes: BLAS products and compiled elementwise kernels.

Their values are compared with tests/naive.py in tests/kernels/test_dense.py
(on flat arrays laid out from the documented contract) and through
``MLP.loss``/``MLP.gradients`` in tests/test_mlp.py; here: that they do not
depend on numba's threads or on BLAS's, and that BLAS's threads follow numba's.
"""

import numba
import numpy as np
import pytest
from compare import assert_close, reference, rounding_scale
from strategies import build_case, random_params
from threads import numba_threads

import fastgrad as fg
from fastgrad import _passes


def passes(net, params, X, Y):
    """Return ``(pre, acts, grad)`` of a fresh workspace's forward and backward passes."""
    work, _ = net.workspace(params, X, Y)
    return work.pre.copy(), work.acts.copy(), work.gradient()


def wide_case(hidden, seed=3):
    """A network wide enough (batch 48, 200 units) for BLAS to split its products over threads."""
    rng = np.random.default_rng(seed)
    sizes = [150, 200, 200, 7]
    net = fg.MLP(sizes, hidden=hidden, l2=0.3, dropout=0.25)
    return net, random_params(sizes, rng), rng.normal(size=(48, 150)), rng.integers(0, 7, 48)


@pytest.mark.threads
@pytest.mark.parametrize("hidden", ["relu", "tanh", "softplus"])
def test_passes_are_the_same_to_the_bit_for_any_numba_threads(hidden):
    case = wide_case(hidden)
    runs = []
    for count in sorted(
        {1, 2, numba.config.NUMBA_NUM_THREADS} & set(range(1, numba.config.NUMBA_NUM_THREADS + 1))
    ):
        with numba_threads(count):
            runs.append(passes(*case))
    for run in runs[1:]:
        for ours, first in zip(run, runs[0], strict=True):
            np.testing.assert_array_equal(ours, first)


@pytest.mark.threads
@pytest.mark.parametrize("hidden", ["relu", "sigmoid"])
def test_passes_are_the_same_to_the_bit_for_any_blas_threads(hidden):
    # fg.check(threads=1) caps BLAS at one thread: its report must equal the default's
    threadpoolctl = pytest.importorskip("threadpoolctl")
    case = wide_case(hidden, seed=4)
    default = passes(*case)
    for limit in (1, 2, 3):
        with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
            for ours, first in zip(passes(*case), default, strict=True):
                np.testing.assert_array_equal(ours, first)


def test_blas_threads_follow_numbas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        pytest.skip("threadpoolctl sees no BLAS")
    before = [info["num_threads"] for info in controller.info()]
    with numba_threads(1), _passes.blas_threads():
        assert [info["num_threads"] for info in controller.info()] == [1] * len(before)
    assert [info["num_threads"] for info in controller.info()] == before
    with _passes.blas_threads(limit=max(before)):
        assert [info["num_threads"] for info in controller.info()] == before


def test_blas_threads_without_threadpoolctl_is_a_no_op(monkeypatch):
    monkeypatch.setattr(_passes, "_blas_controller", lambda: None)
    with _passes.blas_threads(limit=1) as value:
        assert value is None


@pytest.mark.parametrize(
    ("sizes", "batch", "capped"), [([4, 5, 3, 1], 3, False), ([64, 1100, 2], 1, True)]
)
def test_blas_threads_are_capped_only_where_a_product_could_be_threaded(
    monkeypatch, sizes, batch, capped
):
    # below OpenBLAS's threading threshold the cap would cost more than the products
    asked = []
    monkeypatch.setattr(_passes, "_blas_controller", lambda: asked.append(1))
    net = fg.MLP(sizes)
    params = net.init("he_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(batch, sizes[0]))
    net.gradients(params, X, np.zeros(batch, dtype=int))
    assert bool(asked) is capped
    assert sizes[0] * sizes[1] * batch >= _passes.SMALL_PRODUCT or not capped


@pytest.mark.parametrize("hidden", ["relu", "tanh", "elu"])
@pytest.mark.parametrize("batch", [1, 2, 33])
def test_one_sample_and_odd_batches_match_naive(hidden, batch):
    # a batch of one runs BLAS's matrix-vector product, an odd one its edge blocks;
    # a layer of one unit its degenerate products
    case = build_case([9, 17, 1, 4], hidden, "mse", l2=0.5, dropout=0.3, batch=batch, seed=batch)
    ref, scale = reference(case), rounding_scale(case)
    assert_close("J", case.net.loss(case.params, case.X, case.Y), ref.loss, scale.loss)
    grads = case.net.gradients(case.params, case.X, case.Y)
    for name, value in ref.grads.items():
        assert_close(name, np.reshape(grads[name], value.shape), value, scale.grads[name])
