"""The README's Keras recipe, on Keras 3 with its jax backend: arrays in the X @ W layout."""

import os

import numpy as np
import pytest

import fastgrad as fg

# the backend is chosen once, when keras is first imported
os.environ.setdefault("KERAS_BACKEND", "jax")
jax = pytest.importorskip("jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("keras runs on another backend than jax", allow_module_level=True)


def enable_x64():
    """jax's float64 switch as a context manager (its home moved between releases)."""
    switch = getattr(jax, "enable_x64", None)
    if switch is None:
        from jax.experimental import enable_x64 as switch
    return switch()


@pytest.fixture
def float64():
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    with enable_x64():
        yield
    keras.config.set_floatx(before)


# Keras activations with the parameter fastgrad's hidden entry carries. Not tanh: with
# jax on the CPU, keras.ops.tanh is accurate to about 1e-7 in float64 (1.2e-7 from
# numpy's on a normal sample; jnp.tanh agrees with numpy), so Keras's J is off by ~1e-9
# and a correct tanh network's gradients read ACCEPTABLE
ACTIVATIONS = {
    "relu": "relu",
    ("leaky_relu", 0.2): lambda z: keras.activations.leaky_relu(z, negative_slope=0.2),
    ("elu", 0.5): lambda z: keras.activations.elu(z, alpha=0.5),
    ("softplus", 2.0): lambda z: keras.activations.softplus(2.0 * z) / 2.0,
}


@pytest.mark.parametrize("entry", list(ACTIVATIONS))
def test_keras_dense_stack_with_jax_gradients_checks_correct(entry, float64):
    keras.utils.set_random_seed(0)
    sizes = [4, 6, 5, 3]
    model = keras.Sequential(
        [keras.Input((sizes[0],))]
        + [keras.layers.Dense(n, activation=ACTIVATIONS[entry]) for n in sizes[1:-1]]
        + [keras.layers.Dense(sizes[-1])]
    )
    for variable in model.trainable_variables:  # nonzero biases, so that every path is used
        variable.assign(np.random.default_rng(1).normal(size=variable.shape) * 0.5)
    rng = np.random.default_rng(2)
    X, labels = rng.normal(size=(8, sizes[0])), np.arange(8) % 3
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss_of(values):
        logits, _ = model.stateless_call(values, fixed, jax.numpy.asarray(X))
        return loss_fn(labels, logits)

    loss, g = jax.value_and_grad(loss_of)(trainable)
    # the README's mapping: kernel, bias, kernel, bias, ... in the order of the layers
    # (zip stops at the shorter: "Wb" * 99 is just long enough for any stack)
    pairs = zip("Wb" * 99, trainable, strict=False)
    params = {f"{k}{i // 2 + 1}": np.asarray(v, dtype=np.float64) for i, (k, v) in enumerate(pairs)}
    pairs = zip("Wb" * 99, g, strict=False)
    grads = {f"d{k}{i // 2 + 1}": np.array(v, dtype=np.float64) for i, (k, v) in enumerate(pairs)}
    net = fg.MLP(sizes, hidden=entry, weights="in_out", reduction="mean")
    assert net.loss(params, X, labels) == pytest.approx(float(loss), rel=1e-14)
    report = fg.check(net, params, X, labels, grads, loss=float(loss))
    assert report.verdict == fg.Verdict.CORRECT, str(report)
    grads["db1"][4] *= 1.01
    worst = fg.check(net, params, X, labels, grads, loss=float(loss)).worst(1)[0]
    assert (worst.tensor, worst.index) == ("b1", (4,))
