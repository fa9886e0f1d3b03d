"""Cold start in fresh processes: importing fastgrad, the first check, the first-ever compile.

Each benchmark times whole subprocesses (interpreter start included), with no
warm-up round: every round is a fresh process, and a warm-up is what these
figures measure. The figures that matter are measured inside the child and
kept in ``extra_info`` and in the summary printed after the run (see
``support/coldstart.py``).
"""

import tempfile

import pytest
from support import coldstart
from support.baselines import PASSING

SECTION = "cold start (fresh processes)"


def _keep(benchmark, out, prefix=""):
    for key, value in out.items():
        benchmark.extra_info[prefix + key] = value


def test_import(benchmark, bench):
    runs = []
    benchmark.group = "cold start"
    benchmark.pedantic(lambda: runs.append(coldstart.run_child()), rounds=3, iterations=1)
    best = min(runs, key=lambda r: r["import_fastgrad"])
    _keep(benchmark, best)
    bench.note(
        SECTION,
        f"import numpy + numba {best['import_numpy_numba']:.3f} s; "
        f"import fastgrad after them {best['import_fastgrad']:.3f} s; "
        f"python -c 'import fastgrad' {best['process_wall']:.3f} s wall; "
        f"{best['compiled_at_import']} signatures compiled at import",
    )
    assert all(r["compiled_at_import"] == 0 for r in runs), "importing fastgrad compiled kernels"


def test_first_check_warm_cache(benchmark, bench):
    """The first ``fg.check`` on mnist when numba's disk cache holds the kernels."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="fastgrad-numba-cache-") as cache:
        coldstart.run_child("mnist", cache)  # fills the cache
        benchmark.group = "cold start"
        benchmark.pedantic(
            lambda: runs.append(coldstart.run_child("mnist", cache)), rounds=2, iterations=1
        )
    best = min(runs, key=lambda r: r["first_check"])
    _keep(benchmark, best)
    bench.note(
        SECTION,
        f"first check, mnist, warm disk cache: {best['first_check']:.3f} s "
        f"(second check {best['second_check']:.3f} s in the same process)",
    )
    assert best["verdict"] in PASSING


@pytest.mark.slow
def test_first_ever_compile(benchmark, bench):
    """The first ``fg.check`` on mnist with an empty ``NUMBA_CACHE_DIR``: everything compiles."""
    runs = []

    def cold():
        with tempfile.TemporaryDirectory(prefix="fastgrad-numba-cache-") as cache:
            runs.append(coldstart.run_child("mnist", cache))

    benchmark.group = "cold start"
    benchmark.pedantic(cold, rounds=1, iterations=1)
    out = runs[0]
    _keep(benchmark, out)
    bench.note(
        SECTION,
        f"first-ever check, mnist, empty cache: {out['first_check']:.2f} s "
        f"(about {out['first_check'] - out['second_check']:.1f} s compiling)",
    )
    assert out["verdict"] in PASSING
