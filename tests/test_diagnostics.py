"""Tests of fastgrad.diagnostics.

Expected values are worked out here by hand (g^L, the ReLU factor 1/2, the
sigmoid bound 1/4) or from a separate numpy backward pass, never read from
the module's own output.
"""

import json
import math

import naive
import numpy as np
import pytest

import fastgrad as fg
from fastgrad.diagnostics import backward_signals, random_batch


def linear_stack(gain, depth=20, width=64):
    """A deep identity network whose layers each multiply the variance by ``gain``."""
    sizes = [width] * (depth + 2)  # depth hidden layers, depth + 1 weight layers
    return fg.diagnose(
        sizes, "identity", ("orthogonal", {"gain": math.sqrt(gain)}), output="identity", batch=256
    )


@pytest.mark.parametrize(("gain", "expected"), [(0.9, 0.1216), (1.2, 38.34)])
def test_deep_linear_stack_scales_like_gain_to_the_depth(gain, expected):
    run = next(iter(linear_stack(gain).runs.values()))
    assert gain**20 == pytest.approx(expected, rel=1e-3)
    assert run.var_z[20] / run.var_z[0] == pytest.approx(gain**20, rel=0.03)
    # backward norms scale by sqrt(gain) per layer
    assert run.grad_z[0] / run.grad_z[20] == pytest.approx(gain**10, rel=0.03)
    assert run.theory_gain[1:] == pytest.approx(np.full(20, gain), rel=1e-9)
    assert run.theory_var_z[20] / run.theory_var_z[0] == pytest.approx(gain**20, rel=1e-9)
    assert run.flagged == []  # 0.12 and 38 are within the default limits (1e-3, 1e3)


def test_he_keeps_relu_variance_flat_and_bad_normals_do_not():
    result = fg.diagnose(
        [256] * 11 + [10],
        "relu",
        ["he_normal", ("normal", {"std": 0.01}), ("normal", {"std": 0.2})],
        batch=512,
    )
    he = result.runs["he_normal"]
    ratio = he.var_z[:-1] / he.var_z[0]  # hidden layers; the 10-unit output is noisier
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    assert he.flagged == []

    small = result.runs["normal(std=0.01)"]
    per_layer = 256 * 0.01**2 / 2  # n s^2 E[relu(z)^2] / v = 0.0128
    assert small.var_z[5] / small.var_z[0] == pytest.approx(per_layer**5, rel=0.5)
    assert small.var_z[-1] / small.var_z[0] < 1e-3
    assert "forward vanished" in small.flags[-1]
    assert "backward vanished" in small.flags[0]

    large = result.runs["normal(std=0.2)"]
    assert large.var_z[-1] / large.var_z[0] > 1e3
    assert "forward exploded" in large.flags[-1]
    assert "backward exploded" in large.flags[0]


def test_relu_theory_is_n_s2_over_2_for_any_initializer():
    result = fg.diagnose([100, 80, 60, 40, 5], "relu", ["he_normal", "xavier_uniform"], batch=64)
    for label, run in result.runs.items():
        params = result.net.init(label, seed=0)
        expected = [
            80 * np.mean(params["W2"] ** 2) / 2,
            60 * np.mean(params["W3"] ** 2) / 2,
            40 * np.mean(params["W4"] ** 2) / 2,
        ]
        assert run.theory_gain[1:] == pytest.approx(expected, rel=1e-9)
        assert run.theory_grad_gain[:3] == pytest.approx(np.sqrt(expected), rel=1e-9)


def test_sigmoid_shrinks_the_backward_signal_by_at_most_a_quarter_per_layer():
    sizes = [100] * 11 + [10]  # ten sigmoid layers
    result = fg.diagnose(sizes, "sigmoid", ["orthogonal", "lecun_normal"], batch=256)
    for run in result.runs.values():
        # dJ/dZ_l = dJ/dA_l * sigmoid'(Z_l), and sigmoid' <= 1/4
        assert np.all(run.grad_z[:-1] <= 0.25 * run.grad_a * (1 + 1e-12))
    # orthogonal weights do not amplify (spectral norm 1): the bound holds layer to layer
    ortho = result.runs["orthogonal"]
    assert np.all(ortho.grad_z[:-1] / ortho.grad_z[1:] <= 0.25 * (1 + 1e-12))
    assert ortho.grad_z[0] / ortho.grad_z[-1] <= 0.25**10
    assert 0.25**10 == pytest.approx(9.5e-7, rel=0.01)
    assert "backward vanished" in ortho.flags[0]


