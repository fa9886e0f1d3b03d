"""A network's workspace on a batch: the user's arrays read in place, theta packed on demand."""

import copy
import itertools
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import build_case, cases

import fastgrad as fg
from fastgrad import _passes
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
    # either route: a tiny network's passes in one call each, or the layers' BLAS products
    for limit in (_passes.TINY_PASSES, -1):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_passes, "TINY_PASSES", limit)
            users_arrays_and_theta(case)


def users_arrays_and_theta(case):
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    # the layers' products read the user's arrays; a tiny network's one call, the flat copy
    assert work.tiny or work._theta is None
    loss, gradient = work.loss(), work.gradient()
    assert work.tiny or work._theta is None
    packed = packed_workspace(case)
    assert packed.tiny == work.tiny
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


@settings(max_examples=40, deadline=None)
@given(case=cases())
def test_inputs_read_in_place_give_the_copys_results_to_the_bit(case):
    # net.loss, net.gradients and net.predict feed X straight into the first products
    # (a tiny network's one-call passes read their copy)
    for limit in (_passes.TINY_PASSES, -1):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_passes, "TINY_PASSES", limit)
            inputs_in_place(case)


def inputs_in_place(case):
    net = case.net
    copied, _ = net.workspace(case.params, case.X_given, case.Y_given, case.layout)
    work, _ = net.workspace(case.params, case.X_given, case.Y_given, case.layout, copy_inputs=False)
    rows = np.asarray(case.X_given) if case.layout == "rows" else np.asarray(case.X_given).T
    in_place = rows.dtype == np.float64 and rows.flags.c_contiguous and not work.tiny
    assert np.shares_memory(work.inputs, case.X_given) == in_place
    np.testing.assert_array_equal(work.inputs, copied.inputs)
    # the pre-activations and the hidden activations past the input block
    np.testing.assert_array_equal(work.pre, copied.pre)
    first = copied.node_off[1]
    np.testing.assert_array_equal(work.acts[first:], copied.acts[first:])
    assert work.loss() == copied.loss()
    np.testing.assert_array_equal(work.gradient(), copied.gradient())


def test_a_pickled_workspace_carries_theta():
    case = build_case([3, 5, 2], "relu", "mse", l2=0.5, batch=3)
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given)
    shipped = pickle.loads(pickle.dumps(work))
    assert shipped._layers is None and shipped.buffers is None
    np.testing.assert_array_equal(shipped.theta, case.net.packing.pack(case.params)[0])
    np.testing.assert_array_equal(shipped.gradient(), work.gradient())
    assert shipped.loss() == work.loss()


def test_calls_reuse_the_buffers_of_the_last_one_and_return_nothing_of_them():
    case = build_case([5, 7, 6, 3], "relu", "ce_labels", l2=0.3, dropout=0.25, batch=6)
    net, params, X, Y = case.net, case.params, case.X_given, case.Y_given
    first = (net.loss(params, X, Y), net.gradients(params, X, Y), net.predict(params, X))
    spare = net._spares[0]["buffers"]
    for _ in range(2):
        loss, grads, out = (
            net.loss(params, X, Y),
            net.gradients(params, X, Y),
            net.predict(params, X),
        )
        assert len(net._spares) == 1 and net._spares[0]["buffers"] is spare
        assert loss == first[0]
        for name, value in grads.items():
            np.testing.assert_array_equal(value, first[1][name])
            assert not np.shares_memory(value, spare)
        np.testing.assert_array_equal(out, first[2])
        assert not np.shares_memory(out, spare)
    # another batch size gets buffers of its own shape
    assert net.loss(params, X[:2], Y[:2]) == case.net.replace().loss(params, X[:2], Y[:2])
    # a pickled or copied network carries no buffers
    assert pickle.loads(pickle.dumps(net))._spares == []
    assert copy.deepcopy(net)._spares == []


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_batches_on_either_side_of_the_tiny_bound_give_a_fresh_networks_bits(hidden):
    # one network's calls and checks go back and forth across TINY_PASSES, reusing the
    # working arrays of the last call: each must be what a network that never ran gives
    case = build_case([3, 6, 4, 2], hidden, "ce_labels", l2=0.2, dropout=0.25, batch=1)
    net, params = case.net, case.params
    bound = _passes.TINY_PASSES // net.n_params
    rng = np.random.default_rng(5)
    X = rng.standard_normal((bound + 2, 3))
    Y = rng.integers(0, 2, bound + 2)
    # one route's buffers, the other's, back, and the same batch again on other samples
    runs = [(bound + 1, 0), (bound, 0), (bound, 1), (bound + 1, 1), (3, 0), (3, 1), (1, 0)]
    for batch, start in runs + [(bound, 0)]:
        fresh = net.replace()
        assert _passes.tiny(batch, net.n_params) == (batch <= bound)
        x, y = X[start : start + batch], Y[start : start + batch]
        assert net.loss(params, x, y) == fresh.loss(params, x, y)
        ours, theirs = net.gradients(params, x, y), fresh.gradients(params, x, y)
        for name, value in ours.items():
            np.testing.assert_array_equal(value, theirs[name])
        np.testing.assert_array_equal(net.predict(params, x), fresh.predict(params, x))
        if batch <= 3:
            report, again = fg.check(net, params, x, y), fg.check(fresh, params, x, y)
            assert report.verdict == again.verdict
            for name, value in report.numerical.items():
                np.testing.assert_array_equal(value, again.numerical[name])


