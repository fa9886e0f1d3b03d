"""Random networks, parameters and batches for the tests.

Hypothesis draws the structure (depth, widths, activations, loss, L2,
dropout, layout, bias shapes, batch size) and a seed; the numbers themselves
come from a numpy Generator at a sensible scale (weights ``N(0, 1/n_in)``),
so that every drawn case is an ordinary network, not an adversarial one.
"""

from dataclasses import dataclass

import naive
import numpy as np
from hypothesis import strategies as st

import fastgrad as fg

HIDDEN = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus")

PARAMETERS = {
    # torch's LeakyReLU(0.2), a negative slope, slope 1 (the identity, no kink)
    "leaky_relu": st.one_of(st.sampled_from([0.2, -0.3, 0.0, 1.0]), st.floats(-1.0, 2.0)),
    # alpha 1 is the default; 0 makes elu a relu on the left
    "elu": st.one_of(st.sampled_from([0.5, 2.0, 0.0, 1.0]), st.floats(0.0, 3.0)),
    "softplus": st.one_of(st.sampled_from([2.0, 0.5, 10.0]), st.floats(0.2, 10.0)),
}
"""The parameters drawn for the activations that take one."""


@st.composite
def hidden_entries(draw):
    """A hidden entry: a name, or a ``(name, parameter)`` pair with a drawn parameter."""
    name = draw(st.sampled_from(HIDDEN))
    if name in PARAMETERS and draw(st.booleans()):
        return (name, draw(PARAMETERS[name]))
    return name


# How the targets of a batch are given; each implies its output/loss pair.
TARGETS = ("mse", "bce", "ce_one_hot", "ce_soft", "ce_labels")
OUTPUT = {
    "mse": "identity",
    "bce": "sigmoid",
    "ce_one_hot": "softmax",
    "ce_soft": "softmax",
    "ce_labels": "softmax",
}
LOSS = {"identity": "mse", "sigmoid": "binary_cross_entropy", "softmax": "cross_entropy"}


def random_params(sizes, rng, bias_shape="flat"):
    """Weights ``N(0, 1/n_in)`` and biases ``N(0, 0.25)`` for a network of ``sizes``.

    ``bias_shape`` is ``"flat"`` (n,), ``"column"`` (n, 1), ``"row"`` (1, n)
    or ``"mixed"`` (chosen per layer among the three).
    """
    params = {}
    for layer in range(1, len(sizes)):
        n_in, n_out = sizes[layer - 1], sizes[layer]
        params[f"W{layer}"] = rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)
        kind = bias_shape
        if bias_shape == "mixed":
            kind = ("flat", "column", "row")[int(rng.integers(3))]
        shape = {"flat": (n_out,), "column": (n_out, 1), "row": (1, n_out)}[kind]
        params[f"b{layer}"] = 0.5 * rng.normal(size=shape)
    return params


def random_targets(target, batch, n_out, rng):
    """Return ``(dense, given)``: the dense (batch, n_out) targets and what the user passes."""
    if target == "mse":
        dense = rng.normal(size=(batch, n_out))
        return dense, dense
    if target == "bce":
        dense = rng.random((batch, n_out))
        dense[rng.random((batch, n_out)) < 0.3] = 1.0
        dense[rng.random((batch, n_out)) < 0.3] = 0.0
        return dense, dense
    if target == "ce_soft":
        dense = rng.random((batch, n_out)) + 0.05
        dense /= dense.sum(axis=1, keepdims=True)
        return dense, dense
    labels = rng.integers(0, n_out, size=batch)
    dense = naive.one_hot(labels, n_out)
    return dense, (labels if target == "ce_labels" else dense)


@dataclass
class Case:
    """A network, its parameters and a batch, with everything the naive reference needs."""

    net: fg.MLP
    sizes: list
    hidden: list  # one activation name, or (name, parameter), per hidden layer
    output: str
    l2: float
    params: dict
    X: np.ndarray  # rows
    Y: np.ndarray  # dense rows
    masks: list
    layout: str
    X_given: np.ndarray
    Y_given: np.ndarray

    @property
    def naive_args(self):
        return (
            self.sizes,
            self.hidden,
            self.output,
            self.l2,
            self.params,
            self.X,
            self.Y,
            self.masks,
        )

    @property
    def has_dropout(self):
        return any(self.net.dropout)


def build_case(
    sizes,
    hidden,
    target,
    *,
    l2=0.0,
    dropout=None,
    dropout_seed=0,
    layout="rows",
    bias_shape="flat",
    batch=4,
    seed=0,
):
    """Build a :class:`Case`; ``hidden`` is one entry or a list with one per hidden layer."""
    rng = np.random.default_rng(seed)
    output = OUTPUT[target]
    net = fg.MLP(
        sizes,
        hidden=hidden,
        output=output,
        loss=LOSS[output],
        l2=l2,
        dropout=dropout,
        dropout_seed=dropout_seed,
    )
    params = random_params(sizes, rng, bias_shape)
    X = rng.normal(size=(batch, sizes[0]))
    Y, Y_given = random_targets(target, batch, sizes[-1], rng)
    if layout == "columns":
        X_given = X.T.copy()
        Y_given = Y_given if Y_given.ndim == 1 else Y_given.T.copy()
    else:
        X_given = X.copy()
    return Case(
        net=net,
        sizes=list(sizes),
        hidden=net.hidden_entries,
        output=output,
        l2=l2,
        params=params,
        X=X,
        Y=Y,
        masks=net.dropout_masks(batch),
        layout=layout,
        X_given=X_given,
        Y_given=Y_given,
    )


@st.composite
def cases(draw, hidden=None, target=None, min_depth=1):
    """Draw a :class:`Case`; ``hidden``/``target`` fixed when given.

    With ``hidden=None`` the hidden activations are either one entry for every
    layer or a list with one drawn per layer; an entry is a name or a
    ``(name, parameter)`` pair with a drawn parameter.
    """
    depth = draw(st.integers(min_depth, 4))  # weight layers
    sizes = draw(st.lists(st.integers(1, 8), min_size=depth + 1, max_size=depth + 1))
    n_hidden = depth - 1
    if hidden is None:
        hidden = draw(
            st.one_of(
                hidden_entries(),
                st.lists(hidden_entries(), min_size=n_hidden, max_size=n_hidden),
            )
        )
    if target is None:
        target = draw(st.sampled_from(TARGETS))
    l2 = draw(st.sampled_from([0.0, 0.7]))
    dropout = draw(
        st.one_of(
            st.none(),
            st.sampled_from([0.0, 0.3, 0.5]),
            st.lists(st.sampled_from([0.0, 0.2, 0.6]), min_size=n_hidden, max_size=n_hidden),
        )
    )
    return build_case(
        sizes,
        hidden,
        target,
        l2=l2,
        dropout=dropout,
        dropout_seed=draw(st.integers(0, 2**16)),
        layout=draw(st.sampled_from(["rows", "columns"])),
        bias_shape=draw(st.sampled_from(["flat", "column", "row", "mixed"])),
        batch=draw(st.integers(1, 9)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
