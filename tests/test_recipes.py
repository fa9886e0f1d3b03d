"""The README's recipe for networks from other libraries: arrays in the X @ W layout."""

import numpy as np
import pytest

import fastgrad as fg

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")


def enable_x64():
    """jax's float64 switch as a context manager (its home moved between releases)."""
    switch = getattr(jax, "enable_x64", None)
    if switch is None:
        from jax.experimental import enable_x64 as switch
    return switch()


def dense_forward(params, X):
    """A Flax/Keras-style stack: z = x @ kernel + bias, tanh between layers."""
    a = X
    for u in range(1, len(params) // 2 + 1):
        z = a @ params[f"W{u}"] + params[f"b{u}"]
        a = jnp.tanh(z) if u < len(params) // 2 else z
    return a


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_jax_value_and_grad_in_x_at_w_layout_checks_correct(reduction):
    rng = np.random.default_rng(0)
    sizes = [5, 7, 3]
    with enable_x64():
        params = {}
        for u in range(1, len(sizes)):
            params[f"W{u}"] = jnp.asarray(rng.normal(size=(sizes[u - 1], sizes[u])) / 2)
            params[f"b{u}"] = jnp.asarray(rng.normal(size=sizes[u]) * 0.1)
        X, Y = jnp.asarray(rng.normal(size=(9, 5))), jnp.asarray(rng.normal(size=(9, 3)))

        def loss_fn(p):
            squares = (dense_forward(p, X) - Y) ** 2
            return jnp.mean(squares) if reduction == "mean" else jnp.sum(squares)

        loss, g = jax.value_and_grad(loss_fn)(params)
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        grads = {f"d{k}": np.asarray(v, dtype=np.float64) for k, v in g.items()}
        X, Y, loss = np.asarray(X), np.asarray(Y), float(loss)
    net = fg.MLP(sizes, hidden="tanh", output="identity", reduction=reduction, weights="in_out")
    report = fg.check(net, arrays, X, Y, grads, loss=loss)
    assert report.verdict == fg.Verdict.CORRECT, str(report)
    # described in the default layout and convention, the loss names what is off
    described = fg.MLP([5, 7, 3], hidden="tanh", output="identity")
    with pytest.raises(ValueError, match="your weights look"):
        fg.check(described, arrays, X, Y, grads, loss=loss)
    mismatch = fg.check(described.replace(weights="in_out"), arrays, X, Y, grads, loss=loss)
    assert f"your loss matches reduction={reduction!r}" in mismatch.reasons[1]


# the activations as jax defines them, with the parameter fastgrad's entry carries
JAX_ACTIVATIONS = {
    "tanh": lambda z: jnp.tanh(z),
    ("leaky_relu", 0.2): lambda z: jax.nn.leaky_relu(z, negative_slope=0.2),
    ("elu", 0.5): lambda z: jax.nn.elu(z, alpha=0.5),
    ("softplus", 2.0): lambda z: jax.nn.softplus(2.0 * z) / 2.0,
}


@pytest.mark.parametrize("entry", list(JAX_ACTIVATIONS))
def test_flax_layout_params_through_the_readme_mapping_check_correct(entry):
    # a Flax-style params tree {"Dense_0": {"kernel", "bias"}, ...}, mapped to fastgrad's
    # names by the README's recipe, softmax cross-entropy averaged over the batch
    rng = np.random.default_rng(1)
    sizes = [4, 6, 5, 3]
    layers = [f"Dense_{i}" for i in range(len(sizes) - 1)]
    phi = JAX_ACTIVATIONS[entry]
    with enable_x64():
        tree = {
            name: {
                "kernel": jnp.asarray(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)),
                "bias": jnp.asarray(rng.normal(size=n_out) * 0.3),
            }
            for name, n_in, n_out in zip(layers, sizes[:-1], sizes[1:], strict=True)
        }
        X = jnp.asarray(rng.normal(size=(8, sizes[0])))
        labels = jnp.asarray(np.arange(8) % 3)

        def loss_fn(p):
            a = X
            for i, name in enumerate(layers):
                z = a @ p[name]["kernel"] + p[name]["bias"]
                a = phi(z) if i < len(layers) - 1 else z
            log_p = jax.nn.log_softmax(a)
            return -jnp.mean(log_p[jnp.arange(8), labels])

        loss, g = jax.value_and_grad(loss_fn)(tree)
        variables = {"params": tree}
        params = {
            f"{k}{i}": np.asarray(variables["params"][name][leaf], dtype=np.float64)
            for i, name in enumerate(layers, 1)
            for k, leaf in (("W", "kernel"), ("b", "bias"))
        }
        grads = {
            f"d{k}{i}": np.asarray(g[name][leaf], dtype=np.float64)
            for i, name in enumerate(layers, 1)
            for k, leaf in (("W", "kernel"), ("b", "bias"))
        }
        X, labels, loss = np.asarray(X), np.asarray(labels), float(loss)
    net = fg.MLP(sizes, hidden=entry, weights="in_out", reduction="mean")
    assert net.loss(params, X, labels) == pytest.approx(loss, rel=1e-14)
    report = fg.check(net, params, X, labels, grads, loss=loss)
    assert report.verdict == fg.Verdict.CORRECT, str(report)
    grads["dW2"] = grads["dW2"].copy()  # numpy views of jax arrays are read-only
    grads["dW2"][1, 2] += 1e-3 * np.abs(grads["dW2"]).max()
    worst = fg.check(net, params, X, labels, grads, loss=loss).worst(1)[0]
    assert (worst.tensor, worst.index) == ("W2", (1, 2))
