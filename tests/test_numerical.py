"""Differences' bookkeeping: entries, the L2 term, and the results laid out like theta.

A full check keeps its per-entry results in the kernel's order (each weight
row, then its bias) and reorders them into theta's layout in place; a sampled
check spreads them over new arrays. Both must give what indexing by
``Differences.entries`` gives, to the bit.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from networks import case

from fastgrad.numerical import Differences, full_entries, full_layout, to_theta_order


def scattered(values, entries, size, fill):
    out = np.full(size, fill, dtype=values.dtype)
    out[entries] = values
    return out


@given(
    sizes=st.lists(st.integers(1, 7), min_size=2, max_size=5),
    seed=st.integers(0, 2**16),
    chunk=st.sampled_from([1, 8, 24, 56, 1 << 16]),  # bytes: one row at a time, a few, all
)
def test_reordering_in_place_equals_indexing_by_the_entries(sizes, seed, chunk):
    sizes = tuple(sizes)
    entries, is_weight = full_entries(sizes)
    assert np.array_equal(np.sort(entries), np.arange(entries.size))
    assert int(full_layout(sizes)[2][-1]) == entries.size
    values = np.random.default_rng(seed).normal(size=entries.size)
    expected = scattered(values, entries, entries.size, np.nan)
    weights = scattered(is_weight, entries, entries.size, False)
    out = to_theta_order(values, sizes, chunk)
    assert out is values
    np.testing.assert_array_equal(out, expected)
    # the kink counts and the computed flags move the same way
    for dtype in (np.int32, np.bool_):
        given = (np.arange(entries.size) % 3).astype(dtype)
        np.testing.assert_array_equal(
            to_theta_order(given.copy(), sizes, chunk), scattered(given, entries, entries.size, 0)
        )
    # the weights come first in each layer's block of theta
    start = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        assert weights[start : start + n_in * n_out].all()
        assert not weights[start + n_in * n_out : start + (n_in + 1) * n_out].any()
        start += (n_in + 1) * n_out


@pytest.mark.parametrize("l2", [0.0, 0.7])
@pytest.mark.parametrize("epsilon", [1e-7, 1e-2])  # the large step crosses relu kinks
def test_a_full_check_is_the_sampled_check_of_every_entry_to_the_bit(l2, epsilon):
    net, params, X, Y = case([6, 7, 5, 3], ["relu", "tanh"], "softmax", batch=9, seed=2, l2=l2)
    X[3] = 0.0  # a blank row: its units sit on their kinks
    work, _ = net.workspace(params, X, Y)
    full = Differences(work, epsilon)
    every = Differences(work, epsilon, entries=np.arange(net.n_params))
    values, kinks, done = full.compute()
    every_values, every_kinks, _ = every.compute()
    np.testing.assert_array_equal(full.entries, every.entries)
    np.testing.assert_array_equal(values, every_values)  # the L2 term added alike
    np.testing.assert_array_equal(kinks, every_kinks)
    np.testing.assert_array_equal(full.kink_index, every.kink_index)
    assert (full.kink_index is not None) == (epsilon > 1e-3)
    if full.kink_index is not None:
        np.testing.assert_array_equal(full.kink_lo, every.kink_lo)
        np.testing.assert_array_equal(full.kink_hi, every.kink_hi)
        np.testing.assert_array_equal(
            full.flat_indices(full.kink_index), full.entries[full.kink_index]
        )
    for selected in (done, 17, np.random.default_rng(0).random(net.n_params) < 0.5):
        ours = full.spread(values.copy(), kinks.copy(), selected)
        theirs = every.spread(every_values.copy(), every_kinks.copy(), selected)
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        computed = np.zeros(net.n_params, dtype=bool)
        computed[slice(selected) if np.ndim(selected) == 0 else selected] = True
        np.testing.assert_array_equal(
            ours["checked"], scattered(computed, full.entries, net.n_params, False)
        )
        picked = np.where(computed, values, np.nan)
        np.testing.assert_array_equal(
            ours["numerical"], scattered(picked, full.entries, net.n_params, np.nan)
        )
        if "kink_index" in ours:
            assert np.all(np.diff(ours["kink_index"]) > 0)
            assert np.all(ours["checked"][ours["kink_index"]])
            np.testing.assert_array_equal(
                ours["kink_index"], np.flatnonzero(ours["checked"] & (ours["kinks"] > 0))
            )


def test_the_transposed_weights_are_let_go_of_after_a_run():
    net, params, X, Y = case([6, 7, 3], "relu", batch=4)
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, 1e-7)
    first, _, _ = diff.compute()
    assert diff.tables.wt.size == 0 and not diff.prepared
    again, _, _ = diff.compute()  # built again for a next run
    np.testing.assert_array_equal(first, again)
