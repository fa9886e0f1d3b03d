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
