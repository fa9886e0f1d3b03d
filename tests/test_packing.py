"""Packing between a dict of named tensors and the flat float64 vector; input conversion."""

import copy
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_params

from fastgrad._packing import Packing, PrecisionWarning, as_float64, require_finite

SIZES = (3, 4, 2)


@pytest.fixture
def params(rng):
    return random_params(SIZES, rng)


def test_layout_of_theta():
    packing = Packing([3, 4, 2])
    assert packing.names == ["W1", "b1", "W2", "b2"]
    assert packing.shapes == {"W1": (4, 3), "b1": (4,), "W2": (2, 4), "b2": (2,)}
    assert packing.offsets == {"W1": 0, "b1": 12, "W2": 16, "b2": 24}
    assert packing.size == 26
    assert packing.slice("W2") == slice(16, 24)


@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    bias_shape=st.sampled_from(["flat", "column", "row", "mixed"]),
    seed=st.integers(0, 2**16),
)
def test_round_trip(sizes, bias_shape, seed):
    packing = Packing(sizes)
    params = random_params(sizes, np.random.default_rng(seed), bias_shape)
    theta, bias_shapes = packing.pack(params)
    # W1 row-major, then b1, then W2, ...
    expected = np.concatenate([params[name].ravel() for name in packing.names])
    np.testing.assert_array_equal(theta, expected)
    assert theta.dtype == np.float64 and theta.flags.c_contiguous
    assert bias_shapes == {name: params[name].shape for name in packing.names if name[0] == "b"}
    back = packing.unpack(theta, bias_shapes)
    assert list(back) == packing.names
    for name in packing.names:
        assert back[name].shape == params[name].shape
        np.testing.assert_array_equal(back[name], params[name])


@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    bias_shape=st.sampled_from(["flat", "column", "row", "mixed"]),
    seed=st.integers(0, 2**16),
)
def test_in_out_weights_round_trip_transposed(sizes, bias_shape, seed):
    params = random_params(sizes, np.random.default_rng(seed), bias_shape)
    flipped = {k: v.T if k.startswith("W") else v for k, v in params.items()}
    packing = Packing(sizes, weights="in_out")
    theta, bias_shapes = packing.pack(flipped)
    np.testing.assert_array_equal(theta, Packing(sizes).pack(params)[0])
    back = packing.unpack(theta, bias_shapes)
    for name, value in flipped.items():
        assert back[name].shape == value.shape
        np.testing.assert_array_equal(back[name], value)
    assert packing.user_shape("W1") == (sizes[0], sizes[1])
    assert packing.user_index("W1", (1, 0)) == (0, 1)


def test_unpack_gives_views(params):
    packing = Packing(SIZES)
    theta, bias_shapes = packing.pack(params)
    views = packing.unpack(theta, bias_shapes)
    for value in views.values():
        assert np.shares_memory(value, theta)
    views["W2"][1, 3] = 42.0
    assert theta[packing.offsets["W2"] + 1 * 4 + 3] == 42.0
    theta[packing.offsets["b1"] + 2] = -5.0
    assert views["b1"][2] == -5.0


def test_unpack_defaults_and_prefix(params):
    packing = Packing(SIZES)
    theta = np.arange(packing.size, dtype=float)
    out = packing.unpack(theta, prefix="d")
    assert list(out) == ["dW1", "db1", "dW2", "db2"]
    assert out["db1"].shape == (4,)
    out = packing.unpack(theta, {"b2": (2, 1)}, prefix="d")
    assert out["db2"].shape == (2, 1) and out["db1"].shape == (4,)


def test_pack_with_prefix(params):
    packing = Packing(SIZES)
    grads = {"d" + key: value for key, value in params.items()}
    theta, _ = packing.pack(grads, prefix="d", what="grads")
    np.testing.assert_array_equal(theta, packing.pack(params)[0])
    with pytest.raises(ValueError, match="grads does not match.*missing dW1"):
        packing.pack(params, prefix="d", what="grads")


def test_pack_copies_and_never_modifies(params):
    packing = Packing(SIZES)
    params["W1"] = np.asfortranarray(params["W1"])
    params["b2"] = params["b2"].reshape(2, 1)
    before = copy.deepcopy(params)
    theta, _ = packing.pack(params)
    theta[:] = 0.0
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])
        assert params[key].flags.f_contiguous == before[key].flags.f_contiguous


