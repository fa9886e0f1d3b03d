"""Scalar activations, derivatives and cancellation-free differences."""

import naive
import numpy as np
import precise
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from networks import HIDDEN

from fastgrad.kernels import activations as act
from fastgrad.mlp import HIDDEN_ACTIVATIONS

CODES = {name: getattr(act, name.upper()) for name in HIDDEN}
"""Each activation's kernel code, by the constant of its name."""
SMOOTH = ("tanh", "sigmoid", "elu", "softplus")
DEFAULT = {"leaky_relu": act.LEAKY_SLOPE, "elu": act.ELU_ALPHA, "softplus": act.SOFTPLUS_BETA}
PARAM = {name: DEFAULT.get(name, 0.0) for name in CODES}  # the kernels' argument per name
# entries with a parameter other than the default: (name, parameter)
PARAMETRIZED = [
    ("leaky_relu", 0.2),
    ("leaky_relu", -0.3),
    ("leaky_relu", 1.0),
    ("elu", 0.5),
    ("elu", 2.0),
    ("elu", 0.0),
    ("softplus", 2.0),
    ("softplus", 0.3),
    ("softplus", 10.0),
]
U = np.finfo(np.float64).eps / 2  # unit roundoff
TINY = 1e-300  # results below this are subnormal or nearly: judged absolutely

_special = [0.0, 1e-300, 1e-8, 0.5, 1.0, 3.0, 20.0, 50.0, 300.0, 700.0]
POINTS = sorted(
    {sign * z for z in _special for sign in (1.0, -1.0)}
    | set(np.random.default_rng(0).normal(scale=5.0, size=40).tolist())
)
DELTAS = [sign * d for d in (1e-12, 3.7e-10, 1e-8, 2.5e-6, 1e-4, 1e-3) for sign in (1.0, -1.0)]


def assert_close(ours, ref, rtol, what):
    assert abs(ours - ref) <= rtol * abs(ref) + TINY, f"{what}: {ours!r} vs {ref!r}"


def test_codes_are_the_networks():
    assert HIDDEN_ACTIVATIONS == CODES
    assert len(set(CODES.values())) == len(CODES)


@pytest.mark.parametrize("name", CODES)
def test_activate_matches_naive_and_precise(name):
    code = CODES[name]
    for z in POINTS:
        ours = act.activate(code, PARAM[name], z)
        assert type(ours) is float
        naive_value = float(naive.activation(name, np.array(z)))
        assert abs(ours - naive_value) <= 1e-14 * abs(naive_value) + 1e-15, (name, z)
        assert_close(ours, precise.activation_value(name, z), 1e-15, f"{name}({z})")


@pytest.mark.parametrize("name", CODES)
def test_derivative_matches_naive_and_precise(name):
    code = CODES[name]
    for z in POINTS:
        ours = act.derivative(code, PARAM[name], z)
        # the naive 1 - tanh^2 and s (1 - s) are accurate only absolutely
        naive_value = float(naive.activation_derivative(name, np.array(z)))
        assert abs(ours - naive_value) <= 1e-13 * abs(naive_value) + 1e-15, (name, z)
        assert_close(ours, precise.derivative_value(name, z), 1e-15, f"{name}'({z})")


def test_derivative_at_the_kink_is_the_left_slope():
    assert act.derivative(act.RELU, 0.0, 0.0) == 0.0
    assert act.derivative(act.LEAKY_RELU, 0.01, 0.0) == 0.01
    assert act.derivative(act.LEAKY_RELU, 0.2, 0.0) == 0.2
    assert act.derivative(act.ELU, 1.0, 0.0) == 1.0
    assert act.derivative(act.ELU, 0.5, 0.0) == 0.5


@pytest.mark.parametrize("name", CODES)
def test_difference_on_a_grid(name):
    code = CODES[name]
    for z in POINTS:
        for d in DELTAS:
            ref = precise.activation_difference(name, z, d)
            ours = act.difference(code, PARAM[name], z, d)
            assert_close(ours, ref, 4e-15, f"{name}: z={z}, d={d}")


points = st.one_of(st.sampled_from(POINTS), st.floats(-800.0, 800.0), st.floats(-5.0, 5.0))
steps = st.builds(
    lambda sign, power: sign * 10.0**power, st.sampled_from([1.0, -1.0]), st.floats(-12.0, -3.0)
)


