"""Tables the finite-difference kernel reads, built once per check."""

import numpy as np

from ._jit import jit
from .activations import sigmoid_pair
from .dense import node_block, weight_view
from .line_series import bernoulli_cumulants


@jit()
def transpose_weights(theta, w_off, sizes, wt):
    """Write each weight transposed into ``wt``, at the weight's own offset."""
    for u in range(1, sizes.shape[0]):
        weight = weight_view(theta, w_off, sizes, u)
        start = w_off[u]
        for j in range(sizes[u - 1]):
            for k in range(sizes[u]):
                wt[start + j * sizes[u] + k] = weight[k, j]


@jit()
def input_tables(acts, node_off, sizes, reach_in, nonzero_ptr, nonzero_index):
    """Describe the inputs of every layer, sample by sample.

    Fills ``reach_in[u, b] = max(1, max_j |A_u[b, j]|)`` and the nonzero inputs
    ``nonzero_index[nonzero_ptr[u, b]:nonzero_ptr[u, b + 1]]`` for node layers
    ``u = 0 .. L - 1``; returns how many indices were written.
    """
    count = 0
    for u in range(sizes.shape[0] - 1):
        inputs = node_block(acts, node_off, sizes, u)
        for b in range(inputs.shape[0]):
            nonzero_ptr[u, b] = count
            top = 1.0
            for j in range(sizes[u]):
                value = inputs[b, j]
                if value != 0.0:
                    nonzero_index[count] = j
                    count += 1
                    top = max(top, abs(value))
            reach_in[u, b] = top
        nonzero_ptr[u, inputs.shape[0]] = count
    return count


@jit()
def bernoulli_table(logits, out):
    """Fill ``out[b, k, 1:]`` with the cumulants of Bernoulli(sigmoid(logits[b, k]))."""
    mu = np.zeros(out.shape[2])
    for b in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            q, q_bar = sigmoid_pair(logits[b, k])
            bernoulli_cumulants(q, q_bar, mu, out[b, k])