def test_missing_key_is_named(params):
    del params["b2"]
    with pytest.raises(ValueError, match=r"missing b2 \(expected keys W1, b1, W2, b2\)"):
        Packing(SIZES).pack(params)


def test_extra_key_is_named(params):
    params["W3"] = np.zeros((1, 2))
    params[7] = 1.0
    with pytest.raises(ValueError, match="unexpected 7, W3") as info:
        Packing(SIZES).pack(params)
    assert "[3, 4, 2]" in str(info.value)


def test_missing_and_extra_together(params):
    params["w1"] = params.pop("W1")
    with pytest.raises(ValueError, match="missing W1; unexpected w1"):
        Packing(SIZES).pack(params)


def test_not_a_dict():
    with pytest.raises(TypeError, match="params must be a dict of arrays; got list"):
        Packing(SIZES).pack([np.zeros((4, 3))])


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("W1", (3, 4), "(4, 3) (n_out, n_in) for layer 1 from 3 to 4 units"),
        ("W2", (2, 4, 1), "(2, 4) (n_out, n_in) for layer 2 from 4 to 2 units"),
        ("W1", (12,), "(4, 3)"),
        ("b1", (4, 4), "(4,), (4, 1) or (1, 4)"),
        ("b2", (3,), "(2,), (2, 1) or (1, 2)"),
        ("b2", (2, 2), "(2,), (2, 1) or (1, 2)"),
        ("b1", (), "(4,), (4, 1) or (1, 4)"),
    ],
)
def test_wrong_shape_names_tensor_and_expected_shape(params, name, shape, expected):
    params[name] = np.zeros(shape)
    message = f"{name} has shape {shape}; expected {expected}"
    with pytest.raises(ValueError, match=re.escape(message)):
        Packing(SIZES).pack(params)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_named_with_index(params, bad):
    params["W2"][1, 3] = bad
    params["W2"][0, 2] = bad  # the first in C order
    with pytest.raises(ValueError, match=r"W2 contains 2 non-finite .* first is at index \(0, 2\)"):
        Packing(SIZES).pack(params)


def test_non_finite_bias_index(params):
    params["b1"][3] = np.nan
    with pytest.raises(ValueError, match="b1 contains 1 non-finite .* index 3$"):
        Packing(SIZES).pack(params)


def test_finite_parameters_whose_sum_overflows_are_accepted(params):
    # finiteness is screened by the sum of all entries; an overflowing sum is not a NaN
    params["W1"][:] = np.finfo(np.float64).max
    params["b2"][:] = -np.finfo(np.float64).max
    theta, _ = Packing(SIZES).pack(params)  # and no overflow warning (an error in the tests)
    assert np.isfinite(theta).all()
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.add.reduce(theta))