@pytest.mark.parametrize("name", CODES)
@settings(max_examples=60)
@given(z=points, d=steps)
def test_difference_is_accurate_to_rounding(name, z, d):
    ref = precise.activation_difference(name, z, d)
    assert_close(act.difference(CODES[name], PARAM[name], z, d), ref, 4e-15, f"z={z}, d={d}")


@pytest.mark.parametrize("name", SMOOTH)
def test_difference_beats_subtraction(name):
    # The point of difference(): phi(z + d) - phi(z) in float64 loses about
    # u |phi| / |d phi'| relative; difference() loses nothing of the sort.
    code = CODES[name]
    worst_ours = worst_naive = 0.0
    for z in (-1.5, -0.3, 0.7, 2.0):
        for d in (1e-12, -3e-11, 1e-9):
            ref = precise.activation_difference(name, z, d)
            ours = act.difference(code, PARAM[name], z, d)
            a = PARAM[name]
            naive_value = act.activate(code, a, z + d) - act.activate(code, a, z)
            worst_ours = max(worst_ours, abs(ours - ref) / abs(ref))
            worst_naive = max(worst_naive, abs(naive_value - ref) / abs(ref))
    assert worst_ours < 4e-15
    assert worst_naive > 1e-6


@given(z=st.floats(1e-300, 800.0), d=st.floats(-800.0, 800.0))
def test_linear_pieces_exact_on_positive_side(z, d):
    if not z + d > 0.0:
        d = -d if -d + z > 0.0 else 0.0
    assert act.difference(act.RELU, 0.0, z, d) == d
    assert act.difference(act.LEAKY_RELU, 0.01, z, d) == d
    assert act.difference(act.LEAKY_RELU, 0.2, z, d) == d
    assert act.difference(act.ELU, 1.0, z, d) == d
    assert act.difference(act.ELU, 0.5, z, d) == d


@given(z=st.floats(-800.0, 0.0), d=st.floats(-800.0, 800.0))
def test_relu_and_leaky_exact_on_negative_side(z, d):
    if not z + d <= 0.0:
        d = -d
    assert act.difference(act.RELU, 0.0, z, d) == 0.0
    assert act.difference(act.LEAKY_RELU, 0.01, z, d) == 0.01 * d
    assert act.difference(act.LEAKY_RELU, -0.3, z, d) == -0.3 * d


@given(z=st.floats(-1e300, 1e300), d=st.floats(-1e300, 1e300))
def test_identity_difference_is_the_step(z, d):
    assert act.difference(act.IDENTITY, 0.0, z, d) == d


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu"])
def test_difference_across_the_kink(name):
    code = CODES[name]
    pairs = [
        (-1e-3, 2e-3),
        (1e-3, -2e-3),
        (0.0, 1e-9),
        (0.0, -1e-9),
        (-1e-9, 1e-9),
        (5e-13, -1e-12),
    ]
    for z, d in pairs:
        assert_close(
            act.difference(code, PARAM[name], z, d),
            precise.activation_difference(name, z, d),
            1e-15,
            f"z={z}, d={d}",
        )


@given(z=st.one_of(st.sampled_from(POINTS), st.floats(-700.0, 700.0)))
def test_sigmoid_pair(z):
    s, c = act.sigmoid_pair(z)
    assert abs(s + c - 1.0) <= 2 * U
    ref_s, ref_c = precise.sigmoid_pair(z)
    assert_close(s, ref_s, 1e-15, f"sigmoid({z})")
    assert_close(c, ref_c, 1e-15, f"1 - sigmoid({z})")


def test_sigmoid_pair_keeps_the_small_side():
    # 1 - sigmoid(50) is about 2e-22; computed as 1 - s it would be 0.
    s, c = act.sigmoid_pair(50.0)
    assert s == 1.0 and c > 0.0
    assert_close(c, precise.sigmoid_pair(50.0)[1], 1e-15, "1 - sigmoid(50)")
    s, c = act.sigmoid_pair(-700.0)
    assert c == 1.0
    assert_close(s, precise.sigmoid_pair(-700.0)[0], 1e-15, "sigmoid(-700)")


