"""fastgrad's own passes against one numpy forward and backward pass of the same batch.

One benchmark per workload x call (``net.gradients``, ``net.loss``,
``net.predict``) x BLAS thread setting (``baselines.thread_settings``: the
numpy backprop is timed under each and the faster counts; on a loaded machine
BLAS threads that wait for each other make a small product many times slower,
for both tools alike), grouped by workload: pytest-benchmark's rounds of the
call, after a warm-up round. ``extra_info`` holds the best round, the time of one
numpy backprop of the same batch measured in the same process (the session's,
see ``support/backprop.py``) and their ratio, ``backprops``: 1.2 means the
call costs 20 % more than numpy's backprop. ``python bench/passes.py`` prints
the same ratios with both tools timed alternately.
"""

import pytest
from support.baselines import thread_settings
from support.passes import CALLS, WORKLOADS, fastgrad_call
from support.session import round_times
from support.workloads import WORKLOADS as ALL

SETTINGS = thread_settings("numpy")


def _cases():
    for name in WORKLOADS:
        marks = [pytest.mark.slow] if ALL[name].large else []
        for call in CALLS:
            for setting in SETTINGS:
                yield pytest.param(name, call, setting, id=f"{name}-{call}-{setting}", marks=marks)


@pytest.mark.parametrize(("name", "call", "setting"), list(_cases()))
def test_passes(benchmark, bench, name, call, setting):
    problem = bench.problem(name)
    benchmark.group = f"{name} passes"
    rounds = 5 if ALL[name].large else 50
    with SETTINGS[setting]():
        benchmark.pedantic(fastgrad_call(problem, call), rounds=rounds, warmup_rounds=1)
    times = round_times(benchmark)
    if not times:
        return
    backprop = bench.backprop(name)
    benchmark.extra_info.update(
        call=call,
        setting=setting,
        seconds=min(times),
        backprop_s=backprop,
        backprops=min(times) / backprop,
    )
    bench.note(
        "passes (best round / one numpy backprop of the same batch, its best setting)",
        f"{name} net.{call} ({setting}): {min(times) * 1e3:.3f} ms, "
        f"{min(times) / backprop:.2f} backprops",
    )
