"""Benchmark suites' setup: OpenMP wait policy, the ``slow`` marker, and the end-of-run summary."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402, I001  (first: sets OMP_WAIT_POLICY before any thread starts)

machine.quiet_openmp()

import registry  # noqa: E402
import summary  # noqa: E402
from flops import matmul_rate  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long baselines, scaling and compile runs; deselect with -m 'not slow'")


def pytest_sessionstart(session):
    registry.RATES.append(matmul_rate())


def pytest_terminal_summary(terminalreporter):
    if not registry.RESULTS and not registry.NOTES:
        return
    registry.RATES.append(matmul_rate(seconds=0.5))
    gflops = registry.gflops()
    write = terminalreporter.write_line
    terminalreporter.section("fastgrad benchmark summary")
    for key, value in machine.info(gflops).items():
        write(f"{key}: {value}")
    if registry.RESULTS:
        write("")
        write(summary.text(summary.rows(registry.RESULTS, gflops)))
    for section, lines in registry.NOTES.items():
        write("")
        write(f"{section}:")
        for line in lines:
            write(f"  {line}")