@given(z=st.one_of(st.sampled_from(POINTS), st.floats(-800.0, 800.0)))
def test_softplus(z):
    assert_close(act.softplus(z), precise.activation_value("softplus", z), 1e-15, f"softplus({z})")


def test_kinked_and_piecewise_linear_flags():
    for name, code in CODES.items():
        assert act.is_kinked(code, PARAM[name]) == (name in ("relu", "leaky_relu"))
        assert act.is_piecewise_linear(code) == (name in ("identity", "relu", "leaky_relu"))


def test_a_parameter_other_than_1_makes_a_kink():
    # elu's slope jumps from alpha to 1 at 0; leaky relu's from its slope to 1
    assert act.is_kinked(act.ELU, 0.5) and act.is_kinked(act.ELU, 0.0)
    assert act.is_kinked(act.LEAKY_RELU, 0.2) and act.is_kinked(act.LEAKY_RELU, -1.0)
    assert not act.is_kinked(act.ELU, 1.0) and not act.is_kinked(act.LEAKY_RELU, 1.0)
    assert not act.is_kinked(act.SOFTPLUS, 2.0)


def rounded_argument(name, param, z):
    """Relative error softplus(beta z) / beta inherits from rounding ``beta z`` to float64.

    ``log softplus(x)`` changes by ``x sigmoid(x) / softplus(x)``, about ``|x|``
    for ``x`` far below 0, per relative change of ``x``: up to ``|beta z| u``.
    """
    return 2 * U * abs(param * z) if name == "softplus" and param != 1.0 else 0.0


@pytest.mark.parametrize(("name", "param"), PARAMETRIZED)
def test_parametrized_values_match_naive_and_precise(name, param):
    code, entry = CODES[name], (name, param)
    for z in [z for z in POINTS if abs(param * z) <= 800.0]:  # the reference's digits grow
        ours = act.activate(code, param, z)
        naive_value = float(naive.activation(entry, np.array(z)))
        assert abs(ours - naive_value) <= 1e-14 * abs(naive_value) + 1e-15, (entry, z)
        rtol = 2e-15 + rounded_argument(name, param, z)
        assert_close(ours, precise.activation_value(entry, z), rtol, f"{entry}({z})")
        slope = act.derivative(code, param, z)
        naive_slope = float(naive.activation_derivative(entry, np.array(z)))
        assert abs(slope - naive_slope) <= 1e-13 * abs(naive_slope) + 1e-15, (entry, z)
        rtol = 1e-15 + rounded_argument(name, param, z)
        assert_close(slope, precise.derivative_value(entry, z), rtol, f"{entry}'({z})")


@pytest.mark.parametrize(("name", "param"), PARAMETRIZED)
def test_parametrized_difference_on_a_grid_and_across_the_kink(name, param):
    code, entry = CODES[name], (name, param)
    # |z| <= 60: the reference's digits grow with |beta z|, and 700 adds nothing new here
    pairs = [(z, d) for z in POINTS if abs(z) <= 60.0 for d in DELTAS[::2]]
    pairs += [(-1e-3, 2e-3), (1e-3, -2e-3), (0.0, 1e-9), (0.0, -1e-9), (5e-13, -1e-12)]
    for z, d in pairs:
        ref = precise.activation_difference(entry, z, d)
        rtol = 6e-15 + rounded_argument(name, param, z)
        assert_close(act.difference(code, param, z, d), ref, rtol, f"{entry}: z={z}, d={d}")


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "softplus"])
@settings(max_examples=40)
@given(z=st.floats(-60.0, 60.0), d=steps, data=st.data())
def test_parametrized_difference_is_accurate_to_rounding(name, z, d, data):
    param = data.draw(
        {
            "leaky_relu": st.floats(-2.0, 2.0),
            "elu": st.floats(0.0, 4.0),
            "softplus": st.floats(0.1, 10.0),
        }[name]
    )
    ref = precise.activation_difference((name, param), z, d)
    ours = act.difference(CODES[name], param, z, d)
    rtol = 6e-15 + rounded_argument(name, param, z)
    assert_close(ours, ref, rtol, f"{name}({param}): z={z}, d={d}")
