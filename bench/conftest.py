"""Benchmark suites' setup: OpenMP wait policy, markers, the session fixture and the summary."""

from support import machine  # noqa: I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

import pytest  # noqa: E402
from support import summary  # noqa: E402
from support.flops import matmul_rate  # noqa: E402
from support.session import BenchSession  # noqa: E402

STATE = pytest.StashKey[BenchSession]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: long baselines, large networks, scaling and compile runs; "
        "deselect with -m 'not slow'",
    )
    config.stash[STATE] = BenchSession()


@pytest.fixture(scope="session")
def bench(pytestconfig):
    """The session's shared problems, references, backprop times and collected figures."""
    state = pytestconfig.stash[STATE]
    state.rates.append(matmul_rate())
    return state


def pytest_terminal_summary(terminalreporter):
    state = terminalreporter.config.stash.get(STATE, None)
    if state is None or (not state.results and not state.notes):
        return
    state.rates.append(matmul_rate(seconds=0.5))
    gflops = state.gflops()
    write = terminalreporter.write_line
    terminalreporter.section("fastgrad benchmark summary")
    for key, value in machine.info(gflops).items():
        write(f"{key}: {value}")
    if state.results:
        write("")
        write(summary.text(summary.rows(state.results, gflops)))
    for section, lines in state.notes.items():
        write("")
        write(f"{section}:")
        for line in lines:
            write(f"  {line}")
