"""What the command draws on a terminal with rich (optional): a progress bar, a colored report.

Nothing here imports rich until it draws; without rich the command prints the
plain text report and no bar.
"""

import contextlib
import time

from ._format import overall_difference
from .thresholds import Verdict

SHOW_AFTER = 0.5
"""Seconds a check must have run, with work left, before the bar appears."""


class ProgressBar:
    """A ``progress(done, total)`` callable that draws a rich bar on a console.

    The bar appears once the check has run for ``delay`` seconds with work
    left, so short checks (and checks done in one chunk) draw nothing.

    Parameters
    ----------
    console : rich.console.Console
        Where to draw (stderr, for the command).
    delay : float, default SHOW_AFTER
        Seconds to wait before showing the bar.
    """

    def __init__(self, console, delay=SHOW_AFTER):
        self.console = console
        self.delay = delay
        self.started = time.perf_counter()
        self.progress = None
        self.task = None
        self.first = None

    def _open(self, total):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("checking"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("entries {task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("check", total=total, rate="")

    def __call__(self, done, total):
        if self.progress is None:
            if done >= total or time.perf_counter() - self.started < self.delay:
                return
            self._open(total)
            self.first = (time.perf_counter(), done)
        elapsed = time.perf_counter() - self.first[0]
        rate = f"{(done - self.first[1]) / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.progress.update(self.task, completed=done, rate=rate)

    def close(self):
        """Remove the bar from the console, if it was shown."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@contextlib.contextmanager
def progress_bar(enabled):
    """Yield a :class:`ProgressBar` on stderr, or ``None`` when disabled or rich is missing."""
    if not enabled:
        yield None
        return
    try:
        from rich.console import Console
    except ImportError:
        yield None
        return
    bar = ProgressBar(Console(stderr=True))
    try:
        yield bar
    finally:
        bar.close()


STYLES = {
    Verdict.CORRECT: "green",
    Verdict.ACCEPTABLE: "cyan",
    Verdict.INCONCLUSIVE: "magenta",
    Verdict.SUSPICIOUS: "yellow",
    Verdict.WRONG: "bold red",
}


def print_report(report):
    """Print a check's report on stdout as a colored table; return False if rich is missing.

    The numbers are those of the plain table (:func:`fastgrad._format.table_rows`);
    the hints get their own column on consoles at least 120 characters wide,
    else lines under the table.
    """
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    from ._format import compile_note, table_rows

    console = Console(highlight=False)
    console.print(Text(f"fastgrad check of {report.net!r}", style="bold"))
    console.print(Text(f"objective {report.net.formula()}"))
    console.print(
        Text(
            f"mode {report.mode}: {report.coverage}, epsilon {report.epsilon:g}, "
            f"batch {report.batch}, loss {report.loss:.6g}, {report.seconds:.3g} s"
            f"{compile_note(report)}"
        )
    )
    if report.partial:
        console.print(
            Text(
                "PARTIAL: the check was interrupted; only the entries computed are reported",
                style="bold yellow",
            )
        )
    rows = table_rows(report)
    wide = console.width >= 120
    heads = ["tensor", "shape", "difference", "verdict", "C/A/S/W", "worst entry"]
    heads += ["hint"] if wide else []
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        header_style="bold",
        caption_justify="left",
        caption="C/A/S/W: entries CORRECT/ACCEPTABLE/SUSPICIOUS/WRONG",
    )
    for head in heads:
        table.add_column(
            head,
            justify="right" if head in ("difference", "C/A/S/W") else "left",
            no_wrap=head not in ("shape", "hint"),
            min_width=6 if head == "shape" else None,
        )
    for tensor, row in zip(report.tensors.values(), rows[1:], strict=True):
        worst = tensor.worst
        where = "-" if worst is None else f"[{', '.join(map(str, worst.index))}] {worst.error:.1e}"
        style = STYLES[tensor.verdict]
        cells = [
            row[0],
            row[1],
            row[3],
            Text(row[4], style=style),
            "/".join(row[7:11]),
            where,
            *([tensor.hint or ""] if wide else []),
        ]
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))
    console.print(table)
    shown = {f"{t.name}: {t.hint}" for t in report.tensors.values() if t.hint and wide}
    for hint in report.hints:
        if hint not in shown:
            console.print(Text(f"hint {hint}"))
    if report.kink_summary:
        console.print(Text(report.kink_summary))
    for reason in report.reasons:
        console.print(Text(f"not established: {reason}", style="magenta"))
    overall = Text(f"overall: {overall_difference(report)} -> ")
    overall.append(report.verdict.name, style=STYLES[report.verdict])
    if report.partial:
        overall.append(" (partial)", style="bold yellow")
    console.print(overall)
    return True
