"""HTML renderings of reports and diagnoses, shown by notebooks (``_repr_html_``)."""

import base64
import html
import io

from ._format import overall_difference, table_rows
from .thresholds import Verdict

COLORS = {
    Verdict.CORRECT: "#1a7f37",
    Verdict.ACCEPTABLE: "#4d8f00",
    Verdict.SUSPICIOUS: "#b35900",
    Verdict.WRONG: "#c62828",
    Verdict.INCONCLUSIVE: "#6a5acd",
}

STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"


def _e(text):
    return html.escape(str(text), quote=True)


def verdict_html(verdict):
    """Return a verdict's name in its colour, bold."""
    return f'<span style="color:{COLORS[verdict]};font-weight:bold">{_e(verdict.name)}</span>'


def _table(rows, verdict_column=None, verdicts=()):
    head = "".join(f'<th style="{CELL}">{_e(cell)}</th>' for cell in rows[0])
    body = []
    for r, row in enumerate(rows[1:]):
        cells = []
        for i, cell in enumerate(row):
            shown = _e(cell)
            if i == verdict_column:
                shown = verdict_html(verdicts[r])
            cells.append(f'<td style="{CELL}">{shown}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    rows_html = "".join(body)
    return (
        f'<table style="{STYLE}"><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'
    )


def _list(title, items):
    if not items:
        return ""
    entries = "".join(f"<li>{_e(item)}</li>" for item in items)
    return f"<p><b>{_e(title)}</b></p><ul>{entries}</ul>"


def report_html(report):
    """Return a check report as HTML: header, per-tensor table, worst entries, hints, reasons."""
    verdicts = [t.verdict for t in report.tensors.values()]
    header = (
        f"<p><b>fastgrad check</b> of <code>{_e(repr(report.net))}</code><br>"
        f"<code>{_e(report.net.formula())}</code><br>"
        f"mode {_e(report.mode)}: {_e(report.coverage)}, epsilon {report.epsilon:g}, "
        f"batch {report.batch}, loss {report.loss:.6g}</p>"
    )
    parts = [header]
    if report.reasons:
        parts.append(_list("not established:", report.reasons))
    parts.append(_table(table_rows(report), verdict_column=4, verdicts=verdicts))
    if any(t.verdict.failed for t in report.tensors.values()):
        worst = [["entry", "analytic", "numerical", "error"]]
        for entry in report.worst(5):
            worst.append(
                [
                    entry.label,
                    f"{entry.analytic:.6g}",
                    f"{entry.numerical:.6g}",
                    f"{entry.error:.2e}",
                ]
            )
        parts.append("<p><b>worst entries</b></p>" + _table(worst))
    parts.append(_list("hints:", report.hints))
    if report.kink_summary:
        parts.append(f"<p>{_e(report.kink_summary)}</p>")
    parts.append(
        f"<p>overall: {overall_difference(report)} &rarr; {verdict_html(report.verdict)}</p>"
    )
    return "<div>" + "".join(parts) + "</div>"


def _figure_png(result):
    """Return the diagnosis plot as base64 PNG, or ``None`` without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from ._plot import plot_diagnosis

    buffer = io.BytesIO()
    plot_diagnosis(result, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def diagnosis_html(result):
    """Return a diagnosis as HTML: a table per initializer, the plot inline with matplotlib."""
    parts = [
        f"<p><b>fastgrad diagnosis</b> of <code>{_e(repr(result.net))}</code>, batch "
        f"{result.batch}, flag limits {result.limits[0]:g} .. {result.limits[1]:g}</p>"
    ]
    for run in result.runs.values():
        rows = [["layer", "Var(Z)", "theory", "||dJ/dZ||", "theory", "||dW||", "flags"]]
        for layer in range(run.var_z.size):
            flags = ", ".join(run.flags[layer]) if layer < len(run.flags) else ""
            rows.append(
                [
                    str(layer + 1),
                    f"{run.var_z[layer]:.3g}",
                    f"{run.theory_var_z[layer]:.3g}",
                    f"{run.grad_z[layer]:.3g}",
                    f"{run.theory_grad_z[layer]:.3g}",
                    f"{run.grad_w[layer]:.3g}",
                    flags,
                ]
            )
        parts.append(f"<p><b>{_e(run.label)}</b></p>" + _table(rows))
    png = _figure_png(result)
    if png is not None:
        parts.append(f'<img alt="per-layer signals" src="data:image/png;base64,{png}">')
    return "<div>" + "".join(parts) + "</div>"
