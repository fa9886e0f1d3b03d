"""State shared by the benchmark suites of one pytest session.

Problems and fastgrad's reference checks are built once per session; the
suites append their :class:`measure.Result` objects and text figures here,
and ``conftest.py`` prints them after the run.
"""

import baselines
from workloads import EPSILON, WORKLOADS

RESULTS = []
"""Every :class:`measure.Result` measured in this session, in order."""

NOTES = {}
"""``{section: [lines]}`` of cold-start and scaling figures."""

RATES = []
"""Matrix-product rates (GFLOP/s) measured in this session; the best one is used."""

_problems = {}
_references = {}


def problem(name):
    """Return the built workload ``name`` (built once per session)."""
    if name not in _problems:
        _problems[name] = WORKLOADS[name].build()
    return _problems[name]


def reference(name):
    """Return fastgrad's full check of workload ``name`` (the benchmarked one when it ran)."""
    if name not in _references:
        _references[name] = baselines.fastgrad_check(problem(name), EPSILON)
    return _references[name]


def set_reference(name, report):
    """Keep ``report`` as fastgrad's full check of ``name``."""
    _references[name] = report


def gflops():
    """Return the best matrix-product rate measured so far in the session (measures one if none)."""
    if not RATES:
        from flops import matmul_rate

        RATES.append(matmul_rate())
    return max(RATES)


def note(section, line):
    """Add a line to the summary printed at the end of the session."""
    NOTES.setdefault(section, []).append(line)
