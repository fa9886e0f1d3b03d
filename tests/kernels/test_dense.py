"""Forward and backward passes on flat arrays, against tests/naive.py.

The flat arrays are laid out here from the kernel's documented contract
(``W_u`` row-major then ``b_u``, node blocks of ``batch x sizes[u]``), not
with fastgrad's own packing, so that the passes (BLAS products and the
compiled elementwise kernels) are checked on their own.
"""

import naive
import numpy as np
import pytest
from compare import assert_close, reference, relative_error, rounding_scale
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import PARAMETRIZED
from strategies import HIDDEN, TARGETS, cases, random_params

from fastgrad import _passes
from fastgrad.kernels import activations, dense
from fastgrad.kernels import losses as loss_codes
from fastgrad.kernels.structures import Network

CODES = {name: getattr(activations, name.upper()) for name in HIDDEN}
LOSS_CODES = {
    "identity": loss_codes.MSE,
    "sigmoid": loss_codes.BINARY_CROSS_ENTROPY,
    "softmax": loss_codes.CROSS_ENTROPY,
}
RTOL = 1e-12


class Flat:
    """A network, parameters and batch as the kernels take them."""

    def __init__(self, sizes, hidden, output, params, X, Y, masks, l2=0.0):
        n_layers = len(sizes) - 1
        self.batch = batch = X.shape[0]
        self.sizes = np.array(sizes, dtype=np.int64)
        entries = [naive.split(entry) for entry in hidden]
        self.codes = np.array([0, *(CODES[name] for name, _ in entries), 0], dtype=np.int64)
        self.act_params = np.array(
            [0.0, *(0.0 if param is None else param for _, param in entries), 0.0]
        )
        self.loss_code = LOSS_CODES[output]
        self.l2 = l2
        self.w_off = np.zeros(n_layers + 1, dtype=np.int64)
        self.b_off = np.zeros(n_layers + 1, dtype=np.int64)
        chunks, offset = [], 0
        for u in range(1, n_layers + 1):
            W, b = params[f"W{u}"], np.ravel(params[f"b{u}"])
            self.w_off[u], self.b_off[u] = offset, offset + W.size
            chunks += [W.ravel(), b]
            offset += W.size + b.size
        self.theta = np.concatenate(chunks)
        self.node_off = np.zeros(n_layers + 2, dtype=np.int64)
        for u in range(n_layers + 1):
            self.node_off[u + 1] = self.node_off[u] + batch * sizes[u]
        total = int(self.node_off[-1])
        self.acts = np.full(total, np.nan)
        self.pre = np.full(total, np.nan)
        self.masks = np.ones(total)
        self.block(self.acts, 0)[:] = X
        for u, mask in enumerate(masks, start=1):
            self.block(self.masks, u)[:] = mask
        self.targets = np.ascontiguousarray(Y, dtype=np.float64)

    def block(self, buffer, u):
        return buffer[self.node_off[u] : self.node_off[u + 1]].reshape(self.batch, self.sizes[u])

    @property
    def network(self):
        return Network(**{field: getattr(self, field) for field in Network._fields})

    def forward(self, route="blas"):
        if route == "blas":
            _passes.forward(self.network)
        else:  # one compiled call, as a tiny network's passes run
            dense.forward_pass(self.network)

    def backward(self, route="blas"):
        grad = np.full_like(self.theta, np.nan)
        if route == "blas":
            _passes.backward(self.network, self.targets, self.loss_code, self.l2, grad)
        else:
            dense.backward_pass(self.network, self.targets, self.loss_code, self.l2, grad)
        return grad


def flat_of(case):
    return Flat(
        case.sizes, case.hidden, case.output, case.params, case.X, case.Y, case.masks, case.l2
    )


ROUTES = ["blas", "compiled"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=25)
@given(data=st.data())
def test_forward_and_backward_match_naive(target, route, data):
    case = data.draw(cases(target=target))
    flat = flat_of(case)
    flat.forward(route)
    ref, scale = reference(case), rounding_scale(case)
    n_layers = len(case.sizes) - 1
    np.testing.assert_array_equal(flat.block(flat.acts, 0), case.X)
    for u in range(1, n_layers + 1):
        assert_close(f"Z{u}", flat.block(flat.pre, u), ref.Z[u - 1], scale.Z[u - 1])
    for u in range(1, n_layers):
        assert_close(f"A{u}", flat.block(flat.acts, u), ref.A[u - 1], scale.A[u - 1])
    assert np.isnan(flat.block(flat.acts, n_layers)).all()  # the logits have no activation

    losses = np.empty(case.X.shape[0])
    dense.sample_losses(flat.pre, flat.node_off, flat.sizes, flat.targets, flat.loss_code, losses)
    for b in range(losses.size):
        assert_close(f"loss[{b}]", losses[b], ref.sample_losses[b], scale.sample_losses[b])

    outputs = np.empty_like(ref.output)
    dense.output_batch(flat.pre, flat.node_off, flat.sizes, flat.loss_code, outputs)
    assert_close("output", outputs, ref.output, scale.output)

    arrays = (flat.theta, flat.acts, flat.pre, flat.masks, flat.targets)
    inputs = [a.copy() for a in arrays]
    grad = flat.backward(route)
    for before, after in zip(inputs, arrays, strict=True):
        np.testing.assert_array_equal(before, after)
    for u in range(1, n_layers + 1):
        W = grad[flat.w_off[u] : flat.w_off[u] + case.params[f"W{u}"].size]
        b = grad[flat.b_off[u] : flat.b_off[u] + case.sizes[u]]
        assert_close(f"dW{u}", W, ref.grads[f"dW{u}"], scale.grads[f"dW{u}"])
        assert_close(f"db{u}", b, ref.grads[f"db{u}"], scale.grads[f"db{u}"])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("hidden", HIDDEN + PARAMETRIZED)
