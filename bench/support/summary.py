"""Formatting of the comparison table, shared by ``table.py`` and the pytest summary."""

import math

HEADERS = (
    "workload",
    "N",
    "tool",
    "seconds",
    "backprops",
    "ratio",
    "of bound",
    "first s",
    "agree",
    "note",
)


def rows(results, gflops):
    """Return one tuple of strings per :class:`measure.Result`, in :data:`HEADERS` order.

    ``backprops`` is the tool's seconds over one numpy forward and backward
    pass of the same batch, measured in the same process; ``ratio`` is the
    tool's seconds over fastgrad's full check of the same workload; ``of
    bound`` is fastgrad's fraction of the flop bound at ``gflops`` (bound time
    over fastgrad's time).
    """
    full = {r.workload: r.seconds for r in results if r.tool == "fastgrad" and r.mode == "full"}
    out = []
    for r in results:
        tool = r.tool if r.mode == "full" else f"{r.tool} ({r.mode})"
        ratio = f"{r.seconds / full[r.workload]:.3g}" if r.workload in full else ""
        bound = ""
        if r.tool == "fastgrad" and r.flops and gflops and math.isfinite(r.seconds):
            bound = f"{r.flops / (gflops * 1e9) / r.seconds:.2f}"
        backprops = "" if r.backprops is None else f"{r.backprops:.3g}"
        out.append(
            (
                r.workload,
                f"{r.n_params:,}",
                tool,
                f"{r.seconds:.4g}",
                backprops,
                ratio,
                bound,
                "" if r.first is None else f"{r.first:.3g}",
                "" if r.agreement is None else f"{r.agreement:.2g}",
                r.note,
            )
        )
    return out


def text(table):
    """Return rows as an aligned plain-text table."""
    widths = [max(len(h), *(len(row[c]) for row in table)) for c, h in enumerate(HEADERS)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    return "\n".join(lines)


def markdown(table):
    """Return rows as a markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)
