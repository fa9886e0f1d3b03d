"""The direct path: changes carried layer by layer, against a loop of full passes."""

import naive
import numpy as np
import pytest
from networks import ENTRIES, OUTPUTS, case, naive_args

from fastgrad.kernels.propagate import carry_to_loss, carry_unit_change
from fastgrad.kernels.structures import carry_scratch, width_of
from fastgrad.numerical import Differences


def _forward_from(net, params, X, Y, k0, b, z_k0):
    """``loss_b`` and the later layers' pre-activations, from ``Z_k0[b] = z_k0``."""
    sizes, hidden, output, _, masks = naive_args(net, X)
    ld = np.longdouble
    z = z_k0.astype(ld)
    pre = []
    for layer in range(k0, len(sizes) - 1):
        pre.append(z)
        a = naive.activation(hidden[layer - 1], z) * masks[layer - 1][b]
        z = params[f"W{layer + 1}"].astype(ld) @ a + np.ravel(params[f"b{layer + 1}"]).astype(ld)
    return naive.per_sample_loss(output, z[None, :], Y[b : b + 1].astype(ld))[0], pre


def rest_of_network(net, params, X, Y, k0, b, dz):
    """``loss_b`` after ``Z_k0[b]`` moves by ``dz``, minus ``loss_b``, in extended precision.

    Both evaluations start from the kernel's own ``Z_k0[b]``; also returns
    the kinked units of layers ``k0 ..`` whose side changed.
    """
    sizes, hidden, _, _, masks = naive_args(net, X)
    work, _ = net.workspace(params, X, Y)
    z = work.block(work.pre, k0)[b]
    base, before = _forward_from(net, params, X, Y, k0, b, z)
    moved, after = _forward_from(net, params, X, Y, k0, b, z.astype(np.longdouble) + dz)
    crossed = 0
    for offset, (z0, z1) in enumerate(zip(before, after, strict=True)):
        layer = k0 + offset
        if naive.kinked(hidden[layer - 1]):
            crossed += int(np.sum(((z1 > 0) != (z0 > 0)) & (masks[layer - 1][b] != 0)))
    return float(moved - base), crossed


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", ENTRIES)
def test_carry_to_loss_matches_full_passes(hidden, output):
    net, params, X, Y = case([4, 6, 5, 3], hidden, output, batch=3, seed=5, dropout=0.3)
    work, _ = net.workspace(params, X, Y)
    head = work.head()
    rng = np.random.default_rng(1)
    for k0 in (1, 2, 3):
        n = net.sizes[k0]
        carry = carry_scratch(4, width_of(work.sizes))
        steps = [rng.normal(size=n) * scale for scale in (1e-6, 1e-3, 0.3, 3.0)]
        for b in range(3):
            for c, dz in enumerate(steps):
                carry.dz_a[c, :n] = dz
            carry_to_loss(k0, b, 4, work.network, head, work.loss_code, carry)
            for c, dz in enumerate(steps):
                ref, crossed = rest_of_network(net, params, X, Y, k0, b, dz)
                # the reference subtracts two losses in 64-bit mantissas: 1e-18 absolute
                assert abs(carry.f_out[c] - ref) <= 1e-12 * abs(ref) + 1e-18 + 1e-18, (k0, b, c)
                assert carry.crossed[c] == crossed


def test_carry_unit_change_moves_the_next_layer_by_the_unit_s_outgoing_weights():
    net, params, X, Y = case([4, 6, 5, 3], "relu", "softmax", batch=2, seed=2)
    work, _ = net.workspace(params, X, Y)
    diff = Differences(work, 1e-6)
    diff.prepare()
    carry = carry_scratch(2, width_of(work.sizes))
    carry.steps[:2] = [0.25, -0.5]
    for u, i in ((1, 3), (2, 0), (3, 1)):
        carry_unit_change(
            u, i, 1, 2, work.network, diff.head, diff.tables.wt, work.loss_code, carry
        )
        for c, s in enumerate([0.25, -0.5]):
            if u == 3:  # a logit moves by itself
                dz = np.zeros(3)
                dz[i] = s
                ref, _ = rest_of_network(net, params, X, Y, 3, 1, dz)
            else:
                z_next = s * params[f"W{u + 1}"][:, i]
                ref, _ = rest_of_network(net, params, X, Y, u + 1, 1, z_next)
            assert abs(carry.f_out[c] - ref) <= 1e-12 * abs(ref) + 1e-18