def test_each_activation_in_the_forward_pass(hidden, route):
    rng = np.random.default_rng(7)
    sizes = [3, 6, 6, 2]
    params = random_params(sizes, rng)
    for name in params:
        params[name] = params[name] * 4.0  # reach the saturated and negative parts
    X = rng.normal(size=(5, 3))
    masks = [np.ones((5, 6)), np.where(rng.random((5, 6)) < 0.5, 0.0, 2.0)]
    flat = Flat(sizes, [hidden, hidden], "identity", params, X, np.zeros((5, 2)), masks)
    flat.forward(route)
    Z, A = naive.forward(sizes, [hidden, hidden], params, X, masks)
    for u in (1, 2):
        assert relative_error(flat.block(flat.acts, u), A[u]) <= RTOL
    assert relative_error(flat.block(flat.pre, 3), Z[2]) <= RTOL


def test_squared_weight_norm():
    rng = np.random.default_rng(8)
    sizes = [4, 3, 5, 2]
    params = random_params(sizes, rng)
    flat = Flat(
        sizes,
        ["relu", "relu"],
        "identity",
        params,
        np.zeros((1, 4)),
        np.zeros((1, 2)),
        [np.ones((1, 3)), np.ones((1, 5))],
    )
    expected = sum(np.sum(params[f"W{u}"] ** 2) for u in (1, 2, 3))
    ours = dense.squared_weight_norm(flat.theta, flat.w_off, flat.sizes)
    assert relative_error(ours, expected) <= 1e-15


def test_node_block_and_weight_view():
    sizes = np.array([2, 3], dtype=np.int64)
    node_off = np.array([0, 8, 20], dtype=np.int64)  # batch 4
    buffer = np.arange(20.0)
    np.testing.assert_array_equal(
        dense.node_block(buffer, node_off, sizes, 1), np.arange(8.0, 20.0).reshape(4, 3)
    )
    theta = np.arange(9.0)
    w_off = np.array([0, 0], dtype=np.int64)
    np.testing.assert_array_equal(
        dense.weight_view(theta, w_off, sizes, 1), np.arange(6.0).reshape(3, 2)
    )


SPECIAL = [np.nan, np.inf, -np.inf, -np.nan, 0.0, -0.0, 5e-324, -5e-324, np.finfo(float).max]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True)),
        max_size=70,
    )
)
def test_any_nonfinite_is_numpys_isfinite(values):
    # every special value, alone or among others, at any position of the vectorized loop
    x = np.array(values, dtype=np.float64)
    assert dense.any_nonfinite(x) == (not np.isfinite(x).all())


def test_any_nonfinite_sees_a_nan_of_any_payload_and_sign():
    x = np.zeros(37)
    for bits in (0x7FF0000000000001, 0xFFF8000000000000, 0x7FFFFFFFFFFFFFFF, 0xFFF0000000000000):
        x.view(np.uint64)[23] = bits
        assert dense.any_nonfinite(x)
    x.view(np.uint64)[23] = 0x7FEFFFFFFFFFFFFF  # the largest finite float
    assert not dense.any_nonfinite(x)


@pytest.mark.parametrize("code", [activations.RELU, activations.LEAKY_RELU, activations.TANH])
def test_elementwise_steps_are_the_scalar_activations_to_the_bit(code):
    # relu's loops run with the code as a constant (vectorized), the others dispatch per entry:
    # either way each entry is activate()/derivative() of it, as the scalar functions give it
    rng = np.random.default_rng(code)
    z0 = rng.normal(size=(7, 33))
    z0[0, :4] = [0.0, -0.0, 5e-324, -5e-324]
    bias = rng.normal(size=33)
    bias[:4] = 0.0
    mask = np.where(rng.random((7, 33)) < 0.3, 0.0, 2.0)
    param = 0.2 if code == activations.LEAKY_RELU else 0.0
    z, a_out = z0.copy(), np.empty_like(z0)
    dense.finish_layer(z, bias, mask, a_out, code, param, True)
    total = z0 + bias
    np.testing.assert_array_equal(z, total)
    expected = [[activations.activate(code, param, t) for t in row] for row in total]
    np.testing.assert_array_equal(a_out, np.array(expected) * mask)
    d_act = rng.normal(size=z0.shape)
    d_out = d_act.copy()
    bias_grad = np.full(33, np.nan)
    dense.through_activation(d_out, total, mask, code, param, bias_grad)
    slopes = np.array([[activations.derivative(code, param, t) for t in row] for row in total])
    np.testing.assert_array_equal(d_out, d_act * (mask * slopes))
    np.testing.assert_array_equal(bias_grad, np.add.reduce(d_out, axis=0))


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 70),
    columns=st.integers(2, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_column_sums_are_numpys_sum_over_rows_to_the_bit(rows, columns, seed):
    # the bias gradients were numpy's np.add.reduce(delta, axis=0); they must not move.
    # (numpy sums a single column pairwise: the passes leave that one to numpy)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)) * 10.0 ** rng.integers(-8, 9, size=(rows, columns))
    out = np.full(columns, np.nan)
    dense.column_sums(x, out)
    np.testing.assert_array_equal(out, np.add.reduce(x, axis=0))
