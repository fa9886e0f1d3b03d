"""The flop bound of a full check, and the machine's matrix-product rate to turn it into seconds."""

import time

import numpy as np


def per_evaluation_flops(sizes, layer):
    """Flops to carry one perturbation of a parameter of ``layer`` to the loss, for one sample.

    ``sizes`` are the widths ``n_0 .. n_L``; ``layer`` is ``l`` in ``1 .. L``.
    A multiply-add counts 2 flops. Perturbing ``W_l[i, j]`` (or ``b_l[i]``)
    changes one entry of the sample's pre-activation ``z_l`` (not counted),
    hence one activation ``a_l[i]``; the next pre-activation ``z_{l+1}`` moves
    by ``delta * W_{l+1}[:, i]``, a rank-1 update of ``2 n_{l+1}`` flops; every
    later layer is recomputed densely, ``2 n_k n_{k+1}`` flops for
    ``k = l+1 .. L-1``; the loss of the ``n_L`` logits is counted as ``2 n_L``
    (an exponential and a sum per logit). Activations and bias additions are
    not counted. A parameter of the output layer (``l = L``) moves one logit and
    costs the loss alone.
    """
    sizes = [int(s) for s in sizes]
    n_layers = len(sizes) - 1
    if not 1 <= layer <= n_layers:
        raise ValueError(f"layer must lie in 1..{n_layers}; got {layer}")
    flops = 2 * sizes[-1]
    if layer < n_layers:
        flops += 2 * sizes[layer + 1]
        flops += sum(2 * sizes[k] * sizes[k + 1] for k in range(layer + 1, n_layers))
    return flops


def structured_flops(sizes, batch, per_layer=None):
    """Return the flop count of a full check that uses the network's structure.

    The structured cost of one centered difference of one parameter is
    :func:`per_evaluation_flops` of its layer, per sample and per sign, so a
    full check costs

        sum over layers l of (n_l (n_{l-1} + 1)) * 2 * batch * per_evaluation_flops(l).

    This is the cost of the algorithm of DESIGN.md's points 2 and 3 (prefix
    reuse, a rank-1 update of the next layer, dense products after it) with no
    skipping: it is what the dense products would cost at the machine's
    matrix-product rate. An implementation can beat it by exploiting more
    structure (inputs that are 0, units that stay dead, piecewise linearity).

    For mnist (784-128-64-10, batch 64) it is 18.4 GFLOP, 99.8 % of it in
    ``W1``/``b1``: 100,480 parameters * 128 evaluations * (2*64 + 2*64*10 + 2*10)
    flops. For medium (256-64-32-10, batch 32) it is 0.77 GFLOP.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``n_0 .. n_L``.
    batch : int
        Samples.
    per_layer : dict, optional
        ``{layer: number of parameters}`` to count instead of all of them
        (e.g. the entries of a sampled check).
    """
    sizes = [int(s) for s in sizes]
    total = 0
    for layer in range(1, len(sizes)):
        count = sizes[layer] * (sizes[layer - 1] + 1)
        if per_layer is not None:
            count = per_layer.get(layer, 0)
        total += count * 2 * batch * per_evaluation_flops(sizes, layer)
    return total


def sampled_per_layer(sizes, k):
    """Return ``{layer: entries}`` of a sampled check with ``k`` entries per tensor."""
    sizes = [int(s) for s in sizes]
    return {
        layer: min(k, sizes[layer] * sizes[layer - 1]) + min(k, sizes[layer])
        for layer in range(1, len(sizes))
    }


def matmul_rate(n=1024, seconds=1.0, repeats=3):
    """Return the best float64 GFLOP/s of numpy's ``n x n`` matrix product (BLAS, all threads).

    Each of ``repeats`` rounds multiplies for about ``seconds / repeats``; the
    best round is kept, which on a shared machine is the closest to the
    machine's own rate.
    """
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    out = np.empty((n, n))
    np.matmul(a, b, out=out)
    best = 0.0
    for _ in range(repeats):
        count, started = 0, time.perf_counter()
        while True:
            np.matmul(a, b, out=out)
            count += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / repeats:
                break
        best = max(best, 2.0 * n**3 * count / elapsed / 1e9)
    return best
