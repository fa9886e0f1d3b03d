"""The benchmark workloads: networks, parameters and batches, built the same way everywhere.

Every workload is float64, He-initialised (``net.init("he_normal", seed=0)``),
with seeded normal inputs and integer labels, and is checked in full unless a
mode says otherwise. The suites (``bench_*.py``) and ``table.py`` both take
their workloads from here, so the figures of the two always describe the same
problems.
"""

from dataclasses import dataclass, field

import numpy as np

import fastgrad as fg

EPSILON = 1e-6
"""Step used by every tool, so that all of them difference the same function."""

DATA_SEED = 1
PARAM_SEED = 0
SUBSET_SEED = 2
BLOCKS = 4
"""Blocks a subset is timed in (``QUICK_BLOCKS`` with ``--quick``); the best block counts."""
QUICK_BLOCKS = 2


@dataclass(frozen=True)
class Workload:
    """A network and a batch to check.

    ``subset`` gives, per baseline (``"numpy"``, ``"torch"``, ``"jax"``), how
    many seeded random parameters it differences when the full loop would take
    too long; its time is then scaled linearly to ``N`` (each of these
    baselines costs the same for every parameter, a full forward pass per sign).
    ``None`` means every parameter. ``quick`` holds the smaller subsets used by
    ``table.py --quick``. A subset is timed in :data:`BLOCKS` blocks of equal
    size, each a random sample of the parameters, and the fastest block's time
    per parameter is scaled to ``N``: on a shared machine a slow block is one
    that something else slowed down. ``peers`` are the baselines run on it
    (they cost the same per parameter whatever the activation, so they run on
    the small workloads only); a ``large`` workload is left out of
    ``table.py``'s default run and its full checks are marked ``slow``; an
    ``opt_in`` one is left out of every default run, the suites' included,
    and runs only when ``large.py --workloads`` names it.
    """

    name: str
    sizes: tuple
    batch: int
    hidden: str = "relu"
    output: str = "softmax"
    sparsity: float = 0.0
    subset: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)
    modes: tuple = ("full",)
    peers: tuple = ("numpy", "torch", "jax")
    large: bool = False
    opt_in: bool = False

    @property
    def n_params(self):
        """Number of parameters ``N``."""
        pairs = zip(self.sizes[:-1], self.sizes[1:], strict=True)
        return sum((n_in + 1) * n_out for n_in, n_out in pairs)

    def subset_size(self, tool, quick=False):
        """Return how many parameters ``tool`` differences (``N`` when all)."""
        table = self.quick if quick and tool in self.quick else self.subset
        n = table.get(tool)
        return self.n_params if n is None else min(int(n), self.n_params)

    def build(self):
        """Return a :class:`Problem`: network, parameters, batch and flat parameters."""
        net = fg.MLP(list(self.sizes), hidden=self.hidden, output=self.output)
        params = net.init("he_normal", seed=PARAM_SEED)
        rng = np.random.default_rng(DATA_SEED)
        X = rng.normal(size=(self.batch, self.sizes[0]))
        if self.sparsity:
            n_zero = int(round(self.sparsity * self.sizes[0]))
            zero = np.argsort(rng.random(X.shape), axis=1)[:, :n_zero]
            np.put_along_axis(X, zero, 0.0, axis=1)
        if self.output == "sigmoid":
            Y = rng.integers(0, 2, size=(self.batch, self.sizes[-1])).astype(np.float64)
            if self.sizes[-1] == 1:
                Y = Y[:, 0]
        else:
            Y = rng.integers(0, self.sizes[-1], size=self.batch)
        return Problem(self, net, params, X, Y)


