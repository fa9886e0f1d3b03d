"""How a :class:`~fastgrad.diagnostics.DiagnosisResult` is shown: a text table, a figure.

The figure needs matplotlib (the ``plot`` extra), imported only when drawing.
"""

import numpy as np

INSTALL = "plotting needs matplotlib: pip install 'fastgrad[plot]' (or pip install matplotlib)"

PANELS = (
    ("var_z", "theory_var_z", "forward: Var(Z_l)"),
    ("grad_z", "theory_grad_z", "backward: ||dJ/dZ_l||"),
    ("grad_w", None, "weight gradients: ||dW_l||"),
)


def format_diagnosis(result):
    """Return the per-layer tables of a diagnosis, one per initializer, as text."""
    net, (low, high) = result.net, result.limits
    lines = [
        f"fastgrad diagnose of {net!r}, batch {result.batch}, seed {result.seed}",
        f"theory: wide-layer limit; flags where Var(Z_l)/Var(Z_1) or "
        f"(||dJ/dZ_l||/||dJ/dZ_L||)^2 leaves [{low:g}, {high:g}]",
    ]
    for run in result.runs.values():
        lines += ["", run.label, *_table(net, run), *_summary(run)]
    return "\n".join(lines)


def _table(net, run):
    def cell(x, fmt=".2e"):
        return "-" if x is None or np.isnan(x) else format(x, fmt)

    rows = [
        [
            "layer",
            "width",
            "Var(Z)",
            "theory",
            "gain",
            "Var(A)",
            "||dJ/dZ||",
            "theory",
            "gain",
            "||dW||",
            "flags",
        ]
    ]
    for i in range(len(run.var_z)):
        hidden = i < len(run.var_a)
        rows.append(
            [
                str(i + 1),
                str(net.sizes[i + 1]),
                cell(run.var_z[i]),
                cell(run.theory_var_z[i]),
                cell(run.theory_gain[i], ".4g"),
                cell(run.var_a[i] if hidden else None),
                cell(run.grad_z[i]),
                cell(run.theory_grad_z[i]),
                cell(run.theory_grad_gain[i], ".4g"),
                cell(run.grad_w[i]),
                ", ".join(run.flags[i]),
            ]
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [x.rjust(w) if c < len(row) - 1 else x for c, (x, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return lines


def _power(total, steps):
    if steps < 1 or not np.isfinite(total) or total <= 0:
        return f"{total:.4g}"
    return f"{total:.4g} = {total ** (1.0 / steps):.4g}^{steps}"


def _summary(run):
    n = len(run.var_z)
    with np.errstate(all="ignore"):
        forward = run.var_z[-1] / run.var_z[0]
        backward = run.grad_z[0] / run.grad_z[-1]
        theory_forward = run.theory_var_z[-1] / run.theory_var_z[0]
        theory_backward = run.theory_grad_z[0] / run.theory_grad_z[-1]
    flagged = run.flagged
    return [
        f"forward  Var(Z_{n})/Var(Z_1) = {forward:.4g}   theory {_power(theory_forward, n - 1)}",
        f"backward ||dJ/dZ_1||/||dJ/dZ_{n}|| = {backward:.4g}   theory "
        f"{_power(theory_backward, n - 1)}",
        "flagged layers: " + (", ".join(str(x) for x in flagged) if flagged else "none"),
    ]


def _figure(path):
    """Return an empty figure: an Agg-canvas one to save, or a pyplot one to show."""
    try:
        if path is None:
            import matplotlib.pyplot as plt

            return plt.figure(figsize=(13, 4), layout="constrained")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(INSTALL) from exc
    figure = Figure(figsize=(13, 4), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_diagnosis(result, path=None):
    """Draw per-layer signals on log scales, one color per initializer.

    Measured values are solid lines with dots, the theory's predictions dashed
    lines of the same color. Saving (``path`` given) uses the Agg canvas
    directly, so no window opens and pyplot's state is left alone.
    """
    figure = _figure(path)
    axes = figure.subplots(1, len(PANELS))
    colors = [f"C{i % 10}" for i in range(len(result.runs))]
    for ax, (measured, predicted, title) in zip(axes, PANELS, strict=True):
        for color, run in zip(colors, result.runs.values(), strict=True):
            values = getattr(run, measured)
            layers = np.arange(1, values.size + 1)
            shown = np.where(values > 0, values, np.nan)
            ax.plot(layers, shown, "o-", color=color, label=run.label, markersize=3)
            if predicted is not None:
                theory = getattr(run, predicted)
                ax.plot(
                    layers,
                    np.where(theory > 0, theory, np.nan),
                    "--",
                    color=color,
                    linewidth=1,
                    alpha=0.7,
                )
        ax.set_yscale("log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("layer l")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize="small", title="init (dashed: theory)", title_fontsize="small")
    figure.suptitle(f"{result.net!r}, batch {result.batch}", fontsize="medium")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure
