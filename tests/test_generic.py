"""check_function on plain and compiled scalar functions."""

import numba
import numpy as np
import pytest

import fastgrad as fg


def rosenbrock(theta):
    x = theta.ravel()
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_gradient(theta):
    x = theta.ravel()
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g.reshape(theta.shape)


@numba.njit
def compiled_rosenbrock(theta):
    x = theta.ravel()
    total = 0.0
    for i in range(x.size - 1):
        total += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return total


@pytest.fixture
def theta():
    return np.random.default_rng(0).uniform(-1.5, 1.5, size=(4, 5))


def test_plain_function_correct_and_wrong(theta):
    report = fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta))
    assert report.verdict == fg.Verdict.CORRECT
    wrong = rosenbrock_gradient(theta)
    wrong[2, 1] *= 1.05
    report = fg.check_function(rosenbrock, theta, wrong)
    assert report.verdict >= fg.Verdict.SUSPICIOUS
    assert report.worst(1)[0].index == (2, 1)
    assert "theta[2, 1]" in str(report)


@pytest.mark.threads
def test_compiled_function_runs_in_the_kernel_and_agrees(theta):
    plain = fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta))
    compiled = fg.check_function(compiled_rosenbrock, theta, rosenbrock_gradient(theta))
    assert compiled.verdict == fg.Verdict.CORRECT
    np.testing.assert_allclose(compiled.numerical, plain.numerical, rtol=1e-9, atol=1e-9)
    assert compiled_rosenbrock.signatures  # f was compiled for the kernel's argument


def test_course_step_is_available(theta):
    report = fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta), epsilon=1e-7)
    assert report.epsilon == 1e-7 and report.verdict.passed


def test_bad_input(theta):
    with pytest.raises(ValueError, match="shape"):
        fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta)[:2])
    with pytest.raises(TypeError, match="real scalar"):
        fg.check_function(lambda t: t, theta, theta)
    with pytest.raises(TypeError, match="callable"):
        fg.check_function(3, theta, theta)
    with pytest.raises(ValueError, match="finite"):
        fg.check_function(lambda t: float("nan"), theta, theta)


def test_theta_is_not_modified(theta):
    copy = theta.copy()
    fg.check_function(compiled_rosenbrock, theta, rosenbrock_gradient(theta))
    fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta))
    np.testing.assert_array_equal(theta, copy)


def test_softmax_cost_divided_by_the_wrong_count_gets_the_factor_hint():
    rng = np.random.default_rng(0)
    Z0, labels = rng.normal(size=(4, 3)), np.array([0, 2, 1, 1])

    def cost(z):
        z = z.reshape(4, 3)
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_p[np.arange(4), labels].sum() / 4

    p = np.exp(Z0 - Z0.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(4), labels] -= 1.0
    wrong = p / 16  # divided by m twice
    report = fg.check_function(cost, Z0.ravel(), wrong.ravel())
    assert report.verdict == fg.Verdict.WRONG
    assert report.hint.startswith("analytic = 0.25 x numerical")
    assert "hint: analytic = 0.25 x numerical" in str(report)
    assert fg.check_function(cost, Z0.ravel(), (p / 4).ravel()).hint is None


# --- noise-aware comparison -----------------------------------------------------------


def normalized_energy(theta):
    """Sum of squares of the standardized entries: always ``theta.size``, gradient 0."""
    z = (theta - theta.mean()) / theta.std()
    return float(np.sum(z**2))


def test_a_vanishing_gradient_is_inconclusive_not_wrong(theta):
    report = fg.check_function(normalized_energy, theta, np.zeros_like(theta))
    assert report.verdict is fg.Verdict.INCONCLUSIVE, str(report)
    assert "the gradient vanishes at this point" in report.reasons[0]
    assert np.abs(report.numerical).max() < 1e-8  # noise, which used to read WRONG
    # a real gradient claimed where there is none is still caught
    wrong = np.zeros_like(theta)
    wrong[1, 2] = 0.5
    report = fg.check_function(normalized_energy, theta, wrong)
    assert report.verdict is fg.Verdict.WRONG
    assert report.hint == "only 1 entry is wrong, the rest agree: theta[1, 2]"


