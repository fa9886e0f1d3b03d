"""The loss along a line in logit space as a power series; cumulants."""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import precise
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastgrad.kernels import activations as act
from fastgrad.kernels import line_series as series
from fastgrad.kernels import losses

OUTPUTS = {
    "identity": losses.MSE,
    "sigmoid": losses.BINARY_CROSS_ENTROPY,
    "softmax": losses.CROSS_ENTROPY,
}
U = np.finfo(np.float64).eps / 2
SIZE = series.DEGREE + 1


def coefficients(output, z, y, u):
    """Return ``(coef, reach, prob)`` of one sample, set up as the finite-difference kernel does."""
    code = OUTPUTS[output]
    prob = np.empty_like(z)
    losses.output_probabilities(code, z, prob)
    mu, kappa = np.zeros(SIZE), np.zeros(SIZE)
    bernoulli = np.zeros((z.size, SIZE))
    if code == losses.BINARY_CROSS_ENTROPY:
        for k in range(z.size):
            q, q_bar = act.sigmoid_pair(z[k])
            series.bernoulli_cumulants(q, q_bar, mu, bernoulli[k])
    coef = np.full(SIZE, np.nan)
    reach = series.line_coefficients(code, z, prob, y, u, bernoulli, mu, kappa, coef)
    return coef, reach, prob


def draw_sample(output, rng):
    n = int(rng.integers(1, 9))
    z = rng.normal(size=n) * 3.0
    if output == "identity":
        y = rng.normal(size=n)
    elif output == "sigmoid":
        y = rng.random(n)
    else:
        y = rng.random(n)
        if rng.random() < 0.5:
            y /= y.sum()
    u = rng.normal(size=n) * 10.0 ** rng.uniform(-2, 2)
    return z, y, u


def drawn_series(output, rng, count):
    """Yield ``count`` drawn samples ``(z, y, u)`` with their ``(coef, reach, prob)``."""
    for _ in range(count):
        z, y, u = draw_sample(output, rng)
        yield (z, y, u, *coefficients(output, z, y, u))


def line_scale(output, z, prob, y, u, s):
    """Size of the terms of ``F(s)`` (``s p.u`` against ``s y.u``): rounding is relative to it."""
    if output == "identity":
        return abs(s) * np.sum(np.abs(u) * (np.abs(z) + np.abs(y))) + s * s * np.sum(u * u)
    if output == "sigmoid":
        return abs(s) * np.sum(np.abs(u) * (prob + y))
    return abs(s) * (y.sum() * np.sum(prob * np.abs(u)) + np.sum(y * np.abs(u)))


def draw_step(output, z, u, reach, rng):
    """A step within the reach, and (mse) within ``|s| max|u| <= 0.01``."""
    limit = reach if np.isfinite(reach) else 0.01 / np.abs(u).max()
    return rng.uniform(-1.0, 1.0) * limit * 10.0 ** rng.uniform(-8, 0)


@pytest.mark.parametrize("output", OUTPUTS)
def test_evaluate_matches_precise_loss_along_line(output):
    rng = np.random.default_rng(1)
    well_conditioned = 0
    for z, y, u, coef, reach, prob in drawn_series(output, rng, 150):
        assert coef[0] == 0.0
        for s in (draw_step(output, z, u, reach, rng), reach if np.isfinite(reach) else 0.0):
            if s == 0.0:
                continue
            ours = series.evaluate(coef, s)
            ref = precise.line_difference(output, z, y, u, s)
            assert abs(ours - ref) <= 4 * (z.size + 4) * U * line_scale(output, z, prob, y, u, s), (
                z,
                y,
                u,
                s,
                ours,
                ref,
            )
            if line_scale(output, z, prob, y, u, s) <= 10 * abs(ref):
                well_conditioned += 1
                assert abs(ours - ref) <= 1e-13 * abs(ref)
    assert well_conditioned >= 100


@pytest.mark.parametrize("output", OUTPUTS)
def test_within_max_u_bound(output):
    # the kernel's callers may use any |s| max|u| <= 0.01 with the reach computed from it
    rng = np.random.default_rng(2)
    for z, y, u, coef, reach, prob in drawn_series(output, rng, 60):
        s = min(0.01 / np.abs(u).max(), reach) * rng.choice([1.0, -1.0])
        ours = series.evaluate(coef, s)
        ref = precise.line_difference(output, z, y, u, s)
        assert abs(ours - ref) <= 4 * (z.size + 4) * U * line_scale(output, z, prob, y, u, s)


@pytest.mark.parametrize("output", OUTPUTS)
def test_odd_difference(output):
    rng = np.random.default_rng(3)
    for z, y, u, coef, reach, prob in drawn_series(output, rng, 100):
        s = draw_step(output, z, u, reach, rng)
        odd = series.odd_difference(coef, s)
        up, down = series.evaluate(coef, s), series.evaluate(coef, -s)
        assert abs(odd - (up - down)) <= 8 * U * (abs(up) + abs(down))
        ref = precise.line_odd_difference(output, z, y, u, s)
        scale = line_scale(output, z, prob, y, u, s)
        assert abs(odd - ref) <= 4 * (z.size + 4) * U * scale, (z, y, u, s)


def test_odd_difference_uses_odd_terms_only():
    coef = np.array([0.0, 1.0, 5.0, 2.0, -7.0, 0.5, 3.0, 0.0, 0.0, 0.25])
    s = 0.125  # powers of two: every product below is exact
    expected = 2 * (coef[1] * s + coef[3] * s**3 + coef[5] * s**5 + coef[9] * s**9)
    assert series.odd_difference(coef, s) == expected
    assert series.evaluate(coef, s) == sum(coef[n] * s**n for n in range(1, SIZE))
    assert series.odd_difference(coef[:9], s) == 2 * (coef[1] * s + coef[3] * s**3 + coef[5] * s**5)