def test_integer_boolean_and_list_input_accepted(params):
    params["W1"] = np.arange(12).reshape(4, 3)
    params["b1"] = np.array([True, False, True, True])
    params["W2"] = params["W2"].tolist()
    theta, _ = Packing(SIZES).pack(params)
    np.testing.assert_array_equal(theta[:12], np.arange(12.0))
    np.testing.assert_array_equal(theta[12:16], [1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(theta[16:24], np.ravel(params["W2"]))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_warns_and_converts(params, dtype):
    params["W2"] = params["W2"].astype(dtype)
    message = f"W2 is {np.dtype(dtype).name}; fastgrad computes in float64"
    with pytest.warns(PrecisionWarning, match=message):
        theta, _ = Packing(SIZES).pack(params)
    np.testing.assert_array_equal(theta[16:24], params["W2"].astype(np.float64).ravel())


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="longdouble is float64 here")
def test_extended_precision_refused(params):
    params["b1"] = params["b1"].astype(np.longdouble)
    with pytest.raises(TypeError, match="b1 is float.*pass float64"):
        Packing(SIZES).pack(params)


@pytest.mark.parametrize(
    "value", [np.zeros((4, 3), complex), np.full((4, 3), "a"), np.empty((4, 3), object)]
)
def test_non_real_dtypes_refused(params, value):
    params["W1"] = value
    with pytest.raises(TypeError, match="W1 must hold real numbers"):
        Packing(SIZES).pack(params)


def test_as_float64_contiguity_and_copy():
    strided = np.arange(24.0).reshape(4, 6)[:, ::2]
    out = as_float64("A", strided)
    assert out.flags.c_contiguous and out.dtype == np.float64
    np.testing.assert_array_equal(out, strided)
    base = np.ones(3)
    assert as_float64("A", base) is base
    copied = as_float64("A", base, copy=True)
    assert copied is not base and not np.shares_memory(copied, base)
    with pytest.raises(TypeError, match="A must be an array of numbers"):
        as_float64("A", [[1.0, 2.0], [3.0]])
    # what only looks like a float64 C array is converted, never handed on as it is
    swapped = np.arange(6.0).astype(">f8")
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    matrix = np.arange(6.0).reshape(2, 3).view(np.ma.MaskedArray)
    for value in (swapped, fortran, matrix):
        out = as_float64("A", value)
        assert type(out) is np.ndarray and out.flags.c_contiguous
        assert out.dtype == np.float64 and out.dtype.isnative
        np.testing.assert_array_equal(out, np.asarray(value))


def test_require_finite():
    require_finite("A", np.ones((2, 2)))
    message = r"A contains 3 non-finite value\(s\) \(NaN or Inf\); the first is at index 1$"
    with pytest.raises(ValueError, match=message):
        require_finite("A", np.array([0.0, np.inf, np.nan, 1.0, -np.inf]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=5))
def test_positions_layers_and_tensors_agree_with_the_unpacked_dict(sizes):
    packing = Packing(sizes)
    # tag every entry with its (layer, unit, column) through the dict view
    theta = np.arange(packing.size)
    views = packing.unpack(theta)
    expected = {}
    for name, view in views.items():
        layer = int(name[1:])
        assert packing.layer(name) == layer and packing.is_bias(name) == (name[0] == "b")
        for index in np.ndindex(view.shape):
            column = index[1] if len(index) == 2 else sizes[layer - 1]
            expected[int(view[index])] = (name, layer, index[0], column)
    entries = np.random.default_rng(len(sizes)).permutation(packing.size)
    layers, units, columns = packing.positions(entries)
    for flat, layer, unit, column in zip(entries, layers, units, columns, strict=True):
        name, *where = expected[int(flat)]
        assert packing.tensor_at(int(flat)) == name
        assert [layer, unit, column] == where
    with pytest.raises(IndexError):
        packing.tensor_at(packing.size)


@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    bias_shape=st.sampled_from(["flat", "column", "row", "mixed"]),
    weights=st.sampled_from(["out_in", "in_out"]),
    seed=st.integers(0, 2**16),
)
def test_layers_are_theta_per_layer(sizes, bias_shape, weights, seed):
    params = random_params(sizes, np.random.default_rng(seed), bias_shape)
    if weights == "in_out":
        params = {k: v.T.copy() if k.startswith("W") else v for k, v in params.items()}
    packing = Packing(sizes, weights=weights)
    theta, bias_shapes = packing.pack(params)
    layers, shapes = packing.layers(params)
    assert shapes == bias_shapes and layers[0] is None and len(layers) == len(sizes)
    for u in range(1, len(sizes)):
        weight, bias = layers[u]
        assert weight.flags.c_contiguous and weight.dtype == np.float64
        np.testing.assert_array_equal(weight.ravel(), theta[packing.slice(f"W{u}")])
        np.testing.assert_array_equal(bias, theta[packing.slice(f"b{u}")])
        # float64 arrays are read where they are; in_out weights are copied into theta's layout
        # (unless the transposed array is contiguous too: a single row or column)
        in_place = weights == "out_in" or min(sizes[u - 1], sizes[u]) == 1
        assert np.shares_memory(weight, params[f"W{u}"]) == in_place
        assert np.shares_memory(bias, params[f"b{u}"])


def test_layers_convert_what_pack_converts(params):
    params["W1"] = np.asfortranarray(params["W1"])
    params["b1"] = params["b1"].astype(np.int64)
    layers, _ = Packing(SIZES).layers(params)
    assert not np.shares_memory(layers[1][0], params["W1"]) and layers[1][0].flags.c_contiguous
    np.testing.assert_array_equal(layers[1][1], params["b1"].astype(np.float64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("weights", ["out_in", "in_out"])
def test_layers_refuse_non_finite_like_pack(params, bad, weights):
    if weights == "in_out":
        params = {k: v.T.copy() if k.startswith("W") else v for k, v in params.items()}
    params["b1"][2] = bad
    params["W2"].flat[5] = bad
    packing = Packing(SIZES, weights=weights)
    with pytest.raises(ValueError) as packed:
        packing.pack(params)
    with pytest.raises(ValueError) as layered:
        packing.layers(params)
    assert str(layered.value) == str(packed.value)
    assert str(packed.value).startswith("b1 contains 1 non-finite")
