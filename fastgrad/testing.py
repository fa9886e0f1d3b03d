"""Assertions for test suites: fail with a readable summary when gradients disagree."""

import numpy as np

from .check import check
from .numerical import DEFAULT_EPSILON
from .thresholds import Verdict

__all__ = ["assert_gradients_close"]

SHOWN = 5


def _message(report):
    thr = report.thresholds
    use, analytic, judged, errors = report.compared()
    errors = errors[use]
    bad = errors >= thr.acceptable
    compared = int(use.sum())
    lines = [
        "",
        f"Gradients not close: verdict {report.verdict.name} (difference {report.difference:.3e})",
        f"thresholds: correct < {thr.correct:g}, acceptable < {thr.acceptable:g}, "
        f"suspicious < {thr.suspicious:g}; epsilon {report.epsilon:g}, mode {report.mode}",
        "",
        f"Mismatched entries: {int(bad.sum()):,} / {compared:,} "
        f"({100.0 * bad.sum() / max(compared, 1):.3g}%)",
    ]
    mismatched = [entry for entry in report.worst(SHOWN) if entry.error >= thr.acceptable]
    lines.extend(f" {entry}" for entry in mismatched)
    if bad.sum() > len(mismatched):
        lines.append(f" ... and {int(bad.sum()) - len(mismatched):,} more")
    if bad.any():
        gap = np.abs(analytic[use] - judged[use])[bad]
        worst = report.worst(1)[0]
        lines.append(f"Max absolute difference among mismatched: {gap.max():.6g}")
        lines.append(f"Max relative error: {worst.error:.6g} at {worst.label}")
    failing = [t for t in report.tensors.values() if t.verdict >= Verdict.SUSPICIOUS]
    if failing:
        lines.append("")
        lines.append("Tensors:")
        for t in failing:
            lines.append(
                f" {t.name}: {t.verdict.name}, difference {t.difference:.3e}"
                + (f" - {t.hint}" if t.hint else "")
            )
    extra = [h for h in report.hints if not any(h.startswith(f"{t.name}:") for t in failing)]
    lines.extend(f" {h}" for h in extra)
    if report.reasons:
        lines.append("")
        lines.append("Not established:")
        lines.extend(f" {reason}" for reason in report.reasons)
    kinks = report.kinks
    if kinks:
        left_out = sum(1 for entry in kinks if np.isnan(entry.error))
        lines.append(
            f"({len(kinks)} entries crossed a kink: {len(kinks) - left_out} judged by their "
            f"interval, {left_out} left out)"
        )
    return "\n".join(lines)


def assert_gradients_close(
    net,
    params,
    X,
    Y,
    grads=None,
    *,
    epsilon=DEFAULT_EPSILON,
    mode="full",
    thresholds=None,
    allowed=Verdict.ACCEPTABLE,
    **options,
):
    """Assert that a gradient agrees with centered differences.

    Runs :func:`fastgrad.check` and raises ``AssertionError`` when the verdict
    is worse than ``allowed``, with a message in the style of
    ``numpy.testing.assert_allclose``: the thresholds, how many entries
    mismatch, the first few as ``W1[7, 9]: analytic ..., numerical ...``, the
    largest differences, and a hint per failing tensor. Whole arrays are
    never printed.

    Parameters
    ----------
    net, params, X, Y, grads
        As for :func:`fastgrad.check`.
    epsilon, mode, thresholds
        As for :func:`fastgrad.check`.
    allowed : Verdict, default Verdict.ACCEPTABLE
        The worst verdict that passes. An INCONCLUSIVE report raises unless
        ``allowed`` is ``Verdict.INCONCLUSIVE`` itself: nothing established is
        no pass.
    **options
        Passed to :func:`fastgrad.check` (``layout``, ``k``, ``seed``, ``threads``).

    Returns
    -------
    CheckReport
        The report, when the assertion holds.

    Raises
    ------
    AssertionError
        When the verdict is worse than ``allowed``, or INCONCLUSIVE.
    """
    __tracebackhide__ = True
    report = check(
        net, params, X, Y, grads, epsilon=epsilon, mode=mode, thresholds=thresholds, **options
    )
    allowed = Verdict(allowed)
    inconclusive = report.verdict is Verdict.INCONCLUSIVE and allowed is not Verdict.INCONCLUSIVE
    if report.verdict > allowed or inconclusive:
        raise AssertionError(_message(report))
    return report