def test_theta_from_the_validations_copy_is_the_packed_parameters():
    # a small network's parameters are tested finite on one flat copy; with out_in
    # weights that copy becomes theta. It must be the packing's vector to the bit,
    # in either weight layout, and never the user's memory
    for weights, limit in itertools.product(("out_in", "in_out"), (_passes.TINY_PASSES, -1)):
        case = build_case([3, 5, 4, 2], "relu", "mse", batch=3, seed=4)
        net = case.net.replace(weights=weights)
        params = dict(case.params)
        if weights == "in_out":
            params = {k: (v.T.copy() if k.startswith("W") else v) for k, v in params.items()}
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_passes, "TINY_PASSES", limit)
            work, _ = net.workspace(params, case.X_given, case.Y_given)
        # a tiny network's passes take theta at once: the copy, or a packing of the layers
        copied = work._packed is not None or (work.tiny and work._theta is not None)
        assert copied == (weights == "out_in") or (work.tiny and weights == "in_out")
        expected, _ = net.packing.pack(params)
        np.testing.assert_array_equal(work.theta, expected)
        assert not any(np.shares_memory(work.theta, v) for v in params.values())
        # the passes after the packing read theta: the same results as on the user's arrays
        gradient = work.gradient()
        np.testing.assert_array_equal(gradient, packed_workspace_of(net, params, case).gradient())


def packed_workspace_of(net, params, case):
    theta, _ = net.packing.pack(params)
    inputs = prepare_inputs(case.X_given, net.sizes[0], case.layout)
    targets = prepare_targets(
        case.Y_given, inputs.shape[0], net.sizes[-1], net.loss_name, case.layout
    )
    return Workspace(net, theta, inputs, targets)


def test_the_kept_output_values_are_the_outputs_of_the_logits():
    case = build_case([3, 4, 3], "tanh", "ce_labels", batch=4, seed=5)
    work, _ = case.net.workspace(case.params, case.X_given, case.Y_given)
    kept = work.probabilities()
    assert work.probabilities() is kept and work.head().prob is kept
    np.testing.assert_array_equal(kept, work.outputs())
    assert work.outputs() is not kept  # outputs() stays a new array, the caller's to keep
    # another batch, another workspace: its own values
    other, _ = case.net.workspace(case.params, case.X_given[:2], case.Y_given[:2])
    np.testing.assert_array_equal(other.probabilities(), kept[:2])