def float32_square_sum(theta):
    return float(np.sum(theta.astype(np.float32) ** 2))


def test_float32_function_at_its_suggested_step_points_to_what_can_decide():
    # curvature and float32 noise together keep entries unresolved at the suggested step:
    # suggesting that step again would send the user in a circle
    def f(t):
        return np.float32(np.sum(np.sin(t.astype(np.float32)) ** 2))

    theta = np.random.default_rng(1).normal(size=5)
    with pytest.warns(fg.PrecisionWarning):
        first = fg.check_function(f, theta, np.sin(2 * theta))
    with pytest.warns(fg.PrecisionWarning):
        report = fg.check_function(f, theta, np.sin(2 * theta), epsilon=first.step)
    assert report.verdict is fg.Verdict.INCONCLUSIVE
    assert not any("use epsilon" in r for r in report.reasons)
    assert any("taylor_test" in r for r in report.reasons)
    assert fg.taylor_test(f, theta, np.sin(2 * theta)).verdict is fg.Verdict.CORRECT


@pytest.mark.parametrize(
    "f", [float32_square_sum, lambda t: np.float32(np.sum(t.astype(np.float32) ** 2))]
)
def test_float32_function_is_detected_and_never_fails_a_right_gradient(f):
    for seed in range(20):
        theta = np.random.default_rng(seed).normal(size=8)
        with pytest.warns(fg.PrecisionWarning, match=r"less than float64.*use epsilon ~ "):
            report = fg.check_function(f, theta, 2 * theta)
        assert not report.verdict.failed, str(report)
        assert report.noise >= np.finfo(np.float32).eps and report.step > 1e-3
        wrong = 2 * theta
        wrong[seed % 8] *= -1
        with pytest.warns(fg.PrecisionWarning):
            caught = fg.check_function(f, theta, wrong, epsilon=report.step)
        assert caught.verdict is fg.Verdict.WRONG, str(caught)


def test_float64_function_raises_no_warning_and_estimates_its_error(theta):
    report = fg.check_function(rosenbrock, theta, rosenbrock_gradient(theta))
    assert report.noise < 1e-12 and report.step is None
    gap = np.abs(report.numerical - rosenbrock_gradient(theta))
    assert np.all(gap <= 4 * report.estimates + 1e-12)


def test_scalar_theta():
    for point in (0.7, np.float64(0.7), np.array(0.7)):
        report = fg.check_function(np.sin, point, np.cos(0.7))
        assert report.verdict is fg.Verdict.CORRECT and report.numerical.shape == ()
    report = fg.check_function(np.sin, 0.7, -np.cos(0.7))
    assert report.verdict is fg.Verdict.WRONG
    assert report.hint == "sign flipped: analytic = -numerical"
    assert "theta" in str(report) and report.worst(1)[0].index == ()


def test_hints_name_a_factor(theta):
    report = fg.check_function(rosenbrock, theta, 2 * rosenbrock_gradient(theta))
    assert report.hint.startswith("analytic = 2.00 x numerical")
    assert "hint: " in str(report) and report.to_dict()["hint"] == report.hint


def test_overflowing_evaluations_are_inconclusive_not_wrong():
    def f(theta):
        with np.errstate(invalid="ignore"):  # sqrt of a negative number is NaN
            return float(np.sqrt(theta[0]) + np.sum(theta[1:] ** 2))

    theta = np.array([1e-6, 0.5, -1.0])  # theta_0 - eps < 0: f(theta - eps e_0) is NaN
    grad = np.array([0.5 / np.sqrt(theta[0]), 1.0, -2.0])
    report = fg.check_function(f, theta, grad)
    assert report.verdict is fg.Verdict.INCONCLUSIVE, str(report)
    assert any("not finite" in r for r in report.reasons)
    assert np.isnan(report.errors[0]) and report.errors[1] < 1e-7
    grad[2] = 2.0
    assert fg.check_function(f, theta, grad).verdict is fg.Verdict.WRONG
