"""Taylor-mode recurrences against Taylor coefficients computed by mpmath in 50 digits."""

import mpmath
import numpy as np
import pytest
from mp_reference import activation
from networks import HIDDEN, PARAMETRIZED

from fastgrad.kernels import activations as act
from fastgrad.kernels import jets, losses

ORDER = jets.ORDER
CODES = {name: getattr(act, name.upper()) for name in HIDDEN}
LOSSES = {"mse": losses.MSE, "bce": losses.BINARY_CROSS_ENTROPY, "ce": losses.CROSS_ENTROPY}


def taylor(f):
    """Taylor coefficients 0..ORDER of ``f`` at 0, in 50 digits."""
    with mpmath.workdps(50):
        return [float(c) for c in mpmath.taylor(f, 0, ORDER)]


def series(w, g):
    return sum(mpmath.mpf(float(w[n])) * g**n for n in range(1, ORDER + 1))


def random_jet(rng, scale):
    w = np.zeros(ORDER + 1)
    w[1:] = rng.normal(size=ORDER) * scale ** np.arange(1, ORDER + 1)
    return w


DEFAULT = {"leaky_relu": act.LEAKY_SLOPE, "elu": act.ELU_ALPHA, "softplus": act.SOFTPLUS_BETA}


@pytest.mark.parametrize("entry", list(CODES) + list(PARAMETRIZED))
def test_activation_jet_matches_taylor_coefficients(entry):
    name, param = (entry, DEFAULT.get(entry, 0.0)) if isinstance(entry, str) else entry
    rng = np.random.default_rng(len(name))
    for z in (-3.1, -0.4, 0.7, 2.5):
        w = random_jet(rng, 0.5 / max(1.0, param))
        out, y, q = np.full(ORDER + 1, np.nan), np.zeros(ORDER + 1), np.zeros(ORDER + 1)
        jets.activation_jet(CODES[name], param, z, w, out, y, q)
        zz = mpmath.mpf(z)
        ref = taylor(
            lambda g, zz=zz, w=w: activation(entry, zz + series(w, g)) - activation(entry, zz)
        )
        scale = np.abs(ref).max()
        np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-13 * scale, err_msg=f"{entry} {z}")


def test_an_unknown_activation_code_is_an_error():
    w = np.zeros(ORDER + 1)
    w[1] = 1.0
    scratch = [np.zeros(ORDER + 1) for _ in range(3)]
    with pytest.raises(ValueError, match="unknown activation code"):
        jets.activation_jet(99, 0.0, 0.5, w, *scratch)


def mp_loss(kind, z, y):
    if kind == "mse":
        return sum((a - b) ** 2 for a, b in zip(z, y, strict=True)) / 2
    if kind == "bce":
        return sum(mpmath.log1p(mpmath.exp(a)) - b * a for a, b in zip(z, y, strict=True))
    lse = mpmath.log(sum(mpmath.exp(a) for a in z))
    return sum(y) * lse - sum(a * b for a, b in zip(z, y, strict=True))


@pytest.mark.parametrize("kind", LOSSES)
def test_loss_jet_matches_taylor_coefficients(kind):
    rng = np.random.default_rng(3)
    for n_out in (1, 3, 5):
        z = rng.normal(size=n_out) * 2.0
        y = rng.random(n_out) if kind != "ce" else np.eye(n_out)[rng.integers(n_out)]
        prob = np.empty(n_out)
        losses.output_probabilities(LOSSES[kind], z, prob)
        w = np.stack([random_jet(rng, 0.3) for _ in range(n_out)], axis=1)
        out = np.full(ORDER + 1, np.nan)
        scratch = [np.zeros(ORDER + 1) for _ in range(3)]
        jets.loss_jet(LOSSES[kind], z, prob, y, w, out, *scratch)
        zz = [mpmath.mpf(v) for v in z]
        yy = [mpmath.mpf(v) for v in y]

        def moved(g, zz=zz, yy=yy, w=w):
            shifted = [a + series(w[:, k], g) for k, a in enumerate(zz)]
            return mp_loss(kind, shifted, yy) - mp_loss(kind, zz, yy)

        ref = taylor(moved)
        # a single softmax output never moves the loss: rounding of the terms is all there is
        scale = np.abs(ref).max() + np.abs(w).max()
        np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-13 * scale)


def test_exp_and_log_jets_invert_each_other():
    rng = np.random.default_rng(4)
    w = random_jet(rng, 0.5)
    e = np.zeros(ORDER + 1)
    jets.exp_jet(w, 2.5, e)  # 2.5 exp(w(g))
    back = np.zeros(ORDER + 1)
    jets.log_jet(e, back)  # log(e(g) / e[0]) = w(g)
    np.testing.assert_allclose(back[1:], w[1:], rtol=1e-12, atol=1e-15)
    ref = taylor(lambda g: 2.5 * mpmath.exp(series(w, g)))
    np.testing.assert_allclose(e, ref, rtol=1e-12)


def test_reach_bounds_the_jet():
    w = np.zeros(ORDER + 1)
    w[1:] = [1.0, -2.0, 0.5, 0.0, 0.0, 0.0, 3.0]
    r = 0.1
    assert jets.reach(w, r) == pytest.approx(0.1 + 0.02 + 0.0005 + 3e-7, rel=1e-15)
