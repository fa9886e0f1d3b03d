"""Centered differences along whole-tensor directions, against a loop of full passes."""

import naive
import numpy as np
import pytest
from networks import ENTRIES, case, naive_args

from fastgrad._passes import directional_differences


def reference(net, params, X, Y, layer, weight_dir, bias_dir, epsilon):
    """Per sample: ``loss_b(+) - loss_b(-)`` and evaluations that crossed a kink.

    ``W_layer`` moves along ``weight_dir`` and ``b_layer`` along ``bias_dir``
    together; extended precision.
    """
    sizes, hidden, output, _, masks = naive_args(net, X)
    ld = np.longdouble
    X, masks = X.astype(ld), [m.astype(ld) for m in masks]
    Z0, _ = naive.forward(sizes, hidden, {k: v.astype(ld) for k, v in params.items()}, X, masks)
    values, crossings = [], np.zeros(X.shape[0], dtype=np.int64)
    for sign in (1.0, -1.0):
        trial = {k: v.astype(ld) for k, v in params.items()}
        trial[f"W{layer}"] = trial[f"W{layer}"] + ld(sign * epsilon) * weight_dir
        trial[f"b{layer}"] = trial[f"b{layer}"] + ld(sign * epsilon) * bias_dir
        Z, _ = naive.forward(sizes, hidden, trial, X, masks)
        values.append(naive.per_sample_loss(output, Z[-1], Y.astype(ld)))
        crossed = np.zeros(X.shape[0], dtype=bool)
        for k, name in enumerate(hidden):
            if naive.kinked(name):
                crossed |= np.any(((Z[k] > 0) != (Z0[k] > 0)) & (masks[k] != 0), axis=1)
        crossings += crossed
    return (values[0] - values[1]).astype(float), crossings


@pytest.mark.parametrize("hidden", ENTRIES)
def test_directional_differences_match_full_passes(hidden):
    net, params, X, Y = case([4, 5, 3, 2], hidden, "softmax", batch=3, seed=8, dropout=0.2)
    work, _ = net.workspace(params, X, Y)
    head = work.head()
    rng = np.random.default_rng(0)
    for layer in (1, 2, 3):
        n_out, n_in = net.sizes[layer], net.sizes[layer - 1]
        weight_dirs = rng.normal(size=(2, n_out, n_in))
        bias_dirs = rng.normal(size=(2, n_out))
        for epsilon in (1e-4, 0.3):
            out = np.empty((3, 2))
            kinks = np.zeros((3, 2), dtype=np.int64)
            args = (layer, weight_dirs, bias_dirs, epsilon, work.network, head, work.loss_code)
            directional_differences(*args, out, kinks)
            for d in range(2):
                ref, crossings = reference(
                    net, params, X, Y, layer, weight_dirs[d], bias_dirs[d], epsilon
                )
                np.testing.assert_allclose(out[:, d], ref, rtol=1e-10, atol=1e-17)
                np.testing.assert_array_equal(kinks[:, d], crossings)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "leaky_relu"])
def test_bias_directions_alone_match_full_passes(hidden):
    # weight_dirs=None: a bias tensor's directions, with no weight-sized zeros
    net, params, X, Y = case([6, 7, 5, 3], hidden, "sigmoid", batch=4, seed=9)
    work, _ = net.workspace(params, X, Y)
    rng = np.random.default_rng(1)
    for layer in (1, 2, 3):
        n_out, n_in = net.sizes[layer], net.sizes[layer - 1]
        bias_dirs = rng.normal(size=(3, n_out))
        for epsilon in (1e-6, 0.5):
            out = np.empty((4, 3))
            kinks = np.zeros((4, 3), dtype=np.int64)
            args = (layer, None, bias_dirs, epsilon, work.network, work.head(), work.loss_code)
            directional_differences(*args, out, kinks)
            for d in range(3):
                ref, crossings = reference(
                    net, params, X, Y, layer, np.zeros((n_out, n_in)), bias_dirs[d], epsilon
                )
                np.testing.assert_allclose(out[:, d], ref, rtol=1e-10, atol=1e-17)
                np.testing.assert_array_equal(kinks[:, d], crossings)
