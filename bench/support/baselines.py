"""The tools compared: fastgrad and the baselines it is measured against.

Every runner computes centered differences ``(J(theta + eps e_i) - J(theta - eps e_i)) / 2 eps``
of the same ``J`` (the mean loss of a :class:`~workloads.Problem`, no L2) on a
given set of flat parameter indices and returns them in that order, so the
results of any two tools can be compared entry by entry.

- :func:`numpy_loop`: the course's loop, written the way a student writes it:
  for each parameter, nudge it by ``+eps`` and ``-eps`` in place, run a full
  numpy forward pass of the whole batch each time, divide the difference.
- :class:`TorchJacobian`: torch's own numerical-Jacobian routine, the one
  ``torch.autograd.gradcheck`` runs (``fast_mode=False``), applied to a
  function of a flat float64 parameter vector.
- :class:`JaxLoop`: ``jax.jit(jax.vmap(centered_difference))`` over chunks of
  parameter indices, with x64 enabled.

The torch and JAX runners are optional: :func:`available` says which tools
are installed. Each baseline costs the same for every parameter (two full
forward passes), which is why the time of a random subset of parameters can
be scaled linearly to all ``N`` of them.
"""

import contextlib
import importlib
import importlib.util
import time
import warnings

import numpy as np

import fastgrad as fg

from .backprop import forward_activation

U = np.finfo(np.float64).eps
"""Unit roundoff of float64 (2.2e-16)."""

AGREE_RTOL = 1e-7
"""Relative agreement asserted between fastgrad and a baseline."""

AGREE_ROUNDING = 8.0
"""Multiple of ``u |J| / eps`` allowed for a baseline's own rounding.

A baseline forms ``J(theta + eps e_i) - J(theta - eps e_i)`` from two full
forward passes, each rounded to a few ``u |J|``, so its difference carries an
absolute error of about ``u |J| / eps``: on an entry whose gradient is near 0
that is all there is.
"""


def available(tool):
    """Return whether ``tool`` (``"fastgrad"``, ``"numpy"``, ``"torch"``, ``"jax"``) can run."""
    if tool in ("fastgrad", "numpy"):
        return True
    return importlib.util.find_spec(tool) is not None


def thread_settings(tool):
    """Return ``{label: context manager factory}``: the thread settings a baseline is timed under.

    On a machine shared with other work, a library whose threads wait for each
    other (numpy's BLAS, torch's intra-op pool) can run several times faster
    on one thread than on all cores, and on a quiet machine the other way
    round. Each baseline is therefore timed both ways where it can be, and
    the faster counts: numpy with BLAS at its default thread count and at one
    thread (through threadpoolctl, when it is installed), torch at its default
    and at one thread. JAX's thread pool is fixed at startup.
    """
    settings = {"default threads": contextlib.nullcontext}
    if tool == "numpy" and importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_info, threadpool_limits

        if any(pool["num_threads"] > 1 for pool in threadpool_info() if pool["user_api"] == "blas"):
            settings = {
                "BLAS default threads": contextlib.nullcontext,
                "BLAS 1 thread": lambda: threadpool_limits(1, user_api="blas"),
            }
    elif tool == "torch":
        import torch

        if torch.get_num_threads() > 1:
            settings = {
                "torch default threads": contextlib.nullcontext,
                "torch 1 thread": lambda: _torch_threads(1),
            }
    return settings


@contextlib.contextmanager
def _torch_threads(count):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- fastgrad


