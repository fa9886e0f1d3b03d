"""What the benchmark suites of one pytest session share, handed to them by a session fixture.

Problems, fastgrad's reference checks and the numpy backprop times are built
once per session, on first use, and are the same whichever benchmarks run and
in whatever order: no benchmark reads another's results. The benchmarks add
their :class:`measure.Result` objects and text figures here, and
``conftest.py`` prints them after the run.
"""

from . import baselines
from .backprop import backprop_seconds
from .flops import matmul_rate
from .workloads import EPSILON, WORKLOADS


class BenchSession:
    """Shared, lazily built state of one benchmark session."""

    def __init__(self):
        self.results = []
        """Every :class:`measure.Result` measured in this session, in order."""
        self.notes = {}
        """``{section: [lines]}`` of cold-start, scaling and memory figures."""
        self.rates = []
        """Matrix-product rates (GFLOP/s) measured in this session; the best one is used."""
        self._problems = {}
        self._references = {}
        self._backprops = {}
        self._warm = set()

    def problem(self, name):
        """Return the built workload ``name`` (built once per session)."""
        if name not in self._problems:
            self._problems[name] = WORKLOADS[name].build()
        return self._problems[name]

    def reference(self, name):
        """Return fastgrad's full check of workload ``name``, made here, untimed."""
        if name not in self._references:
            self._references[name] = baselines.fastgrad_check(self.problem(name), EPSILON)
        return self._references[name]

    def backprop(self, name):
        """Return the best time of one numpy forward and backward pass of ``name``'s batch."""
        if name not in self._backprops:
            self._backprops[name] = backprop_seconds(self.problem(name))
        return self._backprops[name]

    def warm(self, hidden):
        """Load fastgrad's kernels for ``hidden`` with a check of a small network, once.

        A check too long to repeat is then timed in a single round without a
        warm-up round of its own.
        """
        if hidden not in self._warm:
            name = "small" if hidden == "relu" else f"small-{hidden}"
            baselines.fastgrad_check(WORKLOADS[name].build(), EPSILON)
            self._warm.add(hidden)

    def gflops(self):
        """Return the best matrix-product rate measured so far (measures one if none)."""
        if not self.rates:
            self.rates.append(matmul_rate())
        return max(self.rates)

    def note(self, section, line):
        """Add a line to the summary printed at the end of the session."""
        self.notes.setdefault(section, []).append(line)


def round_times(benchmark):
    """Return the seconds of each timed round of a benchmark (none with ``--benchmark-disable``)."""
    return list(benchmark.stats.stats.data) if benchmark.stats is not None else []
