"""A network's workspace on a batch: the user's arrays read in place, theta packed on demand."""

import pickle

import numpy as np
from hypothesis import given, settings
from strategies import build_case, cases

from fastgrad._data import prepare_inputs, prepare_targets
from fastgrad._workspace import Workspace
from fastgrad.kernels import dense


def packed_workspace(case):
    """The workspace built the way it was before: from a flat copy of the parameters."""
    net = case.net
    theta, _ = net.packing.pack(case.params)
    inputs = prepare_inputs(case.X_given, net.sizes[0], case.layout)
    targets = prepare_targets(
        case.Y_given, inputs.shape[0], net.sizes[-1], net.loss_name, case.layout
    )
    return Workspace(net, theta, inputs, targets)


@settings(max_examples=40, deadline=None)
@given(case=cases())
def test_passes_on_the_users_arrays_equal_those_on_theta_to_the_bit(case):
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    assert work._theta is None  # nothing packed by the passes
    loss, gradient = work.loss(), work.gradient()
    assert work._theta is None
    packed = packed_workspace(case)
    for ours, theirs in ((work.pre, packed.pre), (work.acts, packed.acts)):
        np.testing.assert_array_equal(ours, theirs)
    assert loss == packed.loss()
    # the L2 term layer by layer equals the flat vector's sum, to the bit
    flat = dense.squared_weight_norm(packed.theta, packed.w_off, packed.sizes)
    assert work.l2_term() == (work.l2 / (2.0 * work.batch) * flat if work.l2 else 0.0)
    np.testing.assert_array_equal(gradient, packed.gradient())
    np.testing.assert_array_equal(work.theta, packed.theta)
    # once packed, the passes read theta's views, with the same results
    assert work._layers is None
    np.testing.assert_array_equal(work.gradient(), gradient)
    assert work.loss() == loss


def test_inputs_are_a_copy():
    case = build_case([3, 4, 2], "tanh", "ce_labels", batch=5)
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given)
    np.testing.assert_array_equal(work.inputs, case.X)
    assert not np.shares_memory(work.inputs, case.X_given)
    assert np.shares_memory(work.inputs, work.acts)


def test_a_pickled_workspace_carries_theta():
    case = build_case([3, 5, 2], "relu", "mse", l2=0.5, batch=3)
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given)
    copy = pickle.loads(pickle.dumps(work))
    assert copy._layers is None
    np.testing.assert_array_equal(copy.theta, case.net.packing.pack(case.params)[0])
    np.testing.assert_array_equal(copy.gradient(), work.gradient())
    assert copy.loss() == work.loss()
