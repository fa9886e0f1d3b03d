"""Tables built once per check: transposed weights, input tables, Bernoulli cumulants."""

import numpy as np
from networks import case

from fastgrad.kernels import line_series, tables
from fastgrad.kernels.activations import sigmoid_pair


def test_transpose_weights_puts_each_weight_transposed_at_its_own_offset():
    net, params, X, Y = case([4, 3, 5, 2], "relu", "softmax", batch=2, seed=1)
    work, _ = net.workspace(params, X, Y)
    wt = np.full_like(work.theta, np.nan)
    tables.transpose_weights(work.theta, work.w_off, work.sizes, wt)
    for u in range(1, 4):
        W = params[f"W{u}"]
        start = work.w_off[u]
        np.testing.assert_array_equal(wt[start : start + W.size], W.T.ravel())


def test_input_tables_list_nonzero_inputs_and_their_reach():
    net, params, X, Y = case([6, 4, 3], "relu", "softmax", batch=5, seed=2)
    X[X < 0.3] = 0.0
    X[2] = 0.0
    X[3, 1] = 7.5
    work, _ = net.workspace(params, X, Y)
    reach = np.empty((2, 5))
    ptr = np.empty((2, 6), dtype=np.int64)
    index = np.full(int(work.node_off[2]), -1, dtype=np.int64)
    used = tables.input_tables(work.acts, work.node_off, work.sizes, reach, ptr, index)
    assert used == ptr[1, 5]
    for u in range(2):
        A = work.block(work.acts, u)
        for b in range(5):
            np.testing.assert_array_equal(index[ptr[u, b] : ptr[u, b + 1]], np.flatnonzero(A[b]))
            assert reach[u, b] == max(1.0, np.abs(A[b]).max())
    assert reach[0, 3] == 7.5 and reach[0, 2] == 1.0 and ptr[0, 3] == ptr[0, 2]


def test_bernoulli_table_holds_each_output_s_cumulants():
    logits = np.array([[-3.0, 0.0, 40.0], [0.5, -0.25, 2.0]])
    out = np.zeros((2, 3, line_series.DEGREE + 1))
    tables.bernoulli_table(logits, out)
    mu = np.zeros(line_series.DEGREE + 1)
    for b in range(2):
        for k in range(3):
            expected = np.zeros(line_series.DEGREE + 1)
            q, q_bar = sigmoid_pair(logits[b, k])
            line_series.bernoulli_cumulants(q, q_bar, mu, expected)
            np.testing.assert_array_equal(out[b, k], expected)
            assert out[b, k, 1] == q
            np.testing.assert_allclose(out[b, k, 2], q * q_bar, rtol=1e-14)