def fastgrad_check(problem, epsilon, mode="full", threads=None):
    """Run ``fg.check`` on a problem (fastgrad's own backprop is checked).

    The bench differences every tool at the same step, larger than
    fastgrad's default so that the float64 baselines' own rounding stays
    small; ``fg.StepWarning``, which says so, is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fg.StepWarning)
        return fg.check(
            problem.net,
            problem.params,
            problem.X,
            problem.Y,
            epsilon=epsilon,
            mode=mode,
            threads=threads,
        )


def fastgrad_values(report, problem, indices):
    """Return the numerical gradient of a full check at flat ``indices``."""
    flat = np.concatenate([np.ravel(report.numerical["d" + name]) for name in problem.names])
    return flat[indices]


PASSING = ("CORRECT", "ACCEPTABLE", "INCONCLUSIVE")
"""Verdicts a benchmarked check of a correct gradient may reach: at the bench's
step, a tensor whose entries all cross a ReLU kink (``course``'s ``b2``) is
INCONCLUSIVE rather than CORRECT. SUSPICIOUS or WRONG fails the benchmark."""


# ---------------------------------------------------------------- numpy


def numpy_cost(params, X, Y, n_layers, hidden, output):
    """Return ``J``: a full forward pass of the batch, as in the course."""
    A = X
    for layer in range(1, n_layers + 1):
        Z = A @ params[f"W{layer}"].T + params[f"b{layer}"]
        if layer < n_layers:
            A = forward_activation(
                hidden, Z, "the baselines implement relu, tanh and sigmoid hidden layers"
            )
    m = X.shape[0]
    if output == "softmax":
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_probs[np.arange(m), Y].sum() / m
    if output == "sigmoid":
        T = Y.reshape(Z.shape)
        # -[y log s(z) + (1 - y) log(1 - s(z))], stable for any z
        per_unit = np.maximum(Z, 0.0) - Z * T + np.log1p(np.exp(-np.abs(Z)))
        return per_unit.sum() / m
    raise ValueError(f"the baselines implement softmax and sigmoid outputs, not {output!r}")


def numpy_loop(problem, indices, epsilon):
    """Difference parameters ``indices`` one by one with full numpy forward passes."""
    w = problem.workload
    n_layers = len(w.sizes) - 1
    params = {name: np.array(value, dtype=np.float64) for name, value in problem.params.items()}
    grad = np.empty(len(indices))
    for k, flat in enumerate(indices):
        name, index = problem.locate(int(flat))
        old = params[name][index]
        params[name][index] = old + epsilon
        j_plus = numpy_cost(params, problem.X, problem.Y, n_layers, w.hidden, w.output)
        params[name][index] = old - epsilon
        j_minus = numpy_cost(params, problem.X, problem.Y, n_layers, w.hidden, w.output)
        params[name][index] = old
        grad[k] = (j_plus - j_minus) / (2.0 * epsilon)
    return grad


# ---------------------------------------------------------------- torch


class TorchJacobian:
    """torch's numerical Jacobian of ``J`` with respect to chosen parameters.

    ``run()`` calls torch's ``get_numerical_jacobian``: the loop of
    ``torch.autograd.gradcheck`` that perturbs one entry of its input in place
    by ``-eps`` and ``+eps``, calls the function each time and divides the
    difference. The input is the vector of the chosen parameters; the function
    writes it into the flat parameter vector (a no-op when all are chosen: the
    input is then the flat vector itself) and runs a float64 forward pass.
    Evaluations run under ``torch.no_grad()``, which only spares torch the
    cost of recording a graph.
    """

    def __init__(self, problem, indices, epsilon):
        import torch
        import torch.nn.functional as F

        self.torch = torch
        self.epsilon = epsilon
        gradcheck = importlib.import_module("torch.autograd.gradcheck")
        self._jacobian = gradcheck.get_numerical_jacobian
        w = problem.workload
        n_layers = len(w.sizes) - 1
        theta = torch.tensor(problem.flat(), dtype=torch.float64)
        everything = len(indices) == w.n_params
        if everything:
            self.x = theta.clone().requires_grad_(True)
            source = self.x.detach()
        else:
            self.x = theta[torch.as_tensor(indices)].clone().requires_grad_(True)
            source = theta
        views = problem.unflat(source)
        weights = [views[f"W{k}"] for k in range(1, n_layers + 1)]
        biases = [views[f"b{k}"].reshape(-1) for k in range(1, n_layers + 1)]
        X = torch.tensor(problem.X, dtype=torch.float64)
        if w.output == "softmax":
            Y = torch.tensor(problem.Y, dtype=torch.int64)
        else:
            Y = torch.tensor(problem.Y, dtype=torch.float64).reshape(X.shape[0], -1)
        act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[w.hidden]
        index = torch.as_tensor(indices)

        def cost(inputs):
            (x,) = inputs
            with torch.no_grad():
                if not everything:
                    theta[index] = x
                A = X
                for k in range(n_layers):
                    Z = torch.addmm(biases[k], A, weights[k].T)
                    A = act(Z) if k < n_layers - 1 else Z
                if w.output == "softmax":
                    return F.cross_entropy(Z, Y)
                return F.binary_cross_entropy_with_logits(Z, Y, reduction="sum") / X.shape[0]

        self.cost = cost

    def run(self):
        """Return the numerical gradient of the chosen parameters, in their order."""
        with warnings.catch_warnings():
            # get_numerical_jacobian is marked deprecated; it is what gradcheck runs
            warnings.simplefilter("ignore", FutureWarning)
            (jac,) = self._jacobian(self.cost, (self.x,), eps=self.epsilon)
        return jac.detach().numpy().reshape(-1).copy()


# ---------------------------------------------------------------- jax


def jax_chunk(sizes, batch):
    """Perturbations evaluated together: about 4 MFLOP of forward passes, 4 to 64 of them.

    Measured on a 2-core machine: XLA's CPU batched products gain nothing from
    large chunks (mnist ran 4x slower at 256 per chunk than at 4), while tiny
    networks need a few dozen per call to amortize the dispatch.
    """
    forward = 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return int(max(4, min(64, 2**22 // forward)))


class JaxLoop:
    """``jax.jit(jax.vmap(centered_difference))`` over chunks of parameter indices.

    ``compile()`` traces and compiles for the one chunk shape (its time is
    reported apart); ``run(indices)`` then loops over chunks of ``indices``,
    padding the last chunk with repeats of its last index so that the one
    compiled shape serves every call.
    """

    def __init__(self, problem, epsilon):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        w = problem.workload
        n_layers = len(w.sizes) - 1
        theta0 = jnp.asarray(problem.flat())
        X = jnp.asarray(problem.X)
        Y = jnp.asarray(problem.Y)
        shapes = [np.shape(problem.params[name]) for name in problem.names]
        m = problem.X.shape[0]
        act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[w.hidden]

        def cost(theta):
            tensors, start = [], 0
            for shape in shapes:
                size = int(np.prod(shape))
                tensors.append(theta[start : start + size].reshape(shape))
                start += size
            A = X
            for k in range(n_layers):
                Z = A @ tensors[2 * k].T + tensors[2 * k + 1].reshape(-1)
                A = act(Z) if k < n_layers - 1 else Z
            if w.output == "softmax":
                log_probs = jax.nn.log_softmax(Z, axis=1)
                return -jnp.take_along_axis(log_probs, Y[:, None], axis=1).sum() / m
            T = Y.reshape(Z.shape)
            return (jnp.maximum(Z, 0.0) - Z * T + jnp.log1p(jnp.exp(-jnp.abs(Z)))).sum() / m

        def centered(i):
            plus = cost(theta0.at[i].add(epsilon))
            minus = cost(theta0.at[i].add(-epsilon))
            return (plus - minus) / (2 * epsilon)

        self.step = jax.jit(jax.vmap(centered))
        self.chunk = jax_chunk(w.sizes, w.batch)

    def compile(self):
        """Compile (and run once) for the chunk shape; return the seconds it took."""
        started = time.perf_counter()
        self.step(np.zeros(self.chunk, dtype=np.int64)).block_until_ready()
        return time.perf_counter() - started

    def run(self, indices):
        """Return the numerical gradient at flat ``indices``, in their order."""
        indices = np.asarray(indices, dtype=np.int64)
        n = indices.size
        padded = -(-n // self.chunk) * self.chunk
        indices = np.concatenate([indices, np.full(padded - n, indices[-1])])
        out = [
            np.asarray(self.step(indices[s : s + self.chunk])) for s in range(0, padded, self.chunk)
        ]
        return np.concatenate(out)[:n]


# ---------------------------------------------------------------- agreement


def disagreement(reference, other, loss, epsilon):
    """Return the worst ``|a - b| / (rtol (|a| + |b|) + rounding)`` (<= 1 means they agree).

    ``rounding`` is :data:`AGREE_ROUNDING` times ``u |J| / eps``, the
    baseline's own rounding error.
    """
    a, b = np.asarray(reference), np.asarray(other)
    allowed = AGREE_RTOL * (np.abs(a) + np.abs(b)) + AGREE_ROUNDING * U * abs(loss) / epsilon
    return float(np.max(np.abs(a - b) / allowed)) if a.size else 0.0


def assert_agree(reference, other, loss, epsilon, tool):
    """Raise ``AssertionError`` unless a baseline agrees with fastgrad (:func:`disagreement`)."""
    __tracebackhide__ = True
    worst = disagreement(reference, other, loss, epsilon)
    if not worst <= 1.0:
        a, b = np.asarray(reference), np.asarray(other)
        k = int(np.argmax(np.abs(a - b)))
        raise AssertionError(
            f"fastgrad and {tool} disagree: worst ratio to the tolerance {worst:.3g} "
            f"(rtol {AGREE_RTOL:g}, rounding {AGREE_ROUNDING:g} u |J| / eps); largest difference "
            f"at entry {k}: {a[k]!r} (fastgrad), {b[k]!r} ({tool})"
        )
