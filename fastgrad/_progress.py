"""When a check is long enough to report its progress: decided here only."""

PROGRESS_WORK = 4_000_000
"""Entry-samples (entries x batch) above which a check reports progress.

Above it :func:`fastgrad.check` splits the kernel into chunks so that a
``progress`` callback is called between them, and the command line hands it
one (its bar draws only once the check has run for a moment). Below it the
check runs in one kernel call: splitting would cost thread start-ups for
nothing."""


def reports_progress(entries, batch):
    """Whether differencing ``entries`` entries over ``batch`` samples reports progress."""
    return entries * batch > PROGRESS_WORK