def test_the_layer_views_follow_their_buffers():
    # a workspace reads its layers through views made once per buffer: views handed
    # back with other buffers, of another batch or of another network must be made
    # again, or the passes would write into a buffer the workspace does not read
    case = build_case([4, 6, 5, 3], "tanh", "mse", batch=5, seed=2)
    net, params, X, Y = case.net, case.params, case.X_given, case.Y_given
    expected = net.gradients(params, X, Y)
    spare = net._spares[0]
    assert np.shares_memory(spare["blocks"].pre[2], spare["buffers"])
    work, _ = net.workspace(params, X, Y, **spare)
    assert work.blocks is spare["blocks"]  # the same buffers keep their views
    for u in range(len(net.sizes)):
        np.testing.assert_array_equal(work.blocks.pre[u], work.block(work.pre, u))
        np.testing.assert_array_equal(work.blocks.acts[u], work.block(work.acts, u))
    other = build_case([4, 6, 5, 3], "tanh", "mse", batch=5, seed=7)
    other_net = other.net
    other_net.gradients(other.params, other.X_given, other.Y_given)
    stale = other_net._spares[0]["blocks"]  # views of the other network's buffers
    for buffers in (spare["buffers"], np.zeros_like(spare["buffers"])):
        work, _ = net.workspace(params, X, Y, buffers=buffers, blocks=stale)
        assert work.blocks is not stale
        assert all(np.shares_memory(view, buffers) for view in work.blocks.pre)
        grads = net.packing.unpack(work.gradient(), {}, prefix="d")
        for name, value in grads.items():
            np.testing.assert_array_equal(value, expected[name].reshape(value.shape))
    # a copy made by pickling views its own arrays
    shipped = pickle.loads(pickle.dumps(work))
    for u in range(len(net.sizes)):
        assert np.shares_memory(shipped.blocks.pre[u], shipped.pre)
        np.testing.assert_array_equal(shipped.blocks.acts[u], work.blocks.acts[u])
    np.testing.assert_array_equal(shipped.gradient(), work.gradient())


def test_calls_from_threads_at_once_never_share_buffers():
    case = build_case([30, 40, 20, 4], "tanh", "ce_labels", l2=0.1, batch=16, seed=3)
    net, params, X, Y = case.net, case.params, case.X_given, case.Y_given
    expected = net.gradients(params, X, Y)

    def many(_):
        for _ in range(60):
            grads = net.gradients(params, X, Y)
            for name, value in grads.items():
                if not np.array_equal(value, expected[name]):
                    return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(many, range(4)))


def test_a_call_after_one_with_dropout_masks_is_the_call_of_a_fresh_network():
    # a reused buffer skips the writes a clean one does not need: never after a masked call
    case = build_case([5, 7, 6, 3], "relu", "ce_labels", dropout=[0.5, 0.3], batch=6, seed=1)
    net, params, X, Y = case.net, case.params, case.X_given, case.Y_given
    calls = {
        "gradients": lambda n: n.gradients(params, X, Y),
        "predict": lambda n: {"out": n.predict(params, X)},
        "loss": lambda n: {"J": np.array(n.loss(params, X, Y))},
        "kept": lambda n: {"J": np.array(n.loss(params, X, Y, dropout_masks=kept))},
    }
    kept = [np.ones((6, 7)), np.ones((6, 6))]  # the user's own masks, keeping every unit
    for name in ["gradients", "predict", "kept", "loss", "predict", "predict", "gradients"]:
        ours, fresh = calls[name](net), calls[name](net.replace())
        for key, value in fresh.items():
            np.testing.assert_array_equal(ours[key], value, err_msg=name)


def test_the_kernels_network_is_kept_for_one_theta_and_holds_a_copys_own_arrays():
    net = fg.MLP([3, 4, 2], hidden="tanh")
    params = net.init("xavier_normal", seed=0)
    X, y = np.random.default_rng(0).normal(size=(5, 3)), np.array([0, 1, 0, 1, 1])
    work, _ = net.workspace(params, X, y)
    passes = work._pass_arrays()
    assert work._pass_arrays() is passes  # the passes' own, theta not yet packed
    network = work.network
    assert network.theta is work.theta and work.network is network
    assert [a is b for a, b in zip(network[1:], passes[1:], strict=True)] == [True] * 9
    # a copy (a cluster worker's) may have its arrays replaced before it builds its own
    received = pickle.loads(pickle.dumps(work))
    received.acts = received.acts.copy()
    assert received.network.acts is received.acts
    assert received.network.theta is received.theta
