"""The named structures of arrays the kernels take, and the one place that lays them out.

A kernel reads ``net.sizes`` or ``head.prob`` by name instead of unpacking a
long tuple by position: the fields below are the whole contract between the
Python wrappers (:mod:`fastgrad._workspace`, :mod:`fastgrad.numerical`) and
the compiled code. Each is a ``namedtuple`` of arrays, which numba passes to
compiled functions and caches on disk like a plain tuple.

Indexing follows :mod:`fastgrad.kernels.dense`: node layer ``u = 0 .. L``
(``0`` the input, ``L`` the logits), sample ``b``, unit ``i`` of the
perturbed layer, input ``j`` of its row.
"""

import math
from collections import namedtuple

import numpy as np

from ._jit import jit
from .jets import ORDER

Network = namedtuple(
    "Network",
    ["theta", "w_off", "b_off", "sizes", "codes", "act_params", "masks", "node_off", "acts", "pre"],
)
Network.__doc__ = """A dense network and one batch, before or after the forward pass.

``theta`` flat parameters; ``w_off[u]``, ``b_off[u]`` offsets of the weight
and bias producing node layer ``u``; ``sizes[u]`` and ``codes[u]`` its width
and activation code, ``act_params[u]`` (float64) its activation's parameter
(leaky relu's slope, elu's alpha, softplus' beta; see
:mod:`fastgrad.kernels.activations`; unused for the other codes and for
``u = 0`` and ``L``); ``node_off[u]`` the offset of its ``(batch, sizes[u])``
block in the per-unit buffers ``masks`` (fixed dropout multipliers), ``acts``
(activations ``A_u``, ``A_0 = X``) and ``pre`` (pre-activations ``Z_u``).
"""

Head = namedtuple("Head", ["prob", "targets", "bernoulli"])
Head.__doc__ = """The loss side of a batch: what the logits are compared with.

``prob`` ``(batch, n_out)``, the output function of the logits (identity,
sigmoid or softmax); ``targets`` ``(batch, n_out)`` dense targets;
``bernoulli`` ``(batch, n_out, DEGREE + 1)`` Bernoulli cumulants of each
sigmoid output (binary cross-entropy only; ``(1, 1, DEGREE + 1)`` zeros
otherwise, see :func:`fastgrad.kernels.tables.bernoulli_table`).
"""

Tables = namedtuple(
    "Tables", ["wt", "reach_in", "nonzero_ptr", "nonzero_index", "series", "series_ready"]
)
Tables.__doc__ = """Tables the finite-difference kernel reads, built once per check.

``wt`` each weight transposed, at the weight's own offset (a unit's outgoing
weights are then contiguous); ``reach_in[u, b] = max(1, max_j |A_u[b, j]|)``;
``nonzero_index[nonzero_ptr[u, b]:nonzero_ptr[u, b + 1]]`` the inputs ``j``
with ``A_u[b, j] != 0`` (see :mod:`fastgrad.kernels.tables`);
``series`` ``(len(pre), ORDER + 1)`` and ``series_ready`` (int8, ``len(pre)``),
indexed like ``Network.pre``: a (unit, sample)'s loss series computed for
its whole layer at once and whether it is ready (1), refused (2) or not
computed (0) (:mod:`fastgrad.kernels.layer_series`).
"""

Tasks = namedtuple("Tasks", ["layer", "unit", "entry_ptr", "entry_input"])
Tasks.__doc__ = """The parameter entries to difference, grouped by the unit they move.

Task ``t`` perturbs row ``unit[t]`` of the weight and the bias producing node
layer ``layer[t]``; it owns entries ``entry_ptr[t]:entry_ptr[t + 1]``, and
entry ``e`` perturbs input ``entry_input[e]`` of that row (``sizes[u - 1]``
stands for the bias).
"""

Results = namedtuple("Results", ["diff", "kinks", "kink_width", "unverifiable", "paths"])
Results.__doc__ = """What the finite-difference kernel writes, per entry (per task for ``paths``).

``diff`` the sum over samples of ``loss_b(theta + eps e_i) - loss_b(theta -
eps e_i)``; ``kinks`` (int64) the evaluations that crossed a kink;
``kink_width`` the sum over crossing samples of ``|f+ + f-|`` with ``f+-
= loss_b(theta +- eps e_i) - loss_b(theta)``, so that the one-sided
differences of those samples span ``diff -+ kink_width``; ``unverifiable``
(bool) whether some sample met more than one kink; ``paths`` ``(n_tasks,
3)`` int64, the entry-samples of each task produced by the series, line and
direct paths (:data:`fastgrad.kernels.finite_diff.SERIES` ...).
"""

Steps = namedtuple("Steps", ["plus", "minus", "kink_plus", "kink_minus", "pending"])
Steps.__doc__ = """Per-entry scratch of one (unit, sample): how the unit's activation moves.

``plus[x]``, ``minus[x]`` the activation change at ``+eps`` and ``-eps`` for
entry ``e0 + x``; ``kink_plus``, ``kink_minus`` whether that move crosses
the unit's own kink; ``pending`` the entries left for the direct path.
"""

Jets = namedtuple("Jets", ["now", "next", "w", "act", "y", "q", "e", "s", "log"])
Jets.__doc__ = """Scratch of the series path (:func:`fastgrad.kernels.unit_series.unit_series`).

``now``, ``next`` ``(ORDER + 1, width)`` the jets of one node layer and the
next; the rest ``ORDER + 1`` vectors for one unit's jet and the recurrences.
"""

