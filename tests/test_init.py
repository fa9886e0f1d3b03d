"""Tests of fastgrad.init.

Every expectation is computed here from the published formulas, never taken
from fastgrad's own output.
"""

import inspect
import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastgrad import init

SHAPE = (1000, 800)  # (n_out, n_in), as a torch.nn.Linear weight
FAN_IN, FAN_OUT = 800, 1000
CONV_SHAPE = (200, 100, 5, 5)  # receptive field 25
CONV_FAN_IN, CONV_FAN_OUT = 100 * 25, 200 * 25
RTOL_VAR = 0.03
ULP = 1e-12  # relative slack for a bound computed by another rounding path

SQRT2 = math.sqrt(2.0)
ALL_NAMES = {
    "zeros", "normal", "uniform", "trunc_normal", "orthogonal",
    "lecun_normal", "lecun_uniform",
    "xavier_normal", "xavier_uniform", "glorot_normal", "glorot_uniform",
    "kaiming_normal", "kaiming_uniform", "he_normal", "he_uniform",
}  # fmt: skip
FAN_BASED = [
    "lecun_normal", "lecun_uniform",
    "xavier_normal", "xavier_uniform", "glorot_normal", "glorot_uniform",
    "kaiming_normal", "kaiming_uniform", "he_normal", "he_uniform",
]  # fmt: skip
RANDOM = sorted(ALL_NAMES - {"zeros"})


# torch.nn.init.calculate_gain's documented table: 1 for linear, conv and
# sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope**2)) for
# leaky_relu (slope 0.01 by default), 3/4 for selu; written out as numbers.
PUBLISHED_GAINS = [
    ("linear", None, 1.0),
    ("conv1d", None, 1.0),
    ("conv2d", None, 1.0),
    ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0),
    ("conv_transpose2d", None, 1.0),
    ("conv_transpose3d", None, 1.0),
    ("sigmoid", None, 1.0),
    ("tanh", None, 1.6666666666666667),
    ("relu", None, 1.4142135623730951),
    ("selu", None, 0.75),
    ("leaky_relu", None, 1.4141428569978354),  # default slope 0.01
    ("leaky_relu", 0.0, 1.4142135623730951),
    ("leaky_relu", 0.2, 1.3867504905630728),
    ("leaky_relu", -0.2, 1.3867504905630728),
    ("leaky_relu", 1.0, 1.0),
]
GAIN = {(name, param): gain for name, param, gain in PUBLISHED_GAINS}


