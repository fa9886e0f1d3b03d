"""Per-sample losses from logits, their gradients and cancellation-free differences."""

import naive
import numpy as np
import precise
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgrad.kernels import losses
from fastgrad.mlp import OUTPUT_LOSSES

OUTPUTS = {
    "identity": losses.MSE,
    "sigmoid": losses.BINARY_CROSS_ENTROPY,
    "softmax": losses.CROSS_ENTROPY,
}
U = np.finfo(np.float64).eps / 2


def test_codes_are_the_networks():
    assert {out: code for out, (_, code) in OUTPUT_LOSSES.items()} == OUTPUTS


def draw_targets(output, n, rng, kind=None):
    """Targets of one sample: any reals for mse, [0, 1] otherwise (soft or one-hot)."""
    if output == "identity":
        return rng.normal(size=n) * 2.0
    if output == "sigmoid":
        y = rng.random(n)
        y[rng.random(n) < 0.3] = 1.0
        return y
    kind = kind or rng.choice(["one_hot", "soft", "unnormalized"])
    if kind == "one_hot":
        return naive.one_hot([rng.integers(n)], n)[0]
    y = rng.random(n)
    return y / y.sum() if kind == "soft" else y


def samples(output, count, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(1, 9))
        yield rng.normal(size=n) * scale, draw_targets(output, n, rng), rng


def probabilities(code, z):
    prob = np.empty_like(z)
    losses.output_probabilities(code, z, prob)
    return prob


def term_size(output, z, y, loss):
    """Size of the terms that sum to the loss of one sample; rounding is relative to it."""
    if output == "identity":
        return loss  # a sum of squares
    if output == "sigmoid":
        return np.sum(np.logaddexp(0.0, z) + np.abs(y * z))
    return y.sum() * (abs(np.logaddexp.reduce(z)) + np.abs(z).max()) + np.sum(np.abs(y * z))


@pytest.mark.parametrize("output", OUTPUTS)
def test_sample_loss_matches_naive(output):
    code = OUTPUTS[output]
    for scale in (0.3, 3.0, 30.0):
        for z, y, _ in samples(output, 100, seed=1, scale=scale):
            ours = losses.sample_loss(code, z, y, np.empty_like(z))
            ref = naive.per_sample_loss(output, z[None], y[None])[0]
            # Both are accurate to a few u of the size of their terms, not of the
            # loss: a confident, correct prediction has a loss far below |z|.
            terms = term_size(output, z, y, ref)
            assert abs(ours - ref) <= 8 * z.size * U * terms, (z, y, ours, ref)


@pytest.mark.parametrize("output", OUTPUTS)
def test_sample_loss_matches_precise_at_large_logits(output):
    code = OUTPUTS[output]
    rng = np.random.default_rng(2)
    for z in ([700.0, -700.0, 50.0], [-50.0, 0.0, 600.0], [1000.0, 999.0, -1000.0]):
        z = np.array(z)
        y = draw_targets(output, z.size, rng, kind="soft")
        ours = losses.sample_loss(code, z, y, np.empty_like(z))
        ref = precise.sample_loss_value(output, z, y)
        assert np.isfinite(ours)
        assert abs(ours - ref) <= 8 * U * (abs(ref) + np.sum(np.abs(z))), (z, y, ours, ref)


@pytest.mark.parametrize("output", OUTPUTS)
def test_output_probabilities(output):
    code = OUTPUTS[output]
    for z, _, _ in samples(output, 50, seed=3, scale=10.0):
        prob = probabilities(code, z)
        ref = naive.output_function(output, z[None])[0]
        np.testing.assert_allclose(prob, ref, rtol=4e-15, atol=0)
        if output == "softmax":
            assert abs(prob.sum() - 1.0) <= 4 * z.size * U


def test_softmax_is_shift_invariant_and_finite_at_large_logits():
    z = np.array([1000.0, 999.0, -1000.0, 998.5])
    prob = np.empty(4)
    lse = losses.softmax_into(z, prob)
    shifted = naive.output_function("softmax", z[None] - 1000.0)[0]
    np.testing.assert_allclose(prob, shifted, rtol=1e-15)
    np.testing.assert_allclose(lse, 1000.0 + np.log(np.exp(z - 1000.0).sum()), rtol=4e-16)
    prob_sigmoid = probabilities(losses.BINARY_CROSS_ENTROPY, np.array([-700.0, 700.0, 0.0]))
    expected = [precise.sigmoid_pair(-700.0)[0], 1.0, 0.5]
    np.testing.assert_allclose(prob_sigmoid, expected, rtol=1e-15)


@given(z=st.lists(st.floats(-30.0, 30.0), min_size=1, max_size=8))
def test_softmax_returns_logsumexp(z):
    z = np.array(z)
    prob = np.empty_like(z)
    lse = losses.softmax_into(z, prob)
    assert abs(lse - np.logaddexp.reduce(z)) <= 4 * z.size * U * (abs(lse) + np.abs(z).max())


