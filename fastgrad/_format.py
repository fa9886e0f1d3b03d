"""Plain-text rendering of a :class:`~fastgrad.report.CheckReport`."""

from .thresholds import ERROR_BANDS

COLUMNS = (
    "tensor",
    "shape",
    "checked",
    "difference",
    "verdict",
    "max error",
    "median",
    "correct",
    "accept.",
    "susp.",
    "wrong",
    "kinks",
)


def _shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _checked(t):
    if t.directions is None:
        return f"{t.checked:,}"
    return f"{t.directions_checked} dir + {t.entries_checked:,}"


def table_rows(report):
    """Return the per-tensor table as rows of strings, header first."""
    rows = [list(COLUMNS)]
    for t in report.tensors.values():
        rows.append(
            [
                t.name,
                _shape(t.shape),
                _checked(t),
                f"{t.difference:.2e}" if t.checked else "-",
                t.verdict.name,
                f"{t.max_error:.2e}" if t.checked else "-",
                f"{t.median_error:.2e}" if t.checked else "-",
                *(f"{t.bands[v]:,}" for v in ERROR_BANDS),
                f"{t.kinks:,}",
            ]
        )
    return rows


def _align(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(w) if i < 2 or i == 4 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def compile_note(report):
    """Return ``" (+ 41.2 s compiling the kernels, once)"``, or ``""`` when nothing compiled."""
    seconds = report.details.get("compile_s") or 0.0
    return f" (+ {seconds:.3g} s compiling the kernels, once)" if seconds > 0 else ""


def format_report(report):
    """Return the report as a readable table with hints and worst entries."""
    thr = report.thresholds
    what = {"full": "every entry", "sample": "sampled entries", "directional": "random directions"}
    lines = [
        f"fastgrad check of {report.net!r}",
        f"objective {report.net.formula()}",
        f"mode {report.mode} ({what.get(report.mode, report.mode)}): {report.coverage}, "
        f"epsilon {report.epsilon:g}, batch "
        f"{report.batch}, loss {report.loss:.6g}"
        + (f", {report.seconds:.3g} s" if report.seconds is not None else "")
        + compile_note(report),
        f"verdicts: CORRECT < {thr.correct:g} <= ACCEPTABLE < {thr.acceptable:g} <= "
        f"SUSPICIOUS < {thr.suspicious:g} <= WRONG",
    ]
    if report.reasons and not report.checked:
        lines.append(f"NOT COMPARED: {report.reasons[0]}")
    if report.partial:
        lines.append("PARTIAL: the check was interrupted; only the entries computed are reported")
    lines.append("")
    lines.extend(_align(table_rows(report)))
    lines.append("")
    failing = [t for t in report.tensors.values() if t.verdict.failed and t.worst]
    if failing:
        lines.append("worst entries:")
        for entry in report.worst(5):
            lines.append(f"  {entry}")
        lines.append("")
    if report.hints:
        lines.append("hints:")
        lines.extend(f"  {hint}" for hint in report.hints)
        lines.append("")
    if report.kink_summary:
        lines.append(report.kink_summary)
    if report.reasons:
        lines.append("not established:")
        lines.extend(f"  {reason}" for reason in report.reasons)
    lines.append(f"overall: {overall_difference(report)} -> {report.verdict.name}")
    return "\n".join(lines)


def overall_difference(report):
    """Return ``"difference 1.234e-15"``, or ``"nothing compared"`` when no tensor was."""
    if all(t.checked == 0 for t in report.tensors.values()):
        return "nothing compared"
    return f"difference {report.difference:.3e}"