@dataclass
class Problem:
    """A built workload: what every tool receives."""

    workload: Workload
    net: fg.MLP
    params: dict
    X: np.ndarray
    Y: np.ndarray

    @property
    def names(self):
        """Parameter names in the order of the flat vector: W1, b1, W2, ..."""
        return self.net.param_names

    def flat(self):
        """Return the parameters as one vector (W1 row-major, b1, W2, ...)."""
        return np.concatenate([np.ravel(self.params[name]) for name in self.names])

    def unflat(self, theta):
        """Return ``{name: view}`` of a flat vector in the parameters' shapes."""
        out, start = {}, 0
        for name in self.names:
            shape = np.shape(self.params[name])
            size = int(np.prod(shape))
            out[name] = theta[start : start + size].reshape(shape)
            start += size
        return out

    def locate(self, flat_index):
        """Return ``(name, index tuple)`` of a flat parameter index."""
        start = 0
        for name in self.names:
            shape = np.shape(self.params[name])
            size = int(np.prod(shape))
            if flat_index < start + size:
                return name, np.unravel_index(flat_index - start, shape)
            start += size
        raise IndexError(flat_index)

    def subset(self, n):
        """Return ``n`` seeded random flat indices in random order (all, in order, if n >= N)."""
        total = self.workload.n_params
        if n >= total:
            return np.arange(total)
        return np.random.default_rng(SUBSET_SEED).choice(total, size=n, replace=False)

    def blocks(self, tool, quick=False):
        """Return the index blocks ``tool`` is timed on, each sorted.

        ``[all N indices]`` when the tool differences every parameter (it is then
        timed whole, in rounds), else the tool's seeded subset cut into
        :data:`BLOCKS` (``QUICK_BLOCKS``) blocks of equal size.
        """
        n = self.workload.subset_size(tool, quick)
        indices = self.subset(n)
        if n >= self.workload.n_params:
            return [indices]
        count = QUICK_BLOCKS if quick else BLOCKS
        size = n // count
        return [np.sort(indices[b * size : (b + 1) * size]) for b in range(count)]

    def loss(self):
        """Return ``J`` at the unperturbed parameters (fastgrad's forward pass)."""
        return self.net.loss(self.params, self.X, self.Y)


DEEP = (256, 256, 256, 256, 10)
WIDE_2048 = (2048, 2048, 2048, 2048, 10)
WIDE_4096_X6 = (4096,) * 7 + (10,)
"""Six 4096 x 4096 weights and 10 softmax outputs: 100.7M parameters (806 MB)."""
ALL_MODES = ("full", "sample", "directional")

MNIST = (784, 128, 64, 10)
MNIST_BLOCKS = {
    "subset": {"numpy": 4000, "torch": 2000, "jax": 1024},
    "quick": {"numpy": 1000, "torch": 1000, "jax": 256},
}
"""The peers' subsets of both ReLU MNIST workloads (dense and sparse)."""

WORKLOADS = {
    w.name: w
    for w in (
        Workload("course", (4, 5, 3, 1), 3, output="sigmoid"),
        Workload("small", (64, 32, 16, 10), 16),
        Workload("small-tanh", (64, 32, 16, 10), 16, hidden="tanh"),
        Workload("small-sigmoid", (64, 32, 16, 10), 16, hidden="sigmoid"),
        Workload(
            "medium",
            (256, 64, 32, 10),
            32,
            subset={"numpy": 4000, "torch": 4000, "jax": 4096},
            quick={"numpy": 2000, "torch": 2000, "jax": 2048},
        ),
        Workload("mnist", MNIST, 64, **MNIST_BLOCKS),
        Workload("mnist-sparse", MNIST, 64, sparsity=0.8, **MNIST_BLOCKS),
        Workload("mnist-tanh", MNIST, 64, hidden="tanh", peers=()),
        Workload("mnist-sigmoid", MNIST, 64, hidden="sigmoid", peers=()),
        Workload("deep", DEEP, 32, peers=()),
        Workload("deep-tanh", DEEP, 32, hidden="tanh", peers=()),
        Workload("deep-sigmoid", DEEP, 32, hidden="sigmoid", peers=()),
        Workload(
            "wide",
            (1024, 1024, 1024, 10),
            32,
            subset={"numpy": 200, "torch": 200, "jax": 32},
            quick={"numpy": 64, "torch": 64, "jax": 16},
            modes=ALL_MODES,
        ),
        Workload("wide2048", WIDE_2048, 32, modes=ALL_MODES, peers=(), large=True),
        Workload(
            "wide2048-tanh", WIDE_2048, 32, hidden="tanh", modes=ALL_MODES, peers=(), large=True
        ),
        Workload(
            "wide4096x6",
            WIDE_4096_X6,
            32,
            modes=("sample", "directional"),
            peers=(),
            large=True,
            opt_in=True,
        ),
    )
}
"""All workloads by name: ReLU ones smallest first, each followed by its tanh and
sigmoid twins where it has them; the 2048-wide ones last."""


def workloads_and(parser, workloads, kind, others, known):
    """Split the comma-separated ``workloads`` and ``others`` (of ``kind``, among ``known``).

    Return both lists; ``parser.error`` names every unknown workload or ``kind``.
    """
    names = [n for n in workloads.split(",") if n]
    chosen = [o for o in others.split(",") if o]
    unknown = [n for n in names if n not in WORKLOADS] + [o for o in chosen if o not in known]
    if unknown:
        parser.error(f"unknown workload or {kind}: {', '.join(unknown)}")
    return names, chosen