@pytest.mark.parametrize("output", OUTPUTS)
def test_logit_gradient_matches_formula(output):
    code = OUTPUTS[output]
    for z, y, _ in samples(output, 100, seed=4):
        out = np.empty_like(z)
        losses.logit_gradient(code, z, y, out)
        weight = y.sum() if output == "softmax" else 1.0
        ref = weight * naive.output_function(output, z[None])[0] - y
        np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-15 * (1 + np.abs(y).max()))


@pytest.mark.parametrize("output", OUTPUTS)
def test_logit_gradient_matches_centered_difference(output):
    code = OUTPUTS[output]
    h = 1e-5
    for z, y, _ in samples(output, 40, seed=5, scale=2.0):
        out = np.empty_like(z)
        losses.logit_gradient(code, z, y, out)
        scratch = np.empty_like(z)
        numerical = np.empty_like(z)
        for k in range(z.size):
            up, down = z.copy(), z.copy()
            up[k] += h
            down[k] -= h
            numerical[k] = (
                losses.sample_loss(code, up, y, scratch)
                - losses.sample_loss(code, down, y, scratch)
            ) / (2 * h)
        # truncation h^2 ~ 1e-10, rounding u |loss| / h ~ 1e-10
        np.testing.assert_allclose(out, numerical, rtol=1e-7, atol=1e-8)


def condition_scale(output, z, prob, y, dz):
    """Size of the terms whose sum is ``loss(z + dz) - loss(z)``: rounding is relative to it.

    The difference is ``sum_k`` of terms of both signs (``p_k dz_k`` against
    ``y_k dz_k``); rounding each leaves ``u`` times its size, so no method in
    float64 does better than ``u`` times this sum relative to a difference in
    which the terms cancel.
    """
    if output == "identity":
        return np.sum(np.abs(dz) * (np.abs(z) + np.abs(y) + np.abs(dz)))
    if output == "sigmoid":
        return np.sum(np.abs(dz) * (prob + y))
    return y.sum() * np.sum(prob * np.abs(dz)) + np.sum(y * np.abs(dz))


@pytest.mark.parametrize("output", OUTPUTS)
def test_loss_difference_is_accurate_to_rounding(output):
    code = OUTPUTS[output]
    well_conditioned = 0
    worst_naive = 0.0
    scratch = np.empty(8)
    for z, y, rng in samples(output, 150, seed=6):
        dz = rng.normal(size=z.size) * 10.0 ** rng.uniform(-12, -3)
        prob = probabilities(code, z)
        ours = losses.loss_difference(code, z, prob, y, dz)
        ref = precise.loss_difference(output, z, y, dz)
        scale = condition_scale(output, z, prob, y, dz)
        assert abs(ours - ref) <= 4 * (z.size + 2) * U * scale, (z, y, dz, ours, ref)
        if scale <= 10 * abs(ref):
            well_conditioned += 1
            assert abs(ours - ref) <= 1e-13 * abs(ref)
            subtracted = losses.sample_loss(
                code, z + dz, y, scratch[: z.size]
            ) - losses.sample_loss(code, z, y, scratch[: z.size])
            worst_naive = max(worst_naive, abs(subtracted - ref) / abs(ref))
    assert well_conditioned >= 50
    assert worst_naive > 1e-6  # what subtracting two losses would have cost


@pytest.mark.parametrize("output", OUTPUTS)
@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    power=st.floats(-12.0, -3.0),
    scale=st.sampled_from([0.1, 3.0, 20.0]),
)
def test_loss_difference_hypothesis(output, seed, power, scale):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    z = rng.normal(size=n) * scale
    y = draw_targets(output, n, rng)
    dz = rng.normal(size=n) * 10.0**power
    prob = probabilities(OUTPUTS[output], z)
    ours = losses.loss_difference(OUTPUTS[output], z, prob, y, dz)
    ref = precise.loss_difference(output, z, y, dz)
    assert abs(ours - ref) <= 4 * (n + 2) * U * condition_scale(output, z, prob, y, dz)


def test_loss_difference_of_soft_labels_unnormalized():
    # cross-entropy with targets summing to W != 1: W logsumexp(z) - y.z
    z = np.array([0.3, -1.2, 2.0, 0.0])
    y = np.array([0.5, 0.9, 0.0, 0.25])
    dz = np.array([1e-7, -3e-7, 2e-8, 5e-7])
    prob = probabilities(losses.CROSS_ENTROPY, z)
    ours = losses.loss_difference(losses.CROSS_ENTROPY, z, prob, y, dz)
    ref = precise.loss_difference("softmax", z, y, dz)
    assert abs(ours - ref) <= 1e-14 * abs(ref)