Line = namedtuple("Line", ["v_a", "v_b", "direction", "coef", "mu", "kappa"])
Line.__doc__ = """Scratch of the line path (:mod:`fastgrad.kernels.line`).

``v_a``, ``v_b`` ``(width,)`` the direction through one layer and the next,
``direction`` its value at the logits, ``coef``, ``mu``, ``kappa``
``(DEGREE + 1,)`` the series along the line and its moments.
"""

Carry = namedtuple("Carry", ["dz_a", "dz_b", "steps", "f_out", "crossed"])
Carry.__doc__ = """Scratch of the direct path (:mod:`fastgrad.kernels.propagate`).

``dz_a``, ``dz_b`` ``(columns, width)`` changes of one node layer and the
next, one column per evaluation; ``steps`` the activation change of each
column; ``f_out`` the loss change of each column; ``crossed`` (int64) how
many kinked units each column moved across their kink.
"""


LaneScratch = namedtuple(
    "LaneScratch",
    [
        "jet_layers",
        "jet_vectors",
        "step_values",
        "step_flags",
        "step_pending",
        "line_vectors",
        "line_series",
        "carry_layers",
        "carry_values",
        "carry_crossed",
    ],
)
LaneScratch.__doc__ = """The finite-difference kernel's scratch, one block per lane (leading axis).

Allocated by the caller (:func:`lane_scratch`) so that the compiled kernel
allocates nothing: each lane takes its block's views as :class:`Jets` and
the series vector, :class:`Steps`, :class:`Line` and :class:`Carry`.
``jet_layers`` ``(lanes, 2, ORDER + 1, width)`` (``now``, ``next``);
``jet_vectors`` ``(lanes, 8, ORDER + 1)`` (``w``, ``act``, ``y``, ``q``,
``e``, ``s``, ``log`` and the unit's series); ``step_values``, ``step_flags``
``(lanes, 2, width + 1)`` (``plus``, ``minus``; ``kink_plus``,
``kink_minus``), ``step_pending`` ``(lanes, width + 1)``; ``line_vectors``
``(lanes, 3, width)`` (``v_a``, ``v_b``, ``direction``), ``line_series``
``(lanes, 3, DEGREE + 1)`` (``coef``, ``mu``, ``kappa``); ``carry_layers``
``(lanes, 2, columns, width)`` (``dz_a``, ``dz_b``), ``carry_values``
``(lanes, 2, columns)`` (``steps``, ``f_out``), ``carry_crossed``
``(lanes, columns)`` int64.
"""


def lane_scratch(lanes, width, order, degree, columns, buffers=None):
    """Return zeroed :class:`LaneScratch` for ``lanes`` lanes and layers up to ``width`` wide.

    With ``buffers``, three zeroed flat arrays (float64, bool, int64) of
    :func:`lane_buffers`' sizes, its arrays are views of them, laid out one
    after another, so that one ``fill(0)`` per buffer zeroes it all again;
    else each is allocated.
    """
    shapes = _lane_shapes(lanes, width, order, degree, columns)
    if buffers is None:
        return LaneScratch(*(np.zeros(shape, dtype=_TYPES[kind]) for kind, shape in shapes))
    starts = [0, 0, 0]
    views = []
    for kind, shape in shapes:
        size = math.prod(shape)
        views.append(buffers[kind][starts[kind] : starts[kind] + size].reshape(shape))
        starts[kind] += size
    return LaneScratch(*views)


_TYPES = (np.float64, np.bool_, np.int64)
"""The element types of :func:`lane_scratch`'s three buffers."""


def _lane_shapes(lanes, width, order, degree, columns):
    """Return ``(buffer, shape)`` of each field of :class:`LaneScratch`, in order.

    ``buffer`` indexes :data:`_TYPES`.
    """
    return (
        (0, (lanes, 2, order + 1, width)),  # jet_layers
        (0, (lanes, 8, order + 1)),  # jet_vectors
        (0, (lanes, 2, width + 1)),  # step_values
        (1, (lanes, 2, width + 1)),  # step_flags
        (2, (lanes, width + 1)),  # step_pending
        (0, (lanes, 3, width)),  # line_vectors
        (0, (lanes, 3, degree + 1)),  # line_series
        (0, (lanes, 2, columns, width)),  # carry_layers
        (0, (lanes, 2, columns)),  # carry_values
        (2, (lanes, columns)),  # carry_crossed
    )


def _buffer_sizes(shapes):
    sizes = [0, 0, 0]
    for kind, shape in shapes:
        sizes[kind] += math.prod(shape)
    return sizes


def lane_buffers(lanes, width, order, degree, columns):
    """Return ``[(size, dtype)]`` of the three buffers :func:`lane_scratch` takes."""
    sizes = _buffer_sizes(_lane_shapes(lanes, width, order, degree, columns))
    return list(zip(sizes, _TYPES, strict=True))


@jit(entry=False)
def width_of(sizes):
    """Return the widest node layer (at least 1)."""
    width = 1
    for u in range(sizes.shape[0]):
        width = max(width, sizes[u])
    return width


@jit(inline=True)
def jet_scratch(width):
    """Return a :class:`Jets` for node layers up to ``width`` wide, zeroed.

    Inlined, so that the compiler sees fresh arrays in the caller's loops.
    """
    return Jets(
        np.zeros((ORDER + 1, width)),
        np.zeros((ORDER + 1, width)),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
        np.zeros(ORDER + 1),
    )


@jit()
def carry_scratch(columns, width):
    """Return a :class:`Carry` for ``columns`` evaluations of layers up to ``width`` wide."""
    return Carry(
        np.zeros((columns, width)),
        np.zeros((columns, width)),
        np.zeros(columns),
        np.zeros(columns),
        np.zeros(columns, dtype=np.int64),
    )