@given(seed=st.integers(0, 2**32 - 1))
def test_mse_coefficients_are_exact(seed):
    rng = np.random.default_rng(seed)
    z, y, u = draw_sample("identity", rng)
    coef, reach, _ = coefficients("identity", z, y, u)
    assert reach == math.inf
    np.testing.assert_allclose(
        coef[1], np.dot(u, z - y), rtol=1e-13, atol=1e-15 * np.sum(np.abs(u * (z - y)))
    )
    np.testing.assert_allclose(coef[2], 0.5 * np.dot(u, u), rtol=1e-14)
    np.testing.assert_array_equal(coef[3:], 0.0)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_reach(output):
    rng = np.random.default_rng(4)
    for z, _, u, _, reach, prob in drawn_series(output, rng, 50):
        centre = np.dot(prob, u) if output == "softmax" else 0.0
        spread = np.abs(u - centre).max()
        if spread > 0:
            assert 0.0 < reach < math.inf
            np.testing.assert_allclose(reach * spread, series.RADIUS, rtol=1e-12)
        else:  # a single softmax output: the loss does not move
            assert z.size == 1 and output == "softmax" and reach == math.inf
    # no movement: nothing limits the step
    z = np.array([0.5, -0.5])
    assert coefficients(output, z, np.array([0.0, 1.0]), np.zeros(2))[1] == math.inf
    if output == "softmax":  # moving every logit alike changes nothing either
        assert coefficients(output, z, np.array([0.0, 1.0]), np.full(2, 0.75))[1] == math.inf


# -- cumulants ----------------------------------------------------------------------------------


def bernoulli_reference(q, order):
    """Cumulants 1..order of Bernoulli(q), exactly, from its raw moments (all equal to q)."""
    q = Fraction(q)
    kappa = [Fraction(0)] * (order + 1)
    for n in range(1, order + 1):
        kappa[n] = q - sum(math.comb(n - 1, k - 1) * kappa[k] * q for k in range(1, n))
    return kappa


@pytest.mark.parametrize("z", [-30.0, -5.0, -0.7, 0.0, 0.3, 2.0, 12.0, 30.0])
def test_bernoulli_cumulants(z):
    q, q_bar = act.sigmoid_pair(z)
    mu, kappa = np.zeros(SIZE), np.zeros(SIZE)
    series.bernoulli_cumulants(q, q_bar, mu, kappa)
    # closed forms, written with q_bar so that they keep precision as q -> 1
    closed = [q, q * q_bar, q * q_bar * (q_bar - q), q * q_bar * (1 - 6 * q * q_bar)]
    for n, value in enumerate(closed, start=1):
        assert abs(kappa[n] - value) <= 1e-13 * q * q_bar + 1e-300, (n, kappa[n], value)
    # all orders against exact rational arithmetic (q as given, q_bar = 1 - q exactly)
    if 0.05 < q < 0.95:
        exact = bernoulli_reference(q, series.DEGREE)
        for n in range(1, SIZE):
            assert abs(kappa[n] - float(exact[n])) <= 1e-13 * float(q * (1 - Fraction(q))), n


def test_bernoulli_cumulants_of_a_fair_coin():
    mu, kappa = np.zeros(SIZE), np.zeros(SIZE)
    series.bernoulli_cumulants(0.5, 0.5, mu, kappa)
    # K(t) = log((1 + e^t) / 2): kappa_2 = 1/4, kappa_4 = -1/8, kappa_6 = 1/4, kappa_8 = -17/16
    np.testing.assert_allclose(
        kappa[1:], [0.5, 0.25, 0, -0.125, 0, 0.25, 0, -17 / 16, 0], rtol=1e-14, atol=1e-15
    )


@pytest.mark.parametrize("sigma", [0.1, 1.0, 2.5])
def test_cumulants_of_a_normal(sigma):
    mu = np.zeros(SIZE)
    double_factorial = 1.0
    for n in range(2, SIZE, 2):
        double_factorial *= n - 1  # (n - 1)!! = 1, 3, 15, 105
        mu[n] = double_factorial * sigma**n
    kappa = np.full(SIZE, np.nan)
    series.cumulants_from_central_moments(mu, kappa)
    assert kappa[2] == pytest.approx(sigma**2, rel=1e-15)
    # the recursion cancels moments of about 100 sigma^n: 1e-12 sigma^n is a few u of them
    for n in range(3, SIZE):
        assert abs(kappa[n]) <= 1e-12 * sigma**n, n


@pytest.mark.parametrize("lam", [0.3, 1.0, 4.0])
def test_cumulants_of_a_poisson(lam):
    # central moments by direct sums over the probability mass function, in high precision
    with localcontext() as ctx:
        ctx.prec = 50
        rate = Decimal(lam)
        weight = (-rate).exp()
        mu = [Decimal(0)] * SIZE
        for k in range(200):
            if k:
                weight = weight * rate / k
            for n in range(2, SIZE):
                mu[n] += weight * (k - rate) ** n
        mu = np.array([float(m) for m in mu])
    kappa = np.full(SIZE, np.nan)
    series.cumulants_from_central_moments(mu, kappa)
    # every cumulant of a Poisson variable is its rate
    np.testing.assert_allclose(kappa[2:], lam, rtol=1e-12)


def test_binomial():
    for n in range(12):
        for k in range(n + 1):
            assert series.binomial(n, k) == math.comb(n, k)