@pytest.mark.parametrize(
    "hidden", ["identity", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus"]
)
def test_backward_signals_agree_with_the_library_backprop(hidden):
    net = fg.MLP([5, 4, 4, 3], hidden=hidden, dropout=0.3)
    params = net.init("xavier_normal", seed=1)
    X, Y = random_batch(net, 7, seed=2)
    work, _ = net.workspace(params, X, Y)
    d_z, d_a = backward_signals(work)
    grads = net.gradients(params, X, Y)
    acts = [X] + [work.block(work.acts, u) for u in (1, 2)]
    for u in (1, 2, 3):
        np.testing.assert_allclose(
            d_z[u - 1].T @ acts[u - 1], grads[f"dW{u}"], rtol=1e-10, atol=1e-14
        )
    z1 = work.block(work.pre, 1)
    np.testing.assert_allclose(
        d_z[0],
        d_a[0] * naive.activation_derivative(hidden, z1) * work.block(work.masks, 1),
        rtol=1e-12,
        atol=1e-15,
    )


def test_measured_forward_signal_matches_a_numpy_forward_pass():
    result = fg.diagnose([8, 6, 4], "tanh", "lecun_normal", batch=32, seed=3)
    run = result.runs["lecun_normal"]
    net = result.net
    params = net.init("lecun_normal", seed=3)
    X, _ = random_batch(net, 32, seed=3)
    z1 = X @ params["W1"].T
    z2 = np.tanh(z1) @ params["W2"].T
    assert run.var_z == pytest.approx([np.var(z1), np.var(z2)], rel=1e-12)
    assert run.var_a == pytest.approx([np.var(np.tanh(z1))], rel=1e-12)
    assert run.input_var == pytest.approx(np.var(X))


def test_zeros_and_overflow_are_flagged_without_warnings():
    result = fg.diagnose([16, 16, 16, 4], "relu", ["zeros", ("normal", {"std": 1e80})], batch=8)
    zeros = result.runs["zeros"]
    assert all("forward vanished" in flags for flags in zeros.flags)
    huge = result.runs["normal(std=1e+80)"]
    assert any("forward exploded" in flags for flags in huge.flags)
    json.dumps(result.to_dict(), allow_nan=False)


def test_result_text_and_dict():
    result = fg.diagnose(
        [12, 10, 10, 3], "tanh", ["lecun_normal", ("normal", {"std": 0.5})], batch=16
    )
    text = str(result)
    assert "lecun_normal" in text and "normal(std=0.5)" in text
    assert "Var(Z)" in text and "||dJ/dZ||" in text and "flagged layers" in text
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["network"]["sizes"] == [12, 10, 10, 3]
    assert [run["label"] for run in data["runs"]] == ["lecun_normal", "normal(std=0.5)"]
    assert data["runs"][0]["var_z"] == pytest.approx(list(result.runs["lecun_normal"].var_z))
    assert data["runs"][0]["theory_grad_gain"][-1] is None


def test_user_batch_and_random_targets():
    X = np.random.default_rng(0).normal(size=(20, 6))
    result = fg.diagnose([6, 5, 2], "relu", X=X)
    assert result.batch == 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init": "nope"}, "unknown initializer"),
        ({"init": ["he_normal", "he_normal"]}, "distinct"),
        ({"limits": (2, 10)}, "limits"),
        ({"hidden": "swish"}, "unknown hidden activation"),
        ({"batch": 2**63}, "batch = 9223372036854775808 is too large"),
        ({"batch": 10**400}, "batch = 1000.* is too large"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fg.diagnose([4, 3, 2], **kwargs)


def test_plot_writes_a_png(tmp_path):
    import matplotlib.image
    import matplotlib.pyplot as plt

    result = fg.diagnose([10, 8, 8, 3], "relu", ["he_normal", ("normal", {"std": 0.01})], batch=16)
    path = tmp_path / "signals.png"
    figures = plt.get_fignums()
    result.plot(path)
    assert plt.get_fignums() == figures  # saved through the Agg canvas, not pyplot
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300


def test_plot_without_a_path_returns_a_pyplot_figure(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = fg.diagnose([6, 5, 2], "tanh", "lecun_normal", batch=8).plot()
    try:
        assert len(figure.axes) == 3
    finally:
        plt.close(figure)


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = fg.diagnose([6, 5, 2], "tanh", "lecun_normal", batch=8)
    with pytest.raises(ImportError, match=r"pip install 'fastgrad\[plot\]'"):
        result.plot(tmp_path / "x.png")