def phi(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def upper_tail(x):
    """P(Z > x) for a standard normal Z."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def truncated_moments(mean, std, a, b):
    """Mean and variance of N(mean, std**2) truncated to [a, b]."""
    al, be = (a - mean) / std, (b - mean) / std
    # Z = P(al < Z < be), from the side where the tails are small numbers.
    z = upper_tail(al) - upper_tail(be) if al + be > 0 else upper_tail(-be) - upper_tail(-al)
    d = (phi(al) - phi(be)) / z
    var = std**2 * (1.0 + (al * phi(al) - be * phi(be)) / z - d * d)
    return mean + std * d, var


def truncated_cdf(x, mean, std, a, b):
    """P(X <= x) for X ~ N(mean, std**2) truncated to [a, b]."""
    al, be, t = (a - mean) / std, (b - mean) / std, (x - mean) / std
    if al + be > 0:
        return (upper_tail(al) - upper_tail(t)) / (upper_tail(al) - upper_tail(be))
    return (upper_tail(-t) - upper_tail(-al)) / (upper_tail(-be) - upper_tail(-al))


def check_variance(x, var):
    assert x.dtype == np.float64
    assert abs(x.mean()) < 5.0 * math.sqrt(var / x.size)
    assert x.var() == pytest.approx(var, rel=RTOL_VAR)


def check_uniform(x, bound):
    """|x| <= bound exactly, max |x| close to it, and a flat histogram."""
    assert np.abs(x).max() <= bound * (1 + ULP)
    assert np.abs(x).max() >= 0.99 * bound
    assert x.var() == pytest.approx(bound**2 / 3.0, rel=RTOL_VAR)
    # U(-b, b): P(|x| <= b/2) = 1/2
    assert np.mean(np.abs(x) <= bound / 2) == pytest.approx(0.5, abs=0.01)


def check_normal(x, std):
    check_variance(x, std**2)
    # N(0, s): P(|x| <= s) = erf(1/sqrt 2) = 0.6827 (0.577 for a uniform)
    assert np.mean(np.abs(x) <= std) == pytest.approx(math.erf(1 / SQRT2), abs=0.01)


# ------------------------------------------------------------------ calculate_gain


@pytest.mark.parametrize(("name", "param", "expected"), PUBLISHED_GAINS)
def test_published_gains(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("name", "param", "expected"),
    [
        ("linear", 0.3, 1.0),  # param is ignored except by leaky_relu
        ("conv_transpose2d", 0.3, 1.0),
        ("sigmoid", 0.3, 1.0),
        ("tanh", 0.3, 1.6666666666666667),
        ("relu", 0.5, 1.4142135623730951),
        ("selu", 0.5, 0.75),
        ("leaky_relu", 0, 1.4142135623730951),  # int slope
        ("leaky_relu", np.float32(0.5), 1.2649110640673518),  # sqrt(2 / 1.25)
    ],
)
def test_gain_params(name, param, expected):
    assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-15)


def test_unknown_nonlinearity_lists_valid_names():
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'") as info:
        init.calculate_gain("swish")
    for name in ("linear", "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("ReLU")  # names are case-sensitive, as in torch


@pytest.mark.parametrize("param", ["0.2", True, [0.1], float("nan"), float("inf")])
def test_leaky_relu_param_must_be_a_number(param):
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", param)


# ------------------------------------------------------------- fan-based variances


KAIMING_CASES = [  # (nonlinearity, a, the published gain)
    ("leaky_relu", 0.0, GAIN["leaky_relu", 0.0]),  # torch's default: ReLU
    ("leaky_relu", 0.2, GAIN["leaky_relu", 0.2]),
    ("leaky_relu", 1.0, GAIN["leaky_relu", 1.0]),
    ("relu", 0.0, GAIN["relu", None]),
    ("tanh", 0.0, GAIN["tanh", None]),
    ("linear", 0.0, GAIN["linear", None]),
]


def kaiming_draw(draw, rng, a, mode, nonlinearity):
    """Draw :data:`SHAPE` with a Kaiming initializer; return it and the fan ``mode`` names."""
    x = draw(SHAPE, rng=rng, a=a, mode=mode, nonlinearity=nonlinearity)
    assert x.shape == SHAPE
    return x, FAN_IN if mode == "fan_in" else FAN_OUT


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(("nonlinearity", "a", "gain"), KAIMING_CASES)
def test_kaiming_normal_variance(mode, nonlinearity, a, gain):
    x, fan = kaiming_draw(init.kaiming_normal, 1, a, mode, nonlinearity)
    check_normal(x, gain / math.sqrt(fan))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(("nonlinearity", "a", "gain"), KAIMING_CASES)
def test_kaiming_uniform_bound_and_variance(mode, nonlinearity, a, gain):
    x, fan = kaiming_draw(init.kaiming_uniform, 2, a, mode, nonlinearity)
    check_uniform(x, gain * math.sqrt(3.0 / fan))


def test_kaiming_defaults_are_he_for_relu():
    # bound = sqrt(6 / fan_in), std = sqrt(2 / fan_in)
    check_uniform(init.kaiming_uniform(SHAPE, rng=3), math.sqrt(6.0 / FAN_IN))
    check_normal(init.kaiming_normal(SHAPE, rng=3), math.sqrt(2.0 / FAN_IN))


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_uses_the_receptive_field(mode):
    fan = CONV_FAN_IN if mode == "fan_in" else CONV_FAN_OUT
    x = init.kaiming_normal(CONV_SHAPE, rng=4, mode=mode, nonlinearity="relu")
    check_normal(x, math.sqrt(2.0 / fan))
    x = init.kaiming_uniform(CONV_SHAPE, rng=4, mode=mode, nonlinearity="relu")
    check_uniform(x, math.sqrt(6.0 / fan))


def test_kaiming_mode_is_case_insensitive_like_torch():
    a = init.kaiming_normal((5, 7), rng=0, mode="Fan_Out")
    b = init.kaiming_normal((5, 7), rng=0, mode="fan_out")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("gain", [1.0, 5.0 / 3.0, 0.5])
def test_xavier_normal_variance(gain):
    x = init.xavier_normal(SHAPE, rng=5, gain=gain)
    check_normal(x, gain * math.sqrt(2.0 / (FAN_IN + FAN_OUT)))


@pytest.mark.parametrize("gain", [1.0, 5.0 / 3.0, 0.5])
def test_xavier_uniform_uses_glorots_bound(gain):
    # Glorot & Bengio (2010): sqrt(6 / (n_in + n_out)), not sqrt(1 / (n_in + n_out)).
    x = init.xavier_uniform(SHAPE, rng=6, gain=gain)
    check_uniform(x, gain * math.sqrt(6.0 / (FAN_IN + FAN_OUT)))


def test_xavier_uses_the_receptive_field():
    x = init.xavier_uniform(CONV_SHAPE, rng=7)
    check_uniform(x, math.sqrt(6.0 / (CONV_FAN_IN + CONV_FAN_OUT)))


def test_lecun():
    check_normal(init.lecun_normal(SHAPE, rng=8), 1.0 / math.sqrt(FAN_IN))
    check_uniform(init.lecun_uniform(SHAPE, rng=8), math.sqrt(3.0 / FAN_IN))
    check_normal(init.lecun_normal(CONV_SHAPE, rng=8), 1.0 / math.sqrt(CONV_FAN_IN))


def small_fan_variance(shape):
    """Variances of the default fan-based initializers, from the formulas."""
    fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    return {
        "lecun_normal": 1.0 / fan_in,
        "lecun_uniform": 1.0 / fan_in,
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "xavier_uniform": 2.0 / (fan_in + fan_out),
        "kaiming_normal": 2.0 / fan_in,
        "kaiming_uniform": 2.0 / fan_in,
    }


@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 2)])
@pytest.mark.parametrize(
    "name",
    ["lecun_normal", "lecun_uniform", "xavier_normal", "xavier_uniform",
     "kaiming_normal", "kaiming_uniform"],
)  # fmt: skip
def test_small_fans_are_exact(name, shape):
    # Tiny layers, where an off-by-one in a fan changes the variance by 20%+.
    rng = np.random.default_rng(14)
    x = np.stack([init.get(name)(shape, rng=rng) for _ in range(5000)])
    assert x.var() == pytest.approx(small_fan_variance(shape)[name], rel=RTOL_VAR)


def test_documented_equivalences():
    shape = (7, 5)
    np.testing.assert_array_equal(
        init.lecun_normal(shape, rng=0), init.kaiming_normal(shape, rng=0, nonlinearity="linear")
    )
    np.testing.assert_array_equal(
        init.lecun_uniform(shape, rng=0), init.kaiming_uniform(shape, rng=0, nonlinearity="linear")
    )
    np.testing.assert_allclose(
        init.xavier_normal(shape, rng=0, gain=2.5), 2.5 * init.xavier_normal(shape, rng=0),
        rtol=1e-14,
    )  # fmt: skip


def test_normal_and_uniform():
    x = init.normal(SHAPE, rng=9, mean=2.0, std=0.5)
    assert x.mean() == pytest.approx(2.0, abs=5 * 0.5 / math.sqrt(x.size))
    assert x.var() == pytest.approx(0.25, rel=RTOL_VAR)
    x = init.uniform(SHAPE, rng=9, a=-1.0, b=3.0)
    assert x.min() >= -1.0 and x.max() <= 3.0
    assert x.min() <= -1.0 + 0.01 * 4 and x.max() >= 3.0 - 0.01 * 4
    assert x.mean() == pytest.approx(1.0, abs=0.01)
    assert x.var() == pytest.approx(16.0 / 12.0, rel=RTOL_VAR)
    x = init.uniform(SHAPE, rng=9)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.mean() == pytest.approx(0.5, abs=0.01)


# -------------------------------------------------------------------- trunc_normal


def test_truncated_moments_formula_gives_keras_constant():
    # The test's own formula against the constant Keras uses: the standard
    # deviation of a unit normal truncated at +-2.
    mean, var = truncated_moments(0.0, 1.0, -2.0, 2.0)
    assert mean == 0.0
    assert math.sqrt(var) == pytest.approx(0.87962566103423978, rel=1e-12)


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [
        (0.0, 1.0, -2.0, 2.0),  # torch's defaults
        (0.0, 0.02, -0.04, 0.04),  # ViT-style
        (0.5, 2.0, -1.0, 4.0),  # asymmetric
        (0.0, 1.0, 0.0, 1.0),  # one-sided
        (-3.0, 1.0, -1.0, 5.0),  # mean 2 std below the interval
        (0.0, 1.0, 8.0, 9.0),  # far in the upper tail
        (0.0, 1.0, -9.0, -8.0),  # far in the lower tail
        (1.0, 0.1, -2.0, 0.0),  # 10 std below the mean
    ],
)
def test_trunc_normal_moments(mean, std, a, b):
    x = init.trunc_normal((500, 1000), rng=10, mean=mean, std=std, a=a, b=b)
    assert x.dtype == np.float64 and x.shape == (500, 1000)
    assert x.min() >= a and x.max() <= b
    m, v = truncated_moments(mean, std, a, b)
    assert x.mean() == pytest.approx(m, abs=0.01 * math.sqrt(v))
    assert x.var() == pytest.approx(v, rel=RTOL_VAR)
    for t in (a + 0.1 * (b - a), (a + b) / 2, a + 0.9 * (b - a)):
        assert np.mean(x <= t) == pytest.approx(truncated_cdf(t, mean, std, a, b), abs=0.005)


def test_trunc_normal_reaches_both_cut_points():
    x = init.trunc_normal(SHAPE, rng=11)
    assert -2.0 <= x.min() < -1.99 and 1.99 < x.max() <= 2.0


def test_normal_quantile_is_accurate():
    ps = np.concatenate(
        [np.logspace(-300, -1, 600), np.linspace(0.01, 0.99, 600), 1.0 - np.logspace(-15, -1, 300)]
    )
    xs = init._norm_ppf(ps)
    for p, x in zip(ps, xs, strict=True):
        # Newton step of Phi(x) = p, relative to |x|, with tails from erfc.
        residual = upper_tail(-x) - p if p <= 0.5 else (1.0 - p) - upper_tail(x)
        assert abs(residual) / phi(x) <= 1e-14 * max(1.0, abs(x)), (p, x)
    assert np.all(np.diff(xs[:600]) > 0)
    assert np.all(np.isfinite(init._norm_ppf(np.array([0.0, 1.0]))))


@settings(max_examples=60, deadline=None)
@given(
    mean=st.floats(-10, 10),
    std=st.floats(1e-3, 10),
    a=st.floats(-20, 20),
    width=st.floats(1e-6, 20),
)
def test_trunc_normal_stays_in_any_interval(mean, std, a, width):
    b = a + width
    assume(a < b and min(abs(a - mean), abs(b - mean)) / std < 30)
    x = init.trunc_normal((7, 11), rng=0, mean=mean, std=std, a=a, b=b)
    assert np.all(np.isfinite(x))
    assert x.min() >= a and x.max() <= b


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [
        (0.0, 1.0, 1.0, 1.0 + 1e-12),
        (0.0, 1.0, -1e-13, 1e-13),
        (0.0, 1.0, 7.9, 7.9 + 1e-12),
        (0.3, 0.7, 2.0, 2.0 + 1e-9),
    ],
)
def test_trunc_normal_narrow_intervals_stay_inside(mean, std, a, b):
    # The quantile is exact only to rounding: the result must still be clipped.
    x = init.trunc_normal(100_000, rng=15, mean=mean, std=std, a=a, b=b)
    assert x.min() >= a and x.max() <= b


def test_trunc_normal_errors():
    with pytest.raises(ValueError, match="std must be > 0"):
        init.trunc_normal(3, std=0.0)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal(3, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="zero probability"):
        init.trunc_normal(3, a=50.0, b=51.0)
    with pytest.raises(ValueError, match="finite"):
        init.trunc_normal(3, b=math.inf)


# ---------------------------------------------------------------------- orthogonal


@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal(gain):
    wide = init.orthogonal((30, 50), rng=12, gain=gain)
    np.testing.assert_allclose(wide @ wide.T, gain**2 * np.eye(30), rtol=0, atol=1e-10)
    tall = init.orthogonal((50, 30), rng=12, gain=gain)
    np.testing.assert_allclose(tall.T @ tall, gain**2 * np.eye(30), rtol=0, atol=1e-10)
    square = init.orthogonal((20, 20), rng=12, gain=gain)
    np.testing.assert_allclose(square @ square.T, gain**2 * np.eye(20), rtol=0, atol=1e-10)
    np.testing.assert_allclose(square.T @ square, gain**2 * np.eye(20), rtol=0, atol=1e-10)
    conv = init.orthogonal((10, 4, 5), rng=12, gain=gain).reshape(10, 20)
    np.testing.assert_allclose(conv @ conv.T, gain**2 * np.eye(10), rtol=0, atol=1e-10)


def test_orthogonal_is_sign_corrected():
    # With the signs of diag(R) applied, Q is Haar-distributed and W[0, 0]
    # is symmetric about 0; a bare Householder QR makes it always negative.
    rng = np.random.default_rng(13)
    corner = np.array([init.orthogonal((4, 4), rng=rng)[0, 0] for _ in range(400)])
    assert 0.4 < np.mean(corner > 0) < 0.6


def test_orthogonal_shapes():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal(5)
    empty = init.orthogonal((0, 5))
    assert empty.shape == (0, 5) and empty.dtype == np.float64


# --------------------------------------------------------- rng, shapes and outputs


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
@pytest.mark.parametrize("shape", [(5, 7), (3, 2, 2, 2)])
def test_outputs_are_new_float64_c_arrays(name, shape):
    x = init.get(name)(shape, rng=0)
    assert isinstance(x, np.ndarray) and x.shape == shape and x.dtype == np.float64
    assert x.flags.c_contiguous and x.flags.owndata
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("name", RANDOM)
def test_seeding(name):
    fn = init.get(name)
    np.testing.assert_array_equal(fn((6, 4), rng=3), fn((6, 4), rng=3))
    np.testing.assert_array_equal(fn((6, 4), rng=3), fn((6, 4), rng=np.random.default_rng(3)))
    np.testing.assert_array_equal(fn((6, 4), rng=np.int64(3)), fn((6, 4), rng=3))
    assert not np.array_equal(fn((6, 4), rng=3), fn((6, 4), rng=4))
    gen = np.random.default_rng(3)
    first, second = fn((6, 4), rng=gen), fn((6, 4), rng=gen)  # the generator advances
    assert not np.array_equal(first, second)
    assert not np.array_equal(fn((6, 4)), fn((6, 4)))  # rng=None: fresh entropy


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
@pytest.mark.parametrize("rng", [1.5, "0", True, np.random.RandomState(0), object()])
def test_bad_rng_type(name, rng):
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy"):
        init.get(name)((3, 4), rng=rng)


def test_shape_forms():
    assert init.normal(5, rng=0).shape == (5,)
    assert init.zeros(np.int64(3)).shape == (3,)
    assert init.uniform([2, 3], rng=0).shape == (2, 3)
    assert init.normal((), rng=0).shape == ()
    assert init.normal((0, 4), rng=0).shape == (0, 4)
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_negative_shape(name):
    with pytest.raises(ValueError, match="shape must not have negative dimensions"):
        init.get(name)((3, -1), rng=0)


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
@pytest.mark.parametrize("shape", [2.5, (2, 3.0), "3", None, (True, 2)])
def test_bad_shape_type(name, shape):
    with pytest.raises(TypeError, match="shape must be an int or a tuple of ints"):
        init.get(name)(shape, rng=0)


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", FAN_BASED)
@pytest.mark.parametrize("shape", [5, (5,), ()])
def test_fan_based_init_refuses_fewer_than_two_dims(name, shape):
    with pytest.raises(ValueError, match="fewer than 2 dimensions.*biases.*zeros"):
        init.get(name)(shape, rng=0)


@pytest.mark.parametrize("name", FAN_BASED)
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 4, 0)])
def test_fan_based_init_refuses_zero_fans(name, shape):
    with pytest.raises(ValueError, match="zero-sized weight"):
        init.get(name)(shape, rng=0)


@pytest.mark.parametrize("fn", [init.kaiming_normal, init.kaiming_uniform])
def test_kaiming_errors(fn):
    with pytest.raises(ValueError, match="mode 'fan_avg' not supported.*fan_in.*fan_out"):
        fn((3, 4), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'gelu'"):
        fn((3, 4), nonlinearity="gelu")
    with pytest.raises(ValueError, match="not a valid number"):
        fn((3, 4), a="0.1")


def test_option_errors():
    with pytest.raises(ValueError, match="gain must be >= 0"):
        init.xavier_normal((3, 4), gain=-1.0)
    with pytest.raises(TypeError, match="gain must be a real number"):
        init.xavier_uniform((3, 4), gain="1")
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal(3, std=-1.0)
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform(3, a=1.0, b=0.0)
    with pytest.raises(ValueError, match="gain must be finite"):
        init.orthogonal((3, 4), gain=math.nan)


# ------------------------------------------------------------------------ registry


def test_registry_and_aliases():
    assert set(init.INITIALIZERS) == ALL_NAMES
    assert "calculate_gain" not in init.INITIALIZERS
    assert init.glorot_normal is init.xavier_normal
    assert init.glorot_uniform is init.xavier_uniform
    assert init.he_normal is init.kaiming_normal
    assert init.he_uniform is init.kaiming_uniform
    for name in ALL_NAMES:
        assert init.get(name) is init.INITIALIZERS[name] is getattr(init, name)
        x = init.get(name)((4, 3), rng=np.random.default_rng(0))
        assert x.shape == (4, 3)
    assert set(init.__all__) == ALL_NAMES | {"INITIALIZERS", "calculate_gain", "get"}


@pytest.mark.parametrize("name", ["xavier", "He_normal", "calculate_gain", "", None])
def test_get_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError, match="unknown initializer") as info:
        init.get(name)
    for valid in ALL_NAMES:
        assert valid in str(info.value)


# ------------------------------------------------------------------- docstrings


def sections(doc):
    """``{title: body}`` of a numpydoc docstring (the summary under ``""``)."""
    parts = re.split(r"^(\w[\w ]*)\n-+\n", doc, flags=re.M)
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2], strict=True))}


@pytest.mark.parametrize(
    ("family", "dist"),
    [(f, d) for f in ("lecun", "xavier", "kaiming") for d in ("normal", "uniform")],
)
def test_fan_based_docstrings(family, dist):
    fn = getattr(init, f"{family}_{dist}")
    doc = sections(fn.__doc__)
    assert {"Parameters", "Returns", "Raises", "See Also", "Examples"} <= set(doc)
    names = [
        n
        for line in re.findall(r"^(\w+(?:, \w+)*) :", doc["Parameters"], flags=re.M)
        for n in line.split(", ")
    ]
    assert names == list(inspect.signature(fn).parameters)
    law = "``N(0, std**2)``" if dist == "normal" else "``U(-"
    assert doc[""].startswith(f"{fn.__doc__.split(':')[0]}: {law}")
    assert law in doc["Returns"]
    other = "uniform" if dist == "normal" else "normal"
    assert doc["See Also"].startswith(f"{family}_{other} :")
    assert f"{family}_{dist}((4, 3), rng=0)" in doc["Examples"]
